// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ISakSessions
/// @notice The session-key policy of a sak account: types, errors and events. The Rust crates
///         bind these through the compiled ABI and use the same error names.
///
/// Policy model (v1). A session lets `signer` act for the account:
/// - only within `[validAfter, validUntil]` (inclusive, unix seconds);
/// - only through the listed calls: `(target, selector)` pairs with conditions on static
///   arguments, made through the account's {SessionAdapter} (never by the account itself);
///   native value only where `allowValue` is set;
/// - moving tokens only through `spendLimits`: per token (address(0) = native ETH) an
///   `allowance` in base units per `period` seconds. An ERC-20 limit permits `transfer` of that
///   token to the account's adapter (to fund an adapter call), and to anyone with
///   `allowTransfer`; every unit is charged when it leaves the account. Sessions never approve;
///   a token without a limit cannot leave the account through a session at all;
/// - paying at most `gasBudget` wei of the account's ETH for gas per `gasPeriod` (0 = the
///   session may only run operations sponsored by its own `paymaster`), and only for
///   operations priced at most `maxFeePerGas` with at most `maxPreVerificationGas` (so a key
///   that bundles its own operations cannot turn the budget into fees it collects);
/// - having its operations sponsored only by `paymaster` (address(0) = by none);
/// - at most `maxOps` operations in total (0 = unlimited).
/// Periods are fixed windows aligned to `validAfter`; unused allowance does not carry over. The
/// owner can revoke one session or all at once (a fresh salt, O(1)).
interface ISakSessions {
    /// @notice How an argument is compared. `EqAccount` needs no value: the argument must be
    ///         the account's own address (for example a swap's recipient).
    enum Op {
        Eq,
        Lte,
        Gte,
        OneOf,
        EqAccount
    }

    /// @notice A condition on the `argIndex`-th 32-byte word after the selector (a static
    ///         parameter), read as the ABI type `argType`:
    ///         - 0: a raw word (`Eq`, `OneOf`, `EqAccount` only);
    ///         - 1..32: uintN of that many bytes; `0x40 | bytes`: intN; `0x94`: address;
    ///           `0x81`: bool.
    ///         A typed argument must be encoded canonically (a uintN's or address's high bits
    ///         zero, an intN sign-extended, a bool 0 or 1) or the condition fails, so a decoder
    ///         that masks dirty bits never reads a value the condition did not see. `Lte` and
    ///         `Gte` need a uintN or intN and compare an intN as signed. Every value must itself
    ///         be canonical for the type.
    struct ArgCondition {
        uint8 argIndex;
        Op op;
        uint8 argType;
        bytes32[] values;
    }

    /// @notice One permitted call shape.
    struct CallPermission {
        address target;
        bytes4 selector;
        bool allowValue;
        ArgCondition[] conditions;
    }

    /// @notice A per-period cap on what leaves the account.
    struct SpendLimit {
        /// @dev ERC-20 token, or address(0) for native ETH.
        address token;
        /// @dev Base units per period; at most 2^96 - 1.
        uint96 allowance;
        /// @dev Seconds; at least 60.
        uint32 period;
        /// @dev ERC-20 only: `transfer(to, amount)` to any recipient, not only to the adapter.
        bool allowTransfer;
    }

    /// @notice Everything a session is allowed to do.
    struct SessionConfig {
        address signer;
        /// @dev Inclusive bounds, unix seconds. validAfter < validUntil < 2^40.
        uint40 validAfter;
        uint40 validUntil;
        CallPermission[] permissions;
        SpendLimit[] spendLimits;
        /// @dev Wei of the account's ETH per gasPeriod (the EntryPoint's required prefund of
        ///      each operation the account pays for, charged in whole gwei, rounded up); 0 =
        ///      sponsored operations only, i.e. only through `paymaster`; type(uint80).max =
        ///      unlimited. A finite budget is a whole number of gwei below 2^48 gwei.
        uint80 gasBudget;
        /// @dev Seconds; at least 60 when gasBudget is finite and non-zero, else ignored.
        uint32 gasPeriod;
        /// @dev 0 = unlimited.
        uint24 maxOps;
        /// @dev Highest `maxFeePerGas` (wei) of an operation the account pays for; 0 = no cap.
        ///      Bounds what a self-bundling key collects as beneficiary per unit of gas.
        uint40 maxFeePerGas;
        /// @dev Highest `preVerificationGas` of an operation the account pays for; 0 = no cap.
        ///      That gas is charged in full whatever the bundle used, so without a bound a
        ///      self-bundling key could collect the whole budget through it.
        uint24 maxPreVerificationGas;
        /// @dev The one paymaster that may sponsor this session's operations; address(0) =
        ///      none: every operation pays its gas from the account within gasBudget. A
        ///      sponsored operation is not charged to gasBudget; whatever the paymaster takes
        ///      in return (for example tokens through an allowance) is the owner's agreement
        ///      with it.
        address paymaster;
    }

    /// @notice A session's state as stored.
    struct SessionView {
        address signer;
        uint40 validAfter;
        uint40 validUntil;
        bool active;
    }

    /// @notice A spend limit's state as stored. `window` is the period index of `spent`.
    struct SpendView {
        uint96 allowance;
        uint96 spent;
        uint24 window;
        uint32 period;
    }

    /// @notice A session's gas and operation counters as stored (zero when the session has
    ///         neither a finite gas budget nor an operation limit). `gasWindow` is the gas
    ///         period index of `gasSpent`, wei charged at validation (the full prefund, rounded
    ///         up to whole gwei).
    struct UsageView {
        uint80 gasSpent;
        uint24 gasWindow;
        uint24 opsUsed;
    }

    event SessionGranted(uint32 indexed id, address indexed signer, SessionConfig config);
    event SessionRevoked(uint32 indexed id);
    /// @param salt The account's new revocation salt (every record keyed under the old one is
    ///        out of reach).
    event AllSessionsRevoked(uint64 salt);
    event SessionKeyRotated(uint32 indexed id, address indexed signer);

    // Configuration errors (grant).
    error InvalidTimeBounds(uint40 validAfter, uint40 validUntil);
    error InvalidSigner();
    error InvalidPeriod(uint32 period);
    error ZeroAllowance(address token);
    error InvalidSpendLimit(address token);
    error DuplicateSpendLimit(address token);
    error DuplicatePermission(address target, bytes4 selector);
    error ForbiddenTarget(address target);
    error TokenSelectorNeedsSpendLimit(address target, bytes4 selector);
    error InvalidCondition(address target, bytes4 selector, uint8 argIndex);
    error TooManyEntries();
    /// @notice A finite gas budget that is not a whole number of gwei, or is 2^48 gwei or more.
    error InvalidGasBudget(uint80 gasBudget);

    // Authorisation errors (an operation refused by policy).
    error SessionNotActive(uint32 id);
    error MalformedSessionSignature();
    error SessionExecutionMode(bytes32 mode);
    /// @notice A session operation with an `initCode` beyond the bare EIP-7702 marker: the
    ///         EntryPoint would have the account called with that data during validation.
    error SessionInitCode();
    /// @notice A session operation's EntryPoint nonce key is not the session's own lane
    ///         (see {SessionLib-checkNonceKey}): a session never takes the owner's or another
    ///         session's nonces, so it cannot void their pending operations.
    error SessionNonceKey(uint192 key);
    /// @notice The signed deadline is before the signed clock claim.
    error DeadlineBeforeClock(uint40 clock, uint40 deadline);
    error EmptyBatch();
    error CallNotPermitted(address target, bytes4 selector);
    /// @notice A permitted call made by the account itself instead of through its adapter.
    error CallNotThroughAdapter(address target, bytes4 selector);
    /// @notice `transfer` of a capped token to someone other than the adapter, without
    ///         `allowTransfer`.
    error RecipientNotPermitted(address token, address to);
    /// @notice A `run` call to the adapter that is not in the canonical ABI encoding.
    error MalformedAdapterCall();
    /// @notice The batch moves `token` into the adapter but no later `run` of the batch lists
    ///         it (to use it, and return what is left to the account).
    error AdapterFundingUnlisted(address token);
    error ValueNotPermitted(address target, bytes4 selector, uint256 value);
    error ArgumentConditionFailed(address target, bytes4 selector, uint8 argIndex);
    error SpendCapExceeded(address token, uint256 requested, uint256 remaining);
    error GasBudgetExceeded(uint256 requested, uint256 remaining);
    /// @notice The account pays for an operation priced above the session's `maxFeePerGas`.
    error FeePerGasAboveCap(uint256 maxFeePerGas, uint256 cap);
    /// @notice The account pays for an operation whose `preVerificationGas` is above the
    ///         session's `maxPreVerificationGas`.
    error PreVerificationGasAboveCap(uint256 preVerificationGas, uint256 cap);
    error OperationLimitReached(uint24 maxOps);
    error StaleWindow(address token, uint256 claimedWindow, uint256 currentWindow);
    error StaleGasWindow(uint256 claimedWindow, uint256 currentWindow);
    error PaymasterNotPermitted(address paymaster);
    error ClockOutsideSession(uint40 clock, uint40 validAfter, uint40 validUntil);

    /// @notice Grants a session; only the owner. Returns its id (never reused).
    function grantSession(SessionConfig calldata config) external returns (uint32 id);

    /// @notice Revokes one session, effective for operations already signed; only the owner.
    function revokeSession(uint32 id) external;

    /// @notice Revokes every session at once (O(1)); only the owner.
    function revokeAllSessions() external;

    /// @notice Gives session `id` a new key: the same session (policy, counters, expiry), so
    ///         the new key inherits what the old one spent this period; only the owner.
    function rotateSessionKey(uint32 id, address signer) external;

    /// @notice The account's {SessionAdapter}, through which every session call but a capped
    ///         `transfer` goes.
    function sessionAdapter() external view returns (address);

    /// @notice The stored state of session `id` under the current salt.
    function getSession(uint32 id) external view returns (SessionView memory);

    /// @notice The stored spend state of session `id` for `token` (address(0) = native ETH).
    function getSpend(uint32 id, address token) external view returns (SpendView memory);

    /// @notice The gas and operation counters of session `id` under the current salt.
    function getUsage(uint32 id) external view returns (UsageView memory);
}
