//! A connection to the network's chain, and sak's contracts and names there.

use super::*;

/// The contracts sak uses on a chain, and the names policies may use.
#[derive(Debug, Clone, Serialize)]
pub struct Contracts {
    /// EntryPoint v0.8 (canonical).
    pub entry_point: Address,
    /// The `SessionAdapter` factory: each account's adapter is its clone.
    pub session_adapter: Address,
    /// The `SakAccount` implementation.
    pub sak_account_implementation: Address,
    /// The `SakAccountFactory`.
    pub sak_account_factory: Address,
    /// The EIP-7702 delegate `Sak7702Account`.
    pub sak_7702_account: Address,
    /// The ERC-7579 validator module `SessionKeyValidator`.
    pub session_key_validator: Address,
    /// The `Sak7579Account` implementation (the modular form).
    pub sak_7579_account_implementation: Address,
    /// The `Sak7579AccountFactory`.
    pub sak_7579_account_factory: Address,
    /// The local stack (`sak node up`): Uniswap V2, tUSD, TKN, WETH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<sak_node::Deployment>,
    /// Names usable for addresses: (name, address, decimals).
    #[serde(skip)]
    pub book: Vec<(String, Address, Option<u8>)>,
}

impl Contracts {
    /// sak's addresses on every chain: the canonical EntryPoint and our CREATE2 deployments.
    pub fn canonical() -> Self {
        let sak = SakAddresses::canonical();
        Self {
            entry_point: ENTRY_POINT_V08,
            session_adapter: sak.session_adapter,
            sak_account_implementation: sak.account_implementation,
            sak_account_factory: sak.account_factory,
            sak_7702_account: sak.account_7702,
            session_key_validator: sak.session_key_validator,
            sak_7579_account_implementation: sak.account_7579_implementation,
            sak_7579_account_factory: sak.account_7579_factory,
            local: None,
            book: Vec::new(),
        }
    }

    pub(super) fn with_local(mut self, d: sak_node::Deployment) -> Self {
        self.local = Some(d);
        for (name, address, decimals) in [
            ("uniswap-v2-router", d.uniswap_v2_router, None),
            ("router", d.uniswap_v2_router, None),
            ("tUSD", d.usd, Some(6)),
            ("TKN", d.tkn, Some(18)),
            ("WETH", d.weth, Some(18)),
        ] {
            self.book.push((name.into(), address, decimals));
        }
        self
    }

    /// The adapter of `account`: every session call but a capped `transfer` goes through it.
    pub fn adapter_of(&self, account: Address) -> Address {
        sak_contracts::adapter_of(self.session_adapter, account)
    }

    /// The policy resolver's address book.
    pub fn address_book(&self) -> AddressBook {
        self.book.iter().fold(AddressBook::new(), |b, (n, a, d)| b.with(n, *a, *d))
    }

    /// A 0x address or a name from the book.
    pub fn resolve(&self, text: &str) -> Result<Address> {
        if text.starts_with("0x") || text.starts_with("0X") {
            return text.parse().map_err(|_| err!("`{text}` is not a 20-byte 0x address"));
        }
        self.book.iter().find(|(n, ..)| n.eq_ignore_ascii_case(text)).map(|(_, a, _)| *a).ok_or_else(|| {
            let known: Vec<&str> = self.book.iter().map(|(n, ..)| n.as_str()).collect();
            err!(
                "unknown name `{text}` (known on this network: {}); use a 0x address or add it to the network's [book]",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })
    }

    /// A token's decimals as the book knows them.
    pub fn decimals(&self, token: Address) -> Option<u8> {
        self.book.iter().find(|(_, a, _)| *a == token).and_then(|(.., d)| *d)
    }

    /// The name the book gives `address`, else the address.
    pub fn name(&self, address: Address) -> String {
        self.book
            .iter()
            .find(|(n, a, _)| *a == address && n != "router")
            .map_or_else(|| address.to_string(), |(n, ..)| n.clone())
    }
}

/// A connection to the network's chain, checked.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Reads the chain, retrying what a flaky endpoint drops.
    pub provider: DynProvider,
    /// The endpoint (may hold an API key: show it through [`redact_url`]).
    pub rpc_url: String,
    /// The chain id the endpoint reports (checked against the config).
    pub chain_id: u64,
    /// The chain's identity ([`sak_signer::settle::chain_identity`]), read once on connecting.
    pub identity: B256,
    /// sak's contracts there and the names of the network's book.
    pub contracts: Contracts,
    /// What this home had recorded for the network when connecting found a new chain under
    /// its chain id (a restarted node or fork, a reset testnet): moved to `retired` in
    /// state.json.
    pub retired: Option<Retired>,
}

impl Chain {
    /// The latest block's time (unix seconds): what the chain's checks compare against.
    pub async fn time(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::rpc::types::BlockNumberOrTag::Latest)
            .await?
            .ok_or_else(|| err!("the node has no latest block"))?;
        Ok(block.header.timestamp)
    }
}

/// A network's records retired on connecting, because the chain behind it is a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// Accounts recorded for the old chain.
    pub accounts: usize,
    /// Sessions recorded for the old chain.
    pub sessions: usize,
}

impl Retired {
    /// What was retired, in words: `its account and 2 sessions`.
    pub fn describe(&self) -> String {
        let accounts = match self.accounts {
            0 => None,
            1 => Some("its account".to_owned()),
            n => Some(format!("its {n} accounts")),
        };
        let sessions = (self.sessions > 0)
            .then(|| format!("{} session{}", self.sessions, if self.sessions == 1 { "" } else { "s" }));
        match (accounts, sessions) {
            (None, None) => "nothing".to_owned(),
            (a, s) => a.into_iter().chain(s).collect::<Vec<_>>().join(" and "),
        }
    }
}
