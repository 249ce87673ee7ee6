// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AccountERC7579} from "@openzeppelin/contracts/account/extensions/draft-AccountERC7579.sol";
import {IEntryPoint} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {MODULE_TYPE_VALIDATOR} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";

/// @title MockERC7579Account
/// @notice A bare OpenZeppelin ERC-7579 account (EntryPoint v0.8) with one validator module
///         installed at construction: the stand-in for a third-party modular account in tests
///         of {SessionKeyValidator}, in forge and on anvil. It has no owner key: operations
///         validate only through the module, and management calls come from the account itself
///         (a forge prank or anvil impersonation). Never deploy it where it would hold value.
contract MockERC7579Account is AccountERC7579 {
    /// @param validator The validator module to install (its `onInstall` gets empty data).
    constructor(address validator) {
        _installModule(MODULE_TYPE_VALIDATOR, validator, "");
    }

    /// @notice EntryPoint v0.8 at its canonical address.
    function entryPoint() public pure override returns (IEntryPoint) {
        return IEntryPoint(0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108);
    }
}
