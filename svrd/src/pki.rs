//! `svrd pki`: make an authority's certificates for a lab or a first deployment.
//!
//! `init DIR` writes a root CA and an intermediate CA; `issue DIR NAME` writes a router
//! certificate (subject CN and DNS SAN = the router's `peering-common-name`) signed by the
//! intermediate, with the chain svrd loads. Private keys are written 0600 and never printed.
//! Existing files are never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use svr_keymgmt::pki::{generate_authority, issue_router, Validity};

/// Why a `pki` command failed; one line, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum PkiCliError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: already exists; remove it or choose another directory (svrd pki never overwrites keys)")]
    Exists { path: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("router name {name:?}: not a DNS name (dot-separated labels of letters, digits and `-`, as peering-common-name requires); it also names the files written")]
    BadName { name: String },
    #[error("{path}: cannot read the intermediate CA ({source}); run `svrd pki init` first")]
    NoIssuer {
        path: String,
        source: std::io::Error,
    },
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `text` to a new file (never replacing one); `secret` files get mode 0600.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), PkiCliError> {
    let shown = path.display().to_string();
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => PkiCliError::Exists {
                path: shown.clone(),
            },
            _ => PkiCliError::Io {
                path: shown.clone(),
                source: e,
            },
        })?;
    f.write_all(text.as_bytes()).map_err(|e| PkiCliError::Io {
        path: shown,
        source: e,
    })
}

fn ensure_dir(dir: &Path) -> Result<(), PkiCliError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiCliError::Io {
        path: dir.display().to_string(),
        source: e,
    })
}

/// The files of an authority directory.
pub struct AuthorityFiles {
    pub root: PathBuf,
    pub root_key: PathBuf,
    pub intermediate: PathBuf,
    pub intermediate_key: PathBuf,
}

impl AuthorityFiles {
    pub fn in_dir(dir: &Path) -> Self {
        AuthorityFiles {
            root: dir.join("root.pem"),
            root_key: dir.join("root.key.pem"),
            intermediate: dir.join("intermediate.pem"),
            intermediate_key: dir.join("intermediate.key.pem"),
        }
    }
}

/// `svrd pki init DIR --authority NAME`: root and intermediate CA.
pub fn init(dir: &Path, authority: &str, days: u32) -> Result<String, PkiCliError> {
    ensure_dir(dir)?;
    let files = AuthorityFiles::in_dir(dir);
    for p in [
        &files.root,
        &files.root_key,
        &files.intermediate,
        &files.intermediate_key,
    ] {
        if p.exists() {
            return Err(PkiCliError::Exists {
                path: p.display().to_string(),
            });
        }
    }
    let pems = generate_authority(authority, Validity::days_from(unix_now(), days))
        .map_err(|e| PkiCliError::Generate(e.to_string()))?;
    write_new(&files.root, &pems.root_cert_pem, false)?;
    write_new(&files.root_key, &pems.root_key_pem, true)?;
    write_new(&files.intermediate, &pems.intermediate_cert_pem, false)?;
    write_new(&files.intermediate_key, &pems.intermediate_key_pem, true)?;
    Ok(format!(
        "authority {authority}: wrote {} (the trust anchor: authority.trusted-ca-certificate), {}, and their keys (keep root.key.pem offline)",
        files.root.display(),
        files.intermediate.display()
    ))
}

/// `svrd pki issue DIR NAME`: a router certificate for `peering-common-name` NAME.
pub fn issue(dir: &Path, name: &str, days: u32) -> Result<String, PkiCliError> {
    // NAME becomes file names in DIR: a DNS name has no `/`, no `..`, no empty or hidden part.
    if !svr_config::is_dns_name(name) {
        return Err(PkiCliError::BadName { name: name.into() });
    }
    let files = AuthorityFiles::in_dir(dir);
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| PkiCliError::NoIssuer {
            path: p.display().to_string(),
            source: e,
        })
    };
    let issuer_cert = read(&files.intermediate)?;
    let issuer_key = zeroize::Zeroizing::new(read(&files.intermediate_key)?);
    let pems = issue_router(
        &issuer_cert,
        &issuer_key,
        name,
        Validity::days_from(unix_now(), days),
    )
    .map_err(|e| PkiCliError::Generate(e.to_string()))?;
    let chain = dir.join(format!("{name}.chain.pem"));
    let key = dir.join(format!("{name}.key.pem"));
    for p in [&chain, &key] {
        if p.exists() {
            return Err(PkiCliError::Exists {
                path: p.display().to_string(),
            });
        }
    }
    write_new(&chain, &pems.cert_chain_pem, false)?;
    write_new(&key, &pems.key_pem, true)?;
    Ok(format!(
        "router {name}: wrote {} (node pki.certificate-chain) and {} (node pki.private-key)",
        chain.display(),
        key.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_refuses_names_that_are_paths() {
        let dir = std::env::temp_dir().join(format!("svrd-pki-names-{}", std::process::id()));
        for name in [
            "../evil",
            "a/b",
            "..",
            ".hidden",
            "/etc/passwd",
            "a..b",
            "",
            "a b",
            "a\\b",
            "router-a.",
        ] {
            assert!(
                matches!(issue(&dir, name, 1), Err(PkiCliError::BadName { .. })),
                "{name:?}"
            );
        }
        assert!(!dir.exists(), "nothing was written");
    }
}
