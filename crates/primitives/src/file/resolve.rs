//! From a policy file's entries to the policy: names resolved, periods and conditions checked, errors with the path of the entry.

use super::*;

pub(super) fn malformed(path: &str, expected: &'static str, found: impl ToText) -> Error {
    Error::at(path, Problem::Malformed { expected, found: found.to_text() })
}

impl ToText for &Number {
    fn to_text(&self) -> String {
        self.text()
    }
}

impl ToText for &String {
    fn to_text(&self) -> String {
        (*self).clone()
    }
}

impl ToText for String {
    fn to_text(&self) -> String {
        self.clone()
    }
}

pub(super) fn period(value: Option<&Number>, path: &str) -> Result<u32> {
    let Some(value) = value else { return Ok(DAY) };
    let seconds = parse_duration(&value.text())
        .ok_or_else(|| malformed(path, "a duration such as \"1d\" or \"3600\"", value))?;
    u32::try_from(seconds).map_err(|_| Error::at(path, Problem::InvalidPeriod { seconds }))
}

pub(super) fn allow(a: &AllowFile, path: &str, book: &AddressBook) -> Result<Permission> {
    let target = book.resolve(&a.target, &format!("{path}.target"))?;
    let (selector, function) = match (&a.function, &a.selector) {
        (Some(signature), None) => {
            let function = Function::parse(signature).map_err(|_| {
                Error::at(
                    format!("{path}.function"),
                    Problem::Malformed {
                        expected: "a signature such as \"f(address,uint256)\"",
                        found: signature.clone(),
                    },
                )
            })?;
            (function.selector(), Some(function))
        }
        (None, Some(s)) => {
            let selector: Selector = s.parse().map_err(|_| {
                Error::at(
                    format!("{path}.selector"),
                    Problem::Malformed { expected: "4 bytes of 0x hex", found: s.clone() },
                )
            })?;
            (selector, None)
        }
        _ => {
            return Err(Error::at(
                path,
                Problem::Conflict { message: "set exactly one of function and selector".into() },
            ));
        }
    };
    let conditions = a
        .conditions
        .iter()
        .enumerate()
        .map(|(k, c)| condition(c, &format!("{path}.conditions[{k}]"), function.as_ref(), book))
        .collect::<Result<_>>()?;
    Ok(Permission { target, selector, allow_value: a.value.unwrap_or(false), conditions })
}

pub(super) fn condition(
    c: &ConditionFile,
    path: &str,
    function: Option<&Function>,
    book: &AddressBook,
) -> Result<Condition> {
    let declared = match &c.ty {
        Some(text) => Some(ArgType::of_param(text).ok_or_else(|| {
            malformed(
                &format!("{path}.type"),
                "an ABI type of one word (uint256, int24, address, bool, bytes32)",
                text,
            )
        })?),
        None => None,
    };
    // With a signature, `arg` names a parameter; every parameter before it must take one head
    // word (a static elementary type, or the offset of a dynamic one).
    let mut ty = declared.unwrap_or_default();
    if let Some(f) = function {
        let index = usize::from(c.arg);
        let param = f.inputs.get(index).ok_or_else(|| {
            Error::at(
                format!("{path}.arg"),
                Problem::Overflow { max: f.inputs.len().saturating_sub(1).to_string() },
            )
        })?;
        if !is_static_word(param) {
            return Err(Error::at(
                format!("{path}.arg"),
                Problem::DynamicArgument { param: param.ty.clone() },
            ));
        }
        if let Some(p) = f.inputs[..index].iter().find(|p| !is_static_word(p) && !is_dynamic(p)) {
            return Err(Error::at(
                format!("{path}.arg"),
                Problem::Malformed { expected: "parameters before it of one word each", found: p.ty.clone() },
            ));
        }
        ty = ArgType::of_param(&param.ty).unwrap_or_default();
        if declared.is_some_and(|d| d != ty) {
            return Err(Error::at(
                format!("{path}.type"),
                Problem::Conflict { message: format!("the signature says {}", param.ty) },
            ));
        }
    } else if declared.is_none() && matches!(c.op.as_str(), "<=" | "lte" | ">=" | "gte") {
        return Err(Error::at(
            format!("{path}.type"),
            Problem::Conflict {
                message: format!("{} needs the argument's type: give `function` or `type`", c.op),
            },
        ));
    }
    let arg = c.arg;
    let word = |n: &Number, p: &str| -> Result<B256> {
        let text = n.text();
        let value = match ty {
            ArgType::Bool if text == "true" || text == "false" => Some(U256::from(u8::from(text == "true"))),
            ArgType::Int(_) if text.starts_with('-') => {
                parse_amount(&text[1..], None).filter(|m| *m <= U256::ONE << 255).map(|m| U256::ZERO - m)
            }
            _ => match book.resolve(&text, p) {
                Ok(address) => return Ok(address.into_word()),
                Err(_) => parse_amount(&text, None),
            },
        };
        let value =
            value.ok_or_else(|| malformed(p, "a number, 0x hex word, address or address-book name", n))?;
        if !ty.canonical(&value.into()) {
            return Err(malformed(p, "a value within the argument's type", format!("{text} for {ty}")));
        }
        Ok(value.into())
    };
    let single = || -> Result<B256> {
        if !c.values.is_empty() {
            return Err(Error::at(
                format!("{path}.values"),
                Problem::Conflict { message: "values is for one-of".into() },
            ));
        }
        let v = c.value.as_ref().ok_or_else(|| {
            Error::at(
                format!("{path}.value"),
                Problem::Conflict { message: format!("{} needs a value", c.op) },
            )
        })?;
        word(v, &format!("{path}.value"))
    };
    let op = match c.op.as_str() {
        "==" | "eq" => Op::Eq { value: single()? },
        "<=" | "lte" => Op::Lte { value: single()?.into() },
        ">=" | "gte" => Op::Gte { value: single()?.into() },
        "one-of" => {
            if c.value.is_some() {
                return Err(Error::at(
                    format!("{path}.value"),
                    Problem::Conflict { message: "one-of takes values".into() },
                ));
            }
            let values = c
                .values
                .iter()
                .enumerate()
                .map(|(j, v)| word(v, &format!("{path}.values[{j}]")))
                .collect::<Result<_>>()?;
            Op::OneOf { values }
        }
        "eq-account" => {
            if c.value.is_some() || !c.values.is_empty() {
                return Err(Error::at(
                    path,
                    Problem::Conflict { message: "eq-account takes no value".into() },
                ));
            }
            Op::EqAccount
        }
        other => {
            return Err(Error::at(
                format!("{path}.op"),
                Problem::Malformed { expected: "one of ==, <=, >=, one-of, eq-account", found: other.into() },
            ));
        }
    };
    if !ty.fits(&op) {
        return Err(malformed(
            &format!("{path}.op"),
            "<= and >= on a uintN or intN, eq-account on an address",
            format!("{} on {ty}", c.op),
        ));
    }
    Ok(Condition { arg, op, ty })
}

/// Elementary static types take exactly one head word.
pub(super) fn is_static_word(p: &Param) -> bool {
    p.components.is_empty() && !p.ty.contains('[') && p.ty != "bytes" && p.ty != "string"
}

/// Dynamic types take one head word too (an offset), but cannot carry a condition.
pub(super) fn is_dynamic(p: &Param) -> bool {
    p.ty == "bytes" || p.ty == "string" || p.ty.ends_with("[]")
}
