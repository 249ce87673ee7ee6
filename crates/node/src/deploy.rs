//! Idempotent deployment of the local stack, every contract through the CREATE2 deployer so
//! that addresses are the same on every chain and fork.

use crate::{
    error::{Error, Result},
    toolchain::Toolchain,
};
use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::{SolConstructor, SolValue},
};
use sak_contracts::{
    CREATE2_DEPLOYER, ENTRY_POINT_V08_SALT, IUniswapV2Factory, IUniswapV2Pair, IUniswapV2Router02, MockERC20,
    SAK_SALT, SakAddresses, sak_deployments,
};
use serde::{Deserialize, Serialize};

/// Addresses of everything [`deploy`] puts on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// EntryPoint v0.8, at its canonical address.
    pub entry_point: Address,
    /// The canonical `SimpleAccountFactory(entry_point)`.
    pub simple_account_factory: Address,
    /// The canonical `Simple7702Account` delegate.
    pub simple_7702_account: Address,
    /// WETH9.
    pub weth: Address,
    /// Uniswap V2 factory.
    pub uniswap_v2_factory: Address,
    /// Uniswap V2 router 02.
    pub uniswap_v2_router: Address,
    /// Test stablecoin `tUSD` (6 decimals); anyone can mint.
    pub usd: Address,
    /// Test token `TKN` (18 decimals); anyone can mint.
    pub tkn: Address,
    /// The tUSD/TKN Uniswap V2 pair, seeded at [`SEED_USD`] : [`SEED_TKN`].
    pub usd_tkn_pair: Address,
    /// sak's `SessionAdapter` factory (every account's adapter is its clone).
    pub session_adapter: Address,
    /// sak's `SakAccount` implementation (behind every smart account).
    pub sak_account_implementation: Address,
    /// sak's smart-account factory (CREATE2 clones of `SakAccount`).
    pub sak_account_factory: Address,
    /// sak's EIP-7702 delegate (`Sak7702Account`).
    pub sak_7702_account: Address,
    /// sak's ERC-7579 validator module (`SessionKeyValidator`).
    pub session_key_validator: Address,
    /// sak's `Sak7579Account` implementation (behind every modular account).
    pub sak_7579_account_implementation: Address,
    /// sak's modular-account factory (CREATE2 clones of `Sak7579Account`, the module installed).
    pub sak_7579_account_factory: Address,
}

/// tUSD seeded into the pool (2,000,000 tUSD).
pub const SEED_USD: u128 = 2_000_000 * 10u128.pow(6);
/// TKN seeded into the pool (1,000 TKN), so 1 TKN starts at 2,000 tUSD.
pub const SEED_TKN: u128 = 1_000 * 10u128.pow(18);

const AA: &str = "@account-abstraction/contracts/artifacts";
const UNI_CORE: &str = "@uniswap/v2-core/build";
const UNI_PERIPHERY: &str = "@uniswap/v2-periphery/build";

/// Deploys what is missing and seeds the pool if it is empty, paying from `deployer` (a
/// signer of `provider`'s wallet, which also receives the pool's liquidity tokens). Running it
/// again on the same chain changes nothing.
pub async fn deploy(provider: &DynProvider, toolchain: &Toolchain, deployer: Address) -> Result<Deployment> {
    let zero = B256::ZERO;
    let entry_point = deploy_entry_point(provider, toolchain).await?;
    let simple_account_factory = create2(
        provider,
        "SimpleAccountFactory",
        zero,
        with_args(toolchain.bytecode(&format!("{AA}/SimpleAccountFactory.json"))?, entry_point.abi_encode()),
    )
    .await?;
    let simple_7702_account = create2(
        provider,
        "Simple7702Account",
        zero,
        toolchain.bytecode(&format!("{AA}/Simple7702Account.json"))?,
    )
    .await?;

    let weth =
        create2(provider, "WETH9", zero, toolchain.bytecode(&format!("{UNI_PERIPHERY}/WETH9.json"))?).await?;
    let uniswap_v2_factory = create2(
        provider,
        "UniswapV2Factory",
        zero,
        with_args(
            toolchain.bytecode(&format!("{UNI_CORE}/UniswapV2Factory.json"))?,
            Address::ZERO.abi_encode(),
        ),
    )
    .await?;
    let uniswap_v2_router = create2(
        provider,
        "UniswapV2Router02",
        zero,
        with_args(
            toolchain.bytecode(&format!("{UNI_PERIPHERY}/UniswapV2Router02.json"))?,
            (uniswap_v2_factory, weth).abi_encode_params(),
        ),
    )
    .await?;

    let usd = create2(provider, "tUSD", zero, mock_token("Test USD", "tUSD", 6)).await?;
    let tkn = create2(provider, "TKN", zero, mock_token("Test Token", "TKN", 18)).await?;
    let usd_tkn_pair = seed_pool(provider, deployer, uniswap_v2_factory, uniswap_v2_router, usd, tkn).await?;
    for contract in sak_deployments() {
        create2(provider, contract.name, SAK_SALT, contract.initcode).await?;
    }
    let sak = SakAddresses::canonical();

    Ok(Deployment {
        entry_point,
        simple_account_factory,
        simple_7702_account,
        weth,
        uniswap_v2_factory,
        uniswap_v2_router,
        usd,
        tkn,
        usd_tkn_pair,
        session_adapter: sak.session_adapter,
        sak_account_implementation: sak.account_implementation,
        sak_account_factory: sak.account_factory,
        sak_7702_account: sak.account_7702,
        session_key_validator: sak.session_key_validator,
        sak_7579_account_implementation: sak.account_7579_implementation,
        sak_7579_account_factory: sak.account_7579_factory,
    })
}

/// Deploys EntryPoint v0.8 at its canonical address (its published initcode and salt through
/// the CREATE2 deployer) unless it is there: the one prerequisite of sak's own contracts, for
/// tests of `sak deploy` and `script/Deploy.s.sol` on a bare chain.
pub async fn deploy_entry_point(provider: &DynProvider, toolchain: &Toolchain) -> Result<Address> {
    let code = provider.get_code_at(CREATE2_DEPLOYER).await.map_err(Error::rpc("eth_getCode"))?;
    if code.is_empty() {
        return Err(Error::deploy(
            "the stack",
            format!("no CREATE2 deployer at {CREATE2_DEPLOYER}; every chain sak supports has it"),
        ));
    }
    create2(
        provider,
        "EntryPoint v0.8",
        ENTRY_POINT_V08_SALT,
        toolchain.bytecode(&format!("{AA}/EntryPoint.json"))?,
    )
    .await
}

fn with_args(code: Bytes, args: Vec<u8>) -> Bytes {
    [code.as_ref(), &args].concat().into()
}

fn mock_token(name: &str, symbol: &str, decimals: u8) -> Bytes {
    let args = MockERC20::constructorCall { name_: name.into(), symbol_: symbol.into(), decimals_: decimals };
    with_args(MockERC20::BYTECODE.clone(), args.abi_encode())
}

/// Deploys `initcode` with `salt` through the CREATE2 deployer unless code is already there.
async fn create2(provider: &DynProvider, what: &str, salt: B256, initcode: Bytes) -> Result<Address> {
    let address = CREATE2_DEPLOYER.create2_from_code(salt, &initcode);
    if !provider.get_code_at(address).await.map_err(Error::rpc("eth_getCode"))?.is_empty() {
        tracing::debug!("{what} already at {address}");
        return Ok(address);
    }
    let input: Bytes = [salt.as_slice(), &initcode].concat().into();
    let tx = TransactionRequest::default().with_to(CREATE2_DEPLOYER).with_input(input);
    send(provider, what, tx).await?;
    if provider.get_code_at(address).await.map_err(Error::rpc("eth_getCode"))?.is_empty() {
        return Err(Error::deploy(what, format!("the CREATE2 deployer succeeded but {address} has no code")));
    }
    tracing::info!("deployed {what} at {address}");
    Ok(address)
}

async fn send(provider: &DynProvider, what: &str, tx: TransactionRequest) -> Result<()> {
    let pending = provider.send_transaction(tx).await.map_err(|e| Error::deploy(what, e))?;
    let receipt = pending.get_receipt().await.map_err(|e| Error::deploy(what, e))?;
    if !receipt.status() {
        return Err(Error::deploy(what, format!("transaction {} reverted", receipt.transaction_hash)));
    }
    Ok(())
}

/// Creates and funds the tUSD/TKN pool if it holds no liquidity yet.
async fn seed_pool(
    provider: &DynProvider,
    me: Address,
    factory: Address,
    router: Address,
    usd: Address,
    tkn: Address,
) -> Result<Address> {
    let factory = IUniswapV2Factory::new(factory, provider);
    let pair = factory.getPair(usd, tkn).call().await.map_err(|e| Error::deploy("the tUSD/TKN pool", e))?;
    if pair != Address::ZERO {
        let reserves = IUniswapV2Pair::new(pair, provider)
            .getReserves()
            .call()
            .await
            .map_err(|e| Error::deploy("the tUSD/TKN pool", e))?;
        if reserves.reserve0 > 0 {
            return Ok(pair);
        }
    }
    let what = "the tUSD/TKN pool";
    for (token, amount) in [(usd, SEED_USD), (tkn, SEED_TKN)] {
        let token = MockERC20::new(token, provider);
        let amount = U256::from(amount);
        send(provider, what, token.mint(me, amount).into_transaction_request()).await?;
        send(provider, what, token.approve(router, amount).into_transaction_request()).await?;
    }
    let router = IUniswapV2Router02::new(router, provider);
    let add = router.addLiquidity(
        usd,
        tkn,
        U256::from(SEED_USD),
        U256::from(SEED_TKN),
        U256::ZERO,
        U256::ZERO,
        me,
        U256::MAX,
    );
    send(provider, what, add.into_transaction_request()).await?;
    let pair = factory.getPair(usd, tkn).call().await.map_err(|e| Error::deploy(what, e))?;
    tracing::info!("seeded the tUSD/TKN pool at {pair}");
    Ok(pair)
}
