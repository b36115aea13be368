//! Software versions, as routers tell them to each other (the Software Version TLV,
//! `docs/bfd-metadata.md` §2) and to the conductor.
//!
//! **Rule:** two versions are compatible when their major and minor numbers are equal
//! (`0.1.0` and `0.1.7` are; `0.1.0` and `0.2.0` are not); a version that does not start
//! with `MAJOR.MINOR` (digits) is compatible with nothing. Wire compatibility is decided by
//! the exchange version alone: an incompatible software version is an event, not a refusal
//! (docs/conductor.md "Versions").

use core::fmt;

/// Longest version string accepted on the wire.
pub const MAX_VERSION_LEN: usize = 32;

/// A software version string: 1-32 bytes of `0-9 A-Z a-z . + -` (SemVer's alphabet), so
/// it prints as-is in an event line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SoftwareVersion(String);

/// A version string that is empty, too long or has a character outside `0-9A-Za-z.+-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a software version is 1-32 characters of 0-9 A-Z a-z . + -")]
pub struct BadVersion;

impl SoftwareVersion {
    /// Check and wrap `s`.
    pub fn new(s: &str) -> Result<SoftwareVersion, BadVersion> {
        let ok = !s.is_empty()
            && s.len() <= MAX_VERSION_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
        if ok {
            Ok(SoftwareVersion(s.to_owned()))
        } else {
            Err(BadVersion)
        }
    }

    /// The version of this build (the workspace's, which every svr-fastpath crate shares).
    pub fn this_build() -> SoftwareVersion {
        // Cargo's package version is SemVer, inside the wire alphabet (tested below).
        SoftwareVersion(env!("CARGO_PKG_VERSION").to_owned())
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// See the module documentation.
    pub fn is_compatible_with(&self, other: &SoftwareVersion) -> bool {
        compatible(&self.0, &other.0)
    }
}

impl fmt::Display for SoftwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut it = v.trim().split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// See the module documentation.
pub fn compatible(a: &str, b: &str) -> bool {
    match (major_minor(a), major_minor(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_minor_rule() {
        assert!(compatible("0.1.0", "0.1.9"));
        assert!(compatible("1.2", "1.2.3-rc1"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("1.1.0", "2.1.0"));
        assert!(!compatible("banana", "banana"));
        assert!(!compatible("1", "1"));
    }

    #[test]
    fn wire_alphabet() {
        assert!(SoftwareVersion::new("0.1.0").is_ok());
        assert_eq!(
            SoftwareVersion::new(SoftwareVersion::this_build().as_str()),
            Ok(SoftwareVersion::this_build())
        );
        assert!(SoftwareVersion::new("1.2.3-rc.1+build.7").is_ok());
        for bad in ["", "0.1.0 ", "0.1\n", "v\"1", &"9".repeat(33)] {
            assert_eq!(SoftwareVersion::new(bad), Err(BadVersion), "{bad:?}");
        }
    }
}
