//! The one error type of this crate.

/// Why a configuration was rejected.
///
/// Every variant that is about a field carries `path`, the field's place in the document
/// (`authority.router[0].node[0].device-interface[1].mtu`), and the rule it broke. The
/// `Display` form is always one line, `<path>: <what is wrong>`, ready for a log or a
/// terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be opened or read (missing, no permission, not UTF-8, ...).
    #[error("{file}: cannot read config file: {reason}")]
    Read {
        /// The file name as given.
        file: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A directory was given where a config file was expected.
    #[error("{file}: is a directory, not a config file")]
    IsDirectory {
        /// The file name as given.
        file: String,
    },
    /// The file or text holds no YAML document (empty, or only comments).
    #[error("{file}: config is empty (no YAML document)")]
    Empty {
        /// The file name, or `<config>` for text given to [`Config::parse`](crate::Config::parse).
        file: String,
    },
    /// The YAML itself is malformed: bad syntax, a duplicated key, an unknown anchor, ...
    #[error("{}: YAML error: {message}", location(file, *line, *column))]
    Syntax {
        /// The file name, or `<config>` for text given to [`Config::parse`](crate::Config::parse).
        file: String,
        /// One-based line, 0 when the parser gave no position.
        line: usize,
        /// One-based column, 0 when the parser gave no position.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key that the schema does not have (the schema denies unknown fields).
    #[error("{path}: unknown field \"{field}\"")]
    UnknownField {
        /// Path of the mapping that holds the key.
        path: String,
        /// The key as written.
        field: String,
    },
    /// A required field is absent.
    #[error("{path}: required field is missing")]
    Missing {
        /// Path of the missing field.
        path: String,
    },
    /// A value of the wrong YAML type (a string where a number belongs, ...).
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        /// Path of the value.
        path: String,
        /// What the schema wants there.
        expected: &'static str,
        /// What the document has there.
        found: String,
    },
    /// A number below its range.
    #[error("{path}: {value} is below the minimum {min}")]
    BelowMinimum {
        /// Path of the value.
        path: String,
        /// The value given.
        value: i128,
        /// The smallest value allowed.
        min: i128,
    },
    /// A number above its range.
    #[error("{path}: {value} is above the maximum {max}")]
    AboveMaximum {
        /// Path of the value.
        path: String,
        /// The value given.
        value: i128,
        /// The largest value allowed.
        max: i128,
    },
    /// A value outside a fixed list of choices.
    #[error("{path}: {value} is not one of {allowed}")]
    NotOneOf {
        /// Path of the value.
        path: String,
        /// The value given, quoted.
        value: String,
        /// The choices.
        allowed: &'static str,
    },
    /// A string that does not have the required form (address, prefix, MAC, name, ...).
    #[error("{path}: {value} is not {expected}")]
    BadFormat {
        /// Path of the value.
        path: String,
        /// The value given, quoted.
        value: String,
        /// The form wanted, e.g. `an IPv4 or IPv6 prefix`.
        expected: &'static str,
    },
    /// A value that must be unique appears a second time.
    #[error("{path}: duplicate {what} {value} (first at {first})")]
    Duplicate {
        /// Path of the second occurrence.
        path: String,
        /// What must be unique, e.g. `router name`.
        what: &'static str,
        /// The repeated value, quoted.
        value: String,
        /// Path of the first occurrence.
        first: String,
    },
    /// A name that should refer to something defined elsewhere refers to nothing.
    #[error("{path}: {value} does not name {what}")]
    UnknownReference {
        /// Path of the reference.
        path: String,
        /// The name given, quoted.
        value: String,
        /// What it should name, e.g. `a device-interface of this node`.
        what: &'static str,
    },
    /// A rule that relates several fields (on-link next hop, exclusive fields, ...).
    #[error("{path}: {rule}")]
    Rule {
        /// Path of the field the rule is reported on.
        path: String,
        /// The rule and how it was broken.
        rule: String,
    },
    /// The configuration does not fit the machine it runs on (see
    /// [`Config::check_host`](crate::Config::check_host)).
    #[error("{path}: {message}")]
    Host {
        /// Path of the field, or `(host)` for a machine-wide problem.
        path: String,
        /// What does not fit.
        message: String,
    },
}

impl ConfigError {
    /// The document path of the field at fault, if the error is about a field.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. }
            | ConfigError::IsDirectory { .. }
            | ConfigError::Empty { .. }
            | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownField { path, .. }
            | ConfigError::Missing { path }
            | ConfigError::WrongType { path, .. }
            | ConfigError::BelowMinimum { path, .. }
            | ConfigError::AboveMaximum { path, .. }
            | ConfigError::NotOneOf { path, .. }
            | ConfigError::BadFormat { path, .. }
            | ConfigError::Duplicate { path, .. }
            | ConfigError::UnknownReference { path, .. }
            | ConfigError::Rule { path, .. }
            | ConfigError::Host { path, .. } => Some(path),
        }
    }
}

fn location(file: &str, line: usize, column: usize) -> String {
    if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}:{column}")
    }
}
