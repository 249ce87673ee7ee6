// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Account} from "@openzeppelin/contracts/account/Account.sol";
import {ERC7821} from "@openzeppelin/contracts/account/extensions/draft-ERC7821.sol";
import {
    ERC7579Utils,
    Execution
} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISakSessions} from "./interfaces/ISakSessions.sol";
import {SessionAdapter} from "./SessionAdapter.sol";
import {SessionLib} from "./lib/SessionLib.sol";

/// @title SakAccountBase
/// @notice What both account forms share: ERC-4337 validation (EntryPoint v0.8) for the owner
///         and for session keys, ERC-7821 batch execution, session management, and the direct
///         relayed path. Who the owner is, is left to the form: a stored key
///         ({SakAccount}) or the EOA itself ({Sak7702Account}).
///
/// Operations arrive as ERC-7821 `execute(batchMode, abi.encode(Execution[]))`.
/// - Owner: `userOp.signature` is a 65-byte ECDSA signature of the user operation hash; the owner
///   may do anything, including granting and revoking sessions (calls to the account itself).
/// - Session: `userOp.signature` is `0x01 ‖ id ‖ clock ‖ sig` (see {SessionLib}); every call of
///   the batch is checked and charged in validation by {SessionLib-authorize}: capped
///   `transfer`s, and calls through the account's {SessionAdapter}. A session can never call
///   the account itself, the EntryPoint, delegatecall, nest executions, or have the account
///   itself call any contract but a capped token.
/// - Direct: a relayer submits a session-signed batch to {executeWithSession}; the same engine
///   checks it against the real clock, then it executes. The relayer pays the gas.
///
/// All state lives in the ERC-7201 namespace `sak.storage.Sessions`.
abstract contract SakAccountBase is Account, ERC7821, EIP712, ISakSessions {
    using SessionLib for SessionLib.Layout;
    using ERC7579Utils for bytes;

    /// @dev EntryPoint v0.8 at its canonical address.
    IEntryPoint internal constant ENTRY_POINT_V08 =
        IEntryPoint(0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108);

    /// @notice What a session key signs for {executeWithSession}.
    bytes32 public constant SESSION_CALL_TYPEHASH =
        keccak256("SessionCall(uint32 id,bytes32 executionDataHash,uint256 nonce,uint40 deadline)");

    error NotOwner(address caller);
    error DeadlinePassed(uint40 deadline);
    error InvalidNonce(uint256 expected, uint256 given);
    error InvalidSessionSignature();
    /// @notice An owner operation in a session's nonce lanes (tagged {SessionLib-SESSION_NONCE_TAG}).
    error ReservedNonceKey(uint192 key);

    event SessionExecuted(uint32 indexed id, uint256 nonce);

    /// @dev The {SessionAdapter} factory: the account's adapter is its clone.
    address internal immutable ADAPTER;

    constructor(SessionAdapter adapter) EIP712("SakAccount", "2") {
        ADAPTER = address(adapter);
    }

    /// @notice The owner's address.
    function owner() public view virtual returns (address);

    /// @inheritdoc Account
    function entryPoint() public view virtual override returns (IEntryPoint) {
        return ENTRY_POINT_V08;
    }

    /// @dev The owner, directly or through an owner-signed operation (which reaches the
    ///      account as a self-call from `execute`). Not the EntryPoint: no path may let it call
    ///      these functions with a session's authority.
    modifier onlyOwnerOrSelf() {
        if (msg.sender != address(this) && msg.sender != owner()) revert NotOwner(msg.sender);
        _;
    }

    /// @dev This account's view of the shared engine.
    function _ctx() internal view returns (SessionLib.Ctx memory) {
        return SessionLib.Ctx({
            account: address(this),
            entryPoint: address(entryPoint()),
            holder: address(this),
            adapter: ADAPTER,
            entryPointV08: address(entryPoint()) == address(ENTRY_POINT_V08)
        });
    }

    // -----------------------------------------------------------------------------------------
    // Session management
    // -----------------------------------------------------------------------------------------

    /// @inheritdoc ISakSessions
    function grantSession(SessionConfig calldata config) external onlyOwnerOrSelf returns (uint32) {
        return SessionLib.layout().grant(config, _ctx());
    }

    /// @inheritdoc ISakSessions
    function revokeSession(uint32 id) external onlyOwnerOrSelf {
        SessionLib.layout().revoke(address(this), id);
    }

    /// @inheritdoc ISakSessions
    function revokeAllSessions() external onlyOwnerOrSelf {
        SessionLib.layout().revokeAll(address(this));
    }

    /// @inheritdoc ISakSessions
    function rotateSessionKey(uint32 id, address signer) external onlyOwnerOrSelf {
        SessionLib.layout().rotate(address(this), id, signer);
    }

    /// @inheritdoc ISakSessions
    function sessionAdapter() external view returns (address) {
        return SessionLib.adapterOf(_ctx());
    }

    /// @inheritdoc ISakSessions
    function getSession(uint32 id) external view returns (SessionView memory) {
        return SessionLib.layout().sessionView(address(this), id);
    }

    /// @inheritdoc ISakSessions
    function getSpend(uint32 id, address token) external view returns (SpendView memory) {
        return SessionLib.layout().spendView(address(this), id, token);
    }

    /// @inheritdoc ISakSessions
    function getUsage(uint32 id) external view returns (UsageView memory) {
        return SessionLib.layout().usageView(address(this), id);
    }

    // -----------------------------------------------------------------------------------------
    // Direct relayed path
    // -----------------------------------------------------------------------------------------

    /// @notice The next nonce {executeWithSession} accepts from session `id` (one lane per
    ///         session).
    function directNonce(uint32 id) external view returns (uint256) {
        SessionLib.Layout storage l = SessionLib.layout();
        return
            l.directNonces[SessionLib.sessionKey(l.accounts[address(this)].salt, id)][address(this)];
    }

    /// @notice Executes a batch signed by session `id`, submitted by anyone (a relayer, who pays
    ///         the gas). The session key signs the EIP-712 `SessionCall(id,
    ///         keccak256(executionData), nonce, deadline)` under this account's domain (name
    ///         "SakAccount", version "2", chain id, this address), so the relayer cannot alter
    ///         the calls, replay them, or move them to another chain or account. The policy is
    ///         checked by the same engine as user operations, with the block's clock.
    /// @param executionData `abi.encode(Execution[])`, as for ERC-7821 batch mode.
    /// @param nonce Must equal {directNonce} of session `id`; consumed.
    /// @param deadline Last second (inclusive) at which the batch may execute.
    function executeWithSession(
        uint32 id,
        bytes calldata executionData,
        uint256 nonce,
        uint40 deadline,
        bytes calldata signature
    ) external payable {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert DeadlinePassed(deadline);
        SessionLib.Layout storage l = SessionLib.layout();
        mapping(address => uint256) storage lane =
            l.directNonces[SessionLib.sessionKey(l.accounts[address(this)].salt, id)];
        uint256 expected = lane[address(this)];
        if (nonce != expected) revert InvalidNonce(expected, nonce);
        lane[address(this)] = expected + 1; // checked: reverts rather than wrap to a used nonce

        Execution[] calldata calls = SessionLib.decodeBatch(executionData);
        // forge-lint: disable-next-line(unsafe-typecast) timestamps fit 40 bits until year 36812
        (address signer,,) = l.authorize(id, calls, uint40(block.timestamp), 0, 0, 0, _ctx());
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(SESSION_CALL_TYPEHASH, id, keccak256(executionData), nonce, deadline)
            )
        );
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) {
            revert InvalidSessionSignature();
        }

        emit SessionExecuted(id, nonce);
        executionData.execBatch(ERC7579Utils.EXECTYPE_DEFAULT);
    }

    // -----------------------------------------------------------------------------------------
    // ERC-4337
    // -----------------------------------------------------------------------------------------

    /// @dev Owner signatures are 65 bytes; anything else is a session signature. The owner's
    ///      operations stay out of the sessions' nonce lanes, and sessions out of the owner's
    ///      ({SessionLib-checkNonceKey}): neither can take a nonce the other has signed for.
    function _validateUserOp(
        PackedUserOperation calldata userOp,
        bytes32 userOpHash,
        bytes calldata signature
    ) internal virtual override returns (uint256) {
        if (signature.length == 65) {
            if (SessionLib.isSessionNonce(userOp.nonce)) {
                // forge-lint: disable-next-line(unsafe-typecast) the key is the top 192 bits
                revert ReservedNonceKey(uint192(userOp.nonce >> 64));
            }
            return super._validateUserOp(userOp, userOpHash, signature);
        }
        return SessionLib.layout().validateUserOp(userOp, userOpHash, _ctx());
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
