// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CanonicalDeployer, Canonical} from "./utils/Canonical.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {
    PackedUserOperation
} from "@account-abstraction/contracts/interfaces/PackedUserOperation.sol";

contract CanonicalDeployerTest is CanonicalDeployer {
    function test_deployEntryPointV08_landsAtCanonicalAddress() public {
        IEntryPoint entryPoint = deployEntryPointV08();
        assertEq(address(entryPoint), Canonical.ENTRY_POINT_V08);
        assertGt(address(entryPoint).code.length, 10_000);
    }

    function test_deployEntryPointV08_isIdempotent() public {
        deployEntryPointV08();
        bytes32 codehash = Canonical.ENTRY_POINT_V08.codehash;
        deployEntryPointV08();
        assertEq(Canonical.ENTRY_POINT_V08.codehash, codehash);
    }

    function test_getUserOpHash_bindsChainId() public {
        IEntryPoint entryPoint = deployEntryPointV08();
        PackedUserOperation memory op;
        op.sender = address(0x1111);
        op.nonce = 7;
        bytes32 here = entryPoint.getUserOpHash(op);
        vm.chainId(block.chainid + 1);
        assertNotEq(entryPoint.getUserOpHash(op), here, "the v0.8 hash binds the chain id");
    }
}
