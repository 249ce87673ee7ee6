// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, Vm} from "forge-std/Test.sol";
import {SessionAdapter} from "../src/SessionAdapter.sol";
import {MockERC20} from "../src/mocks/MockERC20.sol";
import {MockResetApproveERC20} from "./mocks/MockResetApproveERC20.sol";

/// @notice What an adapter's caller asks it to call: it pulls through the allowance it was
///         given (recording it), pays out, refunds ETH, fails, answers or calls back.
contract Counterparty {
    uint256 public seenAllowance;

    error Refused(bytes32 why);

    /// @dev Pulls `amount` of `token` from the caller (tokens that return nothing included).
    function pull(address token, uint256 amount) external {
        (, bytes memory ret) = token.staticcall(
            abi.encodeWithSignature("allowance(address,address)", msg.sender, this)
        );
        seenAllowance = abi.decode(ret, (uint256));
        (bool ok, bytes memory out) = token.call(
            abi.encodeWithSignature(
                "transferFrom(address,address,uint256)", msg.sender, this, amount
            )
        );
        require(ok && (out.length == 0 || abi.decode(out, (bool))), "pull failed");
    }

    /// @dev Pays `amount` of `output` to the caller (a swap's output) and sends back all but
    ///      `keep` wei of the ETH it was sent (a refund).
    function payOut(MockERC20 output, uint256 amount, uint256 keep) external payable {
        output.mint(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: msg.value - keep}("");
        require(ok, "refund failed");
    }

    function refuse(bytes32 why) external pure {
        revert Refused(why);
    }

    function answer(uint256 x) external pure returns (uint256, string memory) {
        return (x * 2, "answered");
    }

    /// @dev Calls back into the adapter that called it.
    function reenter(bool sweep) external {
        SessionAdapter adapter = SessionAdapter(payable(msg.sender));
        if (sweep) adapter.sweep(new address[](0));
        else adapter.run(address(this), "", new address[](0));
    }
}

/// @notice SessionAdapter alone: the factory and its clones, who may drive a clone, and what a
///         `run` leaves behind (no approval, none of the listed tokens, no ETH).
contract SessionAdapterTest is Test {
    SessionAdapter internal adapters;
    SessionAdapter internal adapter;
    Counterparty internal counterparty;
    MockERC20 internal usd;
    MockERC20 internal tkn;
    address internal account = makeAddr("account");

    function setUp() public {
        adapters = new SessionAdapter();
        adapter = SessionAdapter(payable(adapters.deploy(account)));
        counterparty = new Counterparty();
        usd = new MockERC20("Test USD", "tUSD", 6);
        tkn = new MockERC20("Test Token", "TKN", 18);
    }

    function list(address a) internal pure returns (address[] memory l) {
        l = new address[](1);
        l[0] = a;
    }

    function list(address a, address b) internal pure returns (address[] memory l) {
        l = new address[](2);
        l[0] = a;
        l[1] = b;
    }

    function notTheAccount(address caller) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SessionAdapter.NotTheAccount.selector, caller);
    }

    function deployedEvents() internal returns (uint256 n) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == SessionAdapter.AdapterDeployed.selector) ++n;
        }
    }

    // -------------------------------------------------------------------------------------
    // deploy and adapterOf
    // -------------------------------------------------------------------------------------

    function test_deploy_deploysAtAdapterOf_andEmitsAdapterDeployed() public {
        address next = makeAddr("next");
        address predicted = adapters.adapterOf(next);
        assertEq(predicted.code.length, 0);
        vm.expectEmit(true, false, false, true, address(adapters));
        emit SessionAdapter.AdapterDeployed(next, predicted);
        assertEq(adapters.deploy(next), predicted);
        assertGt(predicted.code.length, 0);
    }

    function test_deploy_isIdempotent_andEmitsOnce() public {
        address next = makeAddr("next");
        vm.recordLogs();
        address first = adapters.deploy(next);
        bytes32 codehash = first.codehash;
        address second = adapters.deploy(next);
        assertEq(second, first);
        assertEq(first.codehash, codehash);
        assertEq(deployedEvents(), 1, "one AdapterDeployed for two deploys");
    }

    /// @dev Anyone may deploy an account's adapter early: it still obeys that account only.
    function testFuzz_deploy_byAnyone_yieldsAnAdapterOnlyItsAccountDrives(uint160 raw) public {
        address caller = address(uint160(bound(raw, 1, type(uint160).max)));
        address next = makeAddr("next");
        if (caller == next) caller = account;
        vm.prank(caller);
        SessionAdapter deployed = SessionAdapter(payable(adapters.deploy(next)));
        vm.prank(caller);
        vm.expectRevert(notTheAccount(caller));
        deployed.sweep(new address[](0));
        vm.prank(next);
        deployed.sweep(new address[](0));
    }

    function test_deploy_reverts_onAClone() public {
        vm.expectRevert(SessionAdapter.NotTheFactory.selector);
        adapter.deploy(makeAddr("next"));
    }

    function testFuzz_adapterOf_isPerAccount_andPerFactory(uint160 a, uint160 b) public {
        address first = address(uint160(bound(a, 0, type(uint160).max)));
        address second = address(uint160(bound(b, 0, type(uint160).max)));
        if (first == second) second = address(uint160(second) ^ 1);
        assertNotEq(adapters.adapterOf(first), adapters.adapterOf(second));
        SessionAdapter otherFactory = new SessionAdapter();
        assertNotEq(otherFactory.adapterOf(first), adapters.adapterOf(first));
    }

    /// @dev A clone answers adapterOf like its factory (it reads the factory's address from
    ///      its immutable, not its own).
    function test_adapterOf_onAClone_matchesTheFactory() public view {
        assertEq(adapter.adapterOf(account), address(adapter));
        assertEq(adapters.adapterOf(account), address(adapter));
    }

    // -------------------------------------------------------------------------------------
    // Only the account
    // -------------------------------------------------------------------------------------

    function testFuzz_run_reverts_forAnyoneButTheAccount(uint160 raw) public {
        address caller = address(uint160(bound(raw, 0, type(uint160).max)));
        if (caller == account) caller = address(this);
        vm.prank(caller);
        vm.expectRevert(notTheAccount(caller));
        adapter.run(address(counterparty), "", new address[](0));
    }

    function testFuzz_sweep_reverts_forAnyoneButTheAccount(uint160 raw) public {
        address caller = address(uint160(bound(raw, 0, type(uint160).max)));
        if (caller == account) caller = address(this);
        vm.prank(caller);
        vm.expectRevert(notTheAccount(caller));
        adapter.sweep(list(address(usd)));
    }

    /// @dev Another account with an adapter of its own is a stranger to this one.
    function test_run_reverts_forAnotherAccount() public {
        address second = makeAddr("second");
        adapters.deploy(second);
        vm.prank(second);
        vm.expectRevert(notTheAccount(second));
        adapter.run(address(counterparty), "", new address[](0));
    }

    /// @dev The implementation is no one's adapter: not even an account may drive it.
    function testFuzz_run_reverts_onTheImplementation(uint160 raw) public {
        address caller = address(uint160(bound(raw, 0, type(uint160).max)));
        vm.prank(caller);
        vm.expectRevert(notTheAccount(caller));
        adapters.run(address(counterparty), "", new address[](0));
    }

    function testFuzz_sweep_reverts_onTheImplementation(uint160 raw) public {
        address caller = address(uint160(bound(raw, 0, type(uint160).max)));
        vm.prank(caller);
        vm.expectRevert(notTheAccount(caller));
        adapters.sweep(new address[](0));
    }

    /// @dev A target cannot call back into the adapter: it is not the account.
    function testFuzz_run_reverts_whenTheTargetCallsBack(bool sweep) public {
        vm.prank(account);
        vm.expectRevert(notTheAccount(address(counterparty)));
        adapter.run(
            address(counterparty), abi.encodeCall(Counterparty.reenter, (sweep)), new address[](0)
        );
    }

    // -------------------------------------------------------------------------------------
    // run: approvals
    // -------------------------------------------------------------------------------------

    function pull(address token, uint256 amount) internal pure returns (bytes memory) {
        return abi.encodeCall(Counterparty.pull, (token, amount));
    }

    function testFuzz_run_approvesTheWholeBalance_thenWithdrawsIt(uint256 funded, uint256 pulled)
        public
    {
        funded = bound(funded, 1, 1e30);
        pulled = bound(pulled, 0, funded);
        usd.mint(address(adapter), funded);
        vm.prank(account);
        adapter.run(address(counterparty), pull(address(usd), pulled), list(address(usd)));
        assertEq(counterparty.seenAllowance(), funded, "approved for the whole balance");
        assertEq(usd.allowance(address(adapter), address(counterparty)), 0, "approval withdrawn");
        assertEq(usd.balanceOf(address(counterparty)), pulled);
        assertEq(usd.balanceOf(account), funded - pulled, "the rest went back");
        assertEq(usd.balanceOf(address(adapter)), 0);
    }

    /// @dev USDT refuses to change a non-zero allowance to another: the leftover after a
    ///      partial pull is still withdrawn, and the next run approves again.
    function testFuzz_run_withdrawsTheApproval_ofAResetToZeroToken(uint256 funded, uint256 pulled)
        public
    {
        MockResetApproveERC20 usdt = new MockResetApproveERC20();
        funded = bound(funded, 2, 1e30);
        pulled = bound(pulled, 1, funded - 1); // leaves an allowance to withdraw
        usdt.mint(address(adapter), funded);
        vm.prank(account);
        adapter.run(address(counterparty), pull(address(usdt), pulled), list(address(usdt)));
        assertEq(counterparty.seenAllowance(), funded);
        assertEq(usdt.allowance(address(adapter), address(counterparty)), 0);
        assertEq(usdt.balanceOf(account), funded - pulled);

        usdt.mint(address(adapter), funded);
        vm.prank(account);
        adapter.run(address(counterparty), pull(address(usdt), funded), list(address(usdt)));
        assertEq(usdt.allowance(address(adapter), address(counterparty)), 0);
        assertEq(usdt.balanceOf(address(counterparty)), pulled + funded);
    }

    /// @dev Should the adapter ever hold a leftover allowance of such a token, `run` still
    ///      sets the one it needs (reset, then approve) and withdraws it.
    function test_run_replacesALeftoverApproval_ofAResetToZeroToken() public {
        MockResetApproveERC20 usdt = new MockResetApproveERC20();
        usdt.mint(address(adapter), 100e6);
        vm.prank(address(adapter));
        usdt.approve(address(counterparty), 5);
        vm.prank(account);
        adapter.run(address(counterparty), pull(address(usdt), 60e6), list(address(usdt)));
        assertEq(counterparty.seenAllowance(), 100e6);
        assertEq(usdt.allowance(address(adapter), address(counterparty)), 0);
        assertEq(usdt.balanceOf(account), 40e6);
    }

    /// @dev Only listed tokens are approved: the target can pull nothing else.
    function test_run_approvesNothingUnlisted() public {
        usd.mint(address(adapter), 100e6);
        vm.prank(account);
        vm.expectRevert();
        adapter.run(address(counterparty), pull(address(usd), 1), new address[](0));
        assertEq(usd.balanceOf(address(adapter)), 100e6);
    }

    // -------------------------------------------------------------------------------------
    // run: what goes back, what comes out
    // -------------------------------------------------------------------------------------

    function testFuzz_run_returnsListedTokensAndAllEthToTheAccount(
        uint256 value,
        uint256 keep,
        uint256 output
    ) public {
        value = bound(value, 0, 100 ether);
        keep = bound(keep, 0, value);
        output = bound(output, 0, 1e30);
        vm.deal(account, value);
        vm.prank(account);
        adapter.run{value: value}(
            address(counterparty),
            abi.encodeCall(Counterparty.payOut, (tkn, output, keep)),
            list(address(usd), address(tkn))
        );
        assertEq(address(counterparty).balance, keep, "the target got the ETH forwarded");
        assertEq(account.balance, value - keep, "the refund went back to the account");
        assertEq(tkn.balanceOf(account), output, "the output went to the account");
        assertEq(address(adapter).balance, 0);
        assertEq(tkn.balanceOf(address(adapter)), 0);
    }

    /// @dev An unlisted token stays in the adapter (still the account's: only it can sweep).
    function test_run_keepsUnlistedTokens_untilTheAccountSweeps() public {
        vm.prank(account);
        adapter.run(
            address(counterparty),
            abi.encodeCall(Counterparty.payOut, (tkn, 5e18, 0)),
            list(address(usd))
        );
        assertEq(tkn.balanceOf(address(adapter)), 5e18);
        vm.prank(account);
        adapter.sweep(list(address(tkn)));
        assertEq(tkn.balanceOf(account), 5e18);
        assertEq(tkn.balanceOf(address(adapter)), 0);
    }

    function testFuzz_run_bubblesTheTargetsRevertData(bytes32 why) public {
        usd.mint(address(adapter), 100e6);
        vm.prank(account);
        vm.expectRevert(abi.encodeWithSelector(Counterparty.Refused.selector, why));
        adapter.run(
            address(counterparty), abi.encodeCall(Counterparty.refuse, (why)), list(address(usd))
        );
    }

    function test_run_bubblesAnEmptyRevert() public {
        vm.prank(account);
        vm.expectRevert(bytes(""));
        adapter.run(address(usd), hex"deadbeef", new address[](0)); // no such function
    }

    function testFuzz_run_returnsWhatTheTargetReturned(uint256 x) public {
        x = bound(x, 0, type(uint128).max);
        vm.prank(account);
        bytes memory result = adapter.run(
            address(counterparty), abi.encodeCall(Counterparty.answer, (x)), new address[](0)
        );
        (uint256 doubled, string memory said) = abi.decode(result, (uint256, string));
        assertEq(doubled, 2 * x);
        assertEq(said, "answered");
    }

    // -------------------------------------------------------------------------------------
    // sweep and receive
    // -------------------------------------------------------------------------------------

    function testFuzz_sweep_returnsTheListedTokensAndAllEth(uint256 amount, uint256 value) public {
        amount = bound(amount, 0, 1e30);
        value = bound(value, 0, 100 ether);
        usd.mint(address(adapter), amount);
        tkn.mint(address(adapter), amount);
        vm.deal(address(this), value);
        (bool ok,) = address(adapter).call{value: value}("");
        assertTrue(ok, "the adapter accepts ETH");
        vm.prank(account);
        adapter.sweep(list(address(usd)));
        assertEq(usd.balanceOf(account), amount);
        assertEq(account.balance, value);
        assertEq(tkn.balanceOf(address(adapter)), amount, "not listed: not swept");
    }
}
