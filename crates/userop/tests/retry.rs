//! Reads retry with backoff on 429, 5xx and timeouts: a local HTTP server answers 429, then
//! 503, then hangs past the client's timeout, then answers; the client gets the answer.
//! A 400 (a real error) is not retried.

use alloy::primitives::U256;
use sak_userop::{RetryConfig, retrying_client};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Serves `script[i]` to the i-th request (then the last entry forever): a status code, or 0
/// for "hang 2 s and close".
fn server(script: Vec<u16>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let status = script[n.min(script.len() - 1)];
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let (status, body) = match status {
                    0 => {
                        std::thread::sleep(Duration::from_secs(2));
                        return;
                    }
                    200 => (
                        "200 OK",
                        serde_json::json!({ "jsonrpc": "2.0", "id": request["id"], "result": "0x7a69" })
                            .to_string(),
                    ),
                    429 => ("429 Too Many Requests", "rate limited".to_string()),
                    503 => ("503 Service Unavailable", "busy".to_string()),
                    _ => ("400 Bad Request", "no".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, count)
}

fn config() -> RetryConfig {
    RetryConfig {
        max_retries: 5,
        initial_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn reads_retry_on_429_5xx_and_timeouts() {
    let (url, count) = server(vec![429, 503, 0, 200]);
    let client = retrying_client(&url, config()).unwrap();
    let no_params: [u8; 0] = [];
    let id: U256 = client.request("eth_chainId", no_params).await.unwrap();
    assert_eq!(id, U256::from(31_337));
    assert_eq!(count.load(Ordering::SeqCst), 4, "429, 503, timeout, then the answer");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (url, count) = server(vec![400, 200]);
    let client = retrying_client(&url, config()).unwrap();
    let no_params: [u8; 0] = [];
    let result: Result<U256, _> = client.request("eth_chainId", no_params).await;
    assert!(result.is_err());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
