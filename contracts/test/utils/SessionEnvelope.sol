// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice The session signature's wire format (format 2), computed independently of
///         SessionLib so that the tests check the contracts against the written format
///         (contracts/README, "Wire format").
library SessionEnvelope {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version)");
    bytes32 internal constant OP_TYPEHASH =
        keccak256("SakSessionOp(bytes32 userOpHash,uint32 id,uint40 clock,uint40 deadline)");
    uint8 internal constant TAG = 0x02;
    /// @dev "sak" 0x01: the top 32 bits of a session's nonce on sak's accounts.
    uint32 internal constant NONCE_TAG = 0x73616b01;
    /// @dev A deadline that never narrows the window (the operation's period decides).
    uint40 internal constant NO_DEADLINE = type(uint40).max;

    function domainSeparator() internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("SakSession"), keccak256("2")));
    }

    /// @dev What the session key signs.
    function digest(bytes32 userOpHash, uint32 id, uint40 clock, uint40 deadline)
        internal
        pure
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(OP_TYPEHASH, userOpHash, id, clock, deadline));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @dev 0x02 ‖ id ‖ clock ‖ deadline ‖ r ‖ s ‖ v.
    function encode(uint32 id, uint40 clock, uint40 deadline, uint8 v, bytes32 r, bytes32 s)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(TAG, id, clock, deadline, r, s, v);
    }

    /// @dev Session `id`'s nonce key in `lane` on sak's own accounts.
    function nonceKey(uint32 id, uint128 lane) internal pure returns (uint192) {
        return uint192((uint256(NONCE_TAG) << 160) | (uint256(id) << 128) | lane);
    }

    /// @dev Session `id`'s nonce key on a modular account, for validator `module`.
    function moduleNonceKey(address module, uint32 id) internal pure returns (uint192) {
        return uint192((uint256(uint160(module)) << 32) | id);
    }
}
