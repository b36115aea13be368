//! Software versions: the rule is `svr_keymgmt::version`'s, shared with the routers' peers
//! (two versions are compatible when their major and minor numbers are equal). Routers with
//! an incompatible version still enroll and get their configuration (so they can be
//! upgraded), but each is an [`Event::IncompatibleVersion`](crate::Event).

pub use svr_keymgmt::version::compatible;

/// This conductor's version.
pub const OURS: &str = env!("CARGO_PKG_VERSION");
