//! Where the tools act: in this process through the facade (which then holds the session key),
//! or through a running signer daemon (this process holds only its bearer token).

use crate::{QuoteArgs, SendArgs, SwapArgs};
use alloy::transports::http::reqwest;
use sak::{
    Hinted, Home,
    agent::{self, Agent, HeldKey, SwapRequest},
    outcome::Failure,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::{Mutex, OnceCell};

/// Where the tools act.
#[allow(clippy::large_enum_variant, reason = "one per server, behind an Arc")]
pub enum Backend {
    /// Through the facade, in this process: the home's session key is decrypted here once per
    /// session and held.
    Local {
        /// How the home opens.
        options: sak::Options,
        /// The session used when a tool names none.
        session: Option<u32>,
        /// Keys decrypted so far, by session.
        held: Mutex<HashMap<u32, HeldKey>>,
        /// The home and its chain, once opened (every call after the first reuses them).
        opened: OnceCell<(Home, sak::Chain)>,
    },
    /// Through `sak agent serve` at `url`, with its bearer token.
    Daemon {
        /// `http://127.0.0.1:PORT`.
        url: String,
        /// The daemon's bearer token.
        token: String,
        /// The HTTP client.
        http: reqwest::Client,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { session, .. } => write!(f, "Local(session {session:?})"),
            Self::Daemon { url, .. } => write!(f, "Daemon({url})"),
        }
    }
}

type Answer = Result<Value, Value>;

/// A failure as the CLI's `--json` says it; an unknown outcome is a result, not an error.
fn failure(err: &sak::Error) -> Answer {
    let failure = Failure::of(err, None, None);
    let doc = serde_json::to_value(&failure).unwrap_or_default();
    if failure.state == "unknown" { Ok(doc) } else { Err(doc) }
}

fn fail(err: impl Into<sak::Error>) -> Value {
    let err = err.into();
    serde_json::to_value(Failure::of(&err, None, None)).unwrap_or_default()
}

fn to_value<T: serde::Serialize>(value: &T) -> Answer {
    serde_json::to_value(value).map_err(|e| fail(sak::Error::msg(format!("encoding the answer: {e}"))))
}

impl Backend {
    /// In this process, on the home `options` open; `session` when a tool names none.
    pub fn local(options: sak::Options, session: Option<u32>) -> Self {
        Self::Local { options, session, held: Mutex::new(HashMap::new()), opened: OnceCell::new() }
    }

    /// Through the daemon at `url` with `token`.
    pub fn daemon(url: impl Into<String>, token: impl Into<String>) -> Self {
        Self::Daemon { url: url.into(), token: token.into(), http: reqwest::Client::new() }
    }

    /// The session in full ([`sak::sessions::Detail`]).
    pub(crate) async fn session(&self, session: Option<u32>) -> Answer {
        match self {
            Self::Local { .. } => {
                let (home, chain, id) = self.open(session).await?;
                let detail = sak::sessions::detail(home, chain, id).await;
                detail.map_or_else(|e| failure(&e), |d| to_value(&d))
            }
            Self::Daemon { .. } => {
                let detail = self.daemon_call("GET", "/v1/session", None).await?;
                match session {
                    Some(id) if detail["id"] != id => Err(fail(Hinted::refused(
                        format!("the signer daemon acts under session {} only, not {id}", detail["id"]),
                        "leave `session` out, or start a daemon for that session",
                    ))),
                    _ => Ok(detail),
                }
            }
        }
    }

    pub(crate) async fn policy(&self, session: Option<u32>) -> Answer {
        let detail = self.session(session).await?;
        // In words with the home's names (the daemon's answer is data only).
        let words = match self {
            Self::Local { .. } => {
                let (_, chain, _) = self.open_home().await?;
                let policy: sak::Policy = serde_json::from_value(detail["policy"].clone())
                    .map_err(|e| fail(sak::Error::msg(format!("the session's policy: {e}"))))?;
                Some(sak::words::describe_policy(&policy, chain, sak::units::unix_now()))
            }
            Self::Daemon { .. } => None,
        };
        Ok(json!({ "session": detail["id"], "policy": detail["policy"], "in_words": words }))
    }

    pub(crate) async fn quote(&self, args: QuoteArgs) -> Answer {
        match self {
            Self::Local { .. } => {
                let (_, chain, _) = self.open_home().await?;
                let request = SwapRequest {
                    router: None,
                    token_in: args.token_in,
                    token_out: args.token_out,
                    amount: args.amount,
                    min_out: "0".into(),
                };
                match agent::quote(&request, chain).await {
                    Ok(out) => Ok(json!({ "amount_out": out.to_string() })),
                    Err(e) => failure(&e),
                }
            }
            Self::Daemon { .. } => {
                let body =
                    json!({ "token_in": args.token_in, "token_out": args.token_out, "amount": args.amount });
                self.daemon_call("POST", "/v1/quote", Some(body)).await
            }
        }
    }

    pub(crate) async fn swap(&self, args: SwapArgs, dry_run: bool) -> Answer {
        match self {
            Self::Local { .. } => {
                let (home, chain, id) = self.open(args.session).await?;
                let request = SwapRequest {
                    router: None,
                    token_in: args.token_in,
                    token_out: args.token_out,
                    amount: args.amount,
                    min_out: args.min_out,
                };
                let account = home.account(chain.chain_id).map_err(fail)?.address;
                let (calls, plan) = agent::swap_calls(&request, chain, account).await.map_err(fail)?;
                self.run(home, chain, id, "swap", calls, Some(plan), dry_run).await
            }
            Self::Daemon { .. } => {
                let body = json!({
                    "token_in": args.token_in, "token_out": args.token_out,
                    "amount": args.amount, "min_out": args.min_out, "dry_run": dry_run,
                });
                if args.session.is_some() {
                    self.session(args.session).await?;
                }
                self.daemon_call("POST", "/v1/swap", Some(body)).await
            }
        }
    }

    pub(crate) async fn send(&self, args: SendArgs) -> Answer {
        match self {
            Self::Local { .. } => {
                let (home, chain, id) = self.open(args.session).await?;
                let to = sak::calls::resolve(chain, &args.to, "to").map_err(fail)?;
                let value =
                    sak::calls::parse_value(args.value.as_deref().unwrap_or("0"), "value").map_err(fail)?;
                let data = match &args.data {
                    Some(hex) => sak::calls::parse_hex(hex, "data").map_err(fail)?,
                    None => Default::default(),
                };
                self.run(home, chain, id, "send", vec![sak::Call::new(to, value, data)], None, false).await
            }
            Self::Daemon { .. } => {
                let body = json!({ "to": args.to, "value": args.value, "data": args.data });
                if args.session.is_some() {
                    self.session(args.session).await?;
                }
                self.daemon_call("POST", "/v1/send", Some(body)).await
            }
        }
    }

    /// One guarded operation under session `id`, its key decrypted once and held.
    #[allow(clippy::too_many_arguments, reason = "one private call site per tool")]
    async fn run(
        &self,
        home: &Home,
        chain: &sak::Chain,
        id: u32,
        command: &'static str,
        calls: Vec<sak::Call>,
        plan: Option<agent::SwapPlan>,
        dry_run: bool,
    ) -> Answer {
        let Self::Local { held, .. } = self else { unreachable!("local only") };
        let mut options = agent::Options::new(id);
        options.dry_run = dry_run;
        {
            let mut held = held.lock().await;
            if let Some(key) = held.get(&id) {
                options.held_key = Some(key.clone());
            } else {
                let agent = Agent::open(&options, home, chain).await.map_err(fail)?;
                held.insert(id, agent.held_key());
                options.held_key = held.get(&id).cloned();
            }
        }
        match Agent::open(&options, home, chain).await {
            Ok(agent) => agent.run(command, calls, plan).await.map_or_else(|e| failure(&e), |r| to_value(&r)),
            Err(e) => failure(&e),
        }
    }

    async fn open_home(&self) -> Result<(&Home, &sak::Chain, Option<u32>), Value> {
        let Self::Local { options, session, opened, .. } = self else { unreachable!("local only") };
        let (home, chain) = opened
            .get_or_try_init(|| async {
                let home = Home::open(options.clone()).map_err(fail)?;
                let chain = home.chain().await.map_err(fail)?;
                Ok::<_, Value>((home, chain))
            })
            .await?;
        Ok((home, chain, *session))
    }

    /// The home, its chain, and the session a tool acts under.
    async fn open(&self, session: Option<u32>) -> Result<(&Home, &sak::Chain, u32), Value> {
        let (home, chain, default) = self.open_home().await?;
        let id = session.or(default).ok_or_else(|| {
            fail(Hinted::new(
                "no session: this tool acts under a session, and none was named",
                "pass `session` (an id from `sak session list`), or start the server with `sak mcp --session N`",
            ))
        })?;
        Ok((home, chain, id))
    }

    async fn daemon_call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let Self::Daemon { url, token, http } = self else { unreachable!("daemon only") };
        let mut request = if method == "GET" {
            http.get(format!("{url}{path}"))
        } else {
            http.post(format!("{url}{path}"))
        };
        request = request.bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            fail(Hinted::new(
                format!("the signer daemon at {url} does not answer: {e}"),
                "start it with `sak agent serve --session N` on the machine that holds the key",
            ))
        })?;
        let status = response.status();
        let doc: Value =
            response.json().await.map_err(|e| fail(sak::Error::msg(format!("the daemon's answer: {e}"))))?;
        if (status.is_success() && doc["error"].is_null()) || doc["state"] == "unknown" {
            Ok(doc)
        } else {
            Err(doc)
        }
    }
}

/// The status tool's answer, from the session's detail.
pub(crate) fn status_of(detail: &Value) -> Value {
    json!({
        "session": detail["id"],
        "status": detail["status"],
        "revoked_by": detail["revoked_by"],
        "key": detail["key"],
        "account": detail["account"],
        "chain_id": detail["chain_id"],
        "valid_after": detail["policy"]["valid_after"],
        "valid_until": detail["policy"]["valid_until"],
        "chain_time": detail["chain_time"],
    })
}

/// The remaining_caps tool's answer, from the session's detail.
pub(crate) fn caps_of(detail: &Value) -> Value {
    json!({
        "session": detail["id"],
        "status": detail["status"],
        "chain_time": detail["chain_time"],
        "allowances": detail["allowances"],
        "gas": detail["gas"],
        "operations": detail["operations"],
    })
}
