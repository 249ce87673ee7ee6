//! `sak watch --metrics ADDR`: the watch's counters in Prometheus's text format at
//! `http://ADDR/metrics` (axum), for a scraper to alert on a watch that stopped or fell behind.

use std::{
    collections::BTreeMap,
    fmt::Write,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// What the watch counts; updated after each round.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    rounds: AtomicU64,
    round_errors: AtomicU64,
    next_block: AtomicU64,
    undelivered: AtomicU64,
    /// Unix seconds (this machine's clock) of the last round that succeeded.
    last_round: AtomicU64,
    alerts: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// A round that succeeded: its alerts by kind, where the cursor is, what waits for the hook.
    pub(super) fn round(&self, kinds: impl Iterator<Item = String>, next_block: u64, undelivered: usize) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        self.next_block.store(next_block, Ordering::Relaxed);
        self.undelivered.store(undelivered as u64, Ordering::Relaxed);
        self.last_round.store(sak_primitives::units::unix_now(), Ordering::Relaxed);
        if let Ok(mut alerts) = self.alerts.lock() {
            kinds.for_each(|k| *alerts.entry(k).or_default() += 1);
        }
    }

    pub(super) fn failed_round(&self) {
        self.round_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in [
            ("sak_watch_rounds_total", "counter", "Rounds that read the chain and the ledger.", &self.rounds),
            (
                "sak_watch_round_errors_total",
                "counter",
                "Rounds that failed (retried with backoff).",
                &self.round_errors,
            ),
            ("sak_watch_next_block", "gauge", "The first block not read yet.", &self.next_block),
            (
                "sak_watch_undelivered_alerts",
                "gauge",
                "Alerts the webhook has not taken yet.",
                &self.undelivered,
            ),
            (
                "sak_watch_last_round_seconds",
                "gauge",
                "Unix time of the last round that succeeded.",
                &self.last_round,
            ),
        ] {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP sak_watch_alerts_total Alerts raised, by kind.\n# TYPE sak_watch_alerts_total counter"
        );
        if let Ok(alerts) = self.alerts.lock() {
            for (kind, n) in alerts.iter() {
                let _ = writeln!(out, "sak_watch_alerts_total{{kind=\"{kind}\"}} {n}");
            }
        }
        out
    }
}

/// Serves `metrics` at `addr` until the process ends; returns the bound address (port 0
/// picks a free one).
pub(super) async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> eyre::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::output::Hinted::new(
            format!("cannot listen on {addr} for --metrics: {e}"),
            "pick a free address, e.g. --metrics 127.0.0.1:9464",
        )
    })?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move { ([("content-type", "text/plain; version=0.0.4")], metrics.render()) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}
