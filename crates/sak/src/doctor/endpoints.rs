//! The endpoints: the RPC (reachable, the right chain, fast enough), sak's contracts there, the bundler.

use super::*;

/// A client that tries once, for probing.
pub(super) fn probe_client(url: &str) -> Result<RpcClient, sak_userop::Error> {
    retrying_client(
        url,
        RetryConfig {
            max_retries: 0,
            initial_backoff: Duration::from_millis(100),
            request_timeout: PROBE_TIMEOUT,
            deadline: PROBE_TIMEOUT,
        },
    )
}

pub(super) async fn check_rpc(r: &mut Report, home: &Home) -> Option<Probed> {
    let url = match home.rpc_url() {
        Ok(u) => u,
        Err(e) => {
            let fix = hint(&e).unwrap_or_else(|| {
                format!("add rpc_url to [networks.{}] or pass --rpc-url URL", home.network_name)
            });
            r.fail("rpc", format!("{e:#}"), fix);
            return None;
        }
    };
    let shown = redact_url(&url);
    let refused_fix = if home.kind().is_anvil() {
        "start the local chain with `sak node up` (or pass --rpc-url)".to_owned()
    } else {
        "check the host and port in the URL, and that the node is up".to_owned()
    };
    let client = match probe_client(&url) {
        Ok(c) => c,
        Err(e) => {
            r.fail("rpc", format!("{shown}: {e}"), "write a full URL: http(s)://host[:port][/path]");
            return None;
        }
    };
    if !home.kind().is_anvil() {
        home.progress(&format!("checking network `{}` at {shown}…", home.network_name));
    }
    let started = Instant::now();
    let reported: Result<U64, TransportError> = client.request("eth_chainId", ()).await;
    let took = started.elapsed();
    let chain_id = match reported {
        Ok(id) => id.to::<u64>(),
        Err(e) => {
            let (detail, fix) = transport_problem(&e, &url, "RPC", &refused_fix);
            r.fail("rpc", detail, fix);
            return None;
        }
    };
    let detail = format!("{shown} answered in {} ms", took.as_millis());
    if took > SLOW {
        r.warn(
            "rpc",
            format!("{detail} (slow)"),
            "use a closer or less loaded endpoint; sak waits up to 15 s a call",
        );
    } else {
        r.ok("rpc", detail);
    }
    let expected = home.network.chain_id.or(home.node().ok().flatten().map(|n| n.chain_id));
    match expected {
        Some(expected) if expected == chain_id => r.ok("chain_id", format!("{chain_id}, as configured")),
        Some(expected) => r.fail(
            "chain_id",
            format!("network `{}` expects chain {expected}; {shown} is chain {chain_id}", home.network_name),
            format!(
                "point rpc_url of [networks.{}] at a chain-{expected} endpoint, or correct its chain_id in {}",
                home.network_name,
                home.paths.config_file.display()
            ),
        ),
        None => r.warn(
            "chain_id",
            format!("{chain_id}; the config does not say which chain to expect"),
            format!(
                "add `chain_id = {chain_id}` to [networks.{}] so a wrong endpoint is caught before signing",
                home.network_name
            ),
        ),
    }
    let provider = match retrying_provider(
        &url,
        RetryConfig {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            request_timeout: PROBE_TIMEOUT,
            deadline: PROBE_TIMEOUT * 3,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            r.fail("rpc", e.to_string(), "write a full URL: http(s)://host[:port][/path]");
            return None;
        }
    };
    Some(Probed { provider, chain_id })
}

/// What went wrong reaching `url`, in words without the URL's secrets, and the fix.
pub(crate) fn transport_problem(
    err: &TransportError,
    url: &str,
    what: &str,
    refused_fix: &str,
) -> (String, String) {
    let shown = redact_url(url);
    let http = match err {
        RpcError::Transport(TransportErrorKind::HttpError(e)) => Some(e),
        RpcError::Transport(TransportErrorKind::HttpErrorWithRetryAfter { error, .. }) => Some(error),
        _ => None,
    };
    if let Some(e) = http {
        let (why, fix) = match e.status {
            401 => (
                "unauthorized (HTTP 401)",
                format!(
                    "the API key in the {what} URL is missing, wrong or expired: get a current one from your \
                     provider and update the URL (or the variable it reads)"
                ),
            ),
            403 => (
                "forbidden (HTTP 403)",
                "the API key may not use this network or method (a missing scope, or an allowlist of \
                 origins or IPs): enable it in your provider's dashboard"
                    .to_owned(),
            ),
            429 => (
                "rate limited (HTTP 429)",
                "the plan's request rate is used up: wait a minute, send fewer requests, or use a plan or \
                 endpoint with a higher limit"
                    .to_owned(),
            ),
            404 | 405 => (
                "no JSON-RPC endpoint there (HTTP 404/405)",
                format!("check the path of the {what} URL (providers put the key in it: …/v2/<key>)"),
            ),
            s if s >= 500 => (
                "the server failed (HTTP 5xx)",
                "the provider is having trouble: retry later or use another endpoint".to_owned(),
            ),
            _ => ("an unexpected HTTP status", format!("check the {what} URL")),
        };
        return (format!("{shown}: {why}: status {}", e.status), fix);
    }
    match err {
        RpcError::ErrorResp(p) => (
            format!("{shown} answered with JSON-RPC error {}: {}", p.code, p.message),
            format!("check that the {what} URL is the right kind of endpoint for this network"),
        ),
        RpcError::DeserError { .. } | RpcError::NullResp => (
            format!("{shown} did not answer with JSON-RPC"),
            format!("check that the {what} URL is a JSON-RPC endpoint, not a web page"),
        ),
        other => {
            let causes = redacted_error(other, url);
            let lower = causes.to_ascii_lowercase();
            let (why, fix) = if lower.contains("timed out") || lower.contains("timeout") {
                (
                    format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                    "the endpoint is slow or unreachable from here: check your connection, or use a faster \
                     endpoint"
                        .to_owned(),
                )
            } else if lower.contains("connection refused") {
                ("connection refused".to_owned(), refused_fix.to_owned())
            } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("name or service") {
                ("host not found".to_owned(), format!("check the host name in the {what} URL"))
            } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
                (
                    "TLS failed".to_owned(),
                    "the endpoint's certificate is not trusted here: check the URL and the system's CA \
                     certificates"
                        .to_owned(),
                )
            } else {
                ("unreachable".to_owned(), format!("check the {what} URL and your network"))
            };
            (format!("{shown}: {why} ({causes})"), fix)
        }
    }
}

pub(super) async fn code_at(
    provider: &DynProvider,
    address: Address,
) -> crate::Result<alloy::primitives::Bytes> {
    Ok(provider.get_code_at(address).await?)
}

pub(super) async fn check_contracts(r: &mut Report, home: &Home, chain: &Probed) {
    let c = Contracts::canonical();
    let deploy_fix = if home.kind().is_anvil() {
        "`sak node up` deploys everything on a local chain: restart it (`sak node down`, `sak node up`)"
    } else {
        "run `sak deploy` (the owner key pays; `--dry-run` shows the plan)"
    };
    let rows: [(&'static str, &str, Address, String); 9] = [
        (
            "create2_deployer",
            "the CREATE2 deployer",
            CREATE2_DEPLOYER,
            "this chain lacks the deterministic deployment proxy sak deploys through: use a chain that \
             has it (every major chain does)"
                .to_owned(),
        ),
        (
            "entry_point",
            "EntryPoint v0.8",
            ENTRY_POINT_V08,
            "sak needs the canonical EntryPoint v0.8: use a chain that has it, or deploy it there first \
             (its published initcode through the CREATE2 deployer)"
                .to_owned(),
        ),
        ("session_adapter", "SessionAdapter", c.session_adapter, deploy_fix.to_owned()),
        ("sak_account_implementation", "SakAccount", c.sak_account_implementation, deploy_fix.to_owned()),
        ("sak_account_factory", "SakAccountFactory", c.sak_account_factory, deploy_fix.to_owned()),
        ("sak_7702_account", "Sak7702Account", c.sak_7702_account, deploy_fix.to_owned()),
        ("session_key_validator", "SessionKeyValidator", c.session_key_validator, deploy_fix.to_owned()),
        (
            "sak_7579_account_implementation",
            "Sak7579Account",
            c.sak_7579_account_implementation,
            deploy_fix.to_owned(),
        ),
        (
            "sak_7579_account_factory",
            "Sak7579AccountFactory",
            c.sak_7579_account_factory,
            deploy_fix.to_owned(),
        ),
    ];
    for (name, what, address, fix) in rows {
        match code_at(&chain.provider, address).await {
            Ok(code) if !code.is_empty() => r.ok(name, format!("{what} at {address} ({} bytes)", code.len())),
            Ok(_) => r.fail(name, format!("no {what} at {address} on chain {}", chain.chain_id), fix),
            Err(e) => r.fail(name, format!("eth_getCode at {address}: {e}"), "retry; `sak doctor` again"),
        }
    }
}

pub(super) async fn check_bundler(r: &mut Report, home: &Home) {
    let url = match home.bundler_url() {
        Ok(Some(u)) => u,
        Ok(None) => {
            r.ok("bundler", "none configured: sak submits operations itself (--via self or direct)");
            return;
        }
        Err(e) => {
            r.warn(
                "bundler",
                format!("{e:#}; `--via bundler` is unavailable"),
                hint(&e).unwrap_or_else(|| "set bundler_url in the config".into()),
            );
            return;
        }
    };
    let shown = redact_url(&url);
    let client = match probe_client(&url) {
        Ok(c) => c,
        Err(e) => {
            r.fail("bundler", format!("{shown}: {e}"), "write a full URL: http(s)://host[:port][/path]");
            return;
        }
    };
    let started = Instant::now();
    let chain_id: Result<U64, TransportError> = client.request("eth_chainId", ()).await;
    let took = started.elapsed();
    let chain_id = match chain_id {
        Ok(id) => id.to::<u64>(),
        Err(e) => {
            let (detail, fix) = transport_problem(
                &e,
                &url,
                "bundler",
                "check the bundler's host and port, and that it is running",
            );
            r.fail("bundler", detail, fix);
            return;
        }
    };
    let entry_points: Result<Vec<Address>, TransportError> =
        client.request("eth_supportedEntryPoints", ()).await;
    let entry_points = match entry_points {
        Ok(e) => e,
        Err(e) => {
            let (detail, fix) = transport_problem(&e, &url, "bundler", "check that the bundler is running");
            r.fail("bundler", format!("eth_supportedEntryPoints: {detail}"), fix);
            return;
        }
    };
    let expected = home.network.chain_id;
    if expected.is_some_and(|e| e != chain_id) {
        r.fail(
            "bundler",
            format!("{shown} serves chain {chain_id}, the network is chain {}", expected.unwrap_or_default()),
            format!("use a bundler for chain {} in bundler_url", expected.unwrap_or_default()),
        );
    } else if !entry_points.contains(&ENTRY_POINT_V08) {
        r.fail(
            "bundler",
            format!("{shown} does not serve EntryPoint v0.8 {ENTRY_POINT_V08} (it serves {entry_points:?})"),
            "use a bundler that supports EntryPoint v0.8 (most providers select it by URL path or version)",
        );
    } else {
        r.ok(
            "bundler",
            format!("{shown} answered in {} ms; chain {chain_id}, EntryPoint v0.8", took.as_millis()),
        );
    }
}
