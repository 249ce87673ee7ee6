// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionHarness} from "./utils/SessionHarness.sol";
import {SessionAdapter} from "../src/SessionAdapter.sol";

/// @notice Replays the shared policy vectors (`vectors/policy.json`, written with the Rust
///         evaluator's answers by `crates/policy/tests/vectors.rs`) on the contracts' engine:
///         every step must give the same revert data, validity window and spend counters. With
///         the Rust test, this proves both sides decide alike on every vector.
contract PolicyVectorsTest is Test {
    string internal constant PATH = "contracts/test/vectors/policy.json";

    string internal json;
    address internal account;
    address internal entryPoint;
    SessionHarness internal harness;

    function setUp() public {
        json = vm.readFile(PATH);
        account = vm.parseJsonAddress(json, ".context.account");
        entryPoint = vm.parseJsonAddress(json, ".context.entryPoint");
        address holder = vm.parseJsonAddress(json, ".context.holder");
        // The adapter factory at the vectors' address: grants deploy each account's adapter
        // through it, and the engine derives the adapter (a valid `transfer` recipient, the
        // only `run` target) from it.
        address adapter = vm.parseJsonAddress(json, ".context.adapter");
        deployCodeTo("SessionAdapter.sol:SessionAdapter", adapter);
        deployCodeTo("SessionHarness.sol:SessionHarness", abi.encode(adapter), holder);
        harness = SessionHarness(holder);
        assertEq(
            SessionAdapter(payable(adapter)).adapterOf(account),
            vm.parseJsonAddress(json, ".context.accountAdapter"),
            "Rust and the contracts derive the same adapter address"
        );
    }

    function test_contractsAgreeWithEveryVector() public {
        // The vectors file is read back on every cheatcode call: metering that would only
        // measure the test's JSON handling, over the block gas limit.
        vm.pauseGasMetering();
        uint256 n;
        while (vm.keyExistsJson(json, _case(n))) {
            uint256 snapshot = vm.snapshotState();
            _replay(_case(n));
            vm.revertToState(snapshot);
            ++n;
        }
        assertGt(n, 10, "vectors missing");
    }

    function _replay(string memory c) private {
        string memory name = vm.parseJsonString(json, string.concat(c, ".name"));
        vm.warp(vm.parseJsonUint(json, string.concat(c, ".grantAt")));
        ISakSessions.SessionConfig memory config = abi.decode(
            vm.parseJsonBytes(json, string.concat(c, ".config")), (ISakSessions.SessionConfig)
        );
        uint32 id = harness.grant(account, entryPoint, config);
        assertEq(id, 1, name);
        for (uint256 i; vm.keyExistsJson(json, _step(c, i)); ++i) {
            string memory s = _step(c, i);
            string memory label = string.concat(name, " / step ", vm.toString(i));
            if (
                keccak256(bytes(vm.parseJsonString(json, string.concat(s, ".action"))))
                    == keccak256("revoke")
            ) {
                harness.revoke(account, id);
                continue;
            }
            _validate(s, id, label);
            _checkSpent(s, id, label);
        }
    }

    function _validate(string memory s, uint32 id, string memory label) private {
        uint40 clock = uint40(vm.parseJsonUint(json, string.concat(s, ".clock")));
        address paymaster = vm.parseJsonAddress(json, string.concat(s, ".paymaster"));
        PackedUserOperation memory op = PackedUserOperation({
            sender: account,
            // The harness holds the state for others (the module's layout): validator ‖ id.
            nonce: uint256(id) << 64,
            initCode: "",
            callData: vm.parseJsonBytes(json, string.concat(s, ".callData")),
            accountGasLimits: bytes32(0),
            // The only gas is preVerificationGas: the prefund is it times maxFeePerGas.
            preVerificationGas: vm.parseJsonUint(json, string.concat(s, ".preVerificationGas")),
            gasFees: bytes32(vm.parseJsonUint(json, string.concat(s, ".maxFeePerGas"))),
            paymasterAndData: paymaster == address(0)
                ? bytes("")
                : abi.encodePacked(paymaster, uint128(0), uint128(0)),
            // A well-formed session signature; its ECDSA part is empty (signature checking is
            // not what these vectors are about: it is reported in validationData, not reverted).
            signature: abi.encodePacked(
                uint8(2), id, clock, type(uint40).max, bytes32(0), bytes32(0), uint8(27)
            )
        });
        if (vm.parseJsonBool(json, string.concat(s, ".ok"))) {
            uint256 data = harness.validate(entryPoint, op, bytes32(0));
            uint256 validUntil = uint48(data >> 160);
            uint256 validAfter = uint48(data >> 208);
            assertEq(
                validAfter,
                vm.parseJsonUint(json, string.concat(s, ".validAfter")),
                string.concat(label, ": validAfter")
            );
            assertEq(
                validUntil,
                vm.parseJsonUint(json, string.concat(s, ".validUntil")),
                string.concat(label, ": validUntil")
            );
        } else {
            vm.expectRevert(vm.parseJsonBytes(json, string.concat(s, ".revert")));
            harness.validate(entryPoint, op, bytes32(0));
        }
    }

    function _checkSpent(string memory s, uint32 id, string memory label) private view {
        for (uint256 j; vm.keyExistsJson(json, _spent(s, j)); ++j) {
            string memory e = _spent(s, j);
            address token = vm.parseJsonAddress(json, string.concat(e, ".token"));
            ISakSessions.SpendView memory v = harness.spend(account, id, token);
            assertEq(
                v.spent,
                vm.parseJsonUint(json, string.concat(e, ".spent")),
                string.concat(label, ": spent")
            );
            assertEq(
                v.window,
                vm.parseJsonUint(json, string.concat(e, ".window")),
                string.concat(label, ": window")
            );
        }
    }

    function _case(uint256 i) private pure returns (string memory) {
        return string.concat(".cases[", vm.toString(i), "]");
    }

    function _step(string memory c, uint256 i) private pure returns (string memory) {
        return string.concat(c, ".steps[", vm.toString(i), "]");
    }

    function _spent(string memory s, uint256 j) private pure returns (string memory) {
        return string.concat(s, ".spent[", vm.toString(j), "]");
    }
}
