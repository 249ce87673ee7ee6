//! sak's own contracts at their deterministic addresses: what `sak deploy`, the test kit and
//! `script/Deploy.s.sol` put on a chain, each through [`CREATE2_DEPLOYER`] with salt 0, so an
//! address depends only on the committed bytecode (and is the same on every chain).

use crate::{CREATE2_DEPLOYER, Sak7702Account, SakAccount, SakAccountFactory, SessionKeyValidator};
use alloy::{
    primitives::{Address, B256, Bytes},
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

    /// The deployer's calldata: `salt ++ initcode`.
    pub fn calldata(&self) -> Bytes {
        [SAK_SALT.as_slice(), &self.initcode].concat().into()
    }
}

/// Where sak's contracts are on every chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SakAddresses {
    /// `SakAccount`, the implementation behind every smart account (ERC-1167 clones).
    pub account_implementation: Address,
    /// `SakAccountFactory(account_implementation)`.
    pub account_factory: Address,
    /// `Sak7702Account`, the EIP-7702 delegate.
    pub account_7702: Address,
    /// `SessionKeyValidator`, the ERC-7579 validator module.
    pub session_key_validator: Address,
}

impl SakAddresses {
    /// The addresses [`sak_deployments`] deploys to.
    pub fn canonical() -> Self {
        let [implementation, factory, delegate, validator] = sak_deployments();
        Self {
            account_implementation: implementation.address,
            account_factory: factory.address,
            account_7702: delegate.address,
            session_key_validator: validator.address,
        }
    }
}

/// sak's contracts in the order they must be deployed (the factory takes the implementation's
/// address as its constructor argument).
///
/// ```
/// use sak_contracts::{SakAddresses, sak_deployments};
/// let all = sak_deployments();
/// assert_eq!(all[1].name, "SakAccountFactory");
/// assert_eq!(all[1].address, SakAddresses::canonical().account_factory);
/// ```
pub fn sak_deployments() -> [Create2Deployment; 4] {
    let implementation = Create2Deployment::new("SakAccount", SakAccount::BYTECODE.clone());
    let factory_code = [SakAccountFactory::BYTECODE.as_ref(), &implementation.address.abi_encode()].concat();
    let factory = Create2Deployment::new("SakAccountFactory", factory_code.into());
    [
        implementation,
        factory,
        Create2Deployment::new("Sak7702Account", Sak7702Account::BYTECODE.clone()),
        Create2Deployment::new("SessionKeyValidator", SessionKeyValidator::BYTECODE.clone()),
    ]
}
