//! Canonical addresses: the same on anvil, anvil forks, Sepolia and mainnet.

use alloy::primitives::{Address, B256, address, b256};

/// The deterministic CREATE2 deployer (Arachnid's proxy), preinstalled by anvil and present on
/// every public chain. Calldata `salt (32 bytes) ++ initcode` deploys at
/// `keccak256(0xff ++ deployer ++ salt ++ keccak256(initcode))[12..]`.
pub const CREATE2_DEPLOYER: Address = address!("0x4e59b44847b379578588920cA78FbF26c0B4956C");

/// EntryPoint v0.8 (`@account-abstraction/contracts` 0.8.0).
pub const ENTRY_POINT_V08: Address = address!("0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108");

/// EntryPoint v0.7: sak's accounts use v0.8, but the module may serve accounts on v0.7, and
/// neither EntryPoint is ever a session's target.
pub const ENTRY_POINT_V07: Address = address!("0x0000000071727De22E5E9d8BAf0edAc6f37da032");

/// The CREATE2 salt that puts the published EntryPoint v0.8 initcode at [`ENTRY_POINT_V08`].
pub const ENTRY_POINT_V08_SALT: B256 =
    b256!("0x0a59dbff790c23c976a548690c27297883cc66b4c67024f9117b0238995e35e9");

/// `SimpleAccountFactory(ENTRY_POINT_V08)` deployed with salt 0 (the default of viem and
/// permissionless): the canonical sample account, our gas baseline.
pub const SIMPLE_ACCOUNT_FACTORY_V08: Address = address!("0x13E9ed32155810FDbd067D4522C492D6f68E5944");

/// `Simple7702Account` deployed with salt 0: the canonical EIP-7702 delegate sample.
pub const SIMPLE_7702_ACCOUNT_V08: Address = address!("0xe6Cae83BdE06E4c305530e199D7217f42808555B");
