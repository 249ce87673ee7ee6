// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";

/// @notice Canonical addresses, identical to `sak_contracts`'s constants in Rust.
library Canonical {
    /// @dev Arachnid's deterministic deployer: calldata `salt ++ initcode`.
    address internal constant CREATE2_DEPLOYER = 0x4e59b44847b379578588920cA78FbF26c0B4956C;
    address internal constant ENTRY_POINT_V08 = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;
    bytes32 internal constant ENTRY_POINT_V08_SALT =
        0x0a59dbff790c23c976a548690c27297883cc66b4c67024f9117b0238995e35e9;
}

/// @notice Deploys the published EntryPoint v0.8 bytecode (from npm) at its canonical address,
///         the way the Rust test kit does on anvil, so forge tests run against the real thing.
abstract contract CanonicalDeployer is Test {
    string internal constant ENTRY_POINT_ARTIFACT =
        "node_modules/@account-abstraction/contracts/artifacts/EntryPoint.json";

    function deployEntryPointV08() internal returns (IEntryPoint) {
        if (Canonical.ENTRY_POINT_V08.code.length == 0) {
            bytes memory initcode =
                vm.parseJsonBytes(vm.readFile(ENTRY_POINT_ARTIFACT), ".bytecode");
            address deployed = create2(Canonical.ENTRY_POINT_V08_SALT, initcode);
            require(
                deployed == Canonical.ENTRY_POINT_V08,
                "EntryPoint v0.8 not at its canonical address"
            );
        }
        return IEntryPoint(Canonical.ENTRY_POINT_V08);
    }

    /// @dev Deploys through the CREATE2 deployer and returns the address it reports.
    function create2(bytes32 salt, bytes memory initcode) internal returns (address) {
        (bool ok, bytes memory ret) =
            Canonical.CREATE2_DEPLOYER.call(abi.encodePacked(salt, initcode));
        require(ok && ret.length == 20, "CREATE2 deployment failed");
        // forge-lint: disable-next-line(unsafe-typecast) the deployer returns exactly 20 bytes
        return address(bytes20(ret));
    }
}
