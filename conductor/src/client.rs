//! A blocking client of the conductor's router API (what svrd's bootstrap mode will use,
//! and the integration tests' simulated router). TLS 1.3, the server verified against the
//! authority root; stage 2 presents the router's certificate. A client may list several
//! conductor replicas ([`Client::with_addresses`]): a request that fails on the connection
//! (refused, reset, timed out: the replica is down) is sent to the next one, and the one
//! that answered is tried first next time.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::core::{EnrollRequest, Enrolled, StatusReport};
use crate::http;
use crate::Refusal;

/// Why a request to the conductor failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A PEM input (root, chain, key) is unusable.
    #[error("{what}: not usable PEM")]
    BadPem {
        /// Which input.
        what: &'static str,
    },
    /// The name is not a valid TLS server name.
    #[error("server name {0:?}: not a DNS name or IP address")]
    BadServerName(String),
    /// TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The connection or exchange failed.
    #[error("{addr}: {source}")]
    Http {
        /// The conductor.
        addr: SocketAddr,
        /// What failed.
        source: http::HttpError,
    },
    /// The conductor refused.
    #[error("conductor refused ({status}): {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The conductor's message.
        error: String,
        /// The refusal kind (enrollment).
        reason: Option<Refusal>,
    },
    /// The answer is not what the API promises.
    #[error("unexpected answer from the conductor: {0}")]
    BadResponse(String),
    /// The router's key or CSR could not be made.
    #[error("cannot make the key and certificate request: {0}")]
    Csr(String),
    /// No conductor address was given.
    #[error("no conductor address")]
    NoAddress,
}

/// A router's new private key (PEM, PKCS#8, zeroized on drop) and its certificate request.
pub struct RouterKey {
    /// The private key, PEM: written 0600 on the router, never sent.
    pub key_pem: zeroize::Zeroizing<String>,
    /// The PKCS#10 request, PEM: what `POST /v1/enroll` carries.
    pub csr_pem: String,
}

impl std::fmt::Debug for RouterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterKey")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Generates a router's Ed25519 key and a CSR naming exactly `peering_common_name` (subject
/// `CN=<name>` and one DNS SAN), the form the conductor accepts (docs/conductor.md, CSR).
pub fn router_key_and_csr(peering_common_name: &str) -> Result<RouterKey, ClientError> {
    let err = |e: rcgen::Error| ClientError::Csr(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(err)?;
    let mut params =
        rcgen::CertificateParams::new(vec![peering_common_name.to_owned()]).map_err(err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, peering_common_name);
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(err)?;
    Ok(RouterKey {
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        csr_pem,
    })
}

/// The error body the server sends.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The message.
    pub error: String,
    /// The refusal kind, for enrollment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refusal>,
}

/// What `POST /v1/enroll` returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EnrollResponse {
    /// Certificate, serial, revision.
    #[serde(flatten)]
    pub enrolled: Enrolled,
    /// The current CRL (PEM): `authority.certificate-revocation-list`.
    pub crl: String,
}

/// What `GET /v1/config` returns when there is a newer revision, or a CRL other than the
/// one the router named.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConfigResponse {
    /// The revision of this router's configuration.
    pub revision: u64,
    /// The svrd configuration (without `local-node`).
    pub yaml: String,
    /// The current CRL (PEM), when it is not the one whose [`crl_fingerprint`] the router
    /// sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<String>,
}

/// A CRL's short name in a long poll (`crl=`): the first 8 bytes of its SHA-256, hex.
pub fn crl_fingerprint(crl_pem: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(crl_pem.as_bytes())[..8])
}

/// A connection profile to a conductor (one or several replicas).
#[derive(Clone)]
pub struct Client {
    addrs: Vec<SocketAddr>,
    /// The replica that answered last (an index into `addrs`).
    current: Arc<AtomicUsize>,
    name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

/// The TLS crypto provider: ring, the backend svr-keymgmt already uses for X.509 (one
/// crypto library in the process). rustls deprecates ring's provider because it lacks
/// post-quantum key exchange; moving to a hybrid group is docs/conductor.md's open item.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Client {
    /// A client of the conductor at `addr` whose certificate names `server_name`, issued
    /// under `root_pem`; `identity` (chain PEM, key PEM) for stage 2.
    pub fn new(
        addr: SocketAddr,
        server_name: &str,
        root_pem: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<Client, ClientError> {
        Client::with_addresses(&[addr], server_name, root_pem, identity)
    }

    /// A client of the conductor replicas at `addrs` (tried in order, failing over on
    /// connection errors); otherwise as [`Client::new`]. `addrs` must not be empty.
    pub fn with_addresses(
        addrs: &[SocketAddr],
        server_name: &str,
        root_pem: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<Client, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::NoAddress);
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
            let c = c.map_err(|_| ClientError::BadPem { what: "root" })?;
            roots
                .add(c)
                .map_err(|_| ClientError::BadPem { what: "root" })?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots);
        let tls = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(chain.as_bytes())
                        .collect::<Result<_, _>>()
                        .map_err(|_| ClientError::BadPem {
                            what: "certificate chain",
                        })?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| {
                    ClientError::BadPem {
                        what: "private key",
                    }
                })?;
                builder.with_client_auth_cert(chain, key)?
            }
        };
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ClientError::BadServerName(server_name.into()))?;
        Ok(Client {
            addrs: addrs.to_vec(),
            current: Arc::new(AtomicUsize::new(0)),
            name,
            tls: Arc::new(tls),
            timeout: Duration::from_secs(10),
        })
    }

    /// The replica that answered last.
    pub fn current(&self) -> SocketAddr {
        let i = self.current.load(Ordering::Relaxed);
        // `addrs` is never empty (`with_addresses` refuses that), so the index is in range.
        self.addrs[i % self.addrs.len()]
    }

    /// One request, to the replica that answered last, then to the others in turn while
    /// the connection fails.
    fn exchange(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        wait: Duration,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let first = self.current.load(Ordering::Relaxed);
        let mut result = Err(ClientError::NoAddress);
        for k in 0..self.addrs.len() {
            let i = (first + k) % self.addrs.len();
            result = self.exchange_with(self.addrs[i], method, target, body, wait);
            match &result {
                Err(ClientError::Http { addr, source }) => {
                    log::warn!("conductor {addr}: {source}; trying the next address");
                }
                _ => {
                    self.current.store(i, Ordering::Relaxed);
                    return result;
                }
            }
        }
        result
    }

    fn exchange_with(
        &self,
        addr: SocketAddr,
        method: &str,
        target: &str,
        body: &[u8],
        wait: Duration,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let err = |source| ClientError::Http { addr, source };
        let tcp = TcpStream::connect_timeout(&addr, self.timeout).map_err(|e| err(e.into()))?;
        tcp.set_read_timeout(Some(self.timeout + wait))
            .and_then(|_| tcp.set_write_timeout(Some(self.timeout)))
            .map_err(|e| err(e.into()))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), self.name.clone())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let host = addr.to_string();
        http::write_request(&mut s, method, target, &host, body).map_err(|e| err(e.into()))?;
        let out = http::read_response(&mut s).map_err(err)?;
        s.conn.send_close_notify();
        let _ = s.flush();
        Ok(out)
    }

    fn json<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ClientError> {
        if status != 200 {
            return Err(refused(status, body));
        }
        serde_json::from_slice(body).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    /// The same client with another connect and send timeout (default 10 s; a long poll
    /// adds its wait to the read timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The conductor this client talks to now (the replica that answered last).
    pub fn addr(&self) -> SocketAddr {
        self.current()
    }

    /// Stage 1: `POST /v1/enroll`.
    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let (status, body) = self.exchange("POST", "/v1/enroll", &body, Duration::ZERO)?;
        Self::json(status, &body)
    }

    /// Stage 2: `GET /v1/config?after=REV`: the configuration if its revision is newer
    /// than `after`, waiting up to `wait` for one; `None` if none came.
    pub fn config(
        &self,
        node: &str,
        after: u64,
        wait: Duration,
    ) -> Result<Option<ConfigResponse>, ClientError> {
        self.watch(node, after, wait, None)
    }

    /// Stage 2: the long poll of [`Client::config`] that also returns at once when the
    /// conductor's CRL is not the one with fingerprint `crl` ([`crl_fingerprint`]); the
    /// answer then carries it (and the revision may be `after` itself).
    pub fn watch(
        &self,
        node: &str,
        after: u64,
        wait: Duration,
        crl: Option<&str>,
    ) -> Result<Option<ConfigResponse>, ClientError> {
        let mut target = format!(
            "/v1/config?after={after}&node={node}&wait={}",
            wait.as_secs()
        );
        if let Some(f) = crl {
            target.push_str("&crl=");
            target.push_str(f);
        }
        let (status, body) = self.exchange("GET", &target, b"", wait)?;
        if status == 204 {
            return Ok(None);
        }
        Self::json(status, &body).map(Some)
    }

    /// Stage 2: `POST /v1/status`.
    pub fn status(&self, report: &StatusReport) -> Result<(), ClientError> {
        let body =
            serde_json::to_vec(report).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let (status, body) = self.exchange("POST", "/v1/status", &body, Duration::ZERO)?;
        match status {
            204 => Ok(()),
            _ => Err(refused(status, &body)),
        }
    }

    /// `GET /v1/crl` (PEM).
    pub fn crl(&self) -> Result<String, ClientError> {
        let (status, body) = self.exchange("GET", "/v1/crl", b"", Duration::ZERO)?;
        if status != 200 {
            return Err(refused(status, &body));
        }
        String::from_utf8(body).map_err(|_| ClientError::BadResponse("CRL not text".into()))
    }
}

fn refused(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Refused {
            status,
            error: e.error,
            reason: e.reason,
        },
        Err(_) => ClientError::Refused {
            status,
            error: String::from_utf8_lossy(body).chars().take(200).collect(),
            reason: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enroll::tests::{authority, NOW};

    #[test]
    fn router_csr_is_accepted_and_its_certificate_loads_with_the_key() {
        let (_, ca) = authority();
        let k = router_key_and_csr("router-a.acme.svr").unwrap();
        assert!(!format!("{k:?}").contains("PRIVATE"), "Debug hides the key");
        let issued = ca
            .issue(
                &k.csr_pem,
                "router-a",
                "router-a.acme.svr",
                [7; 16],
                NOW,
                365,
            )
            .unwrap();
        let id =
            svr_keymgmt::pki::Identity::load(issued.chain_pem.as_bytes(), k.key_pem.as_bytes())
                .unwrap();
        assert!(id.is_named("router-a.acme.svr"));
        // The conductor refuses the same request for another router's name.
        assert!(ca
            .issue(
                &k.csr_pem,
                "router-b",
                "router-b.acme.svr",
                [7; 16],
                NOW,
                365
            )
            .is_err());
    }
}
