//! The daemon's requests: each checks the bearer token, calls the facade, and answers with the
//! facade's report or its failure ([`sak::outcome::Failure`]).

#![allow(clippy::result_large_err, reason = "an answer is an axum Response either way, one per request")]

use crate::State;
use axum::{
    Json, Router,
    extract::State as Shared,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use sak::{
    agent::{self, Agent, SwapRequest},
    calls::{parse_hex, parse_value, resolve},
    outcome::Failure,
};
use serde::Deserialize;
use std::sync::Arc;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/session", get(session))
        .route("/v1/quote", post(quote))
        .route("/v1/swap", post(swap))
        .route("/v1/send", post(send))
        .with_state(state)
}

/// `POST /v1/quote`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuoteBody {
    token_in: String,
    token_out: String,
    amount: String,
}

/// `POST /v1/swap`: amounts in whole units of the tokens, tokens by name or address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SwapBody {
    token_in: String,
    token_out: String,
    amount: String,
    min_out: String,
    #[serde(default)]
    router: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/send`: one call from the account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    to: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

type Answer = Result<Response, Response>;

/// The failure as every front end says it: 422 refused, 202 outcome unknown, 500 otherwise.
fn failed(err: &sak::Error) -> Response {
    let failure = Failure::of(err, None, None);
    let status = match failure.error.exit_code {
        1 => StatusCode::UNPROCESSABLE_ENTITY,
        3 => StatusCode::ACCEPTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(failure)).into_response()
}

/// A request the daemon cannot take: 400 with the same document shape.
fn bad_request(err: sak::Error) -> Response {
    (StatusCode::BAD_REQUEST, Json(Failure::of(&err, None, Some(2)))).into_response()
}

/// The bearer token, compared in constant time.
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let given =
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        g.len() == state.token.len()
            && g.bytes().zip(state.token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if ok {
        Ok(())
    } else {
        let err = sak::Error::from(sak::Hinted::refused(
            "missing or wrong bearer token",
            "send `Authorization: Bearer <the token in the daemon's token file>`",
        ));
        Err((StatusCode::UNAUTHORIZED, Json(Failure::of(&err, None, Some(1)))).into_response())
    }
}

async fn session(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Answer {
    authorize(&state, &headers)?;
    let detail = sak::sessions::detail(&state.home, &state.chain, state.agent.session)
        .await
        .map_err(|e| failed(&e))?;
    Ok(Json(detail).into_response())
}

async fn quote(Shared(state): Shared<Arc<State>>, headers: HeaderMap, Json(body): Json<QuoteBody>) -> Answer {
    authorize(&state, &headers)?;
    let request = SwapRequest {
        router: None,
        token_in: body.token_in,
        token_out: body.token_out,
        amount: body.amount,
        min_out: "0".into(),
    };
    let out = agent::quote(&request, &state.chain).await.map_err(|e| failed(&e))?;
    Ok(Json(serde_json::json!({ "amount_out": out.to_string() })).into_response())
}

async fn swap(Shared(state): Shared<Arc<State>>, headers: HeaderMap, Json(body): Json<SwapBody>) -> Answer {
    authorize(&state, &headers)?;
    let request = SwapRequest {
        router: body.router,
        token_in: body.token_in,
        token_out: body.token_out,
        amount: body.amount,
        min_out: body.min_out,
    };
    let (calls, plan) =
        agent::swap_calls(&request, &state.chain, state.account).await.map_err(bad_request)?;
    run(&state, "swap", calls, Some(plan), body.dry_run).await
}

async fn send(Shared(state): Shared<Arc<State>>, headers: HeaderMap, Json(body): Json<SendBody>) -> Answer {
    authorize(&state, &headers)?;
    let to = resolve(&state.chain, &body.to, "to").map_err(bad_request)?;
    let value = parse_value(body.value.as_deref().unwrap_or("0"), "value").map_err(bad_request)?;
    let data = match &body.data {
        Some(hex) => parse_hex(hex, "data").map_err(bad_request)?,
        None => Default::default(),
    };
    run(&state, "send", vec![sak::Call::new(to, value, data)], None, body.dry_run).await
}

/// One guarded operation under the held key.
async fn run(
    state: &State,
    command: &'static str,
    calls: Vec<sak::Call>,
    plan: Option<agent::SwapPlan>,
    dry_run: bool,
) -> Answer {
    let mut options = state.agent.clone();
    options.dry_run = dry_run;
    let agent = Agent::open(&options, &state.home, &state.chain).await.map_err(|e| failed(&e))?;
    let report = agent.run(command, calls, plan).await.map_err(|e| failed(&e))?;
    Ok(Json(report).into_response())
}
