//! Software versions. **Rule:** two versions are compatible when their major and minor
//! numbers are equal (`0.1.0` and `0.1.7` are; `0.1.0` and `0.2.0` are not); a version
//! that does not start with `MAJOR.MINOR` (digits) is incompatible with everything.
//! Routers with an incompatible version still enroll and get their configuration (so they
//! can be upgraded), but each is an [`Event::IncompatibleVersion`](crate::Event).

/// This conductor's version.
pub const OURS: &str = env!("CARGO_PKG_VERSION");

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
}
