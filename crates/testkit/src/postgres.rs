//! A throwaway PostgreSQL server for tests: `initdb` into a temporary folder, started on a free
//! loopback port, stopped by its PID when dropped.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Set to `1` (CI does) to make a missing PostgreSQL fail the tests that need it instead of
/// skipping them.
pub const REQUIRE_POSTGRES_ENV: &str = "SAK_REQUIRE_POSTGRES";

/// Why a PostgreSQL server could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// No `initdb`/`pg_ctl` on PATH or under /usr/lib/postgresql.
    #[error(
        "PostgreSQL's initdb and pg_ctl are not installed (looked on PATH and in /usr/lib/postgresql/*/bin)"
    )]
    Missing,
    /// A step failed.
    #[error("{step}: {detail}")]
    Failed {
        /// What was being done.
        step: &'static str,
        /// What it said.
        detail: String,
    },
}

impl PostgresError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Missing => {
                "install PostgreSQL (Debian: apt-get install postgresql), or run `make test`, which does"
            }
            Self::Failed { .. } => "the server's log is in the message; PostgreSQL 15 or newer is needed",
        }
    }
}

/// A running PostgreSQL server of a test's own, with trust authentication on 127.0.0.1.
/// Dropping it stops the server (SIGINT to its postmaster's PID: a fast shutdown) and removes
/// its folder.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile_dir::Dir,
    bin: PathBuf,
    port: u16,
    /// Run the server's programs as this user (`initdb` refuses root).
    user: Option<String>,
}

mod tempfile_dir {
    /// A folder removed when dropped.
    #[derive(Debug)]
    pub(super) struct Dir(pub(super) std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Postgres {
    /// `Ok(None)` when PostgreSQL is not installed and [`REQUIRE_POSTGRES_ENV`] is not `1`
    /// (after saying so loudly on stderr); otherwise a started server, or the error.
    pub fn start_or_skip() -> Result<Option<Self>, PostgresError> {
        match Self::start() {
            Err(PostgresError::Missing) if std::env::var(REQUIRE_POSTGRES_ENV).as_deref() != Ok("1") => {
                eprintln!(
                    "SKIPPED: the PostgreSQL tests ({}; set {REQUIRE_POSTGRES_ENV}=1 to make this a failure)",
                    PostgresError::Missing
                );
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Initialises a cluster in a new temporary folder and starts it on a free loopback port.
    pub fn start() -> Result<Self, PostgresError> {
        let bin = binaries().ok_or(PostgresError::Missing)?;
        let user = is_root().then(|| "postgres".to_owned());
        let path = std::env::temp_dir().join(format!("sak-pg-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&path).map_err(|e| failed("creating the folder", e))?;
        let dir = tempfile_dir::Dir(path);
        if let Some(user) = &user {
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:"), &dir.0.display().to_string()])
                .status()
                .map_err(|e| failed("chown", e))?;
            if !status.success() {
                return Err(PostgresError::Failed { step: "chown", detail: format!("to {user}: {status}") });
            }
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| failed("finding a free port", e))?
            .port();
        let this = Self { dir, bin, port, user };
        let data = this.data().display().to_string();
        this.run(
            "initdb",
            &["-D", &data, "--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-sync"],
        )?;
        this.start_server()?;
        Ok(this)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` (an identifier: letters, digits, `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, PostgresError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(PostgresError::Failed {
                step: "create database",
                detail: format!("bad name {name:?}"),
            });
        }
        let mut client =
            postgres::Client::connect(&self.url(), postgres::NoTls).map_err(|e| failed("connecting", e))?;
        client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| failed("create database", e))?;
        Ok(self.url_of(name))
    }

    /// The postmaster's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// Stops the server (fast shutdown, by PID) and starts it again on the same port and data:
    /// every connection is cut meanwhile.
    pub fn restart(&self) -> Result<(), PostgresError> {
        self.stop();
        self.start_server()
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn start_server(&self) -> Result<(), PostgresError> {
        let data = self.data().display().to_string();
        let log = self.dir.0.join("server.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.0.display()
        );
        self.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]).map_err(
            |e| match e {
                PostgresError::Failed { step, detail } => PostgresError::Failed {
                    step,
                    detail: format!(
                        "{detail}\nserver log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ),
                },
                other => other,
            },
        )
    }

    /// SIGINT to the postmaster (fast shutdown), and waits up to 30 s for it to end.
    fn stop(&self) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
        let until = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one of the server's programs (as the server's user when we are root).
    fn run(&self, program: &'static str, args: &[&str]) -> Result<(), PostgresError> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir.0)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(program, e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PostgresError::Failed {
                step: program,
                detail: format!(
                    "{}: {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            })
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn failed(step: &'static str, e: impl std::fmt::Display) -> PostgresError {
    PostgresError::Failed { step, detail: e.to_string() }
}

/// The folder holding `initdb` and `pg_ctl`: where `initdb` on PATH points, else the newest
/// /usr/lib/postgresql/N/bin.
fn binaries() -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for dir in on_path {
        let initdb = dir.join("initdb");
        if initdb.is_file() {
            let real = std::fs::canonicalize(&initdb).ok()?;
            let bin = real.parent()?.to_owned();
            if bin.join("pg_ctl").is_file() {
                return Some(bin);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
