// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISakSessions} from "../interfaces/ISakSessions.sol";
import {SessionAdapter} from "../SessionAdapter.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ERC4337Utils} from "@openzeppelin/contracts/account/utils/ERC4337Utils.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {
    ERC7579Utils,
    Execution
} from "@openzeppelin/contracts/account/utils/draft-ERC7579Utils.sol";

/// @title SessionLib
/// @notice The permission engine: every entry point (ERC-4337 validation, the direct relayed
///         path, the ERC-7579 module) runs `authorize`, so the policy means the same everywhere.
///
/// What a session's batch may contain (anything else is refused):
/// - `transfer(to, amount)` on a capped token: charged `amount`; `to` is the account's adapter,
///   or anyone when the limit allows transfers;
/// - `run(target, data, tokens)` on the account's {SessionAdapter}: the inner call `target` /
///   `data` must match a permission (target, selector, argument conditions); ETH sent is charged
///   to the native cap.
/// So the account itself is never `msg.sender` of a call that could pull its assets: targets
/// see the adapter, which holds only what the session moved there (each unit charged when it
/// left the account), never an allowance or operator right of the account. Outflow of every
/// token is therefore bounded by what is charged, whatever the target pulls or the owner
/// approves, before or after the grant; a token without a cap cannot leave at all.
///
/// Where the clock comes from. ERC-7562 forbids TIMESTAMP in validation, yet spend caps are per
/// period. The session signer therefore signs a *clock claim* (`clock`, unix seconds) with each
/// operation; the engine does all accounting against the period that contains `clock` and
/// returns that period's bounds as `validAfter`/`validUntil`, so the EntryPoint itself refuses
/// the operation outside it (AA22). A claim in the future is not valid yet; a claim in the past
/// is expired, or refused as `StaleWindow` (`StaleGasWindow` for the gas budget) once a later
/// period was charged. The direct path passes `block.timestamp`. Hence no state needs to cross
/// from validation into execution, and the charge is final even when the execution then reverts
/// (charge-on-failure, the safe side).
///
/// Storage: one ERC-7201 namespace; every record is one slot, keyed by a hash that includes the
/// account's revocation salt, so revoking all sessions is one write: a fresh salt, drawn from
/// the block, that no earlier code could predict (see {revokeAll}).
library SessionLib {
    /// @dev Which account the state belongs to, and who holds it: the account itself (our
    ///      account forms, `account == holder`) or a validator module serving many accounts.
    struct Ctx {
        address account;
        address entryPoint;
        address holder;
        /// @dev The {SessionAdapter} factory; the account's own adapter is its clone.
        address adapter;
        /// @dev The account's EntryPoint is known to be v0.8, which admits an operation only
        ///      after `validAfter` (v0.7: from `validAfter` on). False when unknown (a module).
        bool entryPointV08;
    }

    /// @dev Per account: the owner (smart account form only), the revocation salt and the
    ///      next session id, in one slot.
    struct AccountState {
        address owner;
        uint64 salt;
        uint32 nextId;
    }

    /// Every per-session mapping has the account as its innermost key, so each slot is
    /// keccak256(account ‖ x): storage "associated" with the account under ERC-7562, also when
    /// a module holds it for many accounts.
    /// @custom:storage-location erc7201:sak.storage.Sessions
    struct Layout {
        mapping(address account => AccountState) accounts;
        mapping(bytes32 sessionKey => mapping(address account => SessionRecord)) sessions;
        mapping(bytes32 sessionKey => mapping(address account => Counters)) counters;
        mapping(bytes32 tokenKey => mapping(address account => TokenRecord)) tokens;
        mapping(bytes32 permissionKey => mapping(address account => PermissionRecord)) permissions;
        mapping(bytes32 conditionKey => mapping(address account => ConditionRecord)) conditions;
        mapping(bytes32 valueKey => mapping(address account => bytes32)) conditionValues;
        /// @dev Read only by operations that name a paymaster: the unsponsored path never pays
        ///      for this slot.
        mapping(bytes32 sessionKey => mapping(address account => address)) paymasters;
        /// @dev The direct path's next nonce, one lane per session: no session can void
        ///      another's signed batches.
        mapping(bytes32 sessionKey => mapping(address account => uint256)) directNonces;
        /// @dev The smart-account form's proposed next owner (two-step transfer).
        mapping(address account => address) pendingOwners;
    }

    struct SessionRecord {
        address signer;
        uint40 validAfter;
        uint40 validUntil;
        uint16 flags;
    }

    /// @dev Read and written only when the session has a finite gas budget, an op limit or a
    ///      fee cap. The budget is kept in gwei so that the fee caps fit the same slot.
    struct Counters {
        uint48 gasBudgetGwei;
        uint48 gasSpentGwei;
        uint24 gasWindow;
        uint24 gasPeriod;
        uint24 maxOps;
        uint24 opsUsed;
        uint40 maxFeePerGas;
        uint24 maxPreVerificationGas;
    }

    struct TokenRecord {
        uint96 allowance;
        uint96 spent;
        uint24 window;
        uint32 period;
        uint8 flags;
    }

    struct PermissionRecord {
        bool exists;
        bool allowValue;
        uint8 conditionCount;
    }

    struct ConditionRecord {
        uint8 argIndex;
        ISakSessions.Op op;
        uint8 valueCount;
        uint8 argType;
    }

    // keccak256(abi.encode(uint256(keccak256("sak.storage.Sessions")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant LAYOUT_SLOT =
        0x6c24668be91564ec2123909ef66a85197a1bdc434ed464f6f97821436f5a1500;

    uint16 private constant GAS_UNLIMITED = 1 << 0;
    uint16 private constant GAS_SPONSORED_ONLY = 1 << 1;
    uint16 private constant HAS_COUNTERS = 1 << 2;

    uint8 private constant TOKEN_EXISTS = 1 << 0;
    /// @dev `transfer` to any recipient; without it, only to the account's adapter.
    uint8 private constant TOKEN_TRANSFER = 1 << 1;

    /// @dev `gasBudget` meaning "no gas limit" (the owner's explicit choice).
    uint80 internal constant UNLIMITED_GAS = type(uint80).max;
    uint256 private constant GWEI = 1e9;

    uint256 internal constant MAX_PERMISSIONS = 32;
    uint256 internal constant MAX_SPEND_LIMITS = 16;
    uint256 internal constant MAX_CONDITIONS = 8;
    uint256 internal constant MAX_ONE_OF = 16;

    /// @dev `ArgCondition.argType`: the low six bits are the width in bytes; these mark the kind.
    uint8 internal constant TYPE_SIGNED = 0x40;
    uint8 internal constant TYPE_ADDRESS = 0x94;
    uint8 internal constant TYPE_BOOL = 0x81;
    uint32 internal constant MIN_PERIOD = 60;

    /// @dev Session signature (format 2): 0x02 ‖ id (uint32) ‖ clock (uint40) ‖ deadline
    ///      (uint40) ‖ ECDSA r ‖ s ‖ v over {sessionDigest}.
    uint8 internal constant SESSION_SIGNATURE_TAG = 0x02;
    uint256 internal constant SESSION_SIGNATURE_LENGTH = 80;

    /// @dev The EIP-712 domain of session signatures: `EIP712Domain(string name,string
    ///      version)` with name "SakSession", version "2". No chain id or contract: the user
    ///      operation hash inside binds the chain, the EntryPoint and the account.
    bytes32 internal constant SESSION_DOMAIN_SEPARATOR =
        0xe4711062005f1517384a3f24ae19dcf4da5039fb5cd91d906d709b0f81614cb9;
    /// @dev keccak256("SakSessionOp(bytes32 userOpHash,uint32 id,uint40 clock,uint40 deadline)").
    bytes32 internal constant SESSION_OP_TYPEHASH =
        0xd14ff371924f6424330b8c10361671249837a6e0bc7b7ef95f4ef57682475033;

    /// @dev The top 32 bits of a session operation's EntryPoint nonce on sak's own accounts
    ///      ("sak" 0x01): nonce = tag (32) ‖ session id (32) ‖ lane (128) ‖ sequence (64). The
    ///      owner's operations may not use it.
    uint32 internal constant SESSION_NONCE_TAG = 0x73616b01;

    /// @dev Uniswap's Permit2, the same address on every chain.
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    /// @dev EntryPoint v0.7: never a target either (a module may serve accounts on it).
    address internal constant ENTRY_POINT_V07 = 0x0000000071727De22E5E9d8BAf0edAc6f37da032;

    bytes4 private constant TRANSFER = 0xa9059cbb;
    /// @dev {SessionAdapter.run}.
    bytes4 private constant RUN = SessionAdapter.run.selector;
    /// @dev ERC-7821 `execute(bytes32,bytes)` with the batch mode and no op data.
    bytes4 private constant EXECUTE = 0xe9ae5c53;
    bytes32 private constant BATCH_MODE =
        0x0100000000000000000000000000000000000000000000000000000000000000;

    function layout() internal pure returns (Layout storage l) {
        assembly ("memory-safe") {
            l.slot := LAYOUT_SLOT
        }
    }

    // ---------------------------------------------------------------------------------------
    // Keys
    // ---------------------------------------------------------------------------------------

    // Each key is keccak256(abi.encode(..)) of its fields, hashed in scratch space (or just past
    // the free memory pointer) instead of an allocated `bytes`: the hot path runs them per call.

    /// @dev The salt and the id counter of `a`, in one read of its slot (no memory copy of the
    ///      struct: the hot path runs it per operation).
    function saltAndNextId(AccountState storage a)
        private
        view
        returns (uint64 salt, uint32 nextId)
    {
        uint256 w;
        assembly ("memory-safe") {
            w := sload(a.slot)
        }
        // forge-lint: disable-next-line(unsafe-typecast) the fields of the packed slot
        (salt, nextId) = (uint64(w >> 160), uint32(w >> 224));
    }

    /// @dev keccak256(abi.encode(salt, id)).
    function sessionKey(uint64 salt, uint32 id) internal pure returns (bytes32 k) {
        assembly ("memory-safe") {
            mstore(0x00, and(salt, 0xffffffffffffffff))
            mstore(0x20, and(id, 0xffffffff))
            k := keccak256(0x00, 0x40)
        }
    }

    /// @dev keccak256(abi.encode(sKey, token)).
    function tokenKey(bytes32 sKey, address token) internal pure returns (bytes32 k) {
        assembly ("memory-safe") {
            mstore(0x00, sKey)
            mstore(0x20, and(token, 0xffffffffffffffffffffffffffffffffffffffff))
            k := keccak256(0x00, 0x40)
        }
    }

    /// @dev keccak256(abi.encode(sKey, target, selector)).
    function permissionKey(bytes32 sKey, address target, bytes4 selector)
        internal
        pure
        returns (bytes32 k)
    {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, sKey)
            mstore(add(m, 0x20), and(target, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), and(selector, shl(224, 0xffffffff)))
            k := keccak256(m, 0x60)
        }
    }

    /// @dev keccak256(abi.encode(key, index)): a condition of a permission, or a value of a
    ///      condition.
    function indexKey(bytes32 key, uint256 index) internal pure returns (bytes32 k) {
        assembly ("memory-safe") {
            mstore(0x00, key)
            mstore(0x20, index)
            k := keccak256(0x00, 0x40)
        }
    }

    // ---------------------------------------------------------------------------------------
    // Grant and revoke (owner)
    // ---------------------------------------------------------------------------------------

    /// @notice Validates `config` and stores it under a fresh id. `account` and `entryPoint`
    ///         are hard-denied as targets.
    function grant(Layout storage l, ISakSessions.SessionConfig calldata config, Ctx memory ctx)
        internal
        returns (uint32 id)
    {
        if (config.signer == address(0)) revert ISakSessions.InvalidSigner();
        // forge-lint: disable-next-line(block-timestamp)
        if (config.validAfter >= config.validUntil || config.validUntil <= block.timestamp) {
            revert ISakSessions.InvalidTimeBounds(config.validAfter, config.validUntil);
        }
        if (
            config.permissions.length > MAX_PERMISSIONS
                || config.spendLimits.length > MAX_SPEND_LIMITS
        ) {
            revert ISakSessions.TooManyEntries();
        }
        uint40 span = config.validUntil - config.validAfter;

        AccountState storage a = l.accounts[ctx.account];
        id = ++a.nextId;
        bytes32 sKey = sessionKey(a.salt, id);
        address account = ctx.account;

        if (config.paymaster != address(0)) {
            // A privileged paymaster would be the session's way into the account's management
            // or deposit (a paymaster is called in validation and postOp).
            if (_privileged(config.paymaster, ctx)) {
                revert ISakSessions.ForbiddenTarget(config.paymaster);
            }
            l.paymasters[sKey][account] = config.paymaster;
        }

        uint16 flags;
        bool finiteGas = config.gasBudget != 0 && config.gasBudget != UNLIMITED_GAS;
        if (config.gasBudget == UNLIMITED_GAS) flags |= GAS_UNLIMITED;
        else if (config.gasBudget == 0) flags |= GAS_SPONSORED_ONLY;
        // Fee caps matter only where the account pays (a sponsored-only session never does).
        bool feeCaps = config.gasBudget != 0
            && (config.maxFeePerGas != 0 || config.maxPreVerificationGas != 0);
        if (finiteGas || feeCaps || config.maxOps > 0) {
            flags |= HAS_COUNTERS;
            uint24 gasPeriod;
            if (finiteGas) {
                if (config.gasBudget % GWEI != 0 || config.gasBudget / GWEI > type(uint48).max) {
                    revert ISakSessions.InvalidGasBudget(config.gasBudget);
                }
                _checkPeriod(config.gasPeriod, span, type(uint24).max);
                gasPeriod = uint24(config.gasPeriod);
            }
            // Casts fit: a finite budget was checked just above.
            l.counters[sKey][account] = Counters({
                // forge-lint: disable-next-line(unsafe-typecast)
                gasBudgetGwei: finiteGas ? uint48(config.gasBudget / GWEI) : 0,
                gasSpentGwei: 0,
                gasWindow: 0,
                gasPeriod: gasPeriod,
                maxOps: config.maxOps,
                opsUsed: 0,
                maxFeePerGas: config.gasBudget != 0 ? config.maxFeePerGas : 0,
                maxPreVerificationGas: config.gasBudget != 0 ? config.maxPreVerificationGas : 0
            });
        }

        for (uint256 i; i < config.spendLimits.length; ++i) {
            ISakSessions.SpendLimit calldata limit = config.spendLimits[i];
            if (limit.allowance == 0) revert ISakSessions.ZeroAllowance(limit.token);
            _checkPeriod(limit.period, span, type(uint32).max);
            if (_privileged(limit.token, ctx) || limit.token == adapterOf(ctx)) {
                revert ISakSessions.ForbiddenTarget(limit.token);
            }
            // Native ETH leaves only as the value of an adapter call: it takes no transfer flag.
            if (limit.token == address(0) && limit.allowTransfer) {
                revert ISakSessions.InvalidSpendLimit(limit.token);
            }
            TokenRecord storage t = l.tokens[tokenKey(sKey, limit.token)][account];
            if (t.flags != 0) revert ISakSessions.DuplicateSpendLimit(limit.token);
            t.allowance = limit.allowance;
            t.period = limit.period;
            t.flags = TOKEN_EXISTS | (limit.allowTransfer ? TOKEN_TRANSFER : 0);
        }

        for (uint256 i; i < config.permissions.length; ++i) {
            _storePermission(l, sKey, config.permissions[i], ctx);
        }
        SessionAdapter(payable(ctx.adapter)).deploy(account);

        l.sessions[sKey][account] = SessionRecord({
            signer: config.signer,
            validAfter: config.validAfter,
            validUntil: config.validUntil,
            flags: flags
        });
        emit ISakSessions.SessionGranted(id, config.signer, config);
    }

    function revoke(Layout storage l, address account, uint32 id) internal {
        bytes32 sKey = sessionKey(l.accounts[account].salt, id);
        if (l.sessions[sKey][account].signer == address(0)) {
            revert ISakSessions.SessionNotActive(id);
        }
        delete l.sessions[sKey][account];
        emit ISakSessions.SessionRevoked(id);
    }

    /// @notice Ends every session of `account` in one write: a fresh salt, so every record keyed
    ///         under the old one (sessions, caps, counters, permissions, direct nonces) is out
    ///         of reach. The salt mixes the old one with the previous block's hash and
    ///         PREVRANDAO: code that wrote the account's storage in an earlier block (a hostile
    ///         EIP-7702 delegate, before the owner delegated back) cannot have planted records
    ///         under it, and no stored value can make it overflow. An id counter at or past
    ///         2^31 cannot come from grants (each costs over 100,000 gas); it was planted, and
    ///         ids restart from 1 under the new salt.
    function revokeAll(Layout storage l, address account) internal {
        AccountState storage a = l.accounts[account];
        // forge-lint: disable-next-line(unsafe-typecast) the low 64 bits of a hash
        uint64 salt = uint64(
            uint256(
                keccak256(
                    abi.encode(a.salt, account, blockhash(block.number - 1), block.prevrandao)
                )
            )
        );
        a.salt = salt;
        if (a.nextId >= 1 << 31) a.nextId = 0;
        emit ISakSessions.AllSessionsRevoked(salt);
    }

    /// @notice Gives session `id` a new key in place: same id, policy and counters, so the new
    ///         key inherits what is spent in the current periods (no fresh cap), and operations
    ///         signed by the old key stop validating.
    function rotate(Layout storage l, address account, uint32 id, address signer) internal {
        if (signer == address(0)) revert ISakSessions.InvalidSigner();
        SessionRecord storage s = l.sessions[sessionKey(l.accounts[account].salt, id)][account];
        if (s.signer == address(0)) revert ISakSessions.SessionNotActive(id);
        s.signer = signer;
        emit ISakSessions.SessionKeyRotated(id, signer);
    }

    /// @notice The account's {SessionAdapter} (deployed by the first grant).
    function adapterOf(Ctx memory ctx) internal pure returns (address) {
        return Clones.predictDeterministicAddress(
            ctx.adapter, bytes32(uint256(uint160(ctx.account))), ctx.adapter
        );
    }

    function _checkPeriod(uint32 period, uint40 span, uint256 maxPeriod) private pure {
        // Windows are stored as uint24 indexes: the session must not outlast 2^24 periods.
        if (period < MIN_PERIOD || period > maxPeriod || span / period >= type(uint24).max) {
            revert ISakSessions.InvalidPeriod(period);
        }
    }

    function _storePermission(
        Layout storage l,
        bytes32 sKey,
        ISakSessions.CallPermission calldata p,
        Ctx memory ctx
    ) private {
        address account = ctx.account;
        // address(0) and address(1) are wildcard sentinels elsewhere: never valid targets here.
        if (uint160(p.target) <= 1 || _privileged(p.target, ctx) || p.target == adapterOf(ctx)) {
            revert ISakSessions.ForbiddenTarget(p.target);
        }
        if (_movesAssets(p.selector) || l.tokens[tokenKey(sKey, p.target)][account].flags != 0) {
            revert ISakSessions.TokenSelectorNeedsSpendLimit(p.target, p.selector);
        }
        if (p.conditions.length > MAX_CONDITIONS) revert ISakSessions.TooManyEntries();
        bytes32 pKey = permissionKey(sKey, p.target, p.selector);
        PermissionRecord storage rec = l.permissions[pKey][account];
        if (rec.exists) revert ISakSessions.DuplicatePermission(p.target, p.selector);
        rec.exists = true;
        rec.allowValue = p.allowValue;
        // forge-lint: disable-next-line(unsafe-typecast) at most MAX_CONDITIONS, checked above
        rec.conditionCount = uint8(p.conditions.length);
        for (uint256 i; i < p.conditions.length; ++i) {
            ISakSessions.ArgCondition calldata c = p.conditions[i];
            uint256 n = c.values.length;
            bool ok = c.argIndex < 32 && _typeFits(c.argType, c.op)
                && (c.op == ISakSessions.Op.EqAccount
                        ? n == 0
                        : (c.op == ISakSessions.Op.OneOf ? n > 0 && n <= MAX_ONE_OF : n == 1));
            for (uint256 j; ok && j < n; ++j) {
                ok = _canonical(c.argType, c.values[j]);
            }
            if (!ok) revert ISakSessions.InvalidCondition(p.target, p.selector, c.argIndex);
            bytes32 cKey = indexKey(pKey, i);
            // forge-lint: disable-next-line(unsafe-typecast) n <= MAX_ONE_OF, checked above
            uint8 valueCount = uint8(n);
            l.conditions[cKey][account] = ConditionRecord({
                argIndex: c.argIndex, op: c.op, valueCount: valueCount, argType: c.argType
            });
            for (uint256 j; j < n; ++j) {
                l.conditionValues[indexKey(cKey, j)][account] = c.values[j];
            }
        }
    }

    /// @dev Never a target for a session, whatever the policy says: the account (its own
    ///      management, nested execution, module installation), the EntryPoints (deposits and
    ///      stake), the holder of the session state (a validator module), the adapter factory
    ///      and Permit2. Called through the adapter they could not act with the account's
    ///      authority anyway; refusing them keeps the policy honest and the surface small.
    function _privileged(address target, Ctx memory ctx) private pure returns (bool) {
        return target == ctx.account || target == ctx.entryPoint || target == ctx.holder
            || target == ctx.adapter || target == PERMIT2 || target == ENTRY_POINT_V07;
    }

    /// @dev Selectors that move or approve assets: only spend limits may permit them
    ///      (ERC-20 aliases, ERC-777, ERC-1363, DAI, ERC-721/1155 transfers and approvals).
    function _movesAssets(bytes4 s) private pure returns (bool) {
        return s == TRANSFER || s == 0x095ea7b3 /* approve */ || s == 0x23b872dd /* transferFrom */
            || s == 0x39509351 /* increaseAllowance */ || s == 0xd505accf /* permit */
            || s == 0x9bd9bbc6 /* send */ || s == 0x62ad1b83 /* operatorSend */
            || s == 0x959b8c3f /* authorizeOperator */ || s == 0xcae9ca51 /* approveAndCall */
            || s == 0x4000aea0 /* transferAndCall */ || s == 0xb753a98c /* push */
            || s == 0xf2d5d56b /* pull */
            || s == 0xbb35783b /* move */ || s == 0xa22cb465 /* setApprovalForAll */
            || s == 0x42842e0e /* safeTransferFrom(address,address,uint256) */
            || s == 0xb88d4fde /* safeTransferFrom(address,address,uint256,bytes) */
            || s == 0xf242432a /* safeTransferFrom(address,address,uint256,uint256,bytes) */
            || s == 0x2eb2c2d6 /* safeBatchTransferFrom */ || s == 0x1296ee62 /* transferAndCall(address,uint256) */
            || s == 0x3177029f /* approveAndCall(address,uint256) */
            || s == 0xd8fbe994 /* transferFromAndCall(address,address,uint256) */
            || s == 0xc1d34b89 /* transferFromAndCall(address,address,uint256,bytes) */
            || s == 0xd73dd623; /* increaseApproval */
    }

    /// @notice Session `id` of `account` under its current salt.
    function sessionView(Layout storage l, address account, uint32 id)
        internal
        view
        returns (ISakSessions.SessionView memory)
    {
        (uint64 salt, uint32 nextId) = saltAndNextId(l.accounts[account]);
        SessionRecord memory s;
        if (id <= nextId) s = l.sessions[sessionKey(salt, id)][account];
        return ISakSessions.SessionView({
            signer: s.signer,
            validAfter: s.validAfter,
            validUntil: s.validUntil,
            // Views may read the clock (validation never calls them).
            // forge-lint: disable-next-line(block-timestamp)
            active: s.signer != address(0) && block.timestamp <= s.validUntil
        });
    }

    /// @notice Spend state of session `id` of `account` for `token` (address(0): native ETH).
    function spendView(Layout storage l, address account, uint32 id, address token)
        internal
        view
        returns (ISakSessions.SpendView memory)
    {
        bytes32 sKey = sessionKey(l.accounts[account].salt, id);
        TokenRecord memory t = l.tokens[tokenKey(sKey, token)][account];
        return ISakSessions.SpendView({
            allowance: t.allowance, spent: t.spent, window: t.window, period: t.period
        });
    }

    /// @notice Gas and operation counters of session `id` of `account`.
    function usageView(Layout storage l, address account, uint32 id)
        internal
        view
        returns (ISakSessions.UsageView memory)
    {
        Counters memory c = l.counters[sessionKey(l.accounts[account].salt, id)][account];
        return ISakSessions.UsageView({
            gasSpent: uint80(c.gasSpentGwei) * uint80(GWEI),
            gasWindow: c.gasWindow,
            opsUsed: c.opsUsed
        });
    }

    // ---------------------------------------------------------------------------------------
    // Authorisation
    // ---------------------------------------------------------------------------------------

    /// @notice Validates a session-signed user operation and charges its spend; returns the
    ///         ERC-4337 validation data (signature result and the validity window). Reverts
    ///         with a policy error when the operation is outside the policy.
    function validateUserOp(
        Layout storage l,
        PackedUserOperation calldata userOp,
        bytes32 userOpHash,
        Ctx memory ctx
    ) internal returns (uint256) {
        // A session never deploys or initialises its account: at most the 20-byte 0x7702 marker
        // (a delegated EOA), whose data part would make the EntryPoint's SenderCreator call the
        // account with bytes of the session key's choosing before this validation runs.
        // (The length word of `initCode`, the struct's third field, read directly: the
        // EntryPoint's ABI encoding of the struct is canonical, and this costs a tenth of
        // Solidity's checked access.)
        uint256 initCodeLength;
        assembly ("memory-safe") {
            initCodeLength := calldataload(add(userOp, calldataload(add(userOp, 0x40))))
        }
        if (initCodeLength > 20) revert ISakSessions.SessionInitCode();
        bytes calldata sig = userOp.signature;
        (uint32 id, uint40 clock, uint40 deadline) = parseSessionSignature(sig);
        checkNonceKey(userOp.nonce, id, ctx);
        if (deadline < clock) revert ISakSessions.DeadlineBeforeClock(clock, deadline);
        Execution[] calldata calls = decodeExecuteBatch(userOp.callData);
        address paymaster = _paymaster(userOp);
        (uint256 gasCost, uint256 maxFeePerGas, uint256 preVerificationGas) = paymaster
            == address(0)
            ? (_prefund(userOp), ERC4337Utils.maxFeePerGas(userOp), userOp.preVerificationGas)
            : (0, 0, 0);
        (address signer, uint48 validAfter, uint48 validUntil) =
            authorize(l, id, calls, clock, gasCost, maxFeePerGas, preVerificationGas, ctx);
        if (paymaster != address(0)) _checkPaymaster(l, id, paymaster, ctx.account);
        bytes32 digest = sessionDigest(userOpHash, id, clock, deadline);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, sig[15:]);
        bool sigOk = err == ECDSA.RecoverError.NoError && recovered == signer;
        // The signer's deadline ends the operation's life: past it the EntryPoint refuses it
        // (AA22), so an operation whose fate is unknown becomes certainly void.
        if (deadline < validUntil) validUntil = deadline;
        // The operation must run inside the charged period, never in the one before. EntryPoint
        // v0.8 admits it when `validAfter < now`, v0.7 when `validAfter <= now`: on v0.8 one
        // second less makes the period's first second usable; where the EntryPoint is unknown
        // (the module) the period's start as is holds on both (on v0.8 the first second of a
        // period is then unusable, never an earlier one).
        if (ctx.entryPointV08 && validAfter != 0) --validAfter;
        return ERC4337Utils.packValidationData(sigOk, validAfter, validUntil);
    }

    /// @notice What the session key signs: the EIP-712 digest of `SakSessionOp(userOpHash, id,
    ///         clock, deadline)` under {SESSION_DOMAIN_SEPARATOR}. The user operation hash binds
    ///         chain, EntryPoint, account and nonce; the rest is the envelope outside it. The
    ///         domain keeps the digest from meaning anything else the key might sign.
    function sessionDigest(bytes32 userOpHash, uint32 id, uint40 clock, uint40 deadline)
        internal
        pure
        returns (bytes32 digest)
    {
        // keccak256(0x1901 ‖ domain ‖ keccak256(abi.encode(typehash, ...))), without allocating.
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, SESSION_OP_TYPEHASH)
            mstore(add(m, 0x20), userOpHash)
            mstore(add(m, 0x40), and(id, 0xffffffff))
            mstore(add(m, 0x60), and(clock, 0xffffffffff))
            mstore(add(m, 0x80), and(deadline, 0xffffffffff))
            let structHash := keccak256(m, 0xa0)
            mstore(m, shl(240, 0x1901))
            mstore(add(m, 0x02), SESSION_DOMAIN_SEPARATOR)
            mstore(add(m, 0x22), structHash)
            digest := keccak256(m, 0x42)
        }
    }

    /// @notice Splits a session signature; reverts unless it is exactly 80 bytes with the tag.
    function parseSessionSignature(bytes calldata sig)
        internal
        pure
        returns (uint32 id, uint40 clock, uint40 deadline)
    {
        if (sig.length != SESSION_SIGNATURE_LENGTH || uint8(sig[0]) != SESSION_SIGNATURE_TAG) {
            revert ISakSessions.MalformedSessionSignature();
        }
        id = uint32(bytes4(sig[1:5]));
        clock = uint40(bytes5(sig[5:10]));
        deadline = uint40(bytes5(sig[10:15]));
    }

    /// @notice Refuses a session operation outside its own nonce lanes. On sak's accounts the
    ///         nonce is {SESSION_NONCE_TAG} ‖ id ‖ lane ‖ sequence (the owner's operations
    ///         refuse the tag). On a modular account the key's top 160 bits route validation to
    ///         the validator (the account checks them), so the 32 bits below hold the id:
    ///         validator ‖ id ‖ sequence. Either way a session signs only in its own lanes and
    ///         cannot take a nonce the owner or another session has signed for.
    function checkNonceKey(uint256 nonce, uint32 id, Ctx memory ctx) internal pure {
        bool ok = ctx.holder == ctx.account
            ? nonce >> 192 == (uint256(SESSION_NONCE_TAG) << 32) | id
            : uint32(nonce >> 64) == id;
        // forge-lint: disable-next-line(unsafe-typecast) the key is the nonce's top 192 bits
        if (!ok) revert ISakSessions.SessionNonceKey(uint192(nonce >> 64));
    }

    /// @notice Whether `nonce` is in a session's lanes on sak's own accounts.
    function isSessionNonce(uint256 nonce) internal pure returns (bool) {
        return nonce >> 224 == SESSION_NONCE_TAG;
    }

    /// @notice The calls of `execute(BATCH_MODE, abi.encode(Execution[]))`, decoded from the
    ///         same offsets the account's `execute` will read them from. Anything else reverts.
    function decodeExecuteBatch(bytes calldata callData)
        internal
        pure
        returns (Execution[] calldata calls)
    {
        if (callData.length < 4 + 64 || bytes4(callData[:4]) != EXECUTE) {
            revert ISakSessions.SessionExecutionMode(bytes32(0));
        }
        bytes calldata args = callData[4:];
        bytes32 mode = bytes32(args[:32]);
        if (mode != BATCH_MODE) revert ISakSessions.SessionExecutionMode(mode);
        uint256 offset = uint256(bytes32(args[32:64]));
        uint256 length = uint256(bytes32(args[offset:offset + 32]));
        return decodeBatch(args[offset + 32:offset + 32 + length]);
    }

    /// @notice `abi.encode(Execution[])` decoded strictly: every element, its fields and its
    ///         call data lie inside `batch`, and there is at least one call. ERC7579Utils bounds
    ///         only the array head, so an element could otherwise be read from bytes after the
    ///         batch (in validation: the rest of the user operation), which the signature over
    ///         the batch does not cover and which execution may not see the same way.
    function decodeBatch(bytes calldata batch) internal pure returns (Execution[] calldata calls) {
        calls = ERC7579Utils.decodeBatch(batch);
        if (calls.length == 0) revert ISakSessions.EmptyBatch();
        bool outside;
        assembly ("memory-safe") {
            let end := add(batch.offset, batch.length)
            let base := calls.offset // element offsets are relative to the first pointer
            // ERC7579Utils checked base + 32 * length <= end, so `room` does not underflow.
            let room := sub(end, base)
            for { let i := 0 } lt(i, calls.length) { i := add(i, 1) } {
                let o := calldataload(add(base, shl(5, i)))
                // The element's three head words (target, value, callData offset) fit.
                if or(lt(room, 0x60), gt(o, sub(room, 0x60))) {
                    outside := 1
                    break
                }
                let elem := add(base, o)
                let left := sub(end, elem) // >= 0x60
                // Its call data: a length word, then that many bytes, all before `end`.
                let c := calldataload(add(elem, 0x40))
                if gt(c, sub(left, 0x20)) {
                    outside := 1
                    break
                }
                if gt(calldataload(add(elem, c)), sub(left, add(c, 0x20))) {
                    outside := 1
                    break
                }
            }
        }
        if (outside) revert ERC7579Utils.ERC7579DecodingError();
    }

    /// @notice The policy check shared by every path: scope, spend, gas, op count. Charges
    ///         against the period containing `clock` and returns the session's signer and the
    ///         window in which the charge is valid.
    /// @param gasCost Wei of the account's ETH this operation may spend on gas: its prefund
    ///        (0 if sponsored or relayed, and then the two fields below are 0 too).
    /// @param maxFeePerGas The operation's `maxFeePerGas`, bound by the session's cap.
    /// @param preVerificationGas The operation's `preVerificationGas`, bound likewise.
    function authorize(
        Layout storage l,
        uint32 id,
        Execution[] calldata calls,
        uint40 clock,
        uint256 gasCost,
        uint256 maxFeePerGas,
        uint256 preVerificationGas,
        Ctx memory ctx
    ) internal returns (address signer, uint48 validAfter, uint48 validUntil) {
        (uint64 salt, uint32 nextId) = saltAndNextId(l.accounts[ctx.account]);
        bytes32 sKey = sessionKey(salt, id);
        SessionRecord memory s = l.sessions[sKey][ctx.account];
        // Only ids the account has issued: a record under an id past the counter was written by
        // other code (an earlier EIP-7702 delegate), never by a grant.
        if (s.signer == address(0) || id > nextId) revert ISakSessions.SessionNotActive(id);
        if (clock < s.validAfter || clock > s.validUntil) {
            revert ISakSessions.ClockOutsideSession(clock, s.validAfter, s.validUntil);
        }
        validAfter = s.validAfter;
        validUntil = s.validUntil;

        Batch memory batch =
            Batch({adapter: adapterOf(ctx), funded: new address[](calls.length), open: 0});
        for (uint256 i; i < calls.length; ++i) {
            (uint48 after_, uint48 until_) =
                _authorizeCall(l, sKey, calls[i], s.validAfter, clock, ctx, batch);
            if (after_ > validAfter) validAfter = after_;
            if (until_ < validUntil) validUntil = until_;
        }
        // What the batch moves into the adapter goes back to the account within the operation:
        // a later `run` lists it (and returns what its target leaves). Nothing of the account
        // waits in the adapter for another operation, or another session, to use uncharged.
        for (uint256 i; i < batch.open; ++i) {
            if (batch.funded[i] != address(0)) {
                revert ISakSessions.AdapterFundingUnlisted(batch.funded[i]);
            }
        }

        if (s.flags & HAS_COUNTERS != 0) {
            Counters storage c = l.counters[sKey][ctx.account];
            if (c.maxOps != 0) {
                if (c.opsUsed >= c.maxOps) revert ISakSessions.OperationLimitReached(c.maxOps);
                c.opsUsed += 1;
            }
            if (gasCost != 0) {
                if (s.flags & GAS_SPONSORED_ONLY != 0) {
                    revert ISakSessions.GasBudgetExceeded(gasCost, 0);
                }
                uint256 cap = c.maxFeePerGas;
                if (cap != 0 && maxFeePerGas > cap) {
                    revert ISakSessions.FeePerGasAboveCap(maxFeePerGas, cap);
                }
                cap = c.maxPreVerificationGas;
                if (cap != 0 && preVerificationGas > cap) {
                    revert ISakSessions.PreVerificationGasAboveCap(preVerificationGas, cap);
                }
            }
            if (gasCost != 0 && s.flags & GAS_UNLIMITED == 0) {
                uint256 k = (clock - s.validAfter) / c.gasPeriod;
                if (k < c.gasWindow) revert ISakSessions.StaleGasWindow(k, c.gasWindow);
                uint256 spent = k == c.gasWindow ? c.gasSpentGwei : 0;
                uint256 remaining = c.gasBudgetGwei - spent;
                // Charged in whole gwei, rounded up: cost > remaining * 1 gwei exactly when
                // the rounded-up cost exceeds what remains.
                if (gasCost > remaining * GWEI) {
                    revert ISakSessions.GasBudgetExceeded(gasCost, remaining * GWEI);
                }
                // Casts fit: spent + cost <= gasBudgetGwei (uint48); k < 2^24 (grant checks
                // the span).
                // forge-lint: disable-next-line(unsafe-typecast)
                c.gasSpentGwei = uint48(spent + (gasCost + GWEI - 1) / GWEI);
                // forge-lint: disable-next-line(unsafe-typecast)
                c.gasWindow = uint24(k);
                (uint48 after_, uint48 until_) = _window(s.validAfter, k, c.gasPeriod);
                if (after_ > validAfter) validAfter = after_;
                if (until_ < validUntil) validUntil = until_;
            }
        } else if (gasCost != 0 && s.flags & GAS_SPONSORED_ONLY != 0) {
            revert ISakSessions.GasBudgetExceeded(gasCost, 0);
        }
        signer = s.signer;
    }

    /// @dev The account's adapter, and the tokens the batch has moved into it that no later
    ///      `run` has listed yet (`open` entries, cleared to zero when listed).
    struct Batch {
        address adapter;
        address[] funded;
        uint256 open;
    }

    function _authorizeCall(
        Layout storage l,
        bytes32 sKey,
        Execution calldata call,
        uint40 anchor,
        uint40 clock,
        Ctx memory ctx,
        Batch memory batch
    ) private returns (uint48 validAfter, uint48 validUntil) {
        address target = call.target;
        address account = ctx.account;
        bytes calldata data = call.callData;
        validUntil = type(uint48).max;
        if (_privileged(target, ctx)) revert ISakSessions.ForbiddenTarget(target);
        bytes4 selector = data.length < 4 ? bytes4(0) : bytes4(data[:4]);

        if (selector == TRANSFER && data.length == 68) {
            TokenRecord storage t = l.tokens[tokenKey(sKey, target)][account];
            uint8 flags = t.flags;
            // Exactly (address, uint256), no value; a token without a cap never leaves (and
            // address(0) is native ETH's cap, not a token).
            if (flags == 0 || call.value != 0 || target == address(0)) {
                revert ISakSessions.CallNotPermitted(target, selector);
            }
            if (bytes32(data[4:36]) == bytes32(uint256(uint160(batch.adapter)))) {
                batch.funded[batch.open++] = target;
            } else if (flags & TOKEN_TRANSFER == 0) {
                revert ISakSessions.RecipientNotPermitted(target, address(bytes20(data[16:36])));
            }
            return _charge(t, target, uint256(bytes32(data[36:68])), anchor, clock);
        }

        address adapter = batch.adapter;
        if (target != adapter || selector != RUN) {
            // A permitted call made by the account itself would act with its allowances.
            if (l.permissions[permissionKey(sKey, target, selector)][account].exists) {
                revert ISakSessions.CallNotThroughAdapter(target, selector);
            }
            revert ISakSessions.CallNotPermitted(target, selector);
        }

        (address inner, bytes calldata innerData, bytes calldata tokens) = decodeRun(data);
        if (_privileged(inner, ctx) || inner == adapter) {
            revert ISakSessions.ForbiddenTarget(inner);
        }
        _listed(batch, tokens);
        if (innerData.length != 0 && innerData.length < 4) {
            revert ISakSessions.CallNotPermitted(inner, bytes4(0));
        }
        bytes4 innerSelector = innerData.length == 0 ? bytes4(0) : bytes4(innerData[:4]);
        // Selector 0 stands for a plain ETH send (empty calldata): never for data that merely
        // starts with four zero bytes (a call into the target's fallback).
        if (innerSelector == bytes4(0) && innerData.length != 0) {
            revert ISakSessions.CallNotPermitted(inner, innerSelector);
        }
        bytes32 pKey = permissionKey(sKey, inner, innerSelector);
        PermissionRecord memory p = l.permissions[pKey][account];
        if (!p.exists) revert ISakSessions.CallNotPermitted(inner, innerSelector);
        for (uint256 i; i < p.conditionCount; ++i) {
            _checkCondition(l, indexKey(pKey, i), inner, innerSelector, innerData, account);
        }
        if (call.value != 0) {
            if (!p.allowValue) {
                revert ISakSessions.ValueNotPermitted(inner, innerSelector, call.value);
            }
            TokenRecord storage native = l.tokens[tokenKey(sKey, address(0))][account];
            if (native.flags == 0) revert ISakSessions.SpendCapExceeded(address(0), call.value, 0);
            return _charge(native, address(0), call.value, anchor, clock);
        }
    }

    /// @notice The inner call and the token list of `run(address target, bytes data, address[]
    ///         tokens)` calldata, which must be in the canonical ABI encoding (offsets 0x60 and
    ///         right after `data`, at most 64 tokens, nothing after them), so the adapter's
    ///         decoder reads exactly what is checked here. `tokens` comes back as its raw
    ///         32-byte words: the adapter only approves and returns its own balances of them.
    function decodeRun(bytes calldata data)
        internal
        pure
        returns (address target, bytes calldata inner, bytes calldata tokens)
    {
        // selector ‖ target ‖ 0x60 ‖ tokensOffset ‖ len ‖ data (padded) ‖ n ‖ tokens
        if (data.length < 4 + 0xa0) revert ISakSessions.MalformedAdapterCall();
        uint256 word = uint256(bytes32(data[4:36]));
        uint256 len = uint256(bytes32(data[100:132]));
        if (word >> 160 != 0 || uint256(bytes32(data[36:68])) != 0x60 || len > data.length) {
            revert ISakSessions.MalformedAdapterCall();
        }
        uint256 tokensOffset = 0x80 + ((len + 31) & ~uint256(31));
        if (uint256(bytes32(data[68:100])) != tokensOffset || data.length < 4 + tokensOffset + 32) {
            revert ISakSessions.MalformedAdapterCall();
        }
        uint256 n = uint256(bytes32(data[4 + tokensOffset:36 + tokensOffset]));
        if (n > 64 || data.length != 36 + tokensOffset + 32 * n) {
            revert ISakSessions.MalformedAdapterCall();
        }
        target = address(uint160(word));
        inner = data[132:132 + len];
        tokens = data[36 + tokensOffset:];
    }

    /// @dev Marks as listed every funded token whose address appears among `tokens` (32-byte
    ///      words; a word with dirty upper bits matches nothing, and the adapter's decoder
    ///      would refuse it anyway).
    function _listed(Batch memory batch, bytes calldata tokens) private pure {
        for (uint256 i; i < batch.open; ++i) {
            bytes32 funded = bytes32(uint256(uint160(batch.funded[i])));
            if (funded == 0) continue;
            for (uint256 j; j < tokens.length; j += 32) {
                if (bytes32(tokens[j:j + 32]) == funded) {
                    batch.funded[i] = address(0);
                    break;
                }
            }
        }
    }

    function _checkCondition(
        Layout storage l,
        bytes32 cKey,
        address target,
        bytes4 selector,
        bytes calldata data,
        address account
    ) private view {
        ConditionRecord memory c = l.conditions[cKey][account];
        uint256 start = 4 + uint256(c.argIndex) * 32;
        if (data.length < start + 32) {
            revert ISakSessions.ArgumentConditionFailed(target, selector, c.argIndex);
        }
        bytes32 arg = bytes32(data[start:start + 32]);
        bool ok;
        if (!_canonical(c.argType, arg)) {
            // ok stays false: a decoder that masks would read another value than the one checked
        } else if (c.op == ISakSessions.Op.EqAccount) {
            ok = arg == bytes32(uint256(uint160(account)));
        } else if (c.op == ISakSessions.Op.OneOf) {
            for (uint256 j; j < c.valueCount && !ok; ++j) {
                ok = arg == l.conditionValues[indexKey(cKey, j)][account];
            }
        } else {
            bytes32 value = l.conditionValues[indexKey(cKey, 0)][account];
            if (c.op == ISakSessions.Op.Eq) {
                ok = arg == value;
            } else {
                // Lte/Gte: `_typeFits` admitted only uintN and intN; an intN compares as signed.
                bool below = c.argType & TYPE_SIGNED != 0
                    ? int256(uint256(arg)) < int256(uint256(value))
                    : uint256(arg) < uint256(value);
                ok = arg == value || (c.op == ISakSessions.Op.Lte) == below;
            }
        }
        if (!ok) revert ISakSessions.ArgumentConditionFailed(target, selector, c.argIndex);
    }

    /// @dev Whether `argType` names a type (see `ISakSessions.ArgCondition`) that `op` may use.
    function _typeFits(uint8 argType, ISakSessions.Op op) private pure returns (bool) {
        uint8 width = argType & 0x3f;
        bool number = width != 0 && width <= 32 && argType & 0x80 == 0;
        if (op == ISakSessions.Op.Lte || op == ISakSessions.Op.Gte) return number;
        if (op == ISakSessions.Op.EqAccount) return argType == 0 || argType == TYPE_ADDRESS;
        return argType == 0 || number || argType == TYPE_ADDRESS || argType == TYPE_BOOL;
    }

    /// @dev Whether `word` is the canonical ABI encoding of a value of `argType` (a raw word
    ///      always is). Only called with types `_typeFits` admitted at grant.
    function _canonical(uint8 argType, bytes32 word) private pure returns (bool) {
        if (argType == 0) return true;
        if (argType == TYPE_BOOL) return uint256(word) <= 1;
        uint256 width = argType & 0x3f;
        if (argType & TYPE_SIGNED != 0) {
            bytes32 extended;
            assembly ("memory-safe") {
                extended := signextend(sub(width, 1), word)
            }
            return extended == word;
        }
        return width == 32 || uint256(word) >> (width * 8) == 0;
    }

    /// @dev Charges `amount` to the period containing `clock`; returns that period's bounds.
    function _charge(
        TokenRecord storage t,
        address token,
        uint256 amount,
        uint40 anchor,
        uint40 clock
    ) private returns (uint48, uint48) {
        uint256 k = (clock - anchor) / t.period;
        uint256 current = t.window;
        if (k < current) revert ISakSessions.StaleWindow(token, k, current);
        uint256 spent = k == current ? t.spent : 0;
        uint256 remaining = t.allowance - spent;
        if (amount > remaining) revert ISakSessions.SpendCapExceeded(token, amount, remaining);
        // Casts fit: spent + amount <= allowance (uint96); k < 2^24 (grant checks the span).
        // forge-lint: disable-next-line(unsafe-typecast)
        t.spent = uint96(spent + amount);
        // forge-lint: disable-next-line(unsafe-typecast)
        t.window = uint24(k);
        return _window(anchor, k, t.period);
    }

    /// @dev Inclusive bounds of period `k` after `anchor`.
    function _window(uint40 anchor, uint256 k, uint256 period)
        private
        pure
        returns (uint48, uint48)
    {
        uint256 start = anchor + k * period;
        // Fits: start <= validUntil < 2^40 and period < 2^32.
        // forge-lint: disable-next-line(unsafe-typecast)
        return (uint48(start), uint48(start + period - 1));
    }

    /// @dev The paymaster the EntryPoint will call for this operation: the first 20 bytes of
    ///      `paymasterAndData`; address(0) when they are zero or absent (the account pays).
    function _paymaster(PackedUserOperation calldata userOp) private pure returns (address) {
        if (userOp.paymasterAndData.length < 20) return address(0);
        return address(bytes20(userOp.paymasterAndData[:20]));
    }

    /// @dev A sponsored operation is not charged to the gas budget, so only the session's own
    ///      paymaster may sponsor it: any other could be paid back from the account outside
    ///      every cap (a token paymaster pulling through an earlier allowance).
    function _checkPaymaster(Layout storage l, uint32 id, address paymaster, address account)
        private
        view
    {
        bytes32 sKey = sessionKey(l.accounts[account].salt, id);
        if (l.paymasters[sKey][account] != paymaster) {
            revert ISakSessions.PaymasterNotPermitted(paymaster);
        }
    }

    /// @dev The most this operation can take from the account for gas when no paymaster pays:
    ///      the EntryPoint's required prefund.
    function _prefund(PackedUserOperation calldata userOp) private pure returns (uint256) {
        return (ERC4337Utils.verificationGasLimit(userOp)
                + ERC4337Utils.callGasLimit(userOp)
                + ERC4337Utils.paymasterVerificationGasLimit(userOp)
                + ERC4337Utils.paymasterPostOpGasLimit(userOp)
                + userOp.preVerificationGas) * ERC4337Utils.maxFeePerGas(userOp);
    }
}
