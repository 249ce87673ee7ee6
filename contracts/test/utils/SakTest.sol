// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CanonicalDeployer} from "./Canonical.sol";
import {SessionEnvelope} from "./SessionEnvelope.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../../src/SakAccount.sol";
import {SakAccountFactory} from "../../src/SakAccountFactory.sol";
import {SessionAdapter} from "../../src/SessionAdapter.sol";
import {MockERC20} from "../../src/mocks/MockERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice The parts of EntryPoint v0.8 that OpenZeppelin's IEntryPoint does not declare.
interface IEntryPointV08 is IEntryPoint {
    function getUserOpHash(PackedUserOperation calldata userOp) external view returns (bytes32);
}

/// @notice Shared fixture: EntryPoint v0.8 at its canonical address, a factory-made account
///         owned by `owner`, a token, and helpers to build, sign and submit user operations.
abstract contract SakTest is CanonicalDeployer {
    bytes32 internal constant BATCH_MODE = bytes32(uint256(1) << 248);
    uint256 internal constant DAY = 86_400;
    uint40 internal constant START = 1_800_000_000;

    /// @dev `ISakSessions.ArgCondition.argType` codes, written out independently of SessionLib.
    uint8 internal constant UINT256 = 32;
    uint8 internal constant INT256 = 0x40 | 32;
    uint8 internal constant INT16 = 0x40 | 2;
    uint8 internal constant INT8 = 0x40 | 1;
    uint8 internal constant ADDRESS = 0x94;
    uint8 internal constant BOOL = 0x81;

    IEntryPointV08 internal entryPoint;
    /// @dev The adapter factory every account form and the module are built with.
    SessionAdapter internal adapters;
    SakAccountFactory internal factory;
    SakAccount internal account;
    MockERC20 internal usd;

    address internal owner;
    uint256 internal ownerKey;
    address internal agent;
    uint256 internal agentKey;
    address internal bundler = makeAddr("bundler");
    address internal alice = makeAddr("alice");

    function setUp() public virtual {
        vm.warp(START);
        entryPoint = IEntryPointV08(address(deployEntryPointV08()));
        adapters = new SessionAdapter();
        factory = new SakAccountFactory(new SakAccount(adapters));
        (owner, ownerKey) = makeAddrAndKey("owner");
        (agent, agentKey) = makeAddrAndKey("agent");
        account = factory.createAccount(owner, bytes32(0));
        vm.deal(address(account), 10 ether);
        usd = new MockERC20("Test USD", "tUSD", 6);
        usd.mint(address(account), 1_000_000e6);
    }

    // -------------------------------------------------------------------------------------
    // Policies
    // -------------------------------------------------------------------------------------

    /// @dev A session for `agent`: `usdPerDay` of tUSD by transfer (to anyone), one day at a
    ///      time, for 30 days from START, gas unlimited.
    function usdSession(uint96 usdPerDay)
        internal
        view
        returns (ISakSessions.SessionConfig memory c)
    {
        c.signer = agent;
        c.validAfter = START;
        c.validUntil = START + 30 days;
        c.spendLimits = new ISakSessions.SpendLimit[](1);
        c.spendLimits[0] = ISakSessions.SpendLimit({
            token: address(usd), allowance: usdPerDay, period: uint32(DAY), allowTransfer: true
        });
        c.gasBudget = type(uint80).max;
    }

    /// @dev A session for `agent` from START for 30 days, gas unlimited, permitting nothing yet.
    function agentSession() internal view returns (ISakSessions.SessionConfig memory c) {
        c.signer = agent;
        c.validAfter = START;
        c.validUntil = START + 30 days;
        c.gasBudget = type(uint80).max;
    }

    /// @dev One permission on (`target`, `selector`) without conditions.
    function permission(address target, bytes4 selector, bool allowValue)
        internal
        pure
        returns (ISakSessions.CallPermission memory p)
    {
        p.target = target;
        p.selector = selector;
        p.allowValue = allowValue;
    }

    function grant(ISakSessions.SessionConfig memory c) internal returns (uint32 id) {
        vm.prank(owner);
        id = account.grantSession(c);
    }

    // -------------------------------------------------------------------------------------
    // Calls and operations
    // -------------------------------------------------------------------------------------

    function one(address target, uint256 value, bytes memory data)
        internal
        pure
        returns (Execution[] memory calls)
    {
        calls = new Execution[](1);
        calls[0] = Execution({target: target, value: value, callData: data});
    }

    function transferCall(address to, uint256 amount) internal view returns (Execution[] memory) {
        return one(address(usd), 0, abi.encodeCall(usd.transfer, (to, amount)));
    }

    /// @dev The batch element `adapter.run(target, data, tokens)` with `value`: how a session
    ///      calls anything but a capped token's `transfer`.
    function viaAdapter(
        address adapter,
        address target,
        uint256 value,
        bytes memory data,
        address[] memory tokens
    ) internal pure returns (Execution memory) {
        return Execution({
            target: adapter,
            value: value,
            callData: abi.encodeCall(SessionAdapter.run, (target, data, tokens))
        });
    }

    /// @dev One call to `target` through `account`'s adapter, returning no tokens.
    function call(address target, uint256 value, bytes memory data)
        internal
        view
        returns (Execution[] memory calls)
    {
        calls = new Execution[](1);
        calls[0] = routed(target, value, data);
    }

    /// @dev The batch element `account`'s adapter running `target` with `value` and `data`,
    ///      returning no tokens.
    function routed(address target, uint256 value, bytes memory data)
        internal
        view
        returns (Execution memory)
    {
        return viaAdapter(account.sessionAdapter(), target, value, data, new address[](0));
    }

    function two(Execution memory a, Execution memory b)
        internal
        pure
        returns (Execution[] memory calls)
    {
        calls = new Execution[](2);
        calls[0] = a;
        calls[1] = b;
    }

    /// @dev The batch element moving `amount` of `token` from the account to its adapter.
    function fund(address adapter, address token, uint256 amount)
        internal
        pure
        returns (Execution memory)
    {
        return Execution({
            target: token, value: 0, callData: abi.encodeCall(IERC20.transfer, (adapter, amount))
        });
    }

    function tokens1(address token) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = token;
    }

    function executeData(Execution[] memory calls) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("execute(bytes32,bytes)", BATCH_MODE, abi.encode(calls));
    }

    function userOp(bytes memory callData) internal view returns (PackedUserOperation memory op) {
        op.sender = address(account);
        op.nonce = entryPoint.getNonce(address(account), 0);
        op.callData = callData;
        op.accountGasLimits = bytes32((uint256(500_000) << 128) | 500_000);
        op.preVerificationGas = 50_000;
        op.gasFees = bytes32((uint256(1 gwei) << 128) | 2 gwei);
    }

    function signOwner(PackedUserOperation memory op) internal view {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ownerKey, entryPoint.getUserOpHash(op));
        op.signature = abi.encodePacked(r, s, v);
    }

    function signSession(PackedUserOperation memory op, uint32 id, uint40 clock) internal view {
        signSessionWith(op, id, clock, agentKey);
    }

    /// @dev Signs `op` for session `id` with no deadline of its own. An op still in the
    ///      owner's nonce key 0 moves to the session's lane 0 first.
    function signSessionWith(PackedUserOperation memory op, uint32 id, uint40 clock, uint256 key)
        internal
        view
    {
        signSessionUntil(op, id, clock, SessionEnvelope.NO_DEADLINE, key);
    }

    function signSessionUntil(
        PackedUserOperation memory op,
        uint32 id,
        uint40 clock,
        uint40 deadline,
        uint256 key
    ) internal view {
        if (op.nonce >> 64 == 0) {
            op.nonce = entryPoint.getNonce(op.sender, SessionEnvelope.nonceKey(id, 0));
        }
        bytes32 digest = SessionEnvelope.digest(entryPoint.getUserOpHash(op), id, clock, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        op.signature = SessionEnvelope.encode(id, clock, deadline, v, r, s);
    }

    /// @dev A session op for `calls`, signed with the clock claim "now".
    function sessionOp(uint32 id, Execution[] memory calls)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(calls));
        signSession(op, id, now_());
    }

    /// @dev The block timestamp. Under via-IR, `block.timestamp` may be read once and reused
    ///      across `vm.warp` calls; the cheatcode is always current.
    function now_() internal view returns (uint40) {
        return uint40(vm.getBlockTimestamp());
    }

    function submit(PackedUserOperation memory op) internal {
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = op;
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
    }

    /// @dev Calls the account's validateUserOp as the EntryPoint would, returning its result.
    function validate(PackedUserOperation memory op) internal returns (uint256) {
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        return account.validateUserOp(op, hash, 0);
    }

    function expectValidationRevert(bytes memory policyError) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IEntryPoint.FailedOpWithRevert.selector, 0, "AA23 reverted", policyError
            )
        );
    }

    /// @dev Expects the account's validateUserOp, called as the EntryPoint, to revert with
    ///      `policyError` (the error itself, not wrapped by the EntryPoint).
    function expectValidateRevert(PackedUserOperation memory op, bytes memory policyError)
        internal
    {
        bytes32 hash = entryPoint.getUserOpHash(op);
        vm.prank(address(entryPoint));
        vm.expectRevert(policyError);
        account.validateUserOp(op, hash, 0);
    }

    /// @dev Expects the EntryPoint to refuse `op` as outside its validity window (AA22).
    function expectNotDue(PackedUserOperation memory op) internal {
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = op;
        vm.expectRevert(
            abi.encodeWithSelector(IEntryPoint.FailedOp.selector, 0, "AA22 expired or not due")
        );
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
    }

    function sigFailed(uint256 validationData) internal pure returns (bool) {
        return uint160(validationData) == 1;
    }

    function validUntilOf(uint256 validationData) internal pure returns (uint48) {
        return uint48(validationData >> 160);
    }

    function validAfterOf(uint256 validationData) internal pure returns (uint48) {
        return uint48(validationData >> 208);
    }
}
