// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {ISakSessions} from "../src/interfaces/ISakSessions.sol";
import {SessionHarness} from "./utils/SessionHarness.sol";
import {SessionEnvelope} from "./utils/SessionEnvelope.sol";

/// @notice Checks the contracts against the shared session-envelope vectors
///         (`vectors/envelope.json`, written by `crates/userop/tests/envelope_vectors.rs`): the
///         digest the engine computes, the signature bytes it parses (and `vm.sign` reproduces
///         the Rust signer's ECDSA bytes exactly), and the nonce keys it admits and refuses.
contract EnvelopeVectorsTest is Test {
    string internal constant PATH = "contracts/test/vectors/envelope.json";

    string internal json;
    SessionHarness internal harness;

    function setUp() public {
        json = vm.readFile(PATH);
        harness = new SessionHarness(address(0));
    }

    function test_theDomainAndTypehash_areTheWrittenOnes() public view {
        assertEq(vm.parseJsonBytes32(json, ".domainSeparator"), SessionEnvelope.domainSeparator());
        assertEq(vm.parseJsonBytes32(json, ".typehash"), SessionEnvelope.OP_TYPEHASH);
    }

    function test_signatures_digestParseAndBytes_matchRust() public view {
        uint256 key = vm.parseJsonUint(json, ".signerKey");
        assertEq(vm.addr(key), vm.parseJsonAddress(json, ".signer"));
        uint256 n;
        for (; vm.keyExistsJson(json, _at(".signatures", n)); ++n) {
            string memory v = _at(".signatures", n);
            bytes32 hash = vm.parseJsonBytes32(json, string.concat(v, ".userOpHash"));
            uint32 id = uint32(vm.parseJsonUint(json, string.concat(v, ".id")));
            uint40 clock = uint40(vm.parseJsonUint(json, string.concat(v, ".clock")));
            uint40 deadline = uint40(vm.parseJsonUint(json, string.concat(v, ".deadline")));
            bytes32 digest = vm.parseJsonBytes32(json, string.concat(v, ".digest"));
            bytes memory signature = vm.parseJsonBytes(json, string.concat(v, ".signature"));

            assertEq(harness.sessionDigest(hash, id, clock, deadline), digest, "engine digest");
            assertEq(SessionEnvelope.digest(hash, id, clock, deadline), digest, "written digest");
            (uint32 pid, uint40 pclock, uint40 pdeadline) = harness.parseSessionSignature(signature);
            assertEq(abi.encode(pid, pclock, pdeadline), abi.encode(id, clock, deadline), "parse");
            (uint8 sv, bytes32 sr, bytes32 ss) = vm.sign(key, digest);
            assertEq(SessionEnvelope.encode(id, clock, deadline, sv, sr, ss), signature, "bytes");
        }
        assertEq(n, 3);
    }

    function test_nonceKeys_areAdmittedForTheirSessionOnly() public {
        uint256 n;
        for (; vm.keyExistsJson(json, _at(".nonceKeys", n)); ++n) {
            string memory v = _at(".nonceKeys", n);
            uint32 id = uint32(vm.parseJsonUint(json, string.concat(v, ".id")));
            uint192 key = uint192(vm.parseJsonUint(json, string.concat(v, ".key")));
            uint128 lane = uint128(vm.parseJsonUint(json, string.concat(v, ".lane")));
            assertEq(key, SessionEnvelope.nonceKey(id, lane), "the written layout");
            harness.checkNonceKey((uint256(key) << 64) | 5, id, false);
            vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNonceKey.selector, key));
            harness.checkNonceKey(uint256(key) << 64, id ^ 1, false);
        }
        assertEq(n, 3);
        address validator = vm.parseJsonAddress(json, ".validator");
        for (n = 0; vm.keyExistsJson(json, _at(".moduleNonceKeys", n)); ++n) {
            string memory v = _at(".moduleNonceKeys", n);
            uint32 id = uint32(vm.parseJsonUint(json, string.concat(v, ".id")));
            uint192 key = uint192(vm.parseJsonUint(json, string.concat(v, ".key")));
            assertEq(key, SessionEnvelope.moduleNonceKey(validator, id), "the written layout");
            harness.checkNonceKey(uint256(key) << 64, id, true);
            vm.expectRevert(abi.encodeWithSelector(ISakSessions.SessionNonceKey.selector, key));
            harness.checkNonceKey(uint256(key) << 64, id ^ 1, true);
        }
        assertEq(n, 2);
    }

    function _at(string memory list, uint256 i) private pure returns (string memory) {
        return string.concat(list, "[", vm.toString(i), "]");
    }
}
