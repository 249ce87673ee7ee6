// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title SessionAdapter
/// @notice Where a session's calls come from. A session never makes its account call a
///         contract (other than `transfer` on a capped token): every other call goes through
///         the account's adapter, an ERC-1167 clone of this contract that only its account can
///         drive. The called contract sees the adapter as `msg.sender`, and the adapter holds
///         no allowance, operator right or position of the account: only what the session
///         moved into it, each unit charged to a cap when it left the account. So whatever a
///         target pulls, through whatever allowance, Permit2 approval, operator approval or
///         token of its own choosing, it can reach nothing of the account's beyond the charges.
///
/// One call (`run`): approve the target for the adapter's whole balance of each listed token,
/// call it with the forwarded ETH, withdraw those approvals, and return every listed token and
/// all ETH the adapter holds to the account. Nothing stays approved after a call.
///
/// This contract is both the implementation and the factory of the clones: the adapter of
/// `account` is at {adapterOf}(account), a CREATE2 address from this contract with the account
/// as salt, known before it is deployed (sak's grant deploys it).
contract SessionAdapter {
    using SafeERC20 for IERC20;

    /// @dev This contract's own address: the clones' implementation and deployer.
    address private immutable SELF;

    event AdapterDeployed(address indexed account, address adapter);

    /// @notice The caller is not the account this adapter belongs to (or this is not a clone).
    error NotTheAccount(address caller);
    /// @notice Clones cannot deploy clones.
    error NotTheFactory();

    constructor() {
        SELF = address(this);
    }

    /// @notice Deploys the adapter of `account` unless it exists; returns its address. Anyone
    ///         may call it: the adapter obeys only `account`.
    function deploy(address account) external returns (address adapter) {
        if (address(this) != SELF) revert NotTheFactory();
        adapter = adapterOf(account);
        if (adapter.code.length == 0) {
            Clones.cloneDeterministic(SELF, _salt(account));
            emit AdapterDeployed(account, adapter);
        }
    }

    /// @notice The address of `account`'s adapter (deployed or not).
    function adapterOf(address account) public view returns (address) {
        return Clones.predictDeterministicAddress(SELF, _salt(account), SELF);
    }

    /// @notice Calls `target` with `data` and the ETH sent, as this adapter. Before: approves
    ///         `target` for the adapter's whole balance of each of `tokens`. After: withdraws
    ///         those approvals and returns every one of `tokens` and all ETH to the account.
    ///         Reverts with the target's revert data when the call fails. Only the account.
    /// @return result What the target returned.
    function run(address target, bytes calldata data, address[] calldata tokens)
        external
        payable
        returns (bytes memory result)
    {
        address account = _onlyAccount();
        for (uint256 i; i < tokens.length; ++i) {
            IERC20 token = IERC20(tokens[i]);
            uint256 balance = token.balanceOf(address(this));
            if (balance != 0) token.forceApprove(target, balance);
        }
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        for (uint256 i; i < tokens.length; ++i) {
            IERC20 token = IERC20(tokens[i]);
            if (token.allowance(address(this), target) != 0) token.forceApprove(target, 0);
        }
        _return(account, tokens);
    }

    /// @notice Returns every one of `tokens` and all ETH the adapter holds to the account (for
    ///         whatever a session moved here and did not use). Only the account.
    function sweep(address[] calldata tokens) external {
        _return(_onlyAccount(), tokens);
    }

    /// @dev A clone, called by its own account.
    function _onlyAccount() private view returns (address account) {
        // Also refuses calls to the implementation: no account's adapter is at SELF.
        account = msg.sender;
        if (adapterOf(account) != address(this)) revert NotTheAccount(account);
    }

    function _return(address account, address[] calldata tokens) private {
        for (uint256 i; i < tokens.length; ++i) {
            IERC20 token = IERC20(tokens[i]);
            uint256 balance = token.balanceOf(address(this));
            if (balance != 0) token.safeTransfer(account, balance);
        }
        uint256 eth = address(this).balance;
        if (eth != 0) {
            (bool sent, bytes memory reason) = account.call{value: eth}("");
            if (!sent) {
                assembly ("memory-safe") {
                    revert(add(reason, 0x20), mload(reason))
                }
            }
        }
    }

    function _salt(address account) private pure returns (bytes32) {
        return bytes32(uint256(uint160(account)));
    }

    /// @dev Swap outputs and refunds in ETH arrive here before they are returned.
    receive() external payable {}
}
