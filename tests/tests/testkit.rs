//! The local chain kit on a real anvil: canonical deployments, a real Uniswap V2 swap,
//! parallel kits, idempotent deployment, clean shutdown and a busy port.

use alloy::{
    primitives::{Address, Bytes, U256, address},
    providers::{Provider, ProviderBuilder},
};
use sak_contracts::{
    ENTRY_POINT_V08, IEntryPoint, IUniswapV2Pair, IUniswapV2Router02, MockERC20, SIMPLE_7702_ACCOUNT_V08,
    SIMPLE_ACCOUNT_FACTORY_V08, SakAccountFactory, SimpleAccountFactory,
};
use sak_testkit::{Error, Kit, Profile, SEED_TKN, SEED_USD, Toolchain, deploy};
use std::{net::TcpStream, path::Path, time::Duration};

#[tokio::test]
async fn entry_point_v08_is_at_its_canonical_address_and_answers() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    assert_eq!(kit.deployment().entry_point, ENTRY_POINT_V08);
    let provider = kit.provider();
    let code = provider.get_code_at(ENTRY_POINT_V08).await.unwrap();
    assert!(code.len() > 10_000, "EntryPoint runtime code is {} bytes", code.len());

    let entry_point = IEntryPoint::new(ENTRY_POINT_V08, provider);
    let op = IEntryPoint::PackedUserOperation {
        sender: address!("0x1111111111111111111111111111111111111111"),
        nonce: U256::from(7),
        initCode: Bytes::new(),
        callData: Bytes::from_static(&[0xde, 0xad]),
        accountGasLimits: Default::default(),
        preVerificationGas: U256::from(21_000),
        gasFees: Default::default(),
        paymasterAndData: Bytes::new(),
        signature: Bytes::new(),
    };
    let hash = entry_point.getUserOpHash(op.clone()).call().await.unwrap();
    assert_ne!(hash, alloy::primitives::B256::ZERO);
    // The hash binds the operation: another nonce, another hash.
    let other = IEntryPoint::PackedUserOperation { nonce: U256::from(8), ..op };
    assert_ne!(entry_point.getUserOpHash(other).call().await.unwrap(), hash);
    assert_eq!(
        entry_point.getNonce(kit.dev_accounts()[0], Default::default()).call().await.unwrap(),
        U256::ZERO
    );
}

#[tokio::test]
async fn sample_accounts_are_at_their_canonical_addresses() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let d = kit.deployment();
    assert_eq!(d.simple_account_factory, SIMPLE_ACCOUNT_FACTORY_V08);
    assert_eq!(d.simple_7702_account, SIMPLE_7702_ACCOUNT_V08);
    assert!(!kit.provider().get_code_at(SIMPLE_7702_ACCOUNT_V08).await.unwrap().is_empty());

    // v0.8's factory only deploys for the EntryPoint's SenderCreator (as it does for a user
    // operation with initCode): impersonate it to create an account at its predicted address.
    let factory = SimpleAccountFactory::new(SIMPLE_ACCOUNT_FACTORY_V08, kit.provider());
    let owner = kit.dev_accounts()[1];
    let predicted = factory.getAddress(owner, U256::ZERO).call().await.unwrap();
    assert!(kit.provider().get_code_at(predicted).await.unwrap().is_empty());
    let sender_creator =
        IEntryPoint::new(ENTRY_POINT_V08, kit.provider()).senderCreator().call().await.unwrap();
    let plain = ProviderBuilder::new().connect_http(kit.rpc_url().parse().unwrap());
    let _: () = plain.raw_request("anvil_impersonateAccount".into(), (sender_creator,)).await.unwrap();
    let _: () = plain
        .raw_request("anvil_setBalance".into(), (sender_creator, U256::from(10u64.pow(18))))
        .await
        .unwrap();
    let receipt = SimpleAccountFactory::new(SIMPLE_ACCOUNT_FACTORY_V08, &plain)
        .createAccount(owner, U256::ZERO)
        .from(sender_creator)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert!(
        !kit.provider().get_code_at(predicted).await.unwrap().is_empty(),
        "account at its counterfactual address"
    );
}

#[tokio::test]
async fn uniswap_v2_swap_from_a_dev_account_moves_both_balances() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let d = *kit.deployment();
    let provider = kit.provider();
    let trader = kit.dev_accounts()[2];
    let usd = MockERC20::new(d.usd, provider);
    let tkn = MockERC20::new(d.tkn, provider);

    let reserves = IUniswapV2Pair::new(d.usd_tkn_pair, provider).getReserves().call().await.unwrap();
    let mut seeded = [reserves.reserve0.to::<u128>(), reserves.reserve1.to::<u128>()];
    seeded.sort_unstable();
    let mut expected = [SEED_USD, SEED_TKN];
    expected.sort_unstable();
    assert_eq!(seeded, expected, "pool seeded at 2,000,000 tUSD : 1,000 TKN");

    let amount_in = U256::from(2_000u64 * 10u64.pow(6)); // 2,000 tUSD, about 1 TKN
    usd.mint(trader, amount_in).send().await.unwrap().get_receipt().await.unwrap();
    usd.approve(d.uniswap_v2_router, amount_in)
        .from(trader)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let router = IUniswapV2Router02::new(d.uniswap_v2_router, provider);
    let path = vec![d.usd, d.tkn];
    let quoted = router.getAmountsOut(amount_in, path.clone()).call().await.unwrap()[1];
    let receipt = router
        .swapExactTokensForTokens(amount_in, quoted, path, trader, U256::MAX)
        .from(trader)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(usd.balanceOf(trader).call().await.unwrap(), U256::ZERO, "all tUSD in");
    let out = tkn.balanceOf(trader).call().await.unwrap();
    assert_eq!(out, quoted, "TKN out as quoted");
    // 2,000 tUSD buys a little under 1 TKN (0.3% fee and price impact).
    assert!(out > U256::from(99u64 * 10u64.pow(16)) && out < U256::from(10u64.pow(18)), "{out}");
}

#[tokio::test]
async fn two_kits_run_side_by_side_on_different_ports() {
    let (a, b) = tokio::join!(Kit::start(Profile::test()), Kit::start(Profile::test()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.node().port(), b.node().port());
    assert_ne!(a.node().pid(), b.node().pid());
    // Same deterministic addresses on both chains.
    assert_eq!(a.deployment(), b.deployment());
    // Separate chains: a transaction on one is not seen on the other.
    let usd = MockERC20::new(a.deployment().usd, a.provider());
    let someone = Address::repeat_byte(0x42);
    usd.mint(someone, U256::from(5)).send().await.unwrap().get_receipt().await.unwrap();
    let on_b = MockERC20::new(b.deployment().usd, b.provider()).balanceOf(someone).call().await.unwrap();
    assert_eq!(on_b, U256::ZERO);
}

#[tokio::test]
async fn deploying_again_changes_nothing() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let block = kit.provider().get_block_number().await.unwrap();
    let again = deploy(kit.provider(), &Toolchain::locate().unwrap(), kit.dev_accounts()[0]).await.unwrap();
    assert_eq!(&again, kit.deployment());
    assert_eq!(kit.provider().get_block_number().await.unwrap(), block, "no transaction sent");
}

#[tokio::test]
async fn dropping_the_kit_stops_its_anvil() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let (pid, port) = (kit.node().pid(), kit.node().port());
    assert!(process_exists(pid));
    drop(kit);
    assert!(!process_exists(pid), "anvil {pid} still running after drop");
    assert!(TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_err());
}

#[tokio::test]
async fn a_busy_port_is_reported_with_a_hint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let err = Kit::start(Profile::test().with_port(port)).await.unwrap_err();
    assert!(matches!(err, Error::PortInUse { port: p, .. } if p == port), "{err:?}");
    assert!(err.hint().unwrap().contains("--port 0"));
}

#[tokio::test]
async fn a_fixed_free_port_is_used() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kit = Kit::start(Profile::test().with_port(port)).await.unwrap();
    assert_eq!(kit.node().port(), port);
    assert_eq!(kit.rpc_url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(kit.chain_id(), 31337);
}

#[tokio::test]
async fn toolchain_reads_all_published_bytecode_forms() {
    let toolchain = Toolchain::locate().unwrap();
    // hardhat form ("0x..."), waffle form (no prefix).
    let entry_point = toolchain.bytecode("@account-abstraction/contracts/artifacts/EntryPoint.json").unwrap();
    let weth = toolchain.bytecode("@uniswap/v2-periphery/build/WETH9.json").unwrap();
    assert_eq!(
        sak_contracts::CREATE2_DEPLOYER.create2_from_code(sak_contracts::ENTRY_POINT_V08_SALT, &entry_point),
        ENTRY_POINT_V08
    );
    let waffle = std::fs::read_to_string("../node_modules/@uniswap/v2-periphery/build/WETH9.json").unwrap();
    let hex = waffle.split("\"bytecode\": \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(!hex.starts_with("0x"));
    assert_eq!(weth.len() * 2, hex.len(), "waffle hex without 0x decoded whole");
    let err = toolchain.bytecode("@uniswap/v2-core/build/Nope.json").unwrap_err();
    assert!(matches!(err, Error::ToolchainMissing { .. }), "{err:?}");
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn sak_account_factory_creates_accounts_at_their_counterfactual_address() {
    let kit = Kit::start(Profile::test()).await.unwrap();
    let factory = SakAccountFactory::new(kit.deployment().sak_account_factory, kit.provider());
    let owner = kit.dev_accounts()[3];
    let salt = alloy::primitives::B256::with_last_byte(9);
    let predicted = factory.getAddress(owner, salt).call().await.unwrap();
    assert!(kit.provider().get_code_at(predicted).await.unwrap().is_empty());
    factory.createAccount(owner, salt).send().await.unwrap().get_receipt().await.unwrap();
    let account = sak_contracts::SakAccount::new(predicted, kit.provider());
    assert_eq!(account.owner().call().await.unwrap(), owner);
    assert_eq!(account.entryPoint().call().await.unwrap(), ENTRY_POINT_V08);
}
