// Reference user-operation hashes from viem, for sak-userop's tests.
// stdin: {"chainId": n, "entryPoint": "0x…", "ops": [ERC-7769 op + optional "delegate"]}
// stdout: ["0x…hash", …]
import { getUserOperationHash } from "viem/account-abstraction";

const input = JSON.parse(await new Promise((resolve) => {
    let text = "";
    process.stdin.on("data", (chunk) => { text += chunk; });
    process.stdin.on("end", () => resolve(text));
}));

const big = (v) => (v === undefined || v === null ? undefined : BigInt(v));
const hashes = input.ops.map((op) => getUserOperationHash({
    chainId: input.chainId,
    entryPointAddress: input.entryPoint,
    entryPointVersion: "0.8",
    userOperation: {
        sender: op.sender,
        nonce: big(op.nonce),
        factory: op.factory,
        factoryData: op.factoryData,
        callData: op.callData,
        callGasLimit: big(op.callGasLimit),
        verificationGasLimit: big(op.verificationGasLimit),
        preVerificationGas: big(op.preVerificationGas),
        maxFeePerGas: big(op.maxFeePerGas),
        maxPriorityFeePerGas: big(op.maxPriorityFeePerGas),
        paymaster: op.paymaster,
        paymasterVerificationGasLimit: big(op.paymasterVerificationGasLimit),
        paymasterPostOpGasLimit: big(op.paymasterPostOpGasLimit),
        paymasterData: op.paymasterData,
        signature: op.signature,
        authorization: op.delegate ? { address: op.delegate, chainId: input.chainId, nonce: 0 } : undefined,
    },
}));
process.stdout.write(JSON.stringify(hashes));
