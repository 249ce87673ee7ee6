// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {
    IERC7579Module,
    MODULE_TYPE_EXECUTOR,
    MODULE_TYPE_HOOK,
    MODULE_TYPE_VALIDATOR
} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @notice Another module on a modular account (an owner validator, an executor, a hook): part
///         of the account's admin surface. `setOwner` stands for what such a module lets its
///         account change; it acts for `msg.sender`, as modules do.
contract MockModule is IERC7579Module {
    mapping(address account => address) public ownerOf;

    function onInstall(bytes calldata) external {}

    function onUninstall(bytes calldata) external {}

    function isModuleType(uint256 t) external pure returns (bool) {
        return t == MODULE_TYPE_VALIDATOR || t == MODULE_TYPE_EXECUTOR || t == MODULE_TYPE_HOOK;
    }

    function setOwner(address owner) external {
        ownerOf[msg.sender] = owner;
    }
}
