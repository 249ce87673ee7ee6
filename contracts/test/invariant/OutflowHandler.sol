// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ISakSessions} from "../../src/interfaces/ISakSessions.sol";
import {SessionAdapter} from "../../src/SessionAdapter.sol";
import {MockERC20} from "../../src/mocks/MockERC20.sol";
import {SessionPath, Status} from "./SessionPaths.sol";
import {MockPermit2} from "../../src/mocks/MockPermit2.sol";
import {MockSpenderProxy} from "../mocks/MockSpenderProxy.sol";
import {MockSwapRouter} from "../mocks/MockSwapRouter.sol";
import {MockGrabber} from "../mocks/MockGrabber.sol";
import {MockERC721} from "../mocks/MockERC721.sol";

/// @notice Everything the handler plays with, deployed by the invariant test.
struct World {
    SessionPath path;
    MockERC20 a; // capped in sessions 1 and 2
    MockERC20 b; // capped in session 1 only (transfers to the adapter only)
    MockERC20 x; // capped nowhere
    MockERC20 junk; // the attacker's
    MockERC721 nft;
    MockSwapRouter router;
    MockSpenderProxy proxy;
    MockGrabber grabber;
    address thief;
}

/// @title OutflowHandler
/// @notice A hostile world around one account: the session keys (held by the attacker) try
///         every outflow shape, the owner approves whatever it likes (directly, through Permit2,
///         through a spender proxy, on capped and uncapped tokens, before and after the grants,
///         NFT operators included), tokens arrive mid-run, new sessions are granted mid-run,
///         keys rotate, sessions are revoked and expire, periods roll, and attacker-controlled
///         spenders pull from the account at any time.
///
/// Ghost state: every net decrease of the account's balance of A, B, X, ETH and the NFT is
/// recorded with its block timestamp and the session whose operation caused it, or 0 for
/// "outside any session operation" (the owner never moves assets out here). From those:
/// per (session, token) the sum per aligned period window and the largest sum in any window
/// of one period; per token what left outside sessions; what left in a session without a cap
/// for it or outside its time bounds; and every operation that validated for a dead session
/// or key.
contract OutflowHandler is CommonBase, StdUtils {
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant ASSETS = 5;

    SessionPath public immutable path;
    address public immutable account;
    address public immutable adapter;
    MockERC20 public immutable a;
    MockERC20 public immutable b;
    MockERC20 public immutable x;
    MockERC20 public immutable junk;
    MockERC721 public immutable nft;
    MockSwapRouter public immutable router;
    MockSpenderProxy public immutable proxy;
    MockGrabber public immutable grabber;
    address public immutable thief;

    struct Session {
        uint32 id;
        /// @dev 0: a "trader" (A 100/day to anyone, B 50/day to the adapter, ETH 1/day, 20 days);
        ///      1: a "helper" (A 30 per 6 hours to the adapter, ETH 0.25 per 6 hours, no B,
        ///      3 days).
        uint8 role;
        uint256 key;
        uint40 validAfter;
        uint40 validUntil;
        bool granted;
        bool revoked;
    }

    struct Cap {
        uint96 allowance;
        uint32 period;
    }

    struct Out {
        uint40 ts;
        uint256 amount;
    }

    /// @dev Sessions by number, in grant order: 1 is the trader granted at the start; the owner
    ///      grants a helper mid-run, and a new trader or helper whenever the current one is
    ///      revoked or expired (a fresh id each time). Number 0 tags "outside any session
    ///      operation".
    mapping(uint256 n => Session) internal sessions;
    uint256 public sessionCount;
    /// @dev The number of the current session of each role (0: none yet).
    uint256[2] internal current;
    mapping(uint256 s => mapping(address asset => Cap)) public caps;
    mapping(uint256 s => uint256[]) internal oldKeys;
    uint256 internal keyNonce;
    uint256 internal nextNftId = 4;

    // Ghost state.
    mapping(uint256 s => mapping(address asset => Out[])) internal outs;
    mapping(uint256 s => mapping(address asset => mapping(uint256 k => uint256))) public windowSum;
    mapping(uint256 s => mapping(address asset => uint256)) public maxFixedWindow;
    mapping(uint256 s => mapping(address asset => uint256)) public maxAnyWindow;
    mapping(uint256 s => mapping(address asset => uint256)) public totalOut;
    mapping(uint256 s => mapping(address asset => uint256)) public uncappedOut;
    mapping(address asset => uint256) public outsideOut;
    uint256 public outOfTimeOut;
    uint256 public validatedWhenDead;
    uint256 public approvalsValidated;
    uint256 public adapterPulledOutside;

    // Statistics.
    uint256 public opsTried;
    uint256 public opsValidated;
    uint256 public opsExecuted;
    uint256 public deadTried;
    uint256 public boundaryOps;
    uint256 public revokes;
    uint256 public rotations;
    uint256 public ownerActs;
    uint256 public pullsTried;

    constructor(World memory w, uint256 key1) {
        path = w.path;
        account = w.path.account();
        adapter = w.path.adapter();
        (a, b, x, junk, nft) = (w.a, w.b, w.x, w.junk, w.nft);
        (router, proxy, grabber, thief) = (w.router, w.proxy, w.grabber, w.thief);

        _grant(0, key1, _now());
    }

    // -------------------------------------------------------------------------------------
    // Session actions (the attacker holds the keys)
    // -------------------------------------------------------------------------------------

    /// @notice A capped-token `transfer` (the only call the account itself makes for a
    ///         session), of A, B or X, to the adapter, the thief or the account.
    function sTransfer(
        uint256 who,
        uint256 clockSeed,
        uint256 tokenSeed,
        uint256 toSeed,
        uint256 amount
    ) external {
        MockERC20 token = _token3(tokenSeed);
        address to = toSeed % 3 == 0 ? adapter : toSeed % 3 == 1 ? thief : account;
        amount = _amount(address(token), amount);
        _op(who, clockSeed, _one(address(token), 0, abi.encodeCall(IERC20.transfer, (to, amount))));
    }

    /// @notice The shapes that do validate, with slices of a cap: A to the thief, A or B into
    ///         the adapter and on through a swap into the thief's pool or to the grabber, or
    ///         ETH to the grabber. Keeps caps filling up so that the window bounds are tested.
    function sSpend(uint256 who, uint256 clockSeed, uint256 seed, uint256 amount) external {
        uint256 shape = seed % 4;
        address token = (seed >> 2) % 2 == 0 ? address(a) : address(b);
        uint256 amt = _amount(token, amount);
        Execution[] memory calls = new Execution[](2);
        address[] memory list = new address[](1);
        list[0] = token;
        if (shape == 0) {
            calls = _one(
                address(a), 0, abi.encodeCall(IERC20.transfer, (thief, _amount(address(a), amount)))
            );
        } else if (shape == 1) {
            address[] memory route = new address[](2);
            (route[0], route[1]) = (token, address(junk));
            calls[0] = _fund(token, amt);
            calls[1] = _via(
                address(router),
                0,
                abi.encodeCall(
                    MockSwapRouter.swap, (route, amt, thief, MockSwapRouter.Pull.Direct)
                ),
                list
            );
        } else if (shape == 2) {
            calls[0] = _fund(token, amt);
            calls[1] = _via(address(grabber), 0, abi.encodeCall(MockGrabber.grab, ()), list);
        } else {
            calls = _oneExec(
                _via(
                    address(grabber),
                    _amount(address(0), amount),
                    abi.encodeCall(MockGrabber.deposit, ()),
                    new address[](0)
                )
            );
        }
        _op(who, clockSeed, calls);
    }

    /// @notice A swap along an arbitrary path through the thief's pools, pulled directly,
    ///         through Permit2 or through the spender proxy; funded first or not; through the
    ///         adapter or (one time in eight, the old shape) by the account itself; listing any
    ///         tokens for the adapter to approve and return.
    function sSwap(uint256 who, uint256 clockSeed, uint256 pathSeed, uint256 amount, uint256 flags)
        external
    {
        address[] memory route = _route(pathSeed);
        amount = _amount(route[0], amount);
        bytes memory data = abi.encodeCall(
            MockSwapRouter.swap,
            (
                route,
                amount,
                flags & 64 == 0 ? thief : account,
                MockSwapRouter.Pull((flags >> 4) % 3)
            )
        );
        bool fund = flags & 1 != 0;
        Execution[] memory calls = new Execution[](fund ? 2 : 1);
        if (fund) calls[0] = _fund(route[0], amount);
        calls[calls.length - 1] = flags % 8 == 7
            ? Execution(address(router), 0, data)
            : _via(address(router), 0, data, _listFor(route, flags >> 2));
        _op(who, clockSeed, calls);
    }

    /// @notice The grabber (a permitted target) takes from its caller every token of its own
    ///         choosing it can reach; optionally after funding the adapter with A or B.
    function sGrab(uint256 who, uint256 clockSeed, uint256 fundSeed, uint256 amount, uint256 flags)
        external
    {
        bytes memory data = abi.encodeCall(MockGrabber.grab, ());
        bool fund = fundSeed % 3 != 0;
        address token = fundSeed % 3 == 1 ? address(a) : address(b);
        Execution[] memory calls = new Execution[](fund ? 2 : 1);
        if (fund) calls[0] = _fund(token, _amount(token, amount));
        address[] memory route = new address[](2);
        (route[0], route[1]) = (token, address(x));
        calls[calls.length - 1] = flags & 1 != 0
            ? Execution(address(grabber), 0, data)
            : _via(address(grabber), 0, data, _listFor(route, flags >> 1));
        _op(who, clockSeed, calls);
    }

    /// @notice Moving an NFT: through the grabber's `takeNft` (the owner may have made it an
    ///         operator), or the NFT contract itself; through the adapter or directly.
    function sNft(uint256 who, uint256 clockSeed, uint256 id, uint256 flags) external {
        id = _bound(id, 1, nextNftId - 1);
        bytes memory data;
        address target;
        if (flags & 1 == 0) {
            (target, data) =
            (address(grabber), abi.encodeCall(MockGrabber.takeNft, (nft, id, thief)));
        } else {
            (target, data) =
            (
                address(nft),
                abi.encodeWithSignature("transferFrom(address,address,uint256)", account, thief, id)
            );
        }
        _op(
            who,
            clockSeed,
            flags & 2 != 0
                ? _one(target, 0, data)
                : _oneExec(_via(target, 0, data, new address[](0)))
        );
    }

    /// @notice The session tries to approve (ERC-20, increaseAllowance, Permit2, NFT operator),
    ///         directly or through the adapter. Every such operation must be refused.
    function sApprove(
        uint256 who,
        uint256 clockSeed,
        uint256 tokenSeed,
        uint256 spenderSeed,
        uint256 flags
    ) external {
        address token = address(_token3(tokenSeed));
        // Half the time to the thief itself (what it would pull later, also after a revoke).
        address spender = spenderSeed % 2 == 0 ? thief : _spender(spenderSeed >> 1);
        address target = token;
        bytes memory data;
        uint256 kind = flags % 4;
        // The maximum, or a slice of a cap (what a charge-on-approve design would let through).
        uint256 amount = (flags >> 3) % 2 == 0 ? type(uint256).max : _amount(token, flags >> 4);
        if (kind == 0) {
            data = abi.encodeCall(IERC20.approve, (spender, amount));
        } else if (kind == 1) {
            data = abi.encodeWithSignature("increaseAllowance(address,uint256)", spender, amount);
        } else if (kind == 2) {
            target = PERMIT2;
            data = abi.encodeCall(
                MockPermit2.approve, (token, spender, type(uint160).max, type(uint48).max)
            );
        } else {
            target = address(nft);
            data = abi.encodeWithSignature("setApprovalForAll(address,bool)", spender, true);
        }
        Execution[] memory calls = (flags >> 2) & 1 == 0
            ? _one(target, 0, data)
            : _oneExec(_via(target, 0, data, new address[](0)));
        if (_op(who, clockSeed, calls) != Status.Refused) approvalsValidated++;
    }

    /// @notice ETH paid to the grabber (which forwards it to the thief) through the adapter.
    function sPayEth(uint256 who, uint256 clockSeed, uint256 amount) external {
        amount = _amount(address(0), amount);
        _op(
            who,
            clockSeed,
            _oneExec(
                _via(
                    address(grabber),
                    amount,
                    abi.encodeCall(MockGrabber.deposit, ()),
                    new address[](0)
                )
            )
        );
    }

    /// @notice The (permitted) spender proxy asked to pull from the account, or Permit2 asked
    ///         directly.
    function sPull(uint256 who, uint256 clockSeed, uint256 tokenSeed, uint256 amount, uint256 flags)
        external
    {
        address token = address(_token3(tokenSeed));
        amount = _amount(token, amount);
        (address target, bytes memory data) = flags & 1 == 0
            ? (
                address(proxy),
                abi.encodeCall(MockSpenderProxy.pull, (token, account, thief, amount))
            )
            : (
                PERMIT2,
                abi.encodeCall(MockPermit2.transferFrom, (account, thief, uint160(amount), token))
            );
        _op(
            who,
            clockSeed,
            flags & 2 == 0
                ? _oneExec(_via(target, 0, data, new address[](0)))
                : _one(target, 0, data)
        );
    }

    /// @notice A batch mixing fundings, swaps, grabs and ETH: stale reads and double use of
    ///         one allowance within a batch.
    function sBatch(uint256 who, uint256 clockSeed, uint256 seed, uint256 amount) external {
        Execution[] memory calls = new Execution[](1 + seed % 4);
        for (uint256 i; i < calls.length; ++i) {
            uint256 pick = (seed >> (8 * i + 2)) % 6;
            address token = pick % 2 == 0 ? address(a) : address(b);
            uint256 amt = _amount(token, amount >> (i * 16));
            address[] memory list = new address[](1);
            list[0] = token;
            address[] memory route = new address[](2);
            (route[0], route[1]) = (token, address(junk));
            if (pick < 2) {
                calls[i] = _fund(token, amt);
            } else if (pick < 4) {
                calls[i] = _via(
                    address(router),
                    0,
                    abi.encodeCall(
                        MockSwapRouter.swap, (route, amt, thief, MockSwapRouter.Pull.Direct)
                    ),
                    list
                );
            } else if (pick == 4) {
                calls[i] = _via(address(grabber), 0, abi.encodeCall(MockGrabber.grab, ()), list);
            } else {
                calls[i] = _via(
                    address(grabber),
                    _amount(address(0), amount >> (i * 16)),
                    abi.encodeCall(MockGrabber.deposit, ()),
                    new address[](0)
                );
            }
        }
        _op(who, clockSeed, calls);
    }

    // -------------------------------------------------------------------------------------
    // Owner actions (never move assets out themselves)
    // -------------------------------------------------------------------------------------

    /// @notice The owner approves A, B or X to the router, the proxy, the grabber or Permit2.
    function ownerApprove(uint256 tokenSeed, uint256 spenderSeed, uint256 amountSeed) external {
        uint256 amount = amountSeed % 3 == 0 ? 0 : amountSeed % 3 == 1 ? 1e6 : type(uint256).max;
        // Contracts only: an allowance the owner gives the thief is the owner giving it away.
        _owner(
            address(_token3(tokenSeed)),
            abi.encodeCall(IERC20.approve, (_spender(spenderSeed % 4), amount))
        );
    }

    /// @notice The owner gives the router or the grabber a Permit2 allowance.
    function ownerPermit2(uint256 tokenSeed, uint256 spenderSeed, uint256 amountSeed, bool far)
        external
    {
        address spender = spenderSeed % 2 == 0 ? address(router) : address(grabber);
        uint160 amount =
            amountSeed % 2 == 0 ? type(uint160).max : uint160(_bound(amountSeed, 0, 1e24));
        _owner(
            PERMIT2,
            abi.encodeCall(
                MockPermit2.approve,
                (address(_token3(tokenSeed)), spender, amount, far ? type(uint48).max : 0)
            )
        );
    }

    /// @notice The owner makes the grabber or the router an NFT operator (or approves one NFT).
    function ownerNft(uint256 operatorSeed, uint256 id, bool on) external {
        address operator = operatorSeed % 2 == 0 ? address(grabber) : address(router);
        if (operatorSeed % 3 == 2) {
            id = _bound(id, 1, nextNftId - 1);
            if (nft.ownerOf(id) == account) {
                _owner(
                    address(nft), abi.encodeWithSignature("approve(address,uint256)", operator, id)
                );
            }
        } else {
            _owner(
                address(nft),
                abi.encodeWithSignature("setApprovalForAll(address,bool)", operator, on)
            );
        }
    }

    /// @notice Tokens, ETH or an NFT arrive in the account mid-run.
    function ownerMint(uint256 which, uint256 amount) external {
        which %= 5;
        if (which < 3) {
            MockERC20 token = _token3(which);
            token.mint(account, _amount(address(token), amount));
        } else if (which == 3) {
            vm.deal(account, account.balance + _amount(address(0), amount));
        } else {
            nft.mint(account, nextNftId);
            grabber.addNftId(nextNftId);
            ++nextNftId;
        }
        ownerActs++;
    }

    /// @notice Grants a session of either role unless the current one of that role is live,
    ///         starting now or up to 12 hours later.
    function ownerGrant(uint256 seed) external {
        uint8 role = uint8(seed % 2);
        uint256 n = current[role];
        if (n != 0 && !sessions[n].revoked && _now() <= sessions[n].validUntil) return;
        _grant(role, _freshKey(), _now() + uint40(_bound(seed >> 1, 0, 12 hours)));
        ownerActs++;
    }

    function _grant(uint8 role, uint256 key, uint40 start) internal {
        uint256 n = ++sessionCount;
        if (role == 0) {
            caps[n][address(a)] = Cap(100e18, 1 days);
            caps[n][address(b)] = Cap(50e6, 1 days);
            caps[n][address(0)] = Cap(1 ether, 1 days);
        } else {
            caps[n][address(a)] = Cap(30e18, 6 hours);
            caps[n][address(0)] = Cap(0.25 ether, 6 hours);
        }
        current[role] = n;
        sessions[n] = Session({
            id: 0,
            role: role,
            key: key,
            validAfter: start,
            validUntil: start + (role == 0 ? 20 days : 3 days),
            granted: true,
            revoked: false
        });
        sessions[n].id = path.grant(_config(n));
    }

    /// @notice Revokes one session, or all (one time in four, and only once sessions did
    ///         something: the fuzzer favours edge seeds, and a run of dead sessions tests little
    ///         else).
    function ownerRevoke(uint256 seed) external {
        if (opsExecuted < 5 || seed % 4 != 0) return;
        seed >>= 2;
        if (seed % 3 == 0) {
            path.revokeAll();
            for (uint256 n = 1; n <= sessionCount; ++n) {
                sessions[n].revoked = true;
            }
        } else {
            uint256 s = _pick(seed >> 2);
            if (sessions[s].revoked) return;
            path.revoke(sessions[s].id);
            sessions[s].revoked = true;
        }
        revokes++;
    }

    /// @notice Gives a live session a new key; the old one must never validate again.
    function ownerRotate(uint256 seed) external {
        uint256 s = _pick(seed);
        if (sessions[s].revoked) return;
        uint256 key = _freshKey();
        path.rotate(sessions[s].id, vm.addr(key));
        oldKeys[s].push(sessions[s].key);
        sessions[s].key = key;
        rotations++;
    }

    /// @notice Time passes: hours, days, or to the last second before a period boundary (or a
    ///         session's start), where clock claims and execution time can disagree.
    function warp(uint256 secs, uint256 mode) external {
        uint40 t = _now();
        uint40 target;
        mode %= 8;
        if (mode < 4) {
            target = t + uint40(_bound(secs, 1, 12 hours));
        } else if (mode < 7) {
            // The last second before the current trader's (or helper's) start or next period.
            uint256 n = current[mode - 4 < 1 ? 0 : 1];
            if (n == 0) n = current[0];
            target = _nextBoundary(n, address(a), t) - 1;
        } else {
            target = t + uint40(_bound(secs, 1 days, 3 days));
        }
        if (target <= t) target = t + 1;
        vm.warp(target);
    }

    // -------------------------------------------------------------------------------------
    // Attackers outside any session operation
    // -------------------------------------------------------------------------------------

    /// @notice The thief (or a pool it owns: the same address here) pulls from the account and
    ///         from the adapter: half the time everything any allowance would give it (ERC-20,
    ///         Permit2, every NFT), otherwise one chosen pull (ERC-20, Permit2, the spender proxy
    ///         it is not authorised on, or an NFT).
    function attackerPull(uint256 tokenSeed, uint256 amount, uint256 how) external {
        uint256[ASSETS] memory before = _balances();
        uint256[3] memory adapterBefore = _adapterBalances();
        vm.startPrank(thief);
        if (how % 2 == 0) {
            address[2] memory froms = [account, adapter];
            for (uint256 f; f < 2; ++f) {
                for (uint256 t; t < 3; ++t) {
                    _pullAll(address(_token3(t)), froms[f]);
                }
                for (uint256 id = 1; id < nextNftId; ++id) {
                    try nft.transferFrom(froms[f], thief, id) {} catch {}
                }
            }
        } else {
            address token = address(_token3(tokenSeed));
            amount = _amount(token, amount);
            address from = how & 8 == 0 ? account : adapter;
            how = (how >> 1) % 4;
            if (how == 0) {
                try IERC20(token).transferFrom(from, thief, amount) {} catch {}
            } else if (how == 1) {
                try MockPermit2(PERMIT2).transferFrom(from, thief, uint160(amount), token) {}
                    catch {}
            } else if (how == 2) {
                try proxy.pull(token, from, thief, amount) {} catch {}
            } else {
                try nft.transferFrom(from, thief, _bound(amount, 1, nextNftId - 1)) {} catch {}
            }
        }
        vm.stopPrank();
        _record(0, before);
        uint256[3] memory adapterAfter = _adapterBalances();
        for (uint256 t; t < 3; ++t) {
            if (adapterAfter[t] < adapterBefore[t]) adapterPulledOutside++;
        }
        pullsTried++;
    }

    /// @dev As the thief: takes from `from` all that its ERC-20 and Permit2 allowances allow.
    function _pullAll(address token, address from) internal {
        uint256 balance = IERC20(token).balanceOf(from);
        uint256 allowed = IERC20(token).allowance(from, thief);
        if (allowed != 0 && balance != 0) {
            try IERC20(token).transferFrom(from, thief, allowed < balance ? allowed : balance) {}
                catch {}
        }
        (uint160 p2,,) = MockPermit2(PERMIT2).allowance(from, token, thief);
        balance = IERC20(token).balanceOf(from);
        if (p2 != 0 && balance != 0) {
            try MockPermit2(PERMIT2)
                .transferFrom(from, thief, uint160(p2 < balance ? p2 : balance), token) {}
                catch {}
        }
    }

    function _adapterBalances() internal view returns (uint256[3] memory bal) {
        (bal[0], bal[1], bal[2]) =
        (a.balanceOf(adapter), b.balanceOf(adapter), x.balanceOf(adapter));
    }

    // -------------------------------------------------------------------------------------
    // Views for the invariants
    // -------------------------------------------------------------------------------------

    function session(uint256 s) external view returns (Session memory) {
        return sessions[s];
    }

    function assets() public view returns (address[ASSETS] memory list) {
        list = [address(a), address(b), address(x), address(0), address(nft)];
    }

    // -------------------------------------------------------------------------------------
    // Plumbing
    // -------------------------------------------------------------------------------------

    function _config(uint256 s) internal view returns (ISakSessions.SessionConfig memory c) {
        Session storage S = sessions[s];
        c.signer = vm.addr(S.key);
        c.validAfter = S.validAfter;
        c.validUntil = S.validUntil;
        c.gasBudget = type(uint80).max;
        c.permissions = new ISakSessions.CallPermission[](5);
        c.permissions[0] = _perm(address(router), MockSwapRouter.swap.selector, false);
        c.permissions[1] = _perm(address(grabber), MockGrabber.grab.selector, false);
        c.permissions[2] = _perm(address(grabber), MockGrabber.takeNft.selector, false);
        c.permissions[3] = _perm(address(grabber), MockGrabber.deposit.selector, true);
        c.permissions[4] = _perm(address(proxy), MockSpenderProxy.pull.selector, false);
        if (S.role == 0) {
            c.spendLimits = new ISakSessions.SpendLimit[](3);
            c.spendLimits[0] = _limit(s, address(a), true);
            c.spendLimits[1] = _limit(s, address(b), false);
            c.spendLimits[2] = _limit(s, address(0), false);
        } else {
            c.spendLimits = new ISakSessions.SpendLimit[](2);
            c.spendLimits[0] = _limit(s, address(a), false);
            c.spendLimits[1] = _limit(s, address(0), false);
        }
    }

    function _limit(uint256 s, address token, bool anyone)
        internal
        view
        returns (ISakSessions.SpendLimit memory)
    {
        Cap memory cap = caps[s][token];
        return ISakSessions.SpendLimit({
            token: token, allowance: cap.allowance, period: cap.period, allowTransfer: anyone
        });
    }

    function _perm(address target, bytes4 selector, bool value)
        internal
        pure
        returns (ISakSessions.CallPermission memory q)
    {
        q.target = target;
        q.selector = selector;
        q.allowValue = value;
    }

    /// @dev Submits `calls` for a session picked by `who`, mostly with its current key and a
    ///      truthful clock claim, sometimes with a rotated-out or a stranger's key, or a clock
    ///      claim at or across a period edge; records what left the account.
    function _op(uint256 who, uint256 clockSeed, Execution[] memory calls)
        internal
        returns (Status status)
    {
        uint256 s = _pick(who);
        Session storage S = sessions[s];
        uint256 key = S.key;
        bool deadKey;
        uint256 keyChoice = (who >> 8) % 32;
        if (keyChoice == 0 && oldKeys[s].length != 0) {
            key = oldKeys[s][(who >> 16) % oldKeys[s].length];
            deadKey = true;
        } else if (keyChoice == 1) {
            key = _stranger(who);
            deadKey = true;
        }
        uint40 t = _now();
        bool dead = deadKey || S.revoked || t < S.validAfter || t > S.validUntil;
        if (dead) deadTried++;
        uint40 clock = _clock(s, clockSeed, t);
        if (clock != t) boundaryOps++;

        uint256[ASSETS] memory before = _balances();
        (status,) = path.exec(S.id, key, calls, clock);
        _record(s, before);
        opsTried++;
        if (status != Status.Refused) {
            opsValidated++;
            if (dead) validatedWhenDead++;
            if (status == Status.Executed) opsExecuted++;
        }
    }

    /// @dev Three times in four "now"; otherwise a claim at the edges the EntryPoint has to
    ///      police: one second ahead, the next period's start (from the last second of a period,
    ///      after a boundary warp), the previous period's last second, a whole period back or
    ///      ahead, the session's start.
    function _clock(uint256 s, uint256 seed, uint40 t) internal view returns (uint40) {
        seed %= 32;
        if (seed < 24) return t;
        Session storage S = sessions[s];
        uint40 period = uint40(caps[s][address(a)].period);
        if (seed == 24) return t + 1;
        if (seed == 25 || seed == 26) return _nextBoundary(s, address(a), t);
        if (seed == 27) return _nextBoundary(s, address(a), t) - period - 1;
        if (seed == 28) return t > period ? t - period : t;
        if (seed == 29) return t + period;
        return S.validAfter;
    }

    /// @dev The first period start of session `s`'s limit on `token` after `t`.
    function _nextBoundary(uint256 s, address token, uint40 t) internal view returns (uint40) {
        uint40 anchor = sessions[s].validAfter;
        uint40 period = uint40(caps[s][token].period);
        if (t < anchor) return anchor;
        return anchor + ((t - anchor) / period + 1) * period;
    }

    /// @dev Net decreases of the account's assets since `before`, charged to tag `s`.
    function _record(uint256 s, uint256[ASSETS] memory before) internal {
        uint256[ASSETS] memory afterwards = _balances();
        address[ASSETS] memory list = assets();
        for (uint256 i; i < ASSETS; ++i) {
            if (afterwards[i] < before[i]) _out(s, list[i], before[i] - afterwards[i]);
        }
    }

    function _out(uint256 s, address asset, uint256 amount) internal {
        if (s == 0) {
            outsideOut[asset] += amount;
            return;
        }
        totalOut[s][asset] += amount;
        Cap memory cap = caps[s][asset];
        if (cap.allowance == 0) {
            uncappedOut[s][asset] += amount;
            return;
        }
        Session storage S = sessions[s];
        uint40 t = _now();
        if (t < S.validAfter || t > S.validUntil) {
            outOfTimeOut += amount;
            return;
        }
        uint256 k = (t - S.validAfter) / cap.period;
        uint256 sum = windowSum[s][asset][k] + amount;
        windowSum[s][asset][k] = sum;
        if (sum > maxFixedWindow[s][asset]) maxFixedWindow[s][asset] = sum;

        Out[] storage list = outs[s][asset];
        list.push(Out(t, amount));
        // The largest sum in a window of one period ending now: records since t - period + 1.
        uint256 rolling;
        for (uint256 j = list.length; j > 0; --j) {
            Out storage o = list[j - 1];
            if (uint256(o.ts) + cap.period <= t) break;
            rolling += o.amount;
        }
        if (rolling > maxAnyWindow[s][asset]) maxAnyWindow[s][asset] = rolling;
    }

    function _balances() internal view returns (uint256[ASSETS] memory bal) {
        bal[0] = a.balanceOf(account);
        bal[1] = b.balanceOf(account);
        bal[2] = x.balanceOf(account);
        bal[3] = account.balance;
        bal[4] = nft.balanceOf(account);
    }

    function _owner(address target, bytes memory data) internal {
        uint256[ASSETS] memory before = _balances();
        path.ownerCall(target, data);
        _record(0, before);
        ownerActs++;
    }

    /// @dev The current helper (if any) a quarter of the time, any session ever granted (late
    ///      in a run, mostly dead ones) an eighth, otherwise the current trader.
    function _pick(uint256 who) internal view returns (uint256) {
        who %= 1 << 8;
        if (who % 4 == 1 && current[1] != 0) return current[1];
        if (who % 8 == 7) return 1 + (who >> 3) % sessionCount;
        return current[0];
    }

    function _freshKey() internal returns (uint256) {
        return
            uint256(keccak256(abi.encode("sak.invariant.key", ++keyNonce))) % (SECP256K1_N - 1) + 1;
    }

    function _stranger(uint256 seed) internal pure returns (uint256) {
        return
            uint256(keccak256(abi.encode("sak.invariant.stranger", seed))) % (SECP256K1_N - 1) + 1;
    }

    function _token3(uint256 seed) internal view returns (MockERC20) {
        seed %= 3;
        return seed == 0 ? a : seed == 1 ? b : x;
    }

    function _spender(uint256 seed) internal view returns (address) {
        seed %= 5;
        return seed == 0
            ? address(router)
            : seed == 1
                ? address(proxy)
                : seed == 2 ? address(grabber) : seed == 3 ? PERMIT2 : thief;
    }

    /// @dev Three times in four a multiple of 1/128 of session 1's cap up to half of it (so caps
    ///      fill up over a few operations whatever the seed's magnitude), otherwise anything up
    ///      to 2.5 caps (for X and the junk: up to 50 units).
    function _amount(address token, uint256 seed) internal view returns (uint256) {
        uint256 cap = token == address(a)
            ? 100e18
            : token == address(b) ? 50e6 : token == address(0) ? 1 ether : 20e18;
        if (seed % 4 != 0) return cap * ((seed >> 2) % 64 + 1) / 128;
        return _bound(seed, 0, cap * 5 / 2);
    }

    /// @dev Two or three hops over A, B, X and the junk, consecutive tokens distinct.
    function _route(uint256 seed) internal view returns (address[] memory route) {
        address[4] memory all = [address(a), address(b), address(x), address(junk)];
        route = new address[](2 + seed % 2);
        uint256 prev = type(uint256).max;
        for (uint256 i; i < route.length; ++i) {
            uint256 pick = (seed >> (4 + 4 * i)) % 4;
            if (pick == prev) pick = (pick + 1) % 4;
            route[i] = all[pick];
            prev = pick;
        }
    }

    /// @dev What the adapter returns: nothing, the first token, first and last, or all.
    function _listFor(address[] memory route, uint256 mode)
        internal
        pure
        returns (address[] memory list)
    {
        mode %= 4;
        if (mode == 0) return new address[](0);
        if (mode == 1) {
            list = new address[](1);
            list[0] = route[0];
        } else if (mode == 2) {
            list = new address[](2);
            (list[0], list[1]) = (route[0], route[route.length - 1]);
        } else {
            list = route;
        }
    }

    function _one(address target, uint256 value, bytes memory data)
        internal
        pure
        returns (Execution[] memory calls)
    {
        calls = new Execution[](1);
        calls[0] = Execution(target, value, data);
    }

    function _oneExec(Execution memory e) internal pure returns (Execution[] memory calls) {
        calls = new Execution[](1);
        calls[0] = e;
    }

    function _via(address target, uint256 value, bytes memory data, address[] memory tokens)
        internal
        view
        returns (Execution memory)
    {
        return Execution(adapter, value, abi.encodeCall(SessionAdapter.run, (target, data, tokens)));
    }

    function _fund(address token, uint256 amount) internal view returns (Execution memory) {
        return Execution(token, 0, abi.encodeCall(IERC20.transfer, (adapter, amount)));
    }

    function _now() internal view returns (uint40) {
        return uint40(vm.getBlockTimestamp());
    }
}
