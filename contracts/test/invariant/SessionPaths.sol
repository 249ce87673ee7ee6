// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {CommonBase} from "forge-std/Base.sol";
import {Vm} from "forge-std/Vm.sol";
import {PackedUserOperation} from "@openzeppelin/contracts/interfaces/IERC4337.sol";
import {Execution} from "@openzeppelin/contracts/interfaces/draft-IERC7579.sol";
import {ISakSessions} from "../../src/interfaces/ISakSessions.sol";
import {SakAccount} from "../../src/SakAccount.sol";
import {SakAccountFactory} from "../../src/SakAccountFactory.sol";
import {Sak7702Account} from "../../src/Sak7702Account.sol";
import {SessionAdapter} from "../../src/SessionAdapter.sol";
import {SessionKeyValidator} from "../../src/SessionKeyValidator.sol";
import {MockERC7579Account} from "../../src/mocks/MockERC7579Account.sol";
import {MockERC7579AccountOn} from "../mocks/MockERC7579AccountOn.sol";
import {CanonicalDeployer} from "../utils/Canonical.sol";
import {SessionEnvelope} from "../utils/SessionEnvelope.sol";

/// @notice What the tests need of an EntryPoint (v0.7 and v0.8 share it).
interface IEntryPointLike {
    function handleOps(PackedUserOperation[] calldata ops, address payable beneficiary) external;
    function getUserOpHash(PackedUserOperation calldata userOp) external view returns (bytes32);
    function getNonce(address sender, uint192 key) external view returns (uint256);
}

/// @notice What became of a session operation.
enum Status {
    /// @dev Refused before anything ran (validation failed; on the direct path: any revert).
    Refused,
    /// @dev Validated (and charged) but its execution reverted (ERC-4337 paths only).
    Reverted,
    /// @dev Validated and executed.
    Executed
}

/// @title SessionPath
/// @notice One way a session operation reaches an account: the smart account through
///         EntryPoint v0.8, the 7702 account's direct path, or the module on an ERC-7579 account
///         through EntryPoint v0.8 or v0.7. Tests and invariant handlers drive every path
///         through this interface, so one scenario runs unchanged on all of them. The owner's
///         actions are calls made by the account itself (a prank), which is what an owner
///         operation executes.
abstract contract SessionPath is CommonBase {
    bytes32 internal constant BATCH_MODE = bytes32(uint256(1) << 248);

    string public name;
    address public account;
    address public adapter;
    /// @dev Whether operations carry a signed clock claim (ERC-4337) or use the block's clock.
    bool public clockClaims;

    /// @notice Grants `c` as the owner.
    function grant(ISakSessions.SessionConfig memory c) external virtual returns (uint32);
    function revoke(uint32 id) external virtual;
    function revokeAll() external virtual;
    function rotate(uint32 id, address signer) external virtual;
    function spendOf(uint32 id, address token)
        external
        view
        virtual
        returns (ISakSessions.SpendView memory);
    function sessionOf(uint32 id) external view virtual returns (ISakSessions.SessionView memory);

    /// @notice Submits `calls` as an operation of session `id` signed with `key`, with the clock
    ///         claim `clock` (ignored by the direct path, which uses the block's clock).
    /// @return status What became of it.
    /// @return reason The revert data (validation or execution), empty when it executed.
    function exec(uint32 id, uint256 key, Execution[] memory calls, uint40 clock)
        public
        virtual
        returns (Status status, bytes memory reason);

    /// @notice The account itself calls `target` with `data` (an owner action).
    function ownerCall(address target, bytes memory data)
        external
        returns (bool ok, bytes memory ret)
    {
        vm.prank(account);
        (ok, ret) = target.call(data);
    }

    function _now() internal view returns (uint40) {
        return uint40(vm.getBlockTimestamp());
    }
}

/// @notice The ERC-4337 paths: a session op through `handleOps`, with no gas fee (so that no
///         ETH leaves the account for gas and every ETH outflow is a session's doing).
abstract contract UserOpPath is SessionPath {
    bytes32 private constant USER_OP_EVENT =
        keccak256("UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)");
    bytes32 private constant USER_OP_REVERT =
        keccak256("UserOperationRevertReason(bytes32,address,uint256,bytes)");

    IEntryPointLike public entryPoint;

    /// @dev Session `id`'s nonce key on this path's account.
    function nonceKey(uint32 id) internal view virtual returns (uint192) {
        return SessionEnvelope.nonceKey(id, 0);
    }
    address internal immutable bundler = address(uint160(uint256(keccak256("sak.test.bundler"))));

    function exec(uint32 id, uint256 key, Execution[] memory calls, uint40 clock)
        public
        override
        returns (Status status, bytes memory reason)
    {
        PackedUserOperation memory op;
        op.sender = account;
        op.nonce = entryPoint.getNonce(account, nonceKey(id));
        op.callData =
            abi.encodeWithSignature("execute(bytes32,bytes)", BATCH_MODE, abi.encode(calls));
        op.accountGasLimits = bytes32((uint256(2_000_000) << 128) | 5_000_000);
        op.preVerificationGas = 60_000;
        op.gasFees = bytes32(0);
        bytes32 digest = SessionEnvelope.digest(
            entryPoint.getUserOpHash(op), id, clock, SessionEnvelope.NO_DEADLINE
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        op.signature = SessionEnvelope.encode(id, clock, SessionEnvelope.NO_DEADLINE, v, r, s);

        PackedUserOperation[] memory ops = new PackedUserOperation[](1);
        ops[0] = op;
        vm.recordLogs();
        vm.prank(bundler, bundler);
        try entryPoint.handleOps(ops, payable(bundler)) {}
        catch (bytes memory refusal) {
            vm.getRecordedLogs();
            return (Status.Refused, refusal);
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();
        status = Status.Reverted;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(entryPoint)) continue;
            if (logs[i].topics[0] == USER_OP_EVENT) {
                (, bool success,,) = abi.decode(logs[i].data, (uint256, bool, uint256, uint256));
                if (success) status = Status.Executed;
            } else if (logs[i].topics[0] == USER_OP_REVERT) {
                (, reason) = abi.decode(logs[i].data, (uint256, bytes));
            }
        }
    }
}

/// @notice sak's smart account through EntryPoint v0.8.
contract SmartAccountPath is UserOpPath {
    address public immutable owner = address(uint160(uint256(keccak256("sak.test.owner"))));

    constructor(SessionAdapter adapters, address entryPoint_) {
        name = "smart account (4337 v0.8)";
        clockClaims = true;
        entryPoint = IEntryPointLike(entryPoint_);
        SakAccountFactory factory = new SakAccountFactory(new SakAccount(adapters));
        account = address(factory.createAccount(owner, bytes32(0)));
        adapter = SakAccount(payable(account)).sessionAdapter();
    }

    function grant(ISakSessions.SessionConfig memory c) external override returns (uint32) {
        vm.prank(owner);
        return SakAccount(payable(account)).grantSession(c);
    }

    function revoke(uint32 id) external override {
        vm.prank(owner);
        SakAccount(payable(account)).revokeSession(id);
    }

    function revokeAll() external override {
        vm.prank(owner);
        SakAccount(payable(account)).revokeAllSessions();
    }

    function rotate(uint32 id, address signer) external override {
        vm.prank(owner);
        SakAccount(payable(account)).rotateSessionKey(id, signer);
    }

    function spendOf(uint32 id, address token)
        external
        view
        override
        returns (ISakSessions.SpendView memory)
    {
        return SakAccount(payable(account)).getSpend(id, token);
    }

    function sessionOf(uint32 id) external view override returns (ISakSessions.SessionView memory) {
        return SakAccount(payable(account)).getSession(id);
    }
}

/// @notice An EOA delegated to {Sak7702Account}, driven by a relayer through
///         `executeWithSession` (no bundler, the block's clock). The test attaches the
///         delegation (cheatcodes apply it to the test's next call) and hands over the EOA.
contract DirectPath is SessionPath {
    address internal immutable relayer = address(uint160(uint256(keccak256("sak.test.relayer"))));

    constructor(address eoa) {
        name = "7702 direct path";
        account = eoa;
        adapter = Sak7702Account(payable(eoa)).sessionAdapter();
    }

    function exec(uint32 id, uint256 key, Execution[] memory calls, uint40)
        public
        override
        returns (Status, bytes memory)
    {
        Sak7702Account eoa = Sak7702Account(payable(account));
        bytes memory data = abi.encode(calls);
        uint256 nonce = eoa.directNonce(id);
        uint40 deadline = _now() + 60;
        bytes32 domain = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("SakAccount"),
                keccak256("2"),
                block.chainid,
                account
            )
        );
        bytes32 structHash = keccak256(
            abi.encode(eoa.SESSION_CALL_TYPEHASH(), id, keccak256(data), nonce, deadline)
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
        vm.prank(relayer);
        try eoa.executeWithSession(id, data, nonce, deadline, abi.encodePacked(r, s, v)) {
            return (Status.Executed, "");
        } catch (bytes memory reason) {
            return (Status.Refused, reason);
        }
    }

    function grant(ISakSessions.SessionConfig memory c) external override returns (uint32) {
        vm.prank(account);
        return Sak7702Account(payable(account)).grantSession(c);
    }

    function revoke(uint32 id) external override {
        vm.prank(account);
        Sak7702Account(payable(account)).revokeSession(id);
    }

    function revokeAll() external override {
        vm.prank(account);
        Sak7702Account(payable(account)).revokeAllSessions();
    }

    function rotate(uint32 id, address signer) external override {
        vm.prank(account);
        Sak7702Account(payable(account)).rotateSessionKey(id, signer);
    }

    function spendOf(uint32 id, address token)
        external
        view
        override
        returns (ISakSessions.SpendView memory)
    {
        return Sak7702Account(payable(account)).getSpend(id, token);
    }

    function sessionOf(uint32 id) external view override returns (ISakSessions.SessionView memory) {
        return Sak7702Account(payable(account)).getSession(id);
    }
}

/// @notice {SessionKeyValidator} installed on an OpenZeppelin ERC-7579 account, through
///         EntryPoint v0.8 ({MockERC7579Account}) or v0.7 ({MockERC7579AccountOn}).
contract ModulePath is UserOpPath {
    SessionKeyValidator public immutable module;

    constructor(SessionAdapter adapters, address entryPoint_, bool v07) {
        name = v07 ? "module on ERC-7579 (4337 v0.7)" : "module on ERC-7579 (4337 v0.8)";
        clockClaims = true;
        entryPoint = IEntryPointLike(entryPoint_);
        module = new SessionKeyValidator(adapters);
        account = v07
            ? address(new MockERC7579AccountOn(address(module), entryPoint_))
            : address(new MockERC7579Account(address(module)));
        adapter = module.sessionAdapter(account);
    }

    /// @dev OpenZeppelin's ERC-7579 account routes validation by the nonce key's top 20 bytes.
    function nonceKey(uint32 id) internal view override returns (uint192) {
        return SessionEnvelope.moduleNonceKey(address(module), id);
    }

    function grant(ISakSessions.SessionConfig memory c) external override returns (uint32) {
        vm.prank(account);
        return module.grantSession(c);
    }

    function revoke(uint32 id) external override {
        vm.prank(account);
        module.revokeSession(id);
    }

    function revokeAll() external override {
        vm.prank(account);
        module.revokeAllSessions();
    }

    function rotate(uint32 id, address signer) external override {
        vm.prank(account);
        module.rotateSessionKey(id, signer);
    }

    function spendOf(uint32 id, address token)
        external
        view
        override
        returns (ISakSessions.SpendView memory)
    {
        return module.getSpend(account, id, token);
    }

    function sessionOf(uint32 id) external view override returns (ISakSessions.SessionView memory) {
        return module.getSession(account, id);
    }
}

/// @notice Deploys the paths: the EntryPoints at their canonical addresses (v0.8 and v0.7 from
///         the npm artifacts), the adapter factory, and each account form.
abstract contract PathDeployer is CanonicalDeployer {
    enum Kind {
        SmartAccount,
        Direct7702,
        ModuleV08,
        ModuleV07
    }

    address internal constant ENTRY_POINT_V07 = 0x0000000071727De22E5E9d8BAf0edAc6f37da032;
    /// @dev The salt EntryPoint v0.7 was deployed with through the CREATE2 deployer.
    bytes32 internal constant ENTRY_POINT_V07_SALT =
        0x90d8084deab30c2a37c45e8d47f49f2f7965183cb6990a98943ef94940681de3;
    string internal constant ENTRY_POINT_V07_ARTIFACT =
        "node_modules/account-abstraction-v07/artifacts/EntryPoint.json";
    uint256 internal constant EOA_KEY = uint256(keccak256("sak.test.7702.eoa"));

    function deployEntryPointV07() internal returns (address) {
        if (ENTRY_POINT_V07.code.length == 0) {
            bytes memory initcode =
                vm.parseJsonBytes(vm.readFile(ENTRY_POINT_V07_ARTIFACT), ".bytecode");
            address deployed = create2(ENTRY_POINT_V07_SALT, initcode);
            require(deployed == ENTRY_POINT_V07, "EntryPoint v0.7 not at its canonical address");
        }
        return ENTRY_POINT_V07;
    }

    function deployPath(Kind kind, SessionAdapter adapters) internal returns (SessionPath) {
        if (kind == Kind.SmartAccount) {
            return new SmartAccountPath(adapters, address(deployEntryPointV08()));
        }
        if (kind == Kind.Direct7702) {
            Sak7702Account implementation = new Sak7702Account(adapters);
            address eoa = vm.addr(EOA_KEY);
            vm.signAndAttachDelegation(address(implementation), EOA_KEY);
            // The attached delegation takes effect with this call.
            require(Sak7702Account(payable(eoa)).owner() == eoa, "7702 delegation not applied");
            return new DirectPath(eoa);
        }
        if (kind == Kind.ModuleV08) {
            return new ModulePath(adapters, address(deployEntryPointV08()), false);
        }
        return new ModulePath(adapters, deployEntryPointV07(), true);
    }
}
