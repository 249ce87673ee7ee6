// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Script, console} from "forge-std/Script.sol";
import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";
import {SakAccount} from "../contracts/src/SakAccount.sol";
import {SakAccountFactory} from "../contracts/src/SakAccountFactory.sol";
import {Sak7702Account} from "../contracts/src/Sak7702Account.sol";
import {Sak7579Account} from "../contracts/src/Sak7579Account.sol";
import {Sak7579AccountFactory} from "../contracts/src/Sak7579AccountFactory.sol";
import {SessionKeyValidator} from "../contracts/src/SessionKeyValidator.sol";
import {SessionAdapter} from "../contracts/src/SessionAdapter.sol";

/// @title Deploy
/// @notice Deploys sak's contracts through the deterministic CREATE2 deployer, with salt 0, so
///         each address depends only on the bytecode: the same on every chain, and the same as
///         `sak deploy` (which sends the same `salt ++ initcode` from the committed artifacts).
///         Idempotent: a contract already at its address is left alone (code at a CREATE2
///         address can only come from that initcode). Without `--broadcast` it is a dry run.
///
/// Local (anvil's unlocked dev account, no key anywhere):
///   forge script script/Deploy.s.sol --rpc-url http://127.0.0.1:8545 --broadcast \
///     --unlocked --sender 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
/// Sepolia (a keystore, or --ledger / --trezor; never a raw key on the command line):
///   forge script script/Deploy.s.sol --rpc-url "$SEPOLIA_RPC_URL" --broadcast \
///     --account deployer --sender <its address>
contract Deploy is Script {
    /// @dev Arachnid's deterministic deployment proxy: calldata `salt ++ initcode`.
    address internal constant CREATE2_DEPLOYER = 0x4e59b44847b379578588920cA78FbF26c0B4956C;
    address internal constant ENTRY_POINT_V08 = 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108;
    bytes32 internal constant SALT = bytes32(0);

    /// @notice Where sak's contracts are (or will be) on every chain.
    struct Deployment {
        address sessionAdapter;
        address accountImplementation;
        address accountFactory;
        address account7702;
        address sessionKeyValidator;
        address account7579Implementation;
        address account7579Factory;
    }

    function run() external returns (Deployment memory d) {
        checkPrerequisites();
        d.sessionAdapter = predict(type(SessionAdapter).creationCode);
        d.accountImplementation = predict(withArg(type(SakAccount).creationCode, d.sessionAdapter));
        d.accountFactory =
            predict(withArg(type(SakAccountFactory).creationCode, d.accountImplementation));
        d.account7702 = predict(withArg(type(Sak7702Account).creationCode, d.sessionAdapter));
        d.sessionKeyValidator =
            predict(withArg(type(SessionKeyValidator).creationCode, d.sessionAdapter));
        d.account7579Implementation =
            predict(withArg(type(Sak7579Account).creationCode, d.sessionKeyValidator));
        d.account7579Factory =
            predict(withArg(type(Sak7579AccountFactory).creationCode, d.account7579Implementation));

        // `new C{salt: SALT}` in a broadcast is a transaction to the CREATE2 deployer with
        // calldata `salt ++ initcode` (what `sak deploy` sends), which forge records as a
        // deployment of C, so `--verify` can verify it.
        vm.startBroadcast();
        SessionAdapter adapter = SessionAdapter(payable(d.sessionAdapter));
        if (missing("SessionAdapter", d.sessionAdapter)) {
            deployed(address(new SessionAdapter{salt: SALT}()), d.sessionAdapter);
        }
        if (missing("SakAccount", d.accountImplementation)) {
            deployed(address(new SakAccount{salt: SALT}(adapter)), d.accountImplementation);
        }
        if (missing("SakAccountFactory", d.accountFactory)) {
            SakAccount implementation = SakAccount(payable(d.accountImplementation));
            deployed(address(new SakAccountFactory{salt: SALT}(implementation)), d.accountFactory);
        }
        if (missing("Sak7702Account", d.account7702)) {
            deployed(address(new Sak7702Account{salt: SALT}(adapter)), d.account7702);
        }
        if (missing("SessionKeyValidator", d.sessionKeyValidator)) {
            deployed(address(new SessionKeyValidator{salt: SALT}(adapter)), d.sessionKeyValidator);
        }
        if (missing("Sak7579Account", d.account7579Implementation)) {
            deployed(
                address(new Sak7579Account{salt: SALT}(d.sessionKeyValidator)),
                d.account7579Implementation
            );
        }
        if (missing("Sak7579AccountFactory", d.account7579Factory)) {
            Sak7579Account implementation7579 = Sak7579Account(payable(d.account7579Implementation));
            deployed(
                address(new Sak7579AccountFactory{salt: SALT}(implementation7579)),
                d.account7579Factory
            );
        }
        vm.stopBroadcast();
    }

    /// @notice Fails unless the chain has the CREATE2 deployer and EntryPoint v0.8 at their
    ///         canonical addresses: sak needs both and deploys neither.
    function checkPrerequisites() public view {
        require(
            CREATE2_DEPLOYER.code.length != 0,
            "no CREATE2 deployer at 0x4e59b44847b379578588920cA78FbF26c0B4956C: use a chain that has it"
        );
        require(
            ENTRY_POINT_V08.code.length != 0,
            "no EntryPoint v0.8 at 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108: deploy its published initcode there first"
        );
        // EntryPoint v0.8 is EIP-712 ("ERC4337", "1"); earlier versions are not.
        (, string memory name, string memory version, uint256 chainId, address verifying,,) =
            IERC5267(ENTRY_POINT_V08).eip712Domain();
        require(
            keccak256(bytes(name)) == keccak256("ERC4337")
                && keccak256(bytes(version)) == keccak256("1") && chainId == block.chainid
                && verifying == ENTRY_POINT_V08,
            "the contract at 0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108 is not EntryPoint v0.8"
        );
        console.log("%s  %s  present", pad("EntryPoint v0.8"), ENTRY_POINT_V08);
    }

    function withArg(bytes memory code, address arg) internal pure returns (bytes memory) {
        return abi.encodePacked(code, abi.encode(arg));
    }

    function predict(bytes memory initcode) internal pure returns (address) {
        return vm.computeCreate2Address(SALT, keccak256(initcode), CREATE2_DEPLOYER);
    }

    /// @dev Logs the contract's state; true when it still has to be deployed.
    function missing(string memory name, address at) internal view returns (bool) {
        bool absent = at.code.length == 0;
        console.log("%s  %s  %s", pad(name), at, absent ? "deploying" : "present");
        return absent;
    }

    function deployed(address got, address expected) internal pure {
        // Another deployer than the canonical one (`--create2-deployer`) puts it elsewhere.
        require(got == expected, "not deployed at its address: use the canonical CREATE2 deployer");
    }

    function pad(string memory name) internal pure returns (string memory) {
        bytes memory out = bytes("                        ");
        bytes memory b = bytes(name);
        for (uint256 i; i < b.length && i < out.length; ++i) {
            out[i] = b[i];
        }
        return string(out);
    }
}
