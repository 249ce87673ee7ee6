//! sak's own contracts at their deterministic addresses: what `sak deploy`, the test kit and
//! `script/Deploy.s.sol` put on a chain, each through [`CREATE2_DEPLOYER`] with salt 0, so an
//! address depends only on the committed bytecode (and is the same on every chain).

use crate::{
    CREATE2_DEPLOYER, Sak7579Account, Sak7579AccountFactory, Sak7702Account, SakAccount, SakAccountFactory,
    SessionAdapter, SessionKeyValidator,
};
use alloy::{
    primitives::{Address, B256, Bytes, keccak256},
    sol_types::SolValue,
};

/// The CREATE2 salt of every sak contract.
pub const SAK_SALT: B256 = B256::ZERO;

/// One contract to deploy through the CREATE2 deployer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create2Deployment {
    /// The contract's name, as in Solidity.
    pub name: &'static str,
    /// Constructor bytecode with its encoded arguments.
    pub initcode: Bytes,
    /// Where the deployer puts it.
    pub address: Address,
}

impl Create2Deployment {
    fn new(name: &'static str, initcode: Bytes) -> Self {
        let address = CREATE2_DEPLOYER.create2_from_code(SAK_SALT, &initcode);
        Self { name, initcode, address }
    }

    fn with_arg(name: &'static str, code: &Bytes, arg: Address) -> Self {
        Self::new(name, [code.as_ref(), &arg.abi_encode()].concat().into())
    }

    /// The deployer's calldata: `salt ++ initcode`.
    pub fn calldata(&self) -> Bytes {
        [SAK_SALT.as_slice(), &self.initcode].concat().into()
    }
}

/// Where sak's contracts are on every chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SakAddresses {
    /// `SessionAdapter`: the factory (and implementation) of every account's adapter.
    pub session_adapter: Address,
    /// `SakAccount(session_adapter)`, the implementation behind every smart account (ERC-1167
    /// clones).
    pub account_implementation: Address,
    /// `SakAccountFactory(account_implementation)`.
    pub account_factory: Address,
    /// `Sak7702Account(session_adapter)`, the EIP-7702 delegate.
    pub account_7702: Address,
    /// `SessionKeyValidator(session_adapter)`, the ERC-7579 validator module.
    pub session_key_validator: Address,
    /// `Sak7579Account(session_key_validator)`, the implementation behind every modular
    /// account (ERC-1167 clones).
    pub account_7579_implementation: Address,
    /// `Sak7579AccountFactory(account_7579_implementation)`.
    pub account_7579_factory: Address,
}

impl SakAddresses {
    /// The addresses [`sak_deployments`] deploys to.
    pub fn canonical() -> Self {
        let [adapter, implementation, factory, delegate, validator, implementation_7579, factory_7579] =
            sak_deployments();
        Self {
            session_adapter: adapter.address,
            account_implementation: implementation.address,
            account_factory: factory.address,
            account_7702: delegate.address,
            session_key_validator: validator.address,
            account_7579_implementation: implementation_7579.address,
            account_7579_factory: factory_7579.address,
        }
    }

    /// The adapter of `account` (sak's accounts and the module alike): every session call but
    /// a capped `transfer` goes through it.
    pub fn adapter_of(&self, account: Address) -> Address {
        adapter_of(self.session_adapter, account)
    }
}

/// `SessionAdapter(factory).adapterOf(account)`: the ERC-1167 clone of `factory` that
/// `factory` deploys with CREATE2 and the account as salt (OpenZeppelin's
/// `Clones.predictDeterministicAddress`).
///
/// ```
/// use alloy::primitives::address;
/// use sak_contracts::adapter_of;
/// let factory = address!("0x00000000000000000000000000000000000ada97");
/// let account = address!("0x00000000000000000000000000000000000acc01");
/// assert_ne!(adapter_of(factory, account), adapter_of(factory, factory));
/// ```
pub fn adapter_of(factory: Address, account: Address) -> Address {
    let proxy: Vec<u8> = [
        &[
            0x3d, 0x60, 0x2d, 0x80, 0x60, 0x0a, 0x3d, 0x39, 0x81, 0xf3, 0x36, 0x3d, 0x3d, 0x37, 0x3d, 0x3d,
            0x3d, 0x36, 0x3d, 0x73,
        ][..],
        factory.as_slice(),
        &[0x5a, 0xf4, 0x3d, 0x82, 0x80, 0x3e, 0x90, 0x3d, 0x91, 0x60, 0x2b, 0x57, 0xfd, 0x5b, 0xf3],
    ]
    .concat();
    factory.create2(account.into_word(), keccak256(proxy))
}

/// sak's contracts in the order they must be deployed: the adapter factory first (the accounts
/// and the module take its address), each account implementation before its factory, the
/// module before the modular account (which installs it).
///
/// ```
/// use sak_contracts::{SakAddresses, sak_deployments};
/// let all = sak_deployments();
/// assert_eq!(all[2].name, "SakAccountFactory");
/// assert_eq!(all[2].address, SakAddresses::canonical().account_factory);
/// ```
pub fn sak_deployments() -> [Create2Deployment; 7] {
    let adapter = Create2Deployment::new("SessionAdapter", SessionAdapter::BYTECODE.clone());
    let implementation = Create2Deployment::with_arg("SakAccount", &SakAccount::BYTECODE, adapter.address);
    let factory = Create2Deployment::with_arg(
        "SakAccountFactory",
        &SakAccountFactory::BYTECODE,
        implementation.address,
    );
    let delegate = Create2Deployment::with_arg("Sak7702Account", &Sak7702Account::BYTECODE, adapter.address);
    let validator =
        Create2Deployment::with_arg("SessionKeyValidator", &SessionKeyValidator::BYTECODE, adapter.address);
    let implementation_7579 =
        Create2Deployment::with_arg("Sak7579Account", &Sak7579Account::BYTECODE, validator.address);
    let factory_7579 = Create2Deployment::with_arg(
        "Sak7579AccountFactory",
        &Sak7579AccountFactory::BYTECODE,
        implementation_7579.address,
    );
    [adapter, implementation, factory, delegate, validator, implementation_7579, factory_7579]
}
