#![doc = include_str!("../README.md")]
// The bindings mirror Solidity signatures, some with many parameters (Uniswap V2).
#![allow(clippy::too_many_arguments)]

mod canonical;
mod deployment;
mod layout;

pub use canonical::{
    CREATE2_DEPLOYER, ENTRY_POINT_V07, ENTRY_POINT_V08, ENTRY_POINT_V08_SALT, SIMPLE_7702_ACCOUNT_V08,
    SIMPLE_ACCOUNT_FACTORY_V08,
};
pub use deployment::{Create2Deployment, SAK_SALT, SakAddresses, adapter_of, sak_deployments};
pub use layout::{AccountState, SESSIONS_STORAGE_ROOT};

/// `SakAccount`'s committed artifact (`abi`, `bytecode`, `deployedBytecode`), for reading its
/// ABI at run time: error parameter names, for one.
pub const SAK_ACCOUNT_ARTIFACT: &str = include_str!("../artifacts/SakAccount.json");

// Bindings are generated from the committed artifacts (written by `cargo xtask artifacts`);
// Solidity is the source of truth for every type here.

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    MockERC20,
    "artifacts/MockERC20.json"
);

// `SakAccount`'s ABI carries the `ISakSessions` policy types and errors (the account
// implements the interface), so its binding also defines the `ISakSessions` module.
alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    SakAccount,
    "artifacts/SakAccount.json"
);

/// `Sak7702Account`, in a module of its own: its ABI repeats `SakAccount`'s `ISakSessions`
/// types. Call a delegated EOA through [`SakAccount`] (the same interface).
pub mod sak_7702 {
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        Sak7702Account,
        "artifacts/Sak7702Account.json"
    );
}
pub use sak_7702::Sak7702Account;

/// `SessionKeyValidator`, the ERC-7579 validator module, in a module of its own: its ABI
/// repeats `SakAccount`'s `ISakSessions` types.
pub mod session_key_validator {
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        SessionKeyValidator,
        "artifacts/SessionKeyValidator.json"
    );
}
pub use session_key_validator::SessionKeyValidator;

/// `Sak7579Account`, the modular form (OpenZeppelin's ERC-7579 account owned by one key, with
/// `SessionKeyValidator` installed), in a module of its own: its ABI repeats the EntryPoint's
/// `PackedUserOperation`.
pub mod sak_7579 {
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        Sak7579Account,
        "artifacts/Sak7579Account.json"
    );
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        Sak7579AccountFactory,
        "artifacts/Sak7579AccountFactory.json"
    );
}
pub use sak_7579::{Sak7579Account, Sak7579AccountFactory};

/// `MockERC7579Account`, a bare OpenZeppelin ERC-7579 account (test stand-in for a
/// third-party modular account), in a module of its own: its ABI repeats the EntryPoint's
/// `PackedUserOperation`.
pub mod mock_erc7579_account {
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        MockERC7579Account,
        "artifacts/MockERC7579Account.json"
    );
}
pub use mock_erc7579_account::MockERC7579Account;

/// `MockPaymaster`, an OpenZeppelin paymaster that sponsors every operation (test stand-in
/// for a session's sponsor), in a module of its own: its ABI repeats the EntryPoint's
/// `PackedUserOperation`.
pub mod mock_paymaster {
    alloy::sol!(
        #[allow(missing_docs)]
        #[sol(rpc)]
        MockPaymaster,
        "artifacts/MockPaymaster.json"
    );
}
pub use mock_paymaster::MockPaymaster;

// `MockPermit2`: the allowance part of Uniswap's Permit2 with its ABI (`approve`, `allowance`,
// `transferFrom`, `Approval`), so it also reads the real Permit2. Tests etch its code at
// Permit2's canonical address.
alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    MockPermit2,
    "artifacts/MockPermit2.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    SakAccountFactory,
    "artifacts/SakAccountFactory.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    SessionAdapter,
    "artifacts/SessionAdapter.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    IEntryPoint,
    "artifacts/IEntryPoint.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    SimpleAccountFactory,
    "artifacts/SimpleAccountFactory.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    SimpleAccount,
    "artifacts/SimpleAccount.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    IUniswapV2Router02,
    "artifacts/IUniswapV2Router02.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    IUniswapV2Factory,
    "artifacts/IUniswapV2Factory.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    IUniswapV2Pair,
    "artifacts/IUniswapV2Pair.json"
);

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    IWETH,
    "artifacts/IWETH.json"
);
