#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod backend;

pub use backend::Backend;

use rmcp::{
    ErrorData, ServerHandler, ServiceExt,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// The tools' server: one [`Backend`] behind every tool.
#[derive(Clone)]
pub struct Server {
    backend: Arc<Backend>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// Which session a tool acts under [default: the one `sak mcp --session` names].
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionArgs {
    /// The session id (`sak session list`).
    #[serde(default)]
    pub session: Option<u32>,
}

/// A swap: amounts as decimal strings in token units, tokens as symbols from the address book
/// or 0x addresses.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SwapArgs {
    /// The token sold, e.g. `tUSD`.
    pub token_in: String,
    /// The token bought, e.g. `TKN`.
    pub token_out: String,
    /// How much of `token_in` to sell, e.g. `"300"`.
    pub amount: String,
    /// The least of `token_out` to receive (slippage bound), e.g. `"0.14"`.
    pub min_out: String,
    /// The session id [default: the server's].
    #[serde(default)]
    pub session: Option<u32>,
}

/// A quote: what `amount` of `token_in` buys now.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QuoteArgs {
    /// The token sold.
    pub token_in: String,
    /// The token bought.
    pub token_out: String,
    /// How much of `token_in`, in its units.
    pub amount: String,
}

/// One call from the account.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendArgs {
    /// The contract or address called (0x address or a name from the book).
    pub to: String,
    /// ETH sent with it (`0.01ether`, `1gwei`, or wei) [default: 0].
    #[serde(default)]
    pub value: Option<String>,
    /// Call data in hex [default: none].
    #[serde(default)]
    pub data: Option<String>,
    /// The session id [default: the server's].
    #[serde(default)]
    pub session: Option<u32>,
}

/// A tool's answer: a result, or a tool error carrying the failure document.
fn answer(result: Result<Value, Value>) -> Result<CallToolResult, ErrorData> {
    Ok(match result {
        Ok(value) => CallToolResult::structured(value),
        Err(failure) => CallToolResult::structured_error(failure),
    })
}

#[tool_router(router = tool_router)]
impl Server {
    /// A server over `backend`.
    pub fn new(backend: Backend) -> Self {
        Self { backend: Arc::new(backend), tool_router: Self::tool_router() }
    }

    /// Serves MCP over stdin and stdout until the client goes.
    pub async fn serve_stdio(self) -> sak::Result<()> {
        let running = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| sak::Error::msg(format!("starting the MCP session: {e}")))?;
        running.waiting().await.map_err(|e| sak::Error::msg(format!("the MCP session ended: {e}")))?;
        Ok(())
    }

    #[tool(
        description = "The session's status (active, not-started, expired, revoked), its key, account and validity."
    )]
    async fn status(&self, Parameters(args): Parameters<SessionArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.session(args.session).await.map(|d| backend::status_of(&d)))
    }

    #[tool(
        description = "The session's policy as granted: targets and functions, caps per period, gas budget, validity; in words and as data."
    )]
    async fn policy(&self, Parameters(args): Parameters<SessionArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.policy(args.session).await)
    }

    #[tool(
        description = "What remains this period of each spend cap, the gas budget and the operation count, and when each renews."
    )]
    async fn remaining_caps(
        &self,
        Parameters(args): Parameters<SessionArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.session(args.session).await.map(|d| backend::caps_of(&d)))
    }

    #[tool(
        description = "What `amount` of token_in buys of token_out now on the router (no key, nothing signed)."
    )]
    async fn quote_swap(&self, Parameters(args): Parameters<QuoteArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.quote(args).await)
    }

    #[tool(
        description = "Swap token_in for token_out under the session: checked against its policy, signed, sent, and reported once included. A refusal names the rule (e.g. SpendCapExceeded) and what to do."
    )]
    async fn swap(&self, Parameters(args): Parameters<SwapArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.swap(args, false).await)
    }

    #[tool(
        description = "Call a contract from the account under the session (a target and function its policy permits)."
    )]
    async fn send_call(&self, Parameters(args): Parameters<SendArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.send(args).await)
    }

    #[tool(
        description = "Decide a swap against the session's policy without signing or sending anything: what it would do, or why it would be refused."
    )]
    async fn dry_run(&self, Parameters(args): Parameters<SwapArgs>) -> Result<CallToolResult, ErrorData> {
        answer(self.backend.swap(args, true).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
