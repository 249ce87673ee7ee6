// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {ISakSessions} from "../../src/interfaces/ISakSessions.sol";
import {SessionLib} from "../../src/lib/SessionLib.sol";

/// @notice The permission engine alone, for the shared policy vectors: sessions are held here
///         for an account named by the caller, as a validator module holds them. The adapter
///         factory sits at a fixed address (the vectors' `context.adapter`).
contract SessionHarness {
    address public immutable ADAPTER;

    constructor(address adapter) {
        ADAPTER = adapter;
    }

    function _ctx(address account, address entryPoint)
        private
        view
        returns (SessionLib.Ctx memory)
    {
        return SessionLib.Ctx({
            account: account,
            entryPoint: entryPoint,
            holder: address(this),
            adapter: ADAPTER,
            entryPointV08: false
        });
    }

    function grant(address account, address entryPoint, ISakSessions.SessionConfig calldata config)
        external
        returns (uint32)
    {
        return SessionLib.grant(SessionLib.layout(), config, _ctx(account, entryPoint));
    }

    function revoke(address account, uint32 id) external {
        SessionLib.revoke(SessionLib.layout(), account, id);
    }

    function validate(address entryPoint, PackedUserOperation calldata userOp, bytes32 userOpHash)
        external
        returns (uint256)
    {
        return SessionLib.validateUserOp(
            SessionLib.layout(), userOp, userOpHash, _ctx(userOp.sender, entryPoint)
        );
    }

    function sessionDigest(bytes32 userOpHash, uint32 id, uint40 clock, uint40 deadline)
        external
        pure
        returns (bytes32)
    {
        return SessionLib.sessionDigest(userOpHash, id, clock, deadline);
    }

    function parseSessionSignature(bytes calldata sig)
        external
        pure
        returns (uint32 id, uint40 clock, uint40 deadline)
    {
        return SessionLib.parseSessionSignature(sig);
    }

    /// @dev Reverts with `SessionNonceKey` unless `nonce` is in session `id`'s lanes, for an
    ///      account holding its own sessions (`modular` false) or a module's (`modular` true).
    function checkNonceKey(uint256 nonce, uint32 id, bool modular) external view {
        SessionLib.Ctx memory ctx = _ctx(address(this), address(0));
        if (!modular) ctx.account = address(this);
        else ctx.account = address(0xacc);
        SessionLib.checkNonceKey(nonce, id, ctx);
    }

    function spend(address account, uint32 id, address token)
        external
        view
        returns (ISakSessions.SpendView memory)
    {
        return SessionLib.spendView(SessionLib.layout(), account, id, token);
    }
}
