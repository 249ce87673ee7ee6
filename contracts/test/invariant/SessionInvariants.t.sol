// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {console} from "forge-std/Test.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SessionAdapter} from "../../src/SessionAdapter.sol";
import {MockERC20} from "../../src/mocks/MockERC20.sol";
import {PathDeployer, SessionPath} from "./SessionPaths.sol";
import {OutflowHandler, World} from "./OutflowHandler.sol";
import {MockPermit2} from "../../src/mocks/MockPermit2.sol";
import {MockSpenderProxy} from "../mocks/MockSpenderProxy.sol";
import {MockSwapRouter} from "../mocks/MockSwapRouter.sol";
import {MockGrabber} from "../mocks/MockGrabber.sol";
import {MockERC721} from "../mocks/MockERC721.sol";

/// @title SessionInvariants
/// @notice DESIGN properties 1, 3, 4 and 9 (SECURITY.md cases 25-27, 32, 36, 39, 65-68) under a
///         hostile handler ({OutflowHandler}), on every path a session operation can take: one
///         concrete contract per path below. The account starts with an old owner allowance of
///         the uncapped token X to the router, Permit2 allowances, and an NFT operator approval
///         to a permitted target, all made before the grant; the handler adds more at any time.
///
/// Invariants, over the ghost record of every net decrease of the account's assets:
/// (i)   outside session operations nothing ever leaves the account;
/// (ii)  per session and capped asset, what left during its operations sums to at most its cap
///       in every aligned period [validAfter + k*period, +period), and to at most twice the cap
///       in any window [t, t+period) (the fixed-window boundary effect);
/// (iii) a token a session has no cap for (X; B in helper sessions) and the NFT never leave through
///       it; nothing leaves through a session outside its [validAfter, validUntil];
/// (iv)  no operation of a revoked or expired (or not yet started) session, or signed by a
///       rotated-out or foreign key, ever validates; no session approval ever validates;
/// (v)   the adapter ends every step holding no allowance, Permit2 allowance, operator right
///       or ETH, and nobody pulled from it outside a session operation.
abstract contract SessionInvariantsBase is PathDeployer {
    uint40 internal constant START = 1_800_000_000;
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;

    OutflowHandler internal handler;
    SessionPath internal path;
    World internal w;

    function _kind() internal pure virtual returns (Kind);

    function setUp() public {
        vm.warp(START);
        path = deployPath(_kind(), new SessionAdapter());
        address account = path.account();
        w.path = path;
        w.a = new MockERC20("Capped A", "A", 18);
        w.b = new MockERC20("Capped B", "B", 6);
        w.x = new MockERC20("Uncapped X", "X", 18);
        w.junk = new MockERC20("Attacker Junk", "JUNK", 18);
        w.nft = new MockERC721();
        w.thief = makeAddr("thief");
        vm.etch(PERMIT2, address(new MockPermit2()).code);
        w.proxy = new MockSpenderProxy(address(this));
        w.router = new MockSwapRouter(w.proxy);
        w.proxy.authorise(address(w.router), true);
        address[] memory grabbable = new address[](4);
        (grabbable[0], grabbable[1], grabbable[2], grabbable[3]) =
        (address(w.a), address(w.b), address(w.x), address(w.junk));
        uint256[] memory ids = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (1, 2, 3);
        w.grabber = new MockGrabber(w.thief, grabbable, w.nft, ids);

        // The thief owns every pool: it pays any output token out of its own pocket.
        vm.startPrank(w.thief);
        for (uint256 i; i < 4; ++i) {
            MockERC20(grabbable[i]).mint(w.thief, 1e40);
            MockERC20(grabbable[i]).approve(address(w.router), type(uint256).max);
            for (uint256 j; j < 4; ++j) {
                if (i != j) w.router.setPool(grabbable[i], grabbable[j], w.thief);
            }
        }
        vm.stopPrank();

        // The account's assets, and what the owner approved long before any grant.
        w.a.mint(account, 10_000e18);
        w.b.mint(account, 10_000e6);
        w.x.mint(account, 10_000e18);
        vm.deal(account, 100 ether);
        for (uint256 id = 1; id <= 3; ++id) {
            w.nft.mint(account, id);
        }
        _owner(address(w.x), abi.encodeCall(IERC20.approve, (address(w.router), type(uint256).max)));
        _owner(address(w.x), abi.encodeCall(IERC20.approve, (PERMIT2, type(uint256).max)));
        _owner(address(w.x), abi.encodeCall(IERC20.approve, (address(w.proxy), type(uint256).max)));
        _owner(address(w.a), abi.encodeCall(IERC20.approve, (PERMIT2, type(uint256).max)));
        _owner(
            PERMIT2,
            abi.encodeCall(
                MockPermit2.approve,
                (address(w.x), address(w.router), type(uint160).max, type(uint48).max)
            )
        );
        _owner(
            PERMIT2,
            abi.encodeCall(
                MockPermit2.approve,
                (address(w.a), address(w.grabber), type(uint160).max, type(uint48).max)
            )
        );
        _owner(
            address(w.nft),
            abi.encodeWithSignature("setApprovalForAll(address,bool)", address(w.grabber), true)
        );

        handler = new OutflowHandler(w, uint256(keccak256("sak.invariant.key1")));

        bytes4[] memory selectors = new bytes4[](18);
        selectors[0] = OutflowHandler.sTransfer.selector;
        selectors[1] = OutflowHandler.sSwap.selector;
        selectors[2] = OutflowHandler.sGrab.selector;
        selectors[3] = OutflowHandler.sNft.selector;
        selectors[4] = OutflowHandler.sApprove.selector;
        selectors[5] = OutflowHandler.sPayEth.selector;
        selectors[6] = OutflowHandler.sPull.selector;
        selectors[7] = OutflowHandler.sBatch.selector;
        selectors[8] = OutflowHandler.ownerApprove.selector;
        selectors[9] = OutflowHandler.ownerPermit2.selector;
        selectors[10] = OutflowHandler.ownerNft.selector;
        selectors[11] = OutflowHandler.ownerMint.selector;
        selectors[12] = OutflowHandler.ownerGrant.selector;
        selectors[13] = OutflowHandler.ownerRevoke.selector;
        selectors[14] = OutflowHandler.ownerRotate.selector;
        selectors[15] = OutflowHandler.warp.selector;
        selectors[16] = OutflowHandler.attackerPull.selector;
        selectors[17] = OutflowHandler.sSpend.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    function _owner(address target, bytes memory data) internal {
        (bool ok,) = path.ownerCall(target, data);
        require(ok, "owner call failed");
    }

    /// (i) Nothing leaves the account outside a session operation: not through the owner's
    /// approvals, Permit2, the spender proxy or operator rights, whoever pulls, whenever.
    function invariant_i_nothingLeavesOutsideSessionOps() public view {
        address[5] memory assets = handler.assets();
        for (uint256 i; i < assets.length; ++i) {
            assertEq(handler.outsideOut(assets[i]), 0, "left the account outside a session op");
        }
    }

    /// (ii) Per session and capped asset: <= cap in every aligned period, <= 2 x cap in any
    /// window of one period.
    function invariant_ii_outflowPerWindowWithinCap() public view {
        address[5] memory assets = handler.assets();
        for (uint256 s = 1; s <= handler.sessionCount(); ++s) {
            for (uint256 i; i < assets.length; ++i) {
                (uint96 cap,) = handler.caps(s, assets[i]);
                if (cap == 0) continue;
                assertLe(handler.maxFixedWindow(s, assets[i]), cap, "over the cap in a period");
                assertLe(
                    handler.maxAnyWindow(s, assets[i]), 2 * uint256(cap), "over 2 caps in a window"
                );
            }
        }
    }

    /// (iii) Uncapped tokens and the NFT never leave through a session; nothing leaves through
    /// a session outside its time bounds.
    function invariant_iii_uncappedNeverLeaves() public view {
        address[5] memory assets = handler.assets();
        for (uint256 s = 1; s <= handler.sessionCount(); ++s) {
            for (uint256 i; i < assets.length; ++i) {
                assertEq(handler.uncappedOut(s, assets[i]), 0, "an uncapped asset left");
            }
        }
        assertEq(handler.outOfTimeOut(), 0, "left outside the session's time bounds");
        assertEq(w.x.balanceOf(path.account()) >= 10_000e18, true, "X left the account");
        for (uint256 id = 1; id <= 3; ++id) {
            assertEq(w.nft.ownerOf(id), path.account(), "an NFT left the account");
        }
    }

    /// (iv) Revoked, expired, not yet started, rotated-out or foreign: never validates. And a
    /// session never gets an approval through.
    function invariant_iv_deadSessionsNeverValidate() public view {
        assertEq(handler.validatedWhenDead(), 0, "a dead session or key validated");
        assertEq(handler.approvalsValidated(), 0, "a session approval validated");
    }

    /// (v) The adapter keeps nothing that would let anyone pull later.
    function invariant_v_adapterKeepsNoRights() public view {
        address adapter = path.adapter();
        address[4] memory tokens = [address(w.a), address(w.b), address(w.x), address(w.junk)];
        address[5] memory spenders =
            [address(w.router), address(w.proxy), address(w.grabber), PERMIT2, w.thief];
        for (uint256 i; i < tokens.length; ++i) {
            for (uint256 j; j < spenders.length; ++j) {
                assertEq(IERC20(tokens[i]).allowance(adapter, spenders[j]), 0, "adapter allowance");
                (uint160 amount,,) = MockPermit2(PERMIT2).allowance(adapter, tokens[i], spenders[j]);
                assertEq(amount, 0, "adapter Permit2 allowance");
            }
        }
        for (uint256 j; j < spenders.length; ++j) {
            assertFalse(w.nft.isApprovedForAll(adapter, spenders[j]), "adapter NFT operator");
        }
        assertEq(adapter.balance, 0, "the adapter kept ETH");
        assertEq(handler.adapterPulledOutside(), 0, "pulled from the adapter outside a session op");
    }

    /// Not a property: what the run exercised.
    function afterInvariant() public view {
        console.log(path.name());
        console.log(
            "ops tried / validated / executed",
            handler.opsTried(),
            handler.opsValidated(),
            handler.opsExecuted()
        );
        console.log(
            "dead tries / edge-clock ops / pulls",
            handler.deadTried(),
            handler.boundaryOps(),
            handler.pullsTried()
        );
        console.log(
            "revokes / rotations / owner acts",
            handler.revokes(),
            handler.rotations(),
            handler.ownerActs()
        );
        console.log(
            "sessions / A out s1 / max window s1",
            handler.sessionCount(),
            handler.totalOut(1, address(w.a)),
            handler.maxFixedWindow(1, address(w.a))
        );
        console.log(
            "B out s1 / ETH out s1 / s2",
            handler.totalOut(1, address(w.b)),
            handler.totalOut(1, address(0)),
            handler.totalOut(2, address(0))
        );
        console.log(
            "A / B left in the adapter",
            w.a.balanceOf(path.adapter()),
            w.b.balanceOf(path.adapter())
        );
    }
}

contract SessionInvariantsSmartAccountTest is SessionInvariantsBase {
    function _kind() internal pure override returns (Kind) {
        return Kind.SmartAccount;
    }
}

contract SessionInvariants7702DirectTest is SessionInvariantsBase {
    function _kind() internal pure override returns (Kind) {
        return Kind.Direct7702;
    }
}

contract SessionInvariantsModuleV08Test is SessionInvariantsBase {
    function _kind() internal pure override returns (Kind) {
        return Kind.ModuleV08;
    }
}

contract SessionInvariantsModuleV07Test is SessionInvariantsBase {
    function _kind() internal pure override returns (Kind) {
        return Kind.ModuleV07;
    }
}
