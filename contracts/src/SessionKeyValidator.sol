// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IERC7579Module,
    IERC7579ModuleConfig,
    IERC7579Validator,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_HOOK,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "./interfaces/ISakSessions.sol";
import {SessionAdapter} from "./SessionAdapter.sol";
import {SessionLib} from "./lib/SessionLib.sol";

/// @title SessionKeyValidator
/// @notice sak's session keys as an ERC-7579 validator module, for existing modular accounts
///         (OpenZeppelin AccountERC7579, Safe7579, Kernel, Nexus). It runs the same engine as
///         sak's own accounts ({SessionLib}); every call here acts for `msg.sender`, the account.
///
/// Use: install it as a validator; the account's owner grants sessions by having the account
/// call {grantSession} (an owner operation). A session operation is the account's ERC-7579
/// `execute(batchMode, abi.encode(Execution[]))`, signed as in {SessionLib}, with the nonce key
/// that routes validation here. The module itself, the account and the EntryPoints can never be
/// a session's target, so a session cannot grant, install, uninstall or withdraw. A grant is
/// also refused when it names, as target, token or paymaster, the EntryPoint the account reports
/// (`entryPoint()`, whatever its version) or any validator, executor or hook installed on the
/// account: the account's admin surface.
///
/// How the session reaches the execution phase: it does not need to. Spend, gas and op counts are
/// charged in validation against the period of the signed clock claim, whose bounds go back to
/// the EntryPoint as validAfter/validUntil (see {SessionLib}); execution is the account's own.
/// The outflow bound needs no hook either: validation admits only batches of capped
/// `transfer`s and calls through the account's {SessionAdapter} (deployed by the first grant),
/// so the account never calls a target itself. This works on any ERC-7579 account without
/// hooks, executor rights or transient state.
///
/// Storage: each record sits at keccak256(account ‖ x), associated with the account under
/// ERC-7562, so validation needs no staking.
contract SessionKeyValidator is IERC7579Validator {
    using SessionLib for SessionLib.Layout;

    address internal constant ENTRY_POINT_V08 = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;

    /// @dev The {SessionAdapter} factory: each account's adapter is its clone.
    address internal immutable ADAPTER;

    /// @notice Session `id` of `account` was granted. One module serves many accounts, and the
    ///         {ISakSessions} events emitted beside these name none: readers use these four.
    event AccountSessionGranted(
        address indexed account,
        uint32 indexed id,
        address indexed signer,
        ISakSessions.SessionConfig config
    );
    /// @notice Session `id` of `account` was revoked.
    event AccountSessionRevoked(address indexed account, uint32 indexed id);
    /// @notice Every session of `account` was revoked (revoke-all, install or uninstall).
    event AccountSessionsRevoked(address indexed account);
    /// @notice Session `id` of `account` signs with `signer` from now on.
    event AccountSessionKeyRotated(
        address indexed account, uint32 indexed id, address indexed signer
    );

    error NotTheSender(address sender, address caller);
    /// @notice The calling account has not installed this module (ERC-7579's name).
    error NotInitialized(address smartAccount);

    /// @dev keccak256(abi.encode(uint256(keccak256("sak.storage.SessionKeyValidator")) - 1))
    ///      & ~bytes32(uint256(0xff)): which accounts have the module installed. Each slot is
    ///      keccak256(account ‖ base), associated with the account under ERC-7562.
    /// @custom:storage-location erc7201:sak.storage.SessionKeyValidator
    bytes32 private constant INSTALLED_SLOT =
        0x183d1e2d5fae5a57c3f5bc70992e0d82a04ecb4f2313b442032b317140735600;

    constructor(SessionAdapter adapter) {
        ADAPTER = address(adapter);
    }

    /// @inheritdoc IERC7579Module
    /// @dev Starts the account under a fresh revocation salt, so no session from an earlier
    ///      installation comes back, even when that one was removed by a path that skipped
    ///      {onUninstall} (a forced uninstall, or another account implementation). Sessions are
    ///      granted afterwards by the account.
    function onInstall(bytes calldata) external {
        SessionLib.layout().revokeAll(msg.sender);
        _installed()[msg.sender] = true;
        emit AccountSessionsRevoked(msg.sender);
    }

    /// @inheritdoc IERC7579Module
    /// @dev Revokes every session of the account at once (a fresh salt: O(1) whatever their
    ///      number).
    function onUninstall(bytes calldata) external {
        SessionLib.layout().revokeAll(msg.sender);
        _installed()[msg.sender] = false;
        emit AccountSessionsRevoked(msg.sender);
    }

    /// @notice Whether `smartAccount` has the module installed (by {onInstall}, and not since
    ///         removed by {onUninstall}).
    function isInitialized(address smartAccount) external view returns (bool) {
        return _installed()[smartAccount];
    }

    /// @inheritdoc IERC7579Module
    function isModuleType(uint256 moduleTypeId) external pure returns (bool) {
        return moduleTypeId == MODULE_TYPE_VALIDATOR;
    }

    /// @notice Grants a session on the calling account, which must have the module installed.
    ///         Besides what every sak account refuses, the grant may not name the account's own
    ///         EntryPoint or a module installed on it (`ForbiddenTarget`).
    function grantSession(ISakSessions.SessionConfig calldata config) external returns (uint32) {
        if (!_installed()[msg.sender]) revert NotInitialized(msg.sender);
        address entryPoint = _entryPointOf(msg.sender);
        if (config.paymaster != address(0)) _refuseAdmin(config.paymaster, entryPoint);
        for (uint256 i; i < config.spendLimits.length; ++i) {
            address token = config.spendLimits[i].token;
            if (token != address(0)) _refuseAdmin(token, entryPoint);
        }
        for (uint256 i; i < config.permissions.length; ++i) {
            _refuseAdmin(config.permissions[i].target, entryPoint);
        }
        uint32 id = SessionLib.layout().grant(config, _ctx());
        emit AccountSessionGranted(msg.sender, id, config.signer, config);
        return id;
    }

    /// @notice Revokes one session of the calling account.
    function revokeSession(uint32 id) external {
        SessionLib.layout().revoke(msg.sender, id);
        emit AccountSessionRevoked(msg.sender, id);
    }

    /// @notice Revokes every session of the calling account.
    function revokeAllSessions() external {
        SessionLib.layout().revokeAll(msg.sender);
        emit AccountSessionsRevoked(msg.sender);
    }

    /// @notice Gives session `id` of the calling account a new key, keeping its counters.
    function rotateSessionKey(uint32 id, address signer) external {
        SessionLib.layout().rotate(msg.sender, id, signer);
        emit AccountSessionKeyRotated(msg.sender, id, signer);
    }

    /// @notice The {SessionAdapter} of `account`.
    function sessionAdapter(address account) external view returns (address) {
        return SessionLib.adapterOf(
            SessionLib.Ctx({
                account: account,
                entryPoint: ENTRY_POINT_V08,
                holder: address(this),
                adapter: ADAPTER,
                entryPointV08: false
            })
        );
    }

    /// @notice Session `id` of `account`.
    function getSession(address account, uint32 id)
        external
        view
        returns (ISakSessions.SessionView memory)
    {
        return SessionLib.layout().sessionView(account, id);
    }

    /// @notice Spend state of session `id` of `account` for `token`.
    function getSpend(address account, uint32 id, address token)
        external
        view
        returns (ISakSessions.SpendView memory)
    {
        return SessionLib.layout().spendView(account, id, token);
    }

    /// @notice Gas and operation counters of session `id` of `account`.
    function getUsage(address account, uint32 id)
        external
        view
        returns (ISakSessions.UsageView memory)
    {
        return SessionLib.layout().usageView(account, id);
    }

    /// @inheritdoc IERC7579Validator
    function validateUserOp(PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        returns (uint256)
    {
        // The account asks for its own operations only.
        if (userOp.sender != msg.sender) revert NotTheSender(userOp.sender, msg.sender);
        return SessionLib.layout().validateUserOp(userOp, userOpHash, _ctx());
    }

    /// @inheritdoc IERC7579Validator
    /// @dev Session keys never make the account sign (ERC-1271): no Permit, Permit2 or order
    ///      can be authorised through them.
    function isValidSignatureWithSender(address, bytes32, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return 0xffffffff;
    }

    /// @dev Refuses `target` when it is the account's EntryPoint or one of its installed
    ///      validators, executors or hooks. Fallback handlers are not enumerable by address
    ///      (ERC-7579 keys them by selector); they act only when called through the account,
    ///      which is never a session's target. An account whose `isModuleInstalled` reverts or
    ///      returns no word fails closed.
    function _refuseAdmin(address target, address entryPoint) private view {
        if (
            target == entryPoint || _installedOn(MODULE_TYPE_VALIDATOR, target)
                || _installedOn(MODULE_TYPE_EXECUTOR, target)
                || _installedOn(MODULE_TYPE_HOOK, target)
        ) revert ISakSessions.ForbiddenTarget(target);
    }

    function _installedOn(uint256 moduleType, address module) private view returns (bool) {
        (bool ok, bytes memory ret) = msg.sender
            .staticcall(
                abi.encodeCall(IERC7579ModuleConfig.isModuleInstalled, (moduleType, module, ""))
            );
        return !ok || ret.length < 32 || abi.decode(ret, (uint256)) != 0;
    }

    /// @dev The EntryPoint `account` reports (`entryPoint()`, as OpenZeppelin, Kernel, Nexus
    ///      and Safe7579 accounts do), or v0.8 when it reports none. v0.7 and v0.8 are refused
    ///      as targets on every account anyway.
    function _entryPointOf(address account) private view returns (address) {
        (bool ok, bytes memory ret) = account.staticcall(abi.encodeWithSignature("entryPoint()"));
        if (!ok || ret.length < 32) return ENTRY_POINT_V08;
        uint256 word = abi.decode(ret, (uint256));
        return word >> 160 == 0 ? address(uint160(word)) : ENTRY_POINT_V08;
    }

    function _installed() private pure returns (mapping(address => bool) storage m) {
        assembly ("memory-safe") {
            m.slot := INSTALLED_SLOT
        }
    }

    function _ctx() private view returns (SessionLib.Ctx memory) {
        return SessionLib.Ctx({
            account: msg.sender,
            entryPoint: ENTRY_POINT_V08,
            holder: address(this),
            adapter: ADAPTER,
            // The account's EntryPoint may be v0.7 or v0.8: the exact period start is safe
            // on both (see SessionLib.validateUserOp).
            entryPointV08: false
        });
    }
}
