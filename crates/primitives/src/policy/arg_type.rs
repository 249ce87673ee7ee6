//! The ABI types a condition may read an argument as, and their words in policy files.

use super::*;

/// The ABI type a condition reads its argument word as: `ISakSessions.ArgCondition.argType`.
/// Text form: `uint8` … `uint256`, `int8` … `int256`, `address`, `bool`, or `bytes32` (a raw
/// word, for `==`, one-of and eq-account only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ArgType {
    /// Any 32 bytes, compared only for equality.
    #[default]
    Word,
    /// `uintN`, with N the bits (8 ..= 256, a multiple of 8).
    Uint(u16),
    /// `intN`, compared as signed.
    Int(u16),
    /// `address`: a uint160.
    Address,
    /// `bool`: 0 or 1.
    Bool,
}

impl ArgType {
    const SIGNED: u8 = 0x40;
    const ADDRESS: u8 = 0x94;
    const BOOL: u8 = 0x81;

    /// Whether this is the untyped raw word.
    pub fn is_word(&self) -> bool {
        *self == Self::Word
    }

    /// The type of a static ABI parameter: `bytesN` and other word types read as raw words.
    /// `None` for a type that does not fit one word.
    pub fn of_param(ty: &str) -> Option<Self> {
        let bits = |digits: &str| -> Option<u16> {
            let n = if digits.is_empty() { 256 } else { digits.parse().ok()? };
            (n % 8 == 0 && (8..=256).contains(&n)).then_some(n)
        };
        Some(match ty {
            "address" => Self::Address,
            "bool" => Self::Bool,
            "bytes32" | "word" => Self::Word,
            t if t
                .strip_prefix("bytes")
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| (1..=32).contains(&n)) =>
            {
                Self::Word
            }
            t if t.starts_with("uint") => Self::Uint(bits(&t[4..])?),
            t if t.starts_with("int") => Self::Int(bits(&t[3..])?),
            _ => return None,
        })
    }

    /// The on-chain code (`ISakSessions.ArgCondition.argType`).
    pub fn code(self) -> u8 {
        match self {
            Self::Word => 0,
            Self::Uint(bits) => (bits / 8) as u8,
            Self::Int(bits) => Self::SIGNED | (bits / 8) as u8,
            Self::Address => Self::ADDRESS,
            Self::Bool => Self::BOOL,
        }
    }

    /// The type of an on-chain code, if it names one.
    pub fn from_code(code: u8) -> Option<Self> {
        let bits = u16::from(code & 0x3f) * 8;
        match code {
            0 => Some(Self::Word),
            Self::ADDRESS => Some(Self::Address),
            Self::BOOL => Some(Self::Bool),
            1..=32 => Some(Self::Uint(bits)),
            0x41..=0x60 => Some(Self::Int(bits)),
            _ => None,
        }
    }

    /// Whether `op` may read an argument of this type (as `SessionLib` checks at grant):
    /// `<=`/`>=` need a number, eq-account an address or a raw word.
    pub fn fits(self, op: &Op) -> bool {
        match op {
            Op::Lte { .. } | Op::Gte { .. } => matches!(self, Self::Uint(_) | Self::Int(_)),
            Op::EqAccount => matches!(self, Self::Word | Self::Address),
            Op::Eq { .. } | Op::OneOf { .. } => true,
        }
    }

    /// Whether `word` is the canonical encoding of a value of this type: high bits zero for a
    /// `uintN`, an address or a bool (0 or 1), sign-extended for an `intN`.
    pub fn canonical(self, word: &B256) -> bool {
        let value = U256::from_be_bytes(word.0);
        match self {
            Self::Word => true,
            Self::Bool => value <= U256::from(1),
            Self::Address => value >> 160 == U256::ZERO,
            Self::Uint(bits) => value >> usize::from(bits) == U256::ZERO,
            Self::Int(bits) => {
                // Sign-extended: the top 257 - bits bits are all equal.
                let high = value >> (usize::from(bits) - 1);
                high == U256::ZERO || high == U256::MAX >> (usize::from(bits) - 1)
            }
        }
    }

    /// `a` compared with `b`, both words of this type (an `intN` as signed).
    pub fn compare(self, a: U256, b: U256) -> std::cmp::Ordering {
        match self {
            Self::Int(_) => I256::from_raw(a).cmp(&I256::from_raw(b)),
            _ => a.cmp(&b),
        }
    }

    /// A value of this type as text (an `intN` signed, an address checksummed).
    pub fn show(self, value: U256) -> String {
        match self {
            Self::Int(_) => I256::from_raw(value).to_string(),
            Self::Address => Address::from_word(value.into()).to_string(),
            Self::Bool if value <= U256::from(1) => (value == U256::from(1)).to_string(),
            _ => value.to_string(),
        }
    }
}

impl std::fmt::Display for ArgType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Word => f.write_str("bytes32"),
            Self::Uint(bits) => write!(f, "uint{bits}"),
            Self::Int(bits) => write!(f, "int{bits}"),
            Self::Address => f.write_str("address"),
            Self::Bool => f.write_str("bool"),
        }
    }
}

impl From<ArgType> for String {
    fn from(t: ArgType) -> Self {
        t.to_string()
    }
}

impl TryFrom<String> for ArgType {
    type Error = String;
    fn try_from(text: String) -> std::result::Result<Self, String> {
        Self::of_param(&text).ok_or_else(|| format!("not an ABI type of one word: {text}"))
    }
}
