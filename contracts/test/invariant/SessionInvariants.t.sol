// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, console} from "forge-std/Test.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {CanonicalDeployer} from "../utils/Canonical.sol";
import {IEntryPointV08} from "../utils/SakTest.sol";
import {IUniswapV2Router, UniswapV2} from "../utils/UniswapV2.sol";
import {ISakSessions} from "../../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../../src/SakAccount.sol";
import {SakAccountFactory} from "../../src/SakAccountFactory.sol";
import {MockERC20} from "../../src/mocks/MockERC20.sol";

/// @notice A contract the session may pay ETH into (value-carrying permission).
contract Sink {
    function deposit() external payable {}
}

/// @notice Acts as a compromised session key: it signs anything and tries everything.
contract HostileSession is Test {
    bytes32 internal constant BATCH_MODE = bytes32(uint256(1) << 248);
    uint256 internal constant DAY = 86_400;

    IEntryPointV08 internal immutable ep;
    SakAccount internal immutable account;
    MockERC20 internal immutable usd;
    MockERC20 internal immutable tkn;
    IUniswapV2Router internal immutable router;
    Sink internal immutable sink;
    address internal immutable owner;
    uint256 internal immutable agentKey;
    uint32 internal immutable id;
    uint40 internal immutable start;
    uint40 internal immutable end;
    address internal immutable thief = makeAddr("thief");
    address internal immutable bundler = makeAddr("bundler");

    // Ghost state.
    mapping(address token => uint256) public totalCharged;
    mapping(address token => uint256) public totalOut;
    mapping(address token => uint256) public maxChargedInAPeriod;
    uint256 public validatedAfterRevoke;
    uint256 public validatedOutsideTime;
    uint256 public forbiddenSucceeded;
    uint256 public staleOrFutureSucceeded;
    uint256 public validatedOps;
    bool public revoked;

    constructor(
        IEntryPointV08 ep_,
        SakAccount account_,
        MockERC20 usd_,
        MockERC20 tkn_,
        IUniswapV2Router router_,
        Sink sink_,
        address owner_,
        uint256 agentKey_,
        uint32 id_,
        uint40 start_,
        uint40 end_
    ) {
        (ep, account, usd, tkn, router, sink) = (ep_, account_, usd_, tkn_, router_, sink_);
        (owner, agentKey, id, start, end) = (owner_, agentKey_, id_, start_, end_);
    }

    // ---------------------------------------------------------------------------------------
    // Actions
    // ---------------------------------------------------------------------------------------

    function transfer(uint256 tokenSeed, uint256 amount, bool toThief) external {
        MockERC20 token = _token(tokenSeed);
        amount = bound(amount, 0, 200 * _unit(token));
        _session(
            _one(
                address(token),
                0,
                abi.encodeCall(token.transfer, (toThief ? thief : address(sink), amount))
            )
        );
    }

    function approve(uint256 tokenSeed, uint256 amount, bool toThief) external {
        MockERC20 token = _token(tokenSeed);
        amount = bound(amount, 0, 200 * _unit(token));
        _session(
            _one(
                address(token),
                0,
                abi.encodeCall(token.approve, (toThief ? thief : address(router), amount))
            )
        );
    }

    /// @dev A spender the session approved pulls later, outside any session operation.
    function pullLater(uint256 tokenSeed, uint256 amount) external {
        MockERC20 token = _token(tokenSeed);
        uint256 allowance = token.allowance(address(account), thief);
        amount = bound(amount, 0, allowance);
        if (amount == 0) return;
        uint256 before = token.balanceOf(address(account));
        vm.prank(thief);
        token.transferFrom(address(account), thief, amount);
        totalOut[address(token)] += before - token.balanceOf(address(account));
    }

    function swap(uint256 amountIn, bool approveFirst, bool payThief) external {
        amountIn = bound(amountIn, 1, 60e6);
        address[] memory path = new address[](2);
        (path[0], path[1]) = (address(usd), address(tkn));
        Execution[] memory calls = new Execution[](approveFirst ? 2 : 1);
        if (approveFirst) {
            calls[0] = Execution(
                address(usd), 0, abi.encodeCall(usd.approve, (address(router), amountIn))
            );
        }
        calls[calls.length - 1] = Execution(
            address(router),
            0,
            abi.encodeCall(
                router.swapExactTokensForTokens,
                (amountIn, 0, path, payThief ? thief : address(account), type(uint256).max)
            )
        );
        _session(calls);
    }

    function payEth(uint256 amount) external {
        amount = bound(amount, 0, 0.6 ether);
        _session(_one(address(sink), amount, abi.encodeCall(sink.deposit, ())));
    }

    function batch(uint256 a, uint256 b, uint256 c) external {
        Execution[] memory calls = new Execution[](3);
        calls[0] =
            Execution(address(usd), 0, abi.encodeCall(usd.transfer, (thief, bound(a, 0, 80e6))));
        calls[1] =
            Execution(address(usd), 0, abi.encodeCall(usd.approve, (thief, bound(b, 0, 80e6))));
        calls[2] =
            Execution(address(tkn), 0, abi.encodeCall(tkn.transfer, (thief, bound(c, 0, 1e18))));
        _session(calls);
    }

    /// @dev Calls nothing may reach: the account itself, the EntryPoint, token pulls.
    function forbidden(uint256 which) external {
        which = bound(which, 0, 4);
        Execution[] memory calls;
        if (which == 0) {
            ISakSessions.SessionConfig memory c;
            calls = _one(address(account), 0, abi.encodeCall(account.grantSession, (c)));
        } else if (which == 1) {
            calls = _one(address(account), 0, abi.encodeCall(account.revokeAllSessions, ()));
        } else if (which == 2) {
            calls = _one(
                address(ep), 0, abi.encodeWithSignature("withdrawTo(address,uint256)", thief, 1)
            );
        } else if (which == 3) {
            calls = _one(
                address(usd), 0, abi.encodeCall(usd.transferFrom, (address(account), thief, 1))
            );
        } else {
            calls = _one(
                address(account),
                0,
                abi.encodeWithSignature("execute(bytes32,bytes)", BATCH_MODE, "")
            );
        }
        if (_submit(calls, _now())) forbiddenSucceeded++;
    }

    /// @dev Signs with a clock claim one or more periods away from now.
    function skewedClock(uint256 periods, bool future, uint256 amount) external {
        periods = bound(periods, 1, 3);
        uint256 now_ = _now();
        uint256 skew = periods * DAY;
        if (!future && now_ < start + skew) return;
        uint40 clock = uint40(future ? now_ + skew : now_ - skew);
        amount = bound(amount, 1, 100e6);
        if (_submit(_one(address(usd), 0, abi.encodeCall(usd.transfer, (thief, amount))), clock)) {
            staleOrFutureSucceeded++;
        }
    }

    /// @dev Mostly hours, sometimes days: crosses period edges and, late in a run, the expiry.
    function warp(uint256 secs) external {
        secs = secs % 8 == 0 ? bound(secs, 0, 2 * DAY) : bound(secs, 0, 6 hours);
        vm.warp(_now() + secs);
    }

    /// @dev Late in a run (the fuzzer favours edge seeds such as 0, so gate on progress), and
    ///      then the session keeps trying.
    function ownerRevokes(uint256 seed) external {
        if (revoked || validatedOps < 12) return;
        vm.prank(owner);
        if (seed % 2 == 0) account.revokeAllSessions();
        else account.revokeSession(id);
        revoked = true;
    }

    function usdToken() external view returns (MockERC20) {
        return usd;
    }

    function tknToken() external view returns (MockERC20) {
        return tkn;
    }

    // ---------------------------------------------------------------------------------------
    // Plumbing
    // ---------------------------------------------------------------------------------------

    function _session(Execution[] memory calls) internal {
        _submit(calls, _now());
    }

    /// @dev Submits a session op through the EntryPoint; records outflow and charges.
    function _submit(Execution[] memory calls, uint40 clock) internal returns (bool validated) {
        address[3] memory tokens = [address(usd), address(tkn), address(0)];
        uint256[3] memory before;
        ISakSessions.SpendView[3] memory spendBefore;
        for (uint256 i; i < 3; ++i) {
            before[i] = _balance(tokens[i]);
            spendBefore[i] = account.getSpend(id, tokens[i]);
        }
        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = _op(calls, clock);
        vm.prank(bundler, bundler);
        try ep.handleOps(ops, payable(bundler)) {
            validated = true;
        } catch {}
        if (!validated) return false;
        validatedOps++;
        if (revoked) validatedAfterRevoke++;
        uint256 now_ = _now();
        if (now_ < start || now_ > end) validatedOutsideTime++;
        for (uint256 i; i < 3; ++i) {
            uint256 afterBalance = _balance(tokens[i]);
            // Tokens: what left the account. ETH: what reached the sink (the account's ETH also
            // pays gas, which the gas budget governs, not this cap).
            if (tokens[i] == address(0)) totalOut[address(0)] += afterBalance - before[i];
            else if (afterBalance < before[i]) totalOut[tokens[i]] += before[i] - afterBalance;
            ISakSessions.SpendView memory s = account.getSpend(id, tokens[i]);
            uint256 delta =
                s.window == spendBefore[i].window ? s.spent - spendBefore[i].spent : s.spent;
            totalCharged[tokens[i]] += delta;
            if (s.spent > maxChargedInAPeriod[tokens[i]]) maxChargedInAPeriod[tokens[i]] = s.spent;
        }
    }

    function _op(Execution[] memory calls, uint40 clock)
        internal
        view
        returns (PackedUserOperation memory op)
    {
        op.sender = address(account);
        op.nonce = ep.getNonce(address(account), 0);
        op.callData =
            abi.encodeWithSignature("execute(bytes32,bytes)", BATCH_MODE, abi.encode(calls));
        op.accountGasLimits = bytes32((uint256(600_000) << 128) | 600_000);
        op.preVerificationGas = 50_000;
        op.gasFees = bytes32((uint256(1 gwei) << 128) | 1 gwei);
        bytes32 digest = keccak256(abi.encode(ep.getUserOpHash(op), id, clock));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(agentKey, digest);
        op.signature = abi.encodePacked(uint8(1), id, clock, r, s, v);
    }

    function _one(address target, uint256 value, bytes memory data)
        internal
        pure
        returns (Execution[] memory c)
    {
        c = new Execution[](1);
        c[0] = Execution(target, value, data);
    }

    function _token(uint256 seed) internal view returns (MockERC20) {
        return seed % 2 == 0 ? usd : tkn;
    }

    function _unit(MockERC20 token) internal view returns (uint256) {
        return 10 ** token.decimals();
    }

    function _balance(address token) internal view returns (uint256) {
        return
            token == address(0)
                ? address(sink).balance
                : MockERC20(token).balanceOf(address(account));
    }

    function _now() internal view returns (uint40) {
        return uint40(vm.getBlockTimestamp());
    }
}

/// @notice DESIGN properties 1-4 and 6 under a hostile session.
contract SessionInvariantsTest is CanonicalDeployer {
    uint96 internal constant USD_CAP = 100e6;
    uint96 internal constant TKN_CAP = 1e18;
    uint96 internal constant ETH_CAP = 1 ether;
    uint40 internal constant START = 1_800_000_000;
    uint40 internal constant END = START + 10 days;

    HostileSession internal handler;
    SakAccount internal account;
    address internal owner = makeAddr("owner");

    function setUp() public {
        vm.warp(START);
        IEntryPointV08 ep = IEntryPointV08(address(deployEntryPointV08()));
        account = new SakAccountFactory(new SakAccount()).createAccount(owner, bytes32(0));
        vm.deal(address(account), 100 ether);
        MockERC20 usd = new MockERC20("Test USD", "tUSD", 6);
        MockERC20 tkn = new MockERC20("Test Token", "TKN", 18);
        IUniswapV2Router router = UniswapV2.deploy();
        UniswapV2.seedPool(router, usd, tkn);
        usd.mint(address(account), 1_000_000e6);
        tkn.mint(address(account), 1_000e18);
        Sink sink = new Sink();

        (address agent, uint256 agentKey) = makeAddrAndKey("agent");
        ISakSessions.SessionConfig memory c;
        c.signer = agent;
        c.validAfter = START;
        c.validUntil = END;
        c.spendLimits = new ISakSessions.SpendLimit[](3);
        c.spendLimits[0] = ISakSessions.SpendLimit(address(usd), USD_CAP, 1 days, true, true);
        c.spendLimits[1] = ISakSessions.SpendLimit(address(tkn), TKN_CAP, 1 days, true, true);
        c.spendLimits[2] = ISakSessions.SpendLimit(address(0), ETH_CAP, 1 days, false, false);
        c.permissions = new ISakSessions.CallPermission[](2);
        c.permissions[0].target = address(router);
        c.permissions[0].selector = IUniswapV2Router.swapExactTokensForTokens.selector;
        c.permissions[0].conditions = new ISakSessions.ArgCondition[](1);
        c.permissions[0].conditions[0] =
            ISakSessions.ArgCondition(3, ISakSessions.Op.EqAccount, new bytes32[](0));
        c.permissions[1].target = address(sink);
        c.permissions[1].selector = Sink.deposit.selector;
        c.permissions[1].allowValue = true;
        c.gasBudget = type(uint80).max;
        vm.prank(owner);
        uint32 id = account.grantSession(c);

        handler = new HostileSession(
            ep, account, usd, tkn, router, sink, owner, agentKey, id, START, END
        );
        targetContract(address(handler));
        excludeSender(address(account));
    }

    /// Property 1: within a period, charges never exceed the allowance.
    function invariant_chargesPerPeriodWithinCap() public view {
        HostileSession h = handler;
        assertLe(h.maxChargedInAPeriod(address(h.usdToken())), USD_CAP);
        assertLe(h.maxChargedInAPeriod(address(h.tknToken())), TKN_CAP);
        assertLe(h.maxChargedInAPeriod(address(0)), ETH_CAP);
    }

    /// Property 1: whatever leaves the account (transfers, swaps, later pulls by approved
    /// spenders, ETH paid out) was charged to the session first.
    function invariant_outflowNeverExceedsCharges() public view {
        HostileSession h = handler;
        for (uint256 i; i < 3; ++i) {
            address token =
                i == 0 ? address(h.usdToken()) : i == 1 ? address(h.tknToken()) : address(0);
            assertLe(h.totalOut(token), h.totalCharged(token));
        }
    }

    /// Properties 2-4: revoked, expired or forbidden never validates; stale and future clock
    /// claims never execute.
    function invariant_nothingValidatesThatShouldNot() public view {
        assertEq(handler.validatedAfterRevoke(), 0, "revoked session validated");
        assertEq(handler.validatedOutsideTime(), 0, "session validated outside its time bounds");
        assertEq(handler.forbiddenSucceeded(), 0, "a forbidden call validated");
        assertEq(handler.staleOrFutureSucceeded(), 0, "a skewed clock claim executed");
    }

    /// Not a property: shows that the run did exercise the session (ops got through).
    function invariant_callSummary() public view {
        console.log("validated session ops", handler.validatedOps());
        console.log(
            "tUSD charged / out",
            handler.totalCharged(address(handler.usdToken())),
            handler.totalOut(address(handler.usdToken()))
        );
        console.log(
            "TKN charged / out",
            handler.totalCharged(address(handler.tknToken())),
            handler.totalOut(address(handler.tknToken()))
        );
        console.log(
            "ETH charged / out", handler.totalCharged(address(0)), handler.totalOut(address(0))
        );
        console.log("revoked", handler.revoked());
    }

    /// Property 6: the owner and the session set never change through the session.
    function invariant_ownerConfigurationUnchanged() public view {
        assertEq(account.owner(), owner);
        assertFalse(account.getSession(2).active, "no new session appeared");
    }
}
