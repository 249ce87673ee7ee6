//! A JSON-RPC proxy on loopback that injects faults between a client and a node: answers 429
//! or 503, drops the connection before or after forwarding, holds the answer, or lies.
//!
//! Each request is forwarded to the upstream URL unless the plan picks a fault for it: the
//! request's method is in the plan's methods (all methods when empty) and a seeded draw falls
//! under the plan's rate. The proxy runs on a thread of its own (its own runtime), so sync
//! tests that spawn `sak` processes and async tests use it alike; it stops when dropped.

use alloy::transports::http::reqwest;
use sak_node::{Error, Result};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

/// One way to fail a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// HTTP 429 Too Many Requests, not forwarded.
    TooManyRequests,
    /// HTTP 503 Service Unavailable, not forwarded.
    Unavailable,
    /// The connection is closed without an answer, not forwarded.
    Close,
    /// Forwarded (the node acts on it), then the connection is closed without an answer.
    CloseAfterForward,
    /// Forwarded, and the answer held this long first.
    Delay(Duration),
    /// Forwarded, and the answer's `result` replaced by this value.
    Lie(Value),
}

impl Fault {
    /// Its name in [`FaultProxy::stats`].
    pub const fn name(&self) -> &'static str {
        match self {
            Self::TooManyRequests => "429",
            Self::Unavailable => "503",
            Self::Close => "close",
            Self::CloseAfterForward => "close-after-forward",
            Self::Delay(_) => "delay",
            Self::Lie(_) => "lie",
        }
    }
}

/// Which requests fail, and how.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// The share of eligible requests that fail, 0.0 to 1.0.
    pub rate: f64,
    /// The faults, drawn uniformly for each failing request.
    pub faults: Vec<Fault>,
    /// The JSON-RPC methods eligible for faults; empty means all.
    pub methods: Vec<String>,
    /// The seed of the draws (the same seed, the same sequence of decisions).
    pub seed: u64,
    /// Refuse `eth_getLogs` over more blocks than this (a JSON-RPC error under -32005, the code
    /// Infura gives it and its rate limit alike), counted as `log-range`.
    pub max_log_range: Option<u64>,
}

impl FaultPlan {
    /// Every method, each fault kind in `faults`, at `rate`.
    pub fn new(rate: f64, faults: Vec<Fault>) -> Self {
        Self { rate, faults, methods: Vec::new(), seed: 1, max_log_range: None }
    }

    /// Only requests of these methods may fail.
    #[must_use]
    pub fn only(mut self, methods: &[&str]) -> Self {
        self.methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// Refuse `eth_getLogs` requests over more than `blocks` blocks.
    #[must_use]
    pub const fn max_log_range(mut self, blocks: u64) -> Self {
        self.max_log_range = Some(blocks);
        self
    }

    /// Another seed.
    #[must_use]
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The five transport faults, holding answers for `delay`: what a flaky provider does.
    pub fn flaky(rate: f64, delay: Duration) -> Self {
        Self::new(
            rate,
            vec![
                Fault::TooManyRequests,
                Fault::Unavailable,
                Fault::Close,
                Fault::CloseAfterForward,
                Fault::Delay(delay),
            ],
        )
    }
}

/// A running proxy. Dropping it stops it.
#[derive(Debug)]
pub struct FaultProxy {
    url: String,
    stats: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` under `plan`.
    pub fn start(upstream: &str, plan: FaultPlan) -> Result<Self> {
        let io = |context: &str| {
            let context = context.to_owned();
            move |source| Error::Io { context, source }
        };
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("fault proxy: bind"))?;
        std_listener.set_nonblocking(true).map_err(io("fault proxy: set_nonblocking"))?;
        let url = format!("http://{}", std_listener.local_addr().map_err(io("fault proxy: local_addr"))?);
        let stats = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            client: reqwest::Client::new(),
            plan,
            draws: AtomicU64::new(0),
            stats: Arc::clone(&stats),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("fault proxy: runtime"))?;
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(std_listener) else { return };
                    tokio::select! {
                        _ = stopped => {}
                        () = accept(listener, shared) => {}
                    }
                });
            })
            .map_err(io("fault proxy: thread"))?;
        Ok(Self { url, stats, stop: Some(stop), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests seen so far: `forwarded`, and per fault name how many were injected.
    pub fn stats(&self) -> BTreeMap<&'static str, u64> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    plan: FaultPlan,
    draws: AtomicU64,
    stats: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Shared {
    fn count(&self, what: &'static str) {
        if let Ok(mut stats) = self.stats.lock() {
            *stats.entry(what).or_default() += 1;
        }
    }

    /// The fault for a request of `method`, if the draw picks one.
    fn pick(&self, method: Option<&str>) -> Option<Fault> {
        let plan = &self.plan;
        if plan.faults.is_empty()
            || !(plan.methods.is_empty() || method.is_some_and(|m| plan.methods.iter().any(|x| x == m)))
        {
            return None;
        }
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let draw = splitmix64(plan.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        #[allow(clippy::cast_precision_loss)]
        let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= plan.rate {
            return None;
        }
        let index = usize::try_from(splitmix64(draw) % plan.faults.len() as u64).unwrap_or(0);
        Some(plan.faults[index].clone())
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, Arc::clone(&shared)));
    }
}

/// One request per connection (every answer says `Connection: close`).
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(body) = read_request(&mut stream).await else { return };
    let method = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("method").and_then(Value::as_str).map(str::to_owned));
    if let Some(max) = shared.plan.max_log_range
        && let Some(span) = log_range(&body)
        && span > max
    {
        shared.count("log-range");
        let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("id").cloned());
        let error = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": -32005, "message": format!("query exceeds max block range {max}")}});
        return respond(&mut stream, "200 OK", error.to_string().as_bytes()).await;
    }
    let fault = shared.pick(method.as_deref());
    match &fault {
        Some(Fault::TooManyRequests) => {
            shared.count("429");
            return respond(&mut stream, "429 Too Many Requests", b"rate limited").await;
        }
        Some(Fault::Unavailable) => {
            shared.count("503");
            return respond(&mut stream, "503 Service Unavailable", b"unavailable").await;
        }
        Some(Fault::Close) => {
            shared.count("close");
            return;
        }
        _ => {}
    }
    let forwarded = shared
        .client
        .post(&shared.upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    // The upstream's status is passed on, so that proxies can be chained (one fault per hop).
    let answer = match forwarded {
        Ok(response) => {
            let status = response.status();
            let status = format!("{} {}", status.as_str(), status.canonical_reason().unwrap_or(""));
            response.bytes().await.ok().map(|body| (status, body))
        }
        Err(e) if e.is_connect() => {
            return respond(&mut stream, "502 Bad Gateway", b"upstream unreachable").await;
        }
        // The upstream dropped the connection: so does the proxy.
        Err(_) => None,
    };
    shared.count("forwarded");
    let Some((status, mut answer)) = answer else { return };
    match fault {
        Some(Fault::CloseAfterForward) => {
            shared.count("close-after-forward");
            return;
        }
        Some(Fault::Delay(hold)) => {
            shared.count("delay");
            tokio::time::sleep(hold).await;
        }
        Some(Fault::Lie(result)) => {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&answer)
                && v.get("result").is_some()
            {
                shared.count("lie");
                v["result"] = result;
                answer = serde_json::to_vec(&v).unwrap_or_default().into();
            }
        }
        _ => {}
    }
    respond(&mut stream, &status, &answer).await;
}

/// The body of one HTTP/1.1 request (headers up to the blank line, then `Content-Length`
/// bytes), or None when the client went away or sent something else.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(4096);
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let mut chunk = vec![0u8; header_end + length - buf.len()];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[header_end..header_end + length].to_vec())
}

async fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// The number of blocks an `eth_getLogs` request spans (both ends given as numbers).
fn log_range(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("method")?.as_str()? != "eth_getLogs" {
        return None;
    }
    let filter = v.get("params")?.get(0)?;
    let number =
        |key: &str| u64::from_str_radix(filter.get(key)?.as_str()?.trim_start_matches("0x"), 16).ok();
    Some(number("toBlock")?.saturating_sub(number("fromBlock")?) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_faults_at_about_the_rate() {
        let shared = |seed| Shared {
            upstream: String::new(),
            client: reqwest::Client::new(),
            plan: FaultPlan::flaky(0.2, Duration::ZERO).seed(seed),
            draws: AtomicU64::new(0),
            stats: Arc::default(),
        };
        let (a, b) = (shared(7), shared(7));
        let draws: Vec<_> = (0..10_000).map(|_| a.pick(Some("eth_call"))).collect();
        assert!(draws.iter().zip((0..10_000).map(|_| b.pick(Some("eth_call")))).all(|(x, y)| *x == y));
        let faults = draws.iter().filter(|f| f.is_some()).count();
        assert!((1_800..2_200).contains(&faults), "{faults} faults in 10,000 draws at 20%");
        for kind in ["429", "503", "close", "close-after-forward", "delay"] {
            let n = draws.iter().flatten().filter(|f| f.name() == kind).count();
            assert!(n > 300, "{kind}: {n}");
        }
        let only = Shared { plan: FaultPlan::new(1.0, vec![Fault::Close]).only(&["eth_call"]), ..shared(1) };
        assert_eq!(only.pick(Some("eth_chainId")), None);
        assert_eq!(only.pick(None), None);
        assert_eq!(only.pick(Some("eth_call")), Some(Fault::Close));
    }
}
