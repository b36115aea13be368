//! How a conductor proves itself to etcd and checks etcd's members: client TLS (a CA for
//! the members' server certificates, optionally a client certificate for etcd's
//! `--client-cert-auth`) and an etcd user (docs/conductor.md, "etcd").
//!
//! [`EtcdAccess::load`] reads the files named on the command line once, at start-up, and
//! checks that each holds PEM of the right kind; every failure names the option and the
//! path. The client key and the password are held in [`Zeroizing`] buffers and never shown
//! by `Debug`. This module needs no etcd client, so the CLI validates the options in a
//! build without the `etcd` feature too.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// The files the etcd options name (`--etcd-cacert`, `--etcd-cert`, `--etcd-key`,
/// `--etcd-user`, `--etcd-password-file`), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdAccessFiles {
    /// PEM CA certificate(s) that signed the etcd members' server certificates; TLS on.
    pub cacert: Option<PathBuf>,
    /// PEM client certificate (chain) for etcd's `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    /// Its PEM private key.
    pub key: Option<PathBuf>,
    /// The etcd user.
    pub user: Option<String>,
    /// A file whose first line is the user's password.
    pub password_file: Option<PathBuf>,
}

/// Client TLS towards etcd: the trusted CA, and the client identity if any.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM CA certificate(s) (public).
    pub ca_pem: Vec<u8>,
    /// PEM client certificate chain and PEM private key.
    pub identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

/// An etcd RBAC user and its password.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdUser {
    /// The user's name.
    pub name: String,
    /// The password (first line of `--etcd-password-file`).
    pub password: Zeroizing<String>,
}

/// TLS and authentication towards etcd; the default is plain gRPC, no user.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EtcdAccess {
    /// Client TLS (`--etcd-cacert`, `--etcd-cert`, `--etcd-key`); endpoints are https.
    pub tls: Option<EtcdTls>,
    /// The etcd user (`--etcd-user`, `--etcd-password-file`).
    pub user: Option<EtcdUser>,
}

// Shows what is configured, never the key or the password.
impl std::fmt::Debug for EtcdAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAccess")
            .field("tls", &self.tls.is_some())
            .field(
                "client_cert",
                &self.tls.as_ref().is_some_and(|t| t.identity.is_some()),
            )
            .field("user", &self.user.as_ref().map(|u| u.name.as_str()))
            .finish()
    }
}

/// An etcd option that cannot be used; each names the option (and the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdAccessError {
    /// One option of a pair given without the other.
    #[error("{given} needs {missing} too")]
    Pair {
        /// The option given.
        given: &'static str,
        /// The option missing.
        missing: &'static str,
    },
    /// A client certificate without TLS.
    #[error("--etcd-cert needs --etcd-cacert (a client certificate is only sent over TLS)")]
    CertWithoutTls,
    /// The file could not be read.
    #[error("{option} {}: {source}", path.display())]
    Read {
        /// The option.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file does not hold PEM of the kind the option wants.
    #[error("{option} {}: not {wanted}", path.display())]
    NotPem {
        /// The option.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        wanted: &'static str,
    },
    /// The password file's first line is empty or not text.
    #[error("--etcd-password-file {}: {reason}", path.display())]
    Password {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// An empty user name.
    #[error("--etcd-user: the name is empty")]
    EmptyUser,
}

/// Reads `path` for `option`, the bytes in a buffer zeroized when dropped.
fn read(option: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, EtcdAccessError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| EtcdAccessError::Read {
            option,
            path: path.to_owned(),
            source,
        })
}

/// Reads PEM certificates for `option`: at least one, each well-formed.
fn read_certs(option: &'static str, path: &Path) -> Result<Vec<u8>, EtcdAccessError> {
    let pem = read(option, path)?;
    let not_pem = || EtcdAccessError::NotPem {
        option,
        path: path.to_owned(),
        wanted: "a PEM certificate (-----BEGIN CERTIFICATE-----)",
    };
    let mut n = 0;
    for c in CertificateDer::pem_slice_iter(&pem) {
        c.map_err(|_| not_pem())?;
        n += 1;
    }
    if n == 0 {
        return Err(not_pem());
    }
    Ok(pem.to_vec())
}

impl EtcdAccess {
    /// Reads and checks the files `files` names (see the module documentation).
    pub fn load(files: &EtcdAccessFiles) -> Result<EtcdAccess, EtcdAccessError> {
        let pair = |given, missing| Err(EtcdAccessError::Pair { given, missing });
        match (&files.cert, &files.key) {
            (Some(_), None) => return pair("--etcd-cert", "--etcd-key"),
            (None, Some(_)) => return pair("--etcd-key", "--etcd-cert"),
            _ => {}
        }
        match (&files.user, &files.password_file) {
            (Some(_), None) => return pair("--etcd-user", "--etcd-password-file"),
            (None, Some(_)) => return pair("--etcd-password-file", "--etcd-user"),
            _ => {}
        }
        if files.cert.is_some() && files.cacert.is_none() {
            return Err(EtcdAccessError::CertWithoutTls);
        }
        let tls = match &files.cacert {
            None => None,
            Some(ca) => {
                let ca_pem = read_certs("--etcd-cacert", ca)?;
                let identity = match (&files.cert, &files.key) {
                    (Some(cert), Some(key)) => {
                        let cert_pem = read_certs("--etcd-cert", cert)?;
                        let key_pem = read("--etcd-key", key)?;
                        // Parsed only to check it; the parsed copy is dropped at once.
                        if PrivateKeyDer::from_pem_slice(&key_pem).is_err() {
                            return Err(EtcdAccessError::NotPem {
                                option: "--etcd-key",
                                path: key.clone(),
                                wanted: "a PEM private key (PKCS#8, RSA or EC)",
                            });
                        }
                        Some((cert_pem, key_pem))
                    }
                    _ => None,
                };
                Some(EtcdTls { ca_pem, identity })
            }
        };
        let user = match (&files.user, &files.password_file) {
            (Some(name), Some(path)) => {
                if name.is_empty() {
                    return Err(EtcdAccessError::EmptyUser);
                }
                Some(EtcdUser {
                    name: name.clone(),
                    password: read_password(path)?,
                })
            }
            _ => None,
        };
        Ok(EtcdAccess { tls, user })
    }
}

/// The first line of `path` (without its line end): the password.
fn read_password(path: &Path) -> Result<Zeroizing<String>, EtcdAccessError> {
    let bytes = read("--etcd-password-file", path)?;
    let bad = |reason| EtcdAccessError::Password {
        path: path.to_owned(),
        reason,
    };
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| bad("the first line is not UTF-8 text"))?;
    if text.is_empty() {
        return Err(bad("the first line (the password) is empty"));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("svr-etcd-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn nothing_given_is_plain() {
        let a = EtcdAccess::load(&EtcdAccessFiles::default()).unwrap();
        assert!(a.tls.is_none() && a.user.is_none());
    }

    #[test]
    fn pairs_and_tls_are_required() {
        let p = Some(PathBuf::from("/nonexistent"));
        let e = EtcdAccess::load(&EtcdAccessFiles {
            cert: p.clone(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "--etcd-cert needs --etcd-key too");
        let e = EtcdAccess::load(&EtcdAccessFiles {
            password_file: p.clone(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "--etcd-password-file needs --etcd-user too");
        let e = EtcdAccess::load(&EtcdAccessFiles {
            cert: p.clone(),
            key: p,
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, EtcdAccessError::CertWithoutTls));
    }

    #[test]
    fn bad_files_name_option_and_path() {
        let d = dir("bad");
        let missing = d.join("missing.pem");
        let e = EtcdAccess::load(&EtcdAccessFiles {
            cacert: Some(missing.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with(&format!("--etcd-cacert {}: ", missing.display())));
        let junk = d.join("junk.pem");
        std::fs::write(&junk, "not pem\n").unwrap();
        let e = EtcdAccess::load(&EtcdAccessFiles {
            cacert: Some(junk.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(
            e,
            EtcdAccessError::NotPem {
                option: "--etcd-cacert",
                ..
            }
        ));
        assert!(e.to_string().contains(&junk.display().to_string()));
        let ca = d.join("ca.pem");
        std::fs::write(&ca, CERT).unwrap();
        let e = EtcdAccess::load(&EtcdAccessFiles {
            cacert: Some(ca.clone()),
            cert: Some(ca.clone()),
            key: Some(ca),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(
            e,
            EtcdAccessError::NotPem {
                option: "--etcd-key",
                ..
            }
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn password_is_the_first_line_and_never_shown() {
        let d = dir("pw");
        let pw = d.join("pw");
        std::fs::write(&pw, "s3cret\r\nsecond line\n").unwrap();
        let a = EtcdAccess::load(&EtcdAccessFiles {
            user: Some("conductor".into()),
            password_file: Some(pw.clone()),
            ..Default::default()
        })
        .unwrap();
        let u = a.user.as_ref().unwrap();
        assert_eq!(u.password.as_str(), "s3cret");
        let shown = format!("{a:?}");
        assert!(
            shown.contains("conductor") && !shown.contains("s3cret"),
            "{shown}"
        );
        std::fs::write(&pw, "\nx\n").unwrap();
        let e = EtcdAccess::load(&EtcdAccessFiles {
            user: Some("conductor".into()),
            password_file: Some(pw),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, EtcdAccessError::Password { .. }));
        let _ = std::fs::remove_dir_all(&d);
    }
}
