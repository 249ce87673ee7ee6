//! The shared session-envelope vectors (`contracts/test/vectors/envelope.json`): the session
//! signature's digest and bytes, and the sessions' nonce keys, as sak's Rust side produces them.
//! The forge test `EnvelopeVectors.t.sol` checks the contracts against the same file: the digest
//! they compute, the signature they parse (and the same ECDSA bytes from `vm.sign`, RFC 6979 on
//! both sides), the nonce keys they admit. This test fails when the Rust side drifts from the
//! committed file; `SAK_WRITE_VECTORS=1` rewrites it after a deliberate format change.

use alloy::{
    primitives::{Address, B256, U256, address, b256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use sak_userop::{
    SESSION_DOMAIN_SEPARATOR, SESSION_OP_TYPEHASH, encode_session_signature, module_nonce_key,
    session_digest, session_nonce_key,
};
use serde_json::{Value, json};

const PATH: &str = "../../contracts/test/vectors/envelope.json";
/// anvil's first public development key.
const KEY: B256 = b256!("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
const VALIDATOR: Address = address!("0x00000000000000000000000000000000005e55a1");

fn vectors() -> Value {
    let key = PrivateKeySigner::from_bytes(&KEY).unwrap();
    let signatures: Vec<Value> = [
        (B256::repeat_byte(0x11), 1u32, 1_800_000_000u64, 1_800_000_600u64),
        (B256::repeat_byte(0xab), 0xfedc_ba98, 0xff_ffff_fffe, 0xff_ffff_ffff),
        (B256::ZERO, 0, 0, 0),
    ]
    .into_iter()
    .map(|(hash, id, clock, deadline)| {
        let digest = session_digest(hash, id, clock, deadline);
        let signature = encode_session_signature(id, clock, deadline, &key.sign_hash_sync(&digest).unwrap());
        json!({
            "userOpHash": hash, "id": id, "clock": clock, "deadline": deadline,
            "digest": digest, "signature": signature,
        })
    })
    .collect();
    let nonce_keys: Vec<Value> = [(1u32, 0u128), (7, 3), (u32::MAX, u128::MAX)]
        .into_iter()
        .map(|(id, lane)| {
            let key = session_nonce_key(id, lane);
            json!({ "id": id, "lane": U256::from(lane), "key": U256::from(key) })
        })
        .collect();
    let module_keys: Vec<Value> = [1u32, 0xdead_beef]
        .into_iter()
        .map(|id| json!({ "id": id, "key": U256::from(module_nonce_key(VALIDATOR, id)) }))
        .collect();
    json!({
        "domainSeparator": SESSION_DOMAIN_SEPARATOR,
        "typehash": SESSION_OP_TYPEHASH,
        "signer": key.address(),
        "signerKey": KEY,
        "validator": VALIDATOR,
        "signatures": signatures,
        "nonceKeys": nonce_keys,
        "moduleNonceKeys": module_keys,
    })
}

#[test]
fn envelope_vectors_match_the_committed_file() {
    let fresh = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("SAK_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(PATH).expect("contracts/test/vectors/envelope.json");
    assert_eq!(
        committed, fresh,
        "the Rust session envelope drifted from {PATH}; after a deliberate change run with SAK_WRITE_VECTORS=1, then forge test --match-contract EnvelopeVectors"
    );
}
