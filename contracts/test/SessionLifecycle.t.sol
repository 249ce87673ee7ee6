// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SakTest} from "./utils/SakTest.sol";
import {SessionEnvelope} from "./utils/SessionEnvelope.sol";
import {IEntryPoint, PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../src/SakAccount.sol";
import {SakAccountBase} from "../src/SakAccountBase.sol";

/// @notice Session lifetime: the validity window, revocation of one or all sessions, and the
///         stored state.
contract SessionLifecycleTest is SakTest {
    uint40 internal constant OPENS = START + 1 days;
    uint40 internal constant CLOSES = START + 1 days + 6 hours;

    /// @dev A session from OPENS to CLOSES: shorter than its one-day spend period, so the
    ///      session bounds (not the period) are the validity window.
    function windowSession() internal returns (uint32) {
        ISakSessions.SessionConfig memory c = usdSession(100e6);
        c.validAfter = OPENS;
        c.validUntil = CLOSES;
        return grant(c);
    }

    function opWithClock(uint32 id, uint40 clock)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(transferCall(alice, 1e6)));
        signSession(op, id, clock);
    }

    function notActive(uint32 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISakSessions.SessionNotActive.selector, id);
    }

    function revoke(uint32 id) internal {
        vm.prank(owner);
        account.revokeSession(id);
    }

    function revokeAll() internal {
        vm.prank(owner);
        account.revokeAllSessions();
    }

    // -------------------------------------------------------------------------------------
    // Validity window
    // -------------------------------------------------------------------------------------

    function testFuzz_validateUserOp_reverts_whenClockClaimBeforeValidAfter(uint40 clock) public {
        uint32 id = windowSession();
        clock = uint40(bound(clock, 0, OPENS - 1));
        expectValidateRevert(
            opWithClock(id, clock),
            abi.encodeWithSelector(ISakSessions.ClockOutsideSession.selector, clock, OPENS, CLOSES)
        );
    }

    function testFuzz_validateUserOp_reverts_whenClockClaimAfterValidUntil(uint40 clock) public {
        uint32 id = windowSession();
        clock = uint40(bound(clock, CLOSES + 1, type(uint40).max));
        expectValidateRevert(
            opWithClock(id, clock),
            abi.encodeWithSelector(ISakSessions.ClockOutsideSession.selector, clock, OPENS, CLOSES)
        );
    }

    function test_validateUserOp_windowIsTheSessionBounds_whenShorterThanThePeriod() public {
        uint32 id = windowSession();
        uint256 vd = validate(opWithClock(id, OPENS + 1 hours));
        assertFalse(sigFailed(vd));
        assertEq(validAfterOf(vd), OPENS - 1, "exclusive lower bound: OPENS itself is valid");
        assertEq(validUntilOf(vd), CLOSES, "never 0 (unbounded), never past validUntil");
    }

    function test_handleOps_reverts_AA22_whenSubmittedBeforeValidAfter() public {
        uint32 id = windowSession();
        expectNotDue(opWithClock(id, OPENS)); // now = START, a day early
    }

    function test_handleOps_reverts_AA22_oneSecondBeforeValidAfter() public {
        uint32 id = windowSession();
        vm.warp(OPENS - 1);
        expectNotDue(opWithClock(id, OPENS));
    }

    function test_handleOps_succeeds_atValidAfter() public {
        uint32 id = windowSession();
        vm.warp(OPENS);
        submit(opWithClock(id, OPENS));
        assertEq(usd.balanceOf(alice), 1e6);
    }

    function test_handleOps_succeeds_atValidUntil() public {
        uint32 id = windowSession();
        vm.warp(CLOSES);
        submit(opWithClock(id, CLOSES));
        assertEq(usd.balanceOf(alice), 1e6);
    }

    function test_handleOps_reverts_AA22_afterValidUntil() public {
        uint32 id = windowSession();
        vm.warp(OPENS);
        PackedUserOperation memory op = opWithClock(id, OPENS); // signed while valid
        vm.warp(CLOSES + 1);
        expectNotDue(op);
    }

    // -------------------------------------------------------------------------------------
    // Revoking one session
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_forNewOps_afterRevokeSession() public {
        uint32 id = grant(usdSession(100e6));
        submit(sessionOp(id, transferCall(alice, 1e6)));
        revoke(id);
        PackedUserOperation memory op = sessionOp(id, transferCall(alice, 1e6));
        expectValidationRevert(notActive(id));
        submit(op);
    }

    function test_validateUserOp_reverts_forAnOpSignedBeforeRevokeSession() public {
        uint32 id = grant(usdSession(100e6));
        PackedUserOperation memory pending = sessionOp(id, transferCall(alice, 1e6));
        revoke(id);
        expectValidationRevert(notActive(id));
        submit(pending);
        assertEq(usd.balanceOf(alice), 0);
    }

    function test_revokeSession_leavesOtherSessionsActive() public {
        uint32 first = grant(usdSession(100e6));
        uint32 second = grant(usdSession(100e6));
        revoke(first);
        submit(sessionOp(second, transferCall(alice, 1e6)));
        assertEq(usd.balanceOf(alice), 1e6);
    }

    // -------------------------------------------------------------------------------------
    // Revocation race (SECURITY #38)
    // -------------------------------------------------------------------------------------

    /// @dev The owner's revoke as an owner-signed operation on nonce lane 0.
    function revokeOp(uint32 id) internal view returns (PackedUserOperation memory op) {
        op = userOp(
            executeData(one(address(account), 0, abi.encodeCall(account.revokeSession, (id))))
        );
        signOwner(op);
    }

    /// @dev The agent's spend on its session's nonce lane 1, signed before the revoke lands.
    function agentSpendOp(uint32 id, uint256 amount, uint64 seq)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op = userOp(executeData(transferCall(alice, amount)));
        op.nonce = (uint256(SessionEnvelope.nonceKey(id, 1)) << 64) | seq;
        signSession(op, id, now_());
    }

    function bundle(PackedUserOperation memory a, PackedUserOperation memory b) internal {
        PackedUserOperation[] memory ops = new PackedUserOperation[](2);
        ops[0] = a;
        ops[1] = b;
        vm.prank(bundler, bundler);
        entryPoint.handleOps(ops, payable(bundler));
    }

    function race(
        PackedUserOperation memory rev,
        PackedUserOperation memory spend,
        bool revokeFirst
    ) internal {
        if (revokeFirst) bundle(rev, spend);
        else bundle(spend, rev);
    }

    /// @dev The agent races the owner's revoke with a spend in the same bundle, in either
    ///      order. EntryPoint v0.8 validates every op of a bundle before executing any, so even
    ///      revoke-then-spend lets the spend validate (the session is still active then): the
    ///      loss is whatever the spend was charged, which the cap bounds by the current
    ///      window's remaining allowance. Afterwards, an op the agent signed before the revoke
    ///      never validates.
    function testFuzz_revocationRace_lossIsAtMostTheRemainingAllowance(
        uint256 spentBefore,
        uint256 attempt,
        bool revokeFirst
    ) public {
        uint256 cap = 100e6;
        spentBefore = bound(spentBefore, 0, cap);
        attempt = bound(attempt, 1, 2 * cap);
        uint32 id = grant(usdSession(uint96(cap)));
        if (spentBefore != 0) submit(sessionOp(id, transferCall(alice, spentBefore)));
        uint256 remaining = cap - spentBefore;

        PackedUserOperation memory spend = agentSpendOp(id, attempt, 0);
        // Signed before the revoke, queued behind `spend` (or instead of it, if it is dropped).
        PackedUserOperation memory pending = agentSpendOp(id, 1, 1);
        PackedUserOperation memory instead = agentSpendOp(id, 1, 0);
        PackedUserOperation memory rev = revokeOp(id);
        if (attempt > remaining) {
            // Refused in validation; the bundler drops it and the revoke lands alone.
            vm.expectRevert(
                abi.encodeWithSelector(
                    IEntryPoint.FailedOpWithRevert.selector,
                    revokeFirst ? 1 : 0,
                    "AA23 reverted",
                    abi.encodeWithSelector(
                        ISakSessions.SpendCapExceeded.selector, address(usd), attempt, remaining
                    )
                )
            );
            race(rev, spend, revokeFirst);
            submit(rev);
            pending = instead;
        } else {
            race(rev, spend, revokeFirst);
        }

        assertFalse(account.getSession(id).active, "revoked");
        assertLe(usd.balanceOf(alice) - spentBefore, remaining, "lost more than the remaining");
        assertEq(usd.balanceOf(alice), spentBefore + (attempt > remaining ? 0 : attempt));
        expectValidationRevert(notActive(id));
        submit(pending);
    }

    /// @dev A revoke mined in an earlier transaction of the same block wins: the pending spend
    ///      no longer validates.
    function test_revocationRace_revokeInAnEarlierTransaction_refusesThePendingSpend() public {
        uint32 id = grant(usdSession(100e6));
        PackedUserOperation memory spend = agentSpendOp(id, 100e6, 0);
        submit(revokeOp(id)); // same block: no warp, no roll
        expectValidationRevert(notActive(id));
        submit(spend);
        assertEq(usd.balanceOf(alice), 0);
    }

    function test_revokeSession_emitsSessionRevoked() public {
        uint32 id = grant(usdSession(100e6));
        vm.expectEmit(true, false, false, false, address(account));
        emit ISakSessions.SessionRevoked(id);
        revoke(id);
    }

    function testFuzz_revokeSession_reverts_whenIdUnknown(uint32 id) public {
        grant(usdSession(100e6));
        id = uint32(bound(id, 2, type(uint32).max));
        vm.prank(owner);
        vm.expectRevert(notActive(id));
        account.revokeSession(id);
    }

    function test_revokeSession_reverts_whenIdZero() public {
        grant(usdSession(100e6));
        vm.prank(owner);
        vm.expectRevert(notActive(0));
        account.revokeSession(0);
    }

    function test_revokeSession_reverts_whenAlreadyRevoked() public {
        uint32 id = grant(usdSession(100e6));
        revoke(id);
        vm.prank(owner);
        vm.expectRevert(notActive(id));
        account.revokeSession(id);
    }

    function testFuzz_revokeSession_reverts_whenCallerIsAStranger(address caller) public {
        vm.assume(caller != owner && caller != address(account) && caller != address(entryPoint));
        uint32 id = grant(usdSession(100e6));
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.revokeSession(id);
    }

    function test_revokeSession_byAnOwnerOp() public {
        uint32 id = grant(usdSession(100e6));
        PackedUserOperation memory op = userOp(
            executeData(one(address(account), 0, abi.encodeCall(account.revokeSession, (id))))
        );
        signOwner(op);
        submit(op);
        assertFalse(account.getSession(id).active);
    }

    // -------------------------------------------------------------------------------------
    // Revoking all sessions
    // -------------------------------------------------------------------------------------

    function test_validateUserOp_reverts_forEverySession_afterRevokeAllSessions() public {
        uint32[3] memory ids =
            [grant(usdSession(1e6)), grant(usdSession(2e6)), grant(usdSession(3e6))];
        PackedUserOperation[3] memory pending;
        for (uint256 i; i < 3; ++i) {
            pending[i] = sessionOp(ids[i], transferCall(alice, 1e6));
        }
        revokeAll();
        for (uint256 i; i < 3; ++i) {
            expectValidationRevert(notActive(ids[i]));
            submit(pending[i]);
            assertFalse(account.getSession(ids[i]).active);
        }
    }

    function test_grantSession_afterRevokeAllSessions_worksWithAFreshId() public {
        uint32 old = grant(usdSession(100e6));
        submit(sessionOp(old, transferCall(alice, 100e6)));
        revokeAll();
        uint32 id = grant(usdSession(100e6));
        assertEq(id, old + 1);
        assertEq(account.getSpend(id, address(usd)).spent, 0);
        submit(sessionOp(id, transferCall(alice, 100e6)));
        assertEq(usd.balanceOf(alice), 200e6);
    }

    function test_revokeSession_reverts_forAnIdOfAnEarlierSalt() public {
        uint32 id = grant(usdSession(100e6));
        revokeAll();
        vm.prank(owner);
        vm.expectRevert(notActive(id));
        account.revokeSession(id);
    }

    function test_revokeAllSessions_emitsTheNewSalt_drawnFromTheBlock() public {
        bytes32 root = keccak256(abi.encode(uint256(keccak256("sak.storage.Sessions")) - 1))
            & ~bytes32(uint256(0xff));
        bytes32 slot = keccak256(abi.encode(address(account), root));
        uint64 salt = uint64(uint256(vm.load(address(account), slot)) >> 160);
        uint64 expected = uint64(
            uint256(
                keccak256(
                    abi.encode(
                        salt, address(account), blockhash(block.number - 1), block.prevrandao
                    )
                )
            )
        );
        vm.expectEmit(false, false, false, true, address(account));
        emit ISakSessions.AllSessionsRevoked(expected);
        revokeAll();
        assertEq(uint64(uint256(vm.load(address(account), slot)) >> 160), expected, "stored");
    }

    function test_revokeAllSessions_costsTheSame_forAnyNumberOfSessions() public {
        grant(usdSession(100e6));
        vm.prank(owner);
        uint256 before = gasleft();
        account.revokeAllSessions();
        uint256 withOne = before - gasleft();
        for (uint256 i; i < 40; ++i) {
            grant(usdSession(100e6));
        }
        vm.prank(owner);
        before = gasleft();
        account.revokeAllSessions();
        uint256 withForty = before - gasleft();
        assertApproxEqAbs(withForty, withOne, 50, "O(1): a fresh salt");
        assertLt(withOne, 15_000);
    }

    function testFuzz_revokeAllSessions_reverts_whenCallerIsAStranger(address caller) public {
        vm.assume(caller != owner && caller != address(account) && caller != address(entryPoint));
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(SakAccountBase.NotOwner.selector, caller));
        account.revokeAllSessions();
    }

    // -------------------------------------------------------------------------------------
    // Stored state
    // -------------------------------------------------------------------------------------

    function test_getSession_reflectsGrantRevokeAndRevokeAll() public {
        uint32 id = windowSession();
        ISakSessions.SessionView memory s = account.getSession(id);
        assertEq(s.signer, agent);
        assertEq(s.validAfter, OPENS);
        assertEq(s.validUntil, CLOSES);
        assertTrue(s.active);

        revoke(id);
        s = account.getSession(id);
        assertFalse(s.active);
        assertEq(s.signer, address(0));
        assertEq(s.validUntil, 0);

        uint32 next = windowSession();
        assertTrue(account.getSession(next).active);
        revokeAll();
        assertFalse(account.getSession(next).active);
        assertEq(account.getSpend(next, address(usd)).allowance, 0, "spend state is per salt");
    }

    function test_getSession_isActiveUntilValidUntil_andInactiveOneSecondLater() public {
        uint32 id = windowSession();
        vm.warp(CLOSES);
        assertTrue(account.getSession(id).active, "inclusive bound");
        vm.warp(CLOSES + 1);
        ISakSessions.SessionView memory s = account.getSession(id);
        assertFalse(s.active, "expired");
        assertEq(s.signer, agent, "expired, not revoked: the record stays");
        assertEq(s.validUntil, CLOSES);
    }

    function testFuzz_getSession_isInactive_afterValidUntil_andWhenRevoked(uint256 later) public {
        uint32 id = windowSession();
        uint32 revoked = windowSession();
        revoke(revoked);
        assertFalse(account.getSession(revoked).active, "revoked");
        vm.warp(bound(later, uint256(CLOSES) + 1, type(uint40).max));
        assertFalse(account.getSession(id).active, "expired");
        assertFalse(account.getSession(revoked).active, "revoked and expired");
    }

    function testFuzz_getSession_isInactive_forUnknownIds(uint32 id) public {
        grant(usdSession(100e6));
        id = uint32(bound(id, 2, type(uint32).max));
        assertFalse(account.getSession(id).active);
        assertFalse(account.getSession(0).active);
    }

    function test_storage_isInTheErc7201Namespace() public {
        uint32 id = grant(usdSession(100e6));
        revokeAll();
        bytes32 root = keccak256(abi.encode(uint256(keccak256("sak.storage.Sessions")) - 1))
            & ~bytes32(uint256(0xff));
        // The per-account slot: accounts[address(this)] at the namespace's first field.
        uint256 word =
            uint256(vm.load(address(account), keccak256(abi.encode(address(account), root))));
        assertEq(address(uint160(word)), owner, "owner");
        assertTrue(uint64(word >> 160) != 0, "salt");
        assertEq(uint32(word >> 224), id, "next id");
        for (uint256 slot; slot < 4; ++slot) {
            assertEq(vm.load(address(account), bytes32(slot)), bytes32(0), "no low-slot state");
        }
    }
}
