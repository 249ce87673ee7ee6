use std::fmt;

/// Result of reading or building a policy.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a policy was refused: where (a field path such as `spend[1].allowance`) and what.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is not valid TOML or JSON, or a field has the wrong type or name.
    #[error("{format} policy: {message}")]
    Syntax {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message, with its line and column.
        message: String,
    },
    /// The file parses but states something the policy model does not allow.
    #[error("{path}: {problem}")]
    Invalid {
        /// Field path, e.g. `allow[0].conditions[1].value`.
        path: String,
        /// What is wrong there.
        problem: Problem,
    },
}

impl Error {
    pub(crate) fn at(path: impl Into<String>, problem: Problem) -> Self {
        Self::Invalid { path: path.into(), problem }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            Self::Syntax { .. } => {
                "check the field names and types against the policy format in sak-primitives' README".into()
            }
            Self::Invalid { problem, .. } => problem.hint(),
        }
    }

    /// The problem, if the policy parsed.
    pub const fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            Self::Syntax { .. } => None,
        }
    }
}

/// Everything a syntactically valid policy can get wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A name that is neither a 0x address nor in the address book.
    UnknownName { name: String, known: Vec<String> },
    /// An allowance or amount of zero permits nothing.
    ZeroAllowance,
    /// `valid_until` is not after now.
    Expired { valid_until: u64, now: u64 },
    /// `valid_after` is not before `valid_until`, or a bound does not fit in 40 bits.
    InvalidTimeBounds { valid_after: u64, valid_until: u64 },
    /// A target meaning "any contract" (`*`, the zero address).
    Wildcard,
    /// The same entry twice.
    Duplicate { first: String },
    /// A number beyond what the contracts store.
    Overflow { max: String },
    /// An amount, address, selector or duration that does not parse.
    Malformed { expected: &'static str, found: String },
    /// A period below the contracts' minimum of 60 s or beyond 2^32 - 1 s.
    InvalidPeriod { seconds: u64 },
    /// Two fields that exclude each other, or one that needs another.
    Conflict { message: String },
    /// A condition on a parameter that is not a static 32-byte word.
    DynamicArgument { param: String },
    /// `transfer`/`approve`-like selectors are permitted only through spend limits.
    NeedsSpendLimit { selector: String },
    /// More entries than the contracts accept.
    TooMany { max: usize },
    /// A role name that is not a preset.
    UnknownRole { role: String },
    /// A generic dispatcher (multicall, Universal Router `execute`, `aggregate`, ERC-4626
    /// `withdraw`/`redeem`), permitted only with `dispatchers = true`.
    Dispatcher { function: String },
}

impl Problem {
    /// A hint that says what to write instead.
    pub fn hint(&self) -> String {
        match self {
            Self::UnknownName { known, .. } if known.is_empty() => {
                "use a 0x address (the address book of this network is empty)".into()
            }
            Self::UnknownName { known, .. } => {
                format!("use a 0x address or one of: {}", known.join(", "))
            }
            Self::ZeroAllowance => {
                "a cap of 0 permits nothing: remove the entry or set a positive amount".into()
            }
            Self::Expired { .. } => "set valid_until in the future, or valid_for = \"7d\"".into(),
            Self::InvalidTimeBounds { .. } => {
                "valid_after must be before valid_until (unix seconds or RFC 3339)".into()
            }
            Self::Wildcard => "name one contract per entry: sak never permits every target".into(),
            Self::Duplicate { first } => format!("merge this entry with {first}"),
            Self::Overflow { max } => format!("use at most {max}"),
            Self::Malformed { expected, .. } => format!("write {expected}"),
            Self::InvalidPeriod { .. } => "use a period of at least 60 s, e.g. \"1h\" or \"1d\"".into(),
            Self::Conflict { .. } => "keep one of the two fields".into(),
            Self::DynamicArgument { .. } => {
                "conditions apply to static parameters only (address, uintN, intN, bool, bytesN)".into()
            }
            Self::NeedsSpendLimit { .. } => {
                "give the token a [[spend]] entry instead (transfer = true to send it to anyone)".into()
            }
            Self::TooMany { max } => format!("keep at most {max} entries"),
            Self::UnknownRole { .. } => "use one of the roles trader, payer, viewer".into(),
            Self::Dispatcher { .. } => "permit the specific functions instead; only if every route through it is \
                                        meant, set `dispatchers = true` (sak session grant --allow-dispatchers)"
                .into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownName { name, .. } => write!(f, "unknown name {name:?}"),
            Self::ZeroAllowance => f.write_str("allowance of 0"),
            Self::Expired { valid_until, now } => {
                write!(f, "already over: valid_until {valid_until} is not after now ({now})")
            }
            Self::InvalidTimeBounds { valid_after, valid_until } => {
                write!(f, "invalid time bounds [{valid_after}, {valid_until}]")
            }
            Self::Wildcard => f.write_str("wildcard target"),
            Self::Duplicate { first } => write!(f, "duplicate of {first}"),
            Self::Overflow { max } => write!(f, "too large: the contracts store at most {max}"),
            Self::Malformed { expected, found } => write!(f, "expected {expected}, found {found:?}"),
            Self::InvalidPeriod { seconds } => write!(f, "invalid period of {seconds} s"),
            Self::Conflict { message } => f.write_str(message),
            Self::DynamicArgument { param } => write!(f, "parameter of type {param} is not a static word"),
            Self::NeedsSpendLimit { selector } => {
                write!(f, "{selector} moves or approves assets and needs a spend limit")
            }
            Self::TooMany { max } => write!(f, "more than {max} entries"),
            Self::UnknownRole { role } => write!(f, "unknown role {role:?}"),
            Self::Dispatcher { function } => write!(
                f,
                "{function} is a generic dispatcher: the session could route calls through it that no \
                 other permission names"
            ),
        }
    }
}
