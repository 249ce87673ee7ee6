// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";
import {MockERC20} from "../../src/mocks/MockERC20.sol";

interface IUniswapV2Router {
    function factory() external view returns (address);
    function addLiquidity(
        address tokenA,
        address tokenB,
        uint256 amountADesired,
        uint256 amountBDesired,
        uint256 amountAMin,
        uint256 amountBMin,
        address to,
        uint256 deadline
    ) external returns (uint256 amountA, uint256 amountB, uint256 liquidity);
    function swapExactTokensForTokens(
        uint256 amountIn,
        uint256 amountOutMin,
        address[] calldata path,
        address to,
        uint256 deadline
    ) external returns (uint256[] memory amounts);
    function getAmountsOut(uint256 amountIn, address[] calldata path)
        external
        view
        returns (uint256[] memory);
}

/// @notice The real Uniswap V2 (factory, WETH9, router 02) from the npm packages' compiled
///         artifacts, deployed inside forge.
library UniswapV2 {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function deploy() internal returns (IUniswapV2Router router) {
        address factory =
            create(code("@uniswap/v2-core/build/UniswapV2Factory.json"), abi.encode(address(0)));
        address weth = create(code("@uniswap/v2-periphery/build/WETH9.json"), "");
        router = IUniswapV2Router(
            create(
                code("@uniswap/v2-periphery/build/UniswapV2Router02.json"),
                abi.encode(factory, weth)
            )
        );
    }

    /// @dev A tUSD (6 decimals) / TKN (18 decimals) pool at 2,000,000 : 1,000, as the Rust test
    ///      kit seeds it on anvil; the liquidity goes to the caller.
    function seedPool(IUniswapV2Router router, MockERC20 usd, MockERC20 tkn) internal {
        usd.mint(address(this), 2_000_000e6);
        tkn.mint(address(this), 1_000e18);
        usd.approve(address(router), type(uint256).max);
        tkn.approve(address(router), type(uint256).max);
        router.addLiquidity(
            address(usd),
            address(tkn),
            2_000_000e6,
            1_000e18,
            0,
            0,
            address(this),
            type(uint256).max
        );
    }

    /// @dev Waffle artifacts store `bytecode` as hex without the 0x prefix.
    function code(string memory artifact) private view returns (bytes memory) {
        string memory json = vm.readFile(string.concat("node_modules/", artifact));
        return vm.parseBytes(string.concat("0x", vm.parseJsonString(json, ".bytecode")));
    }

    function create(bytes memory initcode, bytes memory args) private returns (address deployed) {
        bytes memory all = bytes.concat(initcode, args);
        assembly {
            deployed := create(0, add(all, 0x20), mload(all))
        }
        require(deployed != address(0), "Uniswap V2 deployment failed");
    }
}
