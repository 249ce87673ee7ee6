//! What every command starts from: the home ([`sak::Home`]) opened as the global flags say, and
//! what only a terminal does (asking for a passphrase, telling of a reset chain).

use crate::global::GlobalArgs;
pub(crate) use sak::Chain;
use sak::{Home, Options, config::redact_url};
use sak_signer::keystore::PasswordSource;
use std::io::{IsTerminal, Write};

/// The command's environment: the home, and the flags it was opened with.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) global: GlobalArgs,
    home: Home,
}

impl std::ops::Deref for Ctx {
    type Target = Home;

    fn deref(&self) -> &Home {
        &self.home
    }
}

impl Ctx {
    pub(crate) fn new(global: &GlobalArgs) -> eyre::Result<Self> {
        Ok(Self::with_home(global, Home::open(Self::options(global))?))
    }

    /// The command's environment around a home opened already.
    pub(crate) fn with_home(global: &GlobalArgs, home: Home) -> Self {
        Self { global: global.clone(), home }
    }

    /// The home's options as the global flags say.
    pub(crate) fn options(global: &GlobalArgs) -> Options {
        let password = match (&global.password_file, global.password_fd) {
            (Some(path), _) => Some(PasswordSource::File(path.clone())),
            (None, Some(fd)) => Some(PasswordSource::Fd(fd)),
            (None, None) => None,
        };
        let mut options = Options::default();
        options.network.clone_from(&global.network);
        options.account.clone_from(&global.account);
        options.rpc_url.clone_from(&global.rpc_url);
        options.password = password;
        options.key_password_env.clone_from(&global.key_password_env);
        if std::io::stdin().is_terminal() {
            options = options.ask(|prompt| rpassword::prompt_password(prompt));
        }
        let shown = global.clone();
        options.progress(move |line| crate::output::progress(&shown, line))
    }

    /// Connects ([`Home::chain`]), and tells on stderr when the chain turned out to be a new one
    /// under the same id (what this home recorded for the old one is retired).
    pub(crate) async fn chain(&self) -> eyre::Result<Chain> {
        let chain = self.home.chain().await?;
        if let Some(retired) = chain.retired {
            let _ = writeln!(
                std::io::stderr().lock(),
                "note: the chain at {} is a new chain under chain id {} (its genesis block, or the fork's anvil instance, \
                 changed: the node was restarted or the network reset). What this home recorded for network `{}` ({}) belonged to \
                 the old chain and is kept under `retired` in state.json; create the account again \
                 (`sak account create`) and grant new sessions.",
                redact_url(&chain.rpc_url),
                chain.chain_id,
                self.network_name,
                retired.describe()
            );
        }
        Ok(chain)
    }
}
