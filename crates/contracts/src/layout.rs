//! Where sak's contracts keep an account's session state: the ERC-7201 namespace
//! `sak.storage.Sessions`, read by tools that must see what the contracts see (the revocation
//! salt, the id counter) without a view for it.

use alloy::{
    primitives::{Address, B256, U256, b256, keccak256},
    sol_types::SolValue,
};

/// The namespace's root slot:
/// `keccak256(abi.encode(uint256(keccak256("sak.storage.Sessions")) - 1)) & ~bytes32(uint256(0xff))`.
pub const SESSIONS_STORAGE_ROOT: B256 =
    b256!("0x6c24668be91564ec2123909ef66a85197a1bdc434ed464f6f97821436f5a1500");

/// An account's state word: the owner (smart-account form), the revocation salt and the id
/// counter, in one slot of whoever holds the sessions (the account, or the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    /// The stored owner (zero on the EIP-7702 form, whose owner is the EOA itself).
    pub owner: Address,
    /// The revocation salt every session record is keyed under; `revokeAllSessions` draws a
    /// new one.
    pub salt: u64,
    /// The last session id issued; only ids up to it can act.
    pub next_id: u32,
}

impl AccountState {
    /// The slot of `account`'s state word.
    pub fn slot(account: Address) -> B256 {
        keccak256((account, SESSIONS_STORAGE_ROOT).abi_encode())
    }

    /// Decodes the word stored at [`AccountState::slot`].
    pub fn from_word(word: U256) -> Self {
        let bytes = word.to_be_bytes::<32>();
        Self {
            owner: Address::from_slice(&bytes[12..]),
            salt: u64::from_be_bytes(bytes[4..12].try_into().expect("8 bytes")),
            next_id: u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_erc7201_slot_of_the_namespace() {
        let id = U256::from_be_bytes(keccak256("sak.storage.Sessions").0) - U256::from(1);
        let root = keccak256(id.to_be_bytes::<32>()).0;
        let mut masked = root;
        masked[31] = 0;
        assert_eq!(B256::from(masked), SESSIONS_STORAGE_ROOT);
    }

    #[test]
    fn the_state_word_reads_owner_salt_and_counter() {
        let owner = Address::repeat_byte(0xab);
        let word = (U256::from(7u32) << 224)
            | (U256::from(0x1122_3344_5566_7788u64) << 160)
            | U256::from_be_slice(owner.as_slice());
        assert_eq!(
            AccountState::from_word(word),
            AccountState { owner, salt: 0x1122_3344_5566_7788, next_id: 7 }
        );
    }
}
