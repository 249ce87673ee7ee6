// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @title MockERC7579AccountOn
/// @notice The test stand-in for a modular account on any EntryPoint: v0.7 at its canonical
///         address (0x0000000071727De22E5E9d8BAf0edAc6f37da032), OpenZeppelin's default v0.9,
///         or one of its own. One validator module is installed at construction. Like
///         MockERC7579Account it has no owner key: management calls come from the account itself
///         (a forge prank).
contract MockERC7579AccountOn is AccountERC7579 {
    IEntryPoint private immutable ENTRY_POINT;

    constructor(address validator, address entryPoint_) {
        ENTRY_POINT = IEntryPoint(entryPoint_);
        _installModule(MODULE_TYPE_VALIDATOR, validator, "");
    }

    function entryPoint() public view override returns (IEntryPoint) {
        return ENTRY_POINT;
    }
}
