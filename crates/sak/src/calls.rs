//! Calls as the user writes them: a target by address or book name, an ETH value, raw call
//! data or a function signature with its arguments. Shared by `sak send` and the owner's
//! `sak account call`.

use crate::{Chain, Hinted, Result};
use alloy::{
    dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier},
    json_abi::Function,
    primitives::{Address, Bytes, U256},
};

/// A 0x address or a name from the network's book.
pub fn resolve(chain: &Chain, text: &str, what: &str) -> Result<Address> {
    chain.contracts.resolve(text).map_err(|e| {
        Hinted::new(
            format!("{what}: {e}"),
            "pass a 0x address, or a name from the network's book (local chains: tUSD, TKN, WETH, router)",
        )
        .into()
    })
}

/// ETH: `0.01ether`, `1gwei`, `5wei` or plain wei.
pub fn parse_value(text: &str, what: &str) -> Result<U256> {
    sak_primitives::units::parse_amount(text, None).ok_or_else(|| {
        Hinted::new(
            format!("{what} {text:?} is not an amount of ETH"),
            "write 0.01ether, 1gwei, or an integer number of wei",
        )
        .into()
    })
}

/// Call data in hex (`0x` optional).
pub fn parse_hex(text: &str, what: &str) -> Result<Bytes> {
    text.parse::<Bytes>().map_err(|e| {
        Hinted::new(format!("{what} is not hex ({e})"), "write the call data as 0x followed by hex digits")
            .into()
    })
}

/// ABI-encodes `sig` (`transfer(address,uint256)`) with `args`; address arguments may be
/// names from the book.
pub fn encode_sig(sig: &str, args: &[String], chain: &Chain) -> Result<Bytes> {
    let hint = "write --sig 'name(type,...)' followed by one argument per type, e.g. \
                --sig 'transfer(address,uint256)' 0xabc… 1000000";
    let function = Function::parse(sig)
        .map_err(|e| Hinted::new(format!("--sig {sig:?} is not a function signature: {e}"), hint))?;
    if function.inputs.len() != args.len() {
        return Err(Hinted::new(
            format!(
                "{} takes {} arguments, {} given",
                function.signature(),
                function.inputs.len(),
                args.len()
            ),
            hint,
        )
        .into());
    }
    let mut values = Vec::with_capacity(args.len());
    for (i, (param, arg)) in function.inputs.iter().zip(args).enumerate() {
        let ty = param
            .resolve()
            .map_err(|e| Hinted::new(format!("argument {i} of {sig}: unsupported type ({e})"), hint))?;
        let value = if ty == DynSolType::Address && !arg.starts_with("0x") && !arg.starts_with("0X") {
            DynSolValue::Address(resolve(chain, arg, &format!("argument {i} of {}", function.name))?)
        } else {
            ty.coerce_str(arg).map_err(|e| {
                Hinted::new(format!("argument {i} of {}: {arg:?} is not a {ty} ({e})", function.name), hint)
            })?
        };
        values.push(value);
    }
    let encoded = function
        .abi_encode_input(&values)
        .map_err(|e| Hinted::new(format!("encoding {}: {e}", function.signature()), hint))?;
    Ok(encoded.into())
}
