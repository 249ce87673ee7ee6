// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Account} from "@openzeppelin/contracts/account/Account.sol";
import {ERC7821} from "@openzeppelin/contracts/account/extensions/draft-ERC7821.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ISakSessions} from "./interfaces/ISakSessions.sol";
import {SessionLib} from "./lib/SessionLib.sol";

/// @title SakAccount
/// @notice An ERC-4337 smart account (EntryPoint v0.8) owned by one ECDSA key, with session
///         keys whose limits the account enforces. Deployed as an ERC-1167 clone by
///         {SakAccountFactory}; all state is in the ERC-7201 namespace `sak.storage.Sessions`.
///
/// Operations arrive as ERC-7821 `execute(batchMode, abi.encode(Execution[]))`.
/// - Owner: `userOp.signature` is a 65-byte ECDSA signature of the user operation hash; the owner
///   may do anything, including granting and revoking sessions (calls to the account itself).
/// - Session: `userOp.signature` is `0x01 ‖ id ‖ clock ‖ sig` (see {SessionLib}); every call of
///   the batch is checked and charged in validation by {SessionLib-authorize}. A session can
///   never call the account itself, the EntryPoint, delegatecall, or nest executions.
contract SakAccount is Account, ERC7821, ISakSessions {
    using SessionLib for SessionLib.Layout;

    /// @dev EntryPoint v0.8 at its canonical address.
    IEntryPoint internal constant ENTRY_POINT_V08 =
        IEntryPoint(0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108);

    error AlreadyInitialized();
    error InvalidOwner();
    error NotOwner(address caller);

    constructor() {
        // The implementation itself is never usable: only clones are initialised.
        SessionLib.layout().owner = address(0xdead);
    }

    /// @notice Sets the owner of a fresh clone; the factory calls it in the deploying
    ///         transaction, so it cannot be front-run.
    function initialize(address owner_) external {
        SessionLib.Layout storage l = SessionLib.layout();
        if (l.owner != address(0)) revert AlreadyInitialized();
        if (owner_ == address(0)) revert InvalidOwner();
        l.owner = owner_;
    }

    /// @notice The owner's address.
    function owner() public view returns (address) {
        return SessionLib.layout().owner;
    }

    /// @inheritdoc Account
    function entryPoint() public view virtual override returns (IEntryPoint) {
        return ENTRY_POINT_V08;
    }

    modifier onlyOwnerOrSelf() {
        if (
            msg.sender != address(this) && msg.sender != owner()
                && msg.sender != address(entryPoint())
        ) {
            revert NotOwner(msg.sender);
        }
        _;
    }

    /// @inheritdoc ISakSessions
    function grantSession(SessionConfig calldata config) external onlyOwnerOrSelf returns (uint32) {
        return SessionLib.layout().grant(config, address(this), address(entryPoint()));
    }

    /// @inheritdoc ISakSessions
    function revokeSession(uint32 id) external onlyOwnerOrSelf {
        SessionLib.layout().revoke(id);
    }

    /// @inheritdoc ISakSessions
    function revokeAllSessions() external onlyOwnerOrSelf {
        SessionLib.layout().revokeAll();
    }

    /// @inheritdoc ISakSessions
    function getSession(uint32 id) external view returns (SessionView memory v) {
        SessionLib.Layout storage l = SessionLib.layout();
        SessionLib.SessionRecord memory s = l.sessions[SessionLib.sessionKey(l.epoch, id)];
        return SessionView({
            signer: s.signer,
            validAfter: s.validAfter,
            validUntil: s.validUntil,
            active: s.signer != address(0)
        });
    }

    /// @inheritdoc ISakSessions
    function getSpend(uint32 id, address token) external view returns (SpendView memory) {
        SessionLib.Layout storage l = SessionLib.layout();
        SessionLib.TokenRecord memory t =
            l.tokens[SessionLib.tokenKey(SessionLib.sessionKey(l.epoch, id), token)];
        return
            SpendView({allowance: t.allowance, spent: t.spent, window: t.window, period: t.period});
    }

    /// @dev Owner signatures are 65 bytes; anything else is a session signature.
    function _validateUserOp(
        PackedUserOperation calldata userOp,
        bytes32 userOpHash,
        bytes calldata signature
    ) internal virtual override returns (uint256) {
        if (signature.length == 65) {
            return super._validateUserOp(userOp, userOpHash, signature);
        }
        return SessionLib.layout()
            .validateUserOp(userOp, userOpHash, address(this), address(entryPoint()));
    }

    /// @dev The owner's ECDSA signature (low-s, v in {27, 28}).
    function _rawSignatureValidation(bytes32 hash, bytes calldata signature)
        internal
        view
        virtual
        override
        returns (bool)
    {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError && recovered == owner();
    }

    /// @dev The EntryPoint (after validation) and the account itself may execute.
    function _erc7821AuthorizedExecutor(address caller, bytes32 mode, bytes calldata executionData)
        internal
        view
        virtual
        override
        returns (bool)
    {
        return caller == address(entryPoint())
            || super._erc7821AuthorizedExecutor(caller, mode, executionData);
    }
}
