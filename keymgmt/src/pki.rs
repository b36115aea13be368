//! X.509 identities: the router's own certificate and key, the authority's trust anchor, and
//! validation of a peer's chain (docs/background.md §6 "Keys", docs/background.md §7.2).
//!
//! - Chain validation is `rustls-webpki` (path building to the authority root through the
//!   intermediates the peer sent, signatures, validity dates at an injected wall time, EKU).
//! - The subject CN and DNS SANs are read with `x509-parser`; the peer's `peering-common-name`
//!   must equal one DNS SAN exactly (byte for byte, case included), or, only when the
//!   certificate has no DNS SAN at all, the subject CN (RFC 6125 §6.4.4: a CN is a fallback,
//!   never a second name beside the SANs).
//! - An authority may give certificate revocation lists ([`TrustAnchor::with_crls`]): a chain
//!   with a listed leaf or intermediate is refused ([`PkiError::Revoked`]) by `rustls-webpki`'s
//!   revocation check; a certificate whose issuer has no CRL there is not checked.
//! - A router certificate must be issued by an intermediate: a leaf signed directly by the
//!   root is refused ([`PkiError::MissingIntermediate`]).
//! - Key-exchange signatures use the leaf's key with `ring`: Ed25519 (what [`issue_router`]
//!   generates; deterministic signatures) or ECDSA P-256/SHA-256 (what most enterprise CAs
//!   issue).
//!
//! Wall time never comes from a clock here: every function that needs it takes `unix_now`
//! (seconds since 1970), which the caller reads (rustls's `TimeProvider` idea).

use core::fmt;
use std::sync::Arc;
use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING, ED25519,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivatePkcs8KeyDer, TrustAnchor as WebpkiAnchor,
    UnixTime,
};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use zeroize::Zeroizing;

/// Why a certificate, chain, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The chain does not lead to the authority's root (another CA, or a missing intermediate).
    #[error("certificate is not issued under the authority's root (unknown issuer)")]
    UnknownIssuer,
    /// A certificate of the chain is past its notAfter at the given time.
    #[error("certificate expired")]
    Expired,
    /// A certificate of the chain is before its notBefore at the given time.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// The router certificate was signed by the root itself, not through an intermediate.
    #[error("router certificate issued directly by the root; an intermediate CA is required")]
    MissingIntermediate,
    /// The peer's `peering-common-name` is not a DNS SAN of the certificate (nor, when it has
    /// no DNS SAN, its subject CN); names are compared exactly.
    #[error("peering name mismatch: expected {expected:?}, certificate names {found:?}")]
    NameMismatch {
        /// The configured `peering-common-name` of the peer.
        expected: String,
        /// The certificate's first DNS SAN (or subject CN when it has no SAN).
        found: String,
    },
    /// A certificate of the chain is listed in the authority's revocation list.
    #[error("certificate revoked")]
    Revoked,
    /// A signature (certificate or key-exchange) did not verify.
    #[error("bad signature")]
    BadSignature,
    /// The key type is not one we sign or verify key-exchange values with.
    #[error("unsupported public key algorithm (Ed25519 or ECDSA P-256 required)")]
    UnsupportedKey,
    /// The private key does not belong to the leaf certificate.
    #[error("private key does not match the certificate")]
    KeyMismatch,
    /// Webpki refused the chain for another reason (named).
    #[error("certificate chain rejected: {0}")]
    Rejected(String),
    /// Input that is not PEM / DER / PKCS#8 as expected.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Certificate generation failed (`svrd pki`).
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

fn map_webpki(e: webpki::Error) -> PkiError {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => PkiError::UnknownIssuer,
        E::CertExpired { .. } => PkiError::Expired,
        E::CertNotValidYet { .. } => PkiError::NotYetValid,
        E::InvalidSignatureForPublicKey => PkiError::BadSignature,
        E::CertRevoked => PkiError::Revoked,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => PkiError::Malformed("certificate DER"),
        other => PkiError::Rejected(format!("{other:?}")),
    }
}

/// The key type of a leaf certificate, which fixes the key-exchange signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// Ed25519 (RFC 8032): 64-byte signatures.
    Ed25519,
    /// ECDSA P-256 with SHA-256, ASN.1 DER signature.
    EcdsaP256Sha256,
}

const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

/// A parsed leaf: names and public key.
struct LeafInfo {
    common_names: Vec<String>,
    dns_sans: Vec<String>,
    scheme: SignatureScheme,
    public_key: Vec<u8>,
}

/// What an operator is shown of a certificate: its subject and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The subject distinguished name (`CN=router-a.testbed.svr, O=...`).
    pub subject: String,
    /// notAfter, Unix seconds.
    pub not_after_unix: i64,
}

/// The subject and expiry of a DER certificate; `None` if it does not parse.
pub fn certificate_summary(der: &[u8]) -> Option<CertificateSummary> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(CertificateSummary {
        subject: cert.subject().to_string(),
        not_after_unix: cert.validity().not_after.timestamp(),
    })
}

fn leaf_info(der: &[u8]) -> Result<LeafInfo, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| PkiError::Malformed("certificate DER"))?;
    let common_names = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    let mut dns_sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                dns_sans.push((*n).to_owned());
            }
        }
    }
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let scheme = if alg == OID_ED25519 {
        SignatureScheme::Ed25519
    } else if alg == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        if curve.as_deref() != Some(OID_P256) {
            return Err(PkiError::UnsupportedKey);
        }
        SignatureScheme::EcdsaP256Sha256
    } else {
        return Err(PkiError::UnsupportedKey);
    };
    Ok(LeafInfo {
        common_names,
        dns_sans,
        scheme,
        public_key: spki.subject_public_key.data.to_vec(),
    })
}

enum SigningKey {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair, SystemRandom),
}

/// This router's identity: its certificate chain (leaf first, then intermediates) and the
/// leaf's private key, which signs key-exchange values. `Debug` prints the name only.
pub struct Identity {
    common_name: String,
    chain: Vec<Vec<u8>>,
    key: SigningKey,
}

impl Identity {
    /// Load a PEM chain (leaf first, then the intermediate(s); the root may be omitted) and a
    /// PKCS#8 PEM private key. Fails if the key is not the leaf's.
    pub fn load(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, PkiError> {
        let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(cert_chain_pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|_| PkiError::Malformed("certificate PEM"))?;
        let leaf = chain
            .first()
            .ok_or(PkiError::Malformed("certificate PEM (empty)"))?;
        let info = leaf_info(leaf)?;
        let key_der = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|_| PkiError::Malformed("PKCS#8 private key PEM"))?;
        let key_der = Zeroizing::new(key_der.secret_pkcs8_der().to_vec());
        let key = match info.scheme {
            SignatureScheme::Ed25519 => SigningKey::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key_der)
                    .map_err(|_| PkiError::KeyMismatch)?,
            ),
            SignatureScheme::EcdsaP256Sha256 => {
                let rng = SystemRandom::new();
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key_der, &rng)
                    .map_err(|_| PkiError::KeyMismatch)?;
                SigningKey::EcdsaP256(kp, rng)
            }
        };
        let public = match &key {
            SigningKey::Ed25519(k) => k.public_key().as_ref(),
            SigningKey::EcdsaP256(k, _) => k.public_key().as_ref(),
        };
        if public != info.public_key.as_slice() {
            return Err(PkiError::KeyMismatch);
        }
        let common_name = info
            .common_names
            .first()
            .or(info.dns_sans.first())
            .cloned()
            .unwrap_or_default();
        Ok(Identity {
            common_name,
            chain,
            key,
        })
    }

    /// The leaf's subject CN (or first DNS SAN).
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The chain as sent in the Certificate TLV: DER, leaf first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Whether `name` is the leaf's CN or one of its DNS SANs.
    pub fn is_named(&self, name: &str) -> bool {
        self.chain
            .first()
            .and_then(|l| leaf_info(l).ok())
            .is_some_and(|i| name_matches(&i, name))
    }

    /// The signature algorithm of this identity.
    pub fn scheme(&self) -> SignatureScheme {
        match self.key {
            SigningKey::Ed25519(_) => SignatureScheme::Ed25519,
            SigningKey::EcdsaP256(..) => SignatureScheme::EcdsaP256Sha256,
        }
    }

    /// Sign `msg` (a key-exchange transcript).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        match &self.key {
            SigningKey::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            SigningKey::EcdsaP256(k, rng) => k
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::Rejected("ECDSA signing failed".into())),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("common_name", &self.common_name)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The authority's root certificate, the only trust anchor, and the authority's certificate
/// revocation lists (none unless [`TrustAnchor::with_crls`] adds them).
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    anchor: WebpkiAnchor<'static>,
    crls: Arc<[CertRevocationList<'static>]>,
}

impl TrustAnchor {
    /// Load the root certificate (the first PEM CERTIFICATE in `root_pem`).
    pub fn load(root_pem: &[u8]) -> Result<TrustAnchor, PkiError> {
        let der = CertificateDer::from_pem_slice(root_pem)
            .map_err(|_| PkiError::Malformed("root certificate PEM"))?;
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(map_webpki)?
            .to_owned();
        Ok(TrustAnchor {
            anchor,
            crls: Arc::new([]),
        })
    }

    /// Sets the certificate revocation lists to those in `crl_file`: PEM with one or more `X509 CRL`
    /// blocks (e.g. one from the root for intermediates, one from the intermediate for
    /// routers), or a single DER CRL. Every CRL must parse (v2, with nextUpdate, RFC 5280
    /// profile); its signature is checked against its issuer when a chain uses it. A CRL past
    /// its nextUpdate is still used: an old list is better than none.
    pub fn with_crls(mut self, crl_file: &[u8]) -> Result<TrustAnchor, PkiError> {
        let ders: Vec<Vec<u8>> = if crl_file.trim_ascii_start().starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::pem_slice_iter(crl_file)
                .map(|c| c.map(|c| c.as_ref().to_vec()))
                .collect::<Result<_, _>>()
                .map_err(|_| PkiError::Malformed("certificate revocation list PEM"))?
        } else {
            vec![crl_file.to_vec()]
        };
        if ders.is_empty() {
            return Err(PkiError::Malformed(
                "certificate revocation list PEM (no X509 CRL block)",
            ));
        }
        let crls = ders
            .iter()
            .map(|der| OwnedCertRevocationList::from_der(der).map(CertRevocationList::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PkiError::Malformed("certificate revocation list"))?;
        self.crls = crls.into();
        Ok(self)
    }

    /// How many revocation lists this anchor checks chains against.
    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }
}

/// A peer whose chain verified: its name and the public key its key-exchange values are
/// signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    name: String,
    scheme: SignatureScheme,
    public_key: Vec<u8>,
}

impl PeerIdentity {
    /// The peering-common-name the chain was checked against.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signature algorithm of the peer's leaf key.
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// Verify a key-exchange signature by this peer.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), PkiError> {
        let alg: &dyn ring::signature::VerificationAlgorithm = match self.scheme {
            SignatureScheme::Ed25519 => &ED25519,
            SignatureScheme::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
        };
        UnparsedPublicKey::new(alg, &self.public_key)
            .verify(msg, signature)
            .map_err(|_| PkiError::BadSignature)
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// `name` is one of the DNS SANs, or, when there is none, the subject CN; exact match.
fn name_matches(info: &LeafInfo, name: &str) -> bool {
    let names = if info.dns_sans.is_empty() {
        &info.common_names
    } else {
        &info.dns_sans
    };
    names.iter().any(|n| n == name)
}

/// Validate a peer's chain (`chain_der[0]` is the leaf, the rest intermediates) against the
/// authority root at wall time `unix_now` (and against the anchor's revocation lists, if
/// any), require an intermediate, and check that `expected_peering_common_name` is a DNS SAN
/// of the leaf, or its CN when it has no DNS SAN.
pub fn verify_peer(
    chain_der: &[Vec<u8>],
    anchor: &TrustAnchor,
    expected_peering_common_name: &str,
    unix_now: u64,
) -> Result<PeerIdentity, PkiError> {
    let (leaf, rest) = chain_der
        .split_first()
        .ok_or(PkiError::Malformed("empty certificate chain"))?;
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let ee = EndEntityCert::try_from(&leaf_der).map_err(map_webpki)?;
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let anchors = [anchor.anchor.clone()];
    let time = UnixTime::since_unix_epoch(Duration::from_secs(unix_now));
    let crls: Vec<&CertRevocationList<'_>> = anchor.crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crls).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .with_expiration_policy(ExpirationPolicy::Ignore)
            .build()
    });
    let path = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            KeyUsage::server_auth(),
            revocation,
            None,
        )
        .map_err(map_webpki)?;
    if path.intermediate_certificates().next().is_none() {
        return Err(PkiError::MissingIntermediate);
    }
    let info = leaf_info(leaf)?;
    if !name_matches(&info, expected_peering_common_name) {
        let found = info
            .dns_sans
            .first()
            .or(info.common_names.first())
            .cloned()
            .unwrap_or_default();
        return Err(PkiError::NameMismatch {
            expected: expected_peering_common_name.to_owned(),
            found,
        });
    }
    Ok(PeerIdentity {
        name: expected_peering_common_name.to_owned(),
        scheme: info.scheme,
        public_key: info.public_key,
    })
}

// ---------------------------------------------------------------------------------------
// Generation, for `svrd pki init DIR` and `svrd pki issue DIR NAME`.
// ---------------------------------------------------------------------------------------

/// A validity window in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore, seconds since 1970.
    pub not_before: i64,
    /// notAfter, seconds since 1970.
    pub not_after: i64,
}

impl Validity {
    /// From one hour before `unix_now` (clock skew between routers) for `days` days.
    pub fn days_from(unix_now: u64, days: u32) -> Validity {
        let now = i64::try_from(unix_now).unwrap_or(i64::MAX / 2);
        Validity {
            not_before: now.saturating_sub(3600),
            not_after: now.saturating_add(i64::from(days) * 86_400),
        }
    }

    fn apply(&self, params: &mut rcgen::CertificateParams) -> Result<(), PkiError> {
        let t = |s: i64| {
            time::OffsetDateTime::from_unix_timestamp(s)
                .map_err(|e| PkiError::Generate(format!("validity {s}: {e}")))
        };
        params.not_before = t(self.not_before)?;
        params.not_after = t(self.not_after)?;
        Ok(())
    }
}

/// What `svrd pki init` writes: the root and intermediate certificates and keys (PEM).
pub struct AuthorityPems {
    /// Root CA certificate (the trust anchor every router loads).
    pub root_cert_pem: String,
    /// Root CA private key (keep offline).
    pub root_key_pem: Zeroizing<String>,
    /// Intermediate CA certificate (issues router certificates).
    pub intermediate_cert_pem: String,
    /// Intermediate CA private key.
    pub intermediate_key_pem: Zeroizing<String>,
}

impl fmt::Debug for AuthorityPems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityPems").finish_non_exhaustive()
    }
}

/// What `svrd pki issue` writes for one router.
pub struct RouterPems {
    /// Router certificate followed by its issuer's certificate (load with [`Identity::load`]).
    pub cert_chain_pem: String,
    /// The router's PKCS#8 private key.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for RouterPems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterPems").finish_non_exhaustive()
    }
}

fn gen_err(e: rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}

fn ca_params(
    cn: String,
    path_len: u8,
    validity: Validity,
) -> Result<rcgen::CertificateParams, PkiError> {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    p.use_authority_key_identifier_extension = true;
    validity.apply(&mut p)?;
    Ok(p)
}

/// Generate an authority root CA and one intermediate CA (Ed25519 keys).
pub fn generate_authority(authority: &str, validity: Validity) -> Result<AuthorityPems, PkiError> {
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(gen_err)?;
    let root_params = ca_params(format!("{authority} root CA"), 1, validity)?;
    let root = rcgen::CertifiedIssuer::self_signed(root_params, root_key).map_err(gen_err)?;
    let inter_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(gen_err)?;
    let inter_params = ca_params(format!("{authority} intermediate CA"), 0, validity)?;
    let inter_cert = inter_params.signed_by(&inter_key, &root).map_err(gen_err)?;
    Ok(AuthorityPems {
        root_cert_pem: root.pem(),
        root_key_pem: Zeroizing::new(root.key().serialize_pem()),
        intermediate_cert_pem: inter_cert.pem(),
        intermediate_key_pem: Zeroizing::new(inter_key.serialize_pem()),
    })
}

/// Issue a router certificate with subject CN and DNS SAN = `peering_common_name`, signed by
/// the CA in `issuer_cert_pem`/`issuer_key_pem` (normally the intermediate). The returned
/// chain is the router certificate followed by the issuer's.
pub fn issue_router(
    issuer_cert_pem: &str,
    issuer_key_pem: &str,
    peering_common_name: &str,
    validity: Validity,
) -> Result<RouterPems, PkiError> {
    let issuer_key = rcgen::KeyPair::from_pem(issuer_key_pem).map_err(gen_err)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(issuer_cert_pem, issuer_key).map_err(gen_err)?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(gen_err)?;
    let mut p =
        rcgen::CertificateParams::new(vec![peering_common_name.to_owned()]).map_err(gen_err)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, peering_common_name);
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    validity.apply(&mut p)?;
    let cert = p.signed_by(&key, &issuer).map_err(gen_err)?;
    let mut chain = cert.pem();
    if !chain.ends_with('\n') {
        chain.push('\n');
    }
    chain.push_str(issuer_cert_pem);
    Ok(RouterPems {
        cert_chain_pem: chain,
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000; // 2027-01-15
    const DAY: i64 = 86_400;

    fn chain_der(pem: &str) -> Vec<Vec<u8>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.unwrap().as_ref().to_vec())
            .collect()
    }

    fn authority() -> AuthorityPems {
        generate_authority("acme", Validity::days_from(NOW - 10 * 86_400, 3650)).unwrap()
    }

    fn router(auth: &AuthorityPems, name: &str, v: Validity) -> RouterPems {
        issue_router(
            &auth.intermediate_cert_pem,
            &auth.intermediate_key_pem,
            name,
            v,
        )
        .unwrap()
    }

    #[test]
    fn good_chain_verifies_and_signs() {
        let auth = authority();
        let anchor = TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap();
        let r = router(&auth, "router-a.acme", Validity::days_from(NOW, 365));
        let id = Identity::load(r.cert_chain_pem.as_bytes(), r.key_pem.as_bytes()).unwrap();
        assert_eq!(id.common_name(), "router-a.acme");
        assert!(id.is_named("router-a.acme"));
        // Names are compared exactly: another case is another name.
        assert!(!id.is_named("ROUTER-A.acme"));
        assert_eq!(id.chain().len(), 2);
        assert!(format!("{id:?}").contains("<redacted>"));
        let peer = verify_peer(id.chain(), &anchor, "router-a.acme", NOW).unwrap();
        assert_eq!(peer.scheme(), SignatureScheme::Ed25519);
        let sig = id.sign(b"transcript").unwrap();
        assert_eq!(peer.verify(b"transcript", &sig), Ok(()));
        assert_eq!(
            peer.verify(b"transcripT", &sig),
            Err(PkiError::BadSignature)
        );
    }

    #[test]
    fn failures_name_the_reason() {
        let auth = authority();
        let anchor = TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap();
        let good = chain_der(&router(&auth, "b.acme", Validity::days_from(NOW, 30)).cert_chain_pem);

        // another CA
        let other =
            generate_authority("evil", Validity::days_from(NOW - 10 * 86_400, 3650)).unwrap();
        let foreign =
            chain_der(&router(&other, "b.acme", Validity::days_from(NOW, 30)).cert_chain_pem);
        assert_eq!(
            verify_peer(&foreign, &anchor, "b.acme", NOW),
            Err(PkiError::UnknownIssuer)
        );
        // an impostor CA that copies our CA names: the names chain, the signatures do not
        let impostor = authority();
        let forged =
            chain_der(&router(&impostor, "b.acme", Validity::days_from(NOW, 30)).cert_chain_pem);
        assert_eq!(
            verify_peer(&forged, &anchor, "b.acme", NOW),
            Err(PkiError::BadSignature)
        );

        // expired and not yet valid
        let past = Validity {
            not_before: NOW as i64 - 20 * DAY,
            not_after: NOW as i64 - DAY,
        };
        let expired = chain_der(&router(&auth, "b.acme", past).cert_chain_pem);
        assert_eq!(
            verify_peer(&expired, &anchor, "b.acme", NOW),
            Err(PkiError::Expired)
        );
        let future = Validity {
            not_before: NOW as i64 + DAY,
            not_after: NOW as i64 + 20 * DAY,
        };
        let early = chain_der(&router(&auth, "b.acme", future).cert_chain_pem);
        assert_eq!(
            verify_peer(&early, &anchor, "b.acme", NOW),
            Err(PkiError::NotYetValid)
        );

        // wrong name
        assert_eq!(
            verify_peer(&good, &anchor, "c.acme", NOW),
            Err(PkiError::NameMismatch {
                expected: "c.acme".into(),
                found: "b.acme".into()
            })
        );

        // the intermediate left out of the chain
        assert_eq!(
            verify_peer(&good[..1], &anchor, "b.acme", NOW),
            Err(PkiError::UnknownIssuer)
        );

        // signed by the right root, but directly (no intermediate)
        let direct = issue_router(
            &auth.root_cert_pem,
            &auth.root_key_pem,
            "b.acme",
            Validity::days_from(NOW, 30),
        )
        .unwrap();
        assert_eq!(
            verify_peer(&chain_der(&direct.cert_chain_pem), &anchor, "b.acme", NOW),
            Err(PkiError::MissingIntermediate)
        );

        // garbage
        assert!(matches!(
            verify_peer(&[vec![0x30, 0x03, 1, 2, 3]], &anchor, "b.acme", NOW),
            Err(PkiError::Malformed(_))
        ));
        assert!(matches!(
            verify_peer(&[], &anchor, "b.acme", NOW),
            Err(PkiError::Malformed(_))
        ));
        // and the good one still verifies
        assert!(verify_peer(&good, &anchor, "b.acme", NOW).is_ok());
    }

    #[test]
    fn identity_rejects_foreign_key_and_garbage() {
        let auth = authority();
        let a = router(&auth, "a.acme", Validity::days_from(NOW, 30));
        let b = router(&auth, "b.acme", Validity::days_from(NOW, 30));
        assert_eq!(
            Identity::load(a.cert_chain_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err(),
            PkiError::KeyMismatch
        );
        assert!(matches!(
            Identity::load(b"nope", a.key_pem.as_bytes()),
            Err(PkiError::Malformed(_))
        ));
        assert!(matches!(
            TrustAnchor::load(b"nope"),
            Err(PkiError::Malformed(_))
        ));
    }

    #[test]
    fn ecdsa_p256_identity_signs_and_verifies() {
        // An operator CA may issue ECDSA P-256 router certificates; we sign with them too.
        let auth = authority();
        let anchor = TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap();
        let issuer_key = rcgen::KeyPair::from_pem(&auth.intermediate_key_pem).unwrap();
        let issuer =
            rcgen::Issuer::from_ca_cert_pem(&auth.intermediate_cert_pem, issuer_key).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["p256.acme".to_owned()]).unwrap();
        Validity::days_from(NOW, 30).apply(&mut p).unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        let pem = format!("{}{}", cert.pem(), auth.intermediate_cert_pem);
        let id = Identity::load(pem.as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(id.scheme(), SignatureScheme::EcdsaP256Sha256);
        let peer = verify_peer(id.chain(), &anchor, "p256.acme", NOW).unwrap();
        let sig = id.sign(b"t").unwrap();
        assert_eq!(peer.verify(b"t", &sig), Ok(()));
        assert_eq!(peer.verify(b"u", &sig), Err(PkiError::BadSignature));
    }

    /// A leaf for `cn` (subject CN, if any) with DNS SANs `sans`, issued by the intermediate.
    fn leaf_with_names(auth: &AuthorityPems, cn: Option<&str>, sans: &[&str]) -> Vec<Vec<u8>> {
        let issuer_key = rcgen::KeyPair::from_pem(&auth.intermediate_key_pem).unwrap();
        let issuer =
            rcgen::Issuer::from_ca_cert_pem(&auth.intermediate_cert_pem, issuer_key).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        Validity::days_from(NOW, 30).apply(&mut p).unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        chain_der(&format!("{}{}", cert.pem(), auth.intermediate_cert_pem))
    }

    #[test]
    fn cn_only_without_san_and_exact_names() {
        let auth = authority();
        let anchor = TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap();
        // CN and a different SAN: only the SAN names the peer.
        let both = leaf_with_names(&auth, Some("cn.acme"), &["san.acme"]);
        assert!(verify_peer(&both, &anchor, "san.acme", NOW).is_ok());
        assert_eq!(
            verify_peer(&both, &anchor, "cn.acme", NOW),
            Err(PkiError::NameMismatch {
                expected: "cn.acme".into(),
                found: "san.acme".into()
            })
        );
        // No SAN at all: the CN names the peer.
        let cn_only = leaf_with_names(&auth, Some("cn.acme"), &[]);
        assert!(verify_peer(&cn_only, &anchor, "cn.acme", NOW).is_ok());
        // Exact, case-sensitive, for SANs and CNs alike.
        for (chain, name) in [
            (&both, "SAN.acme"),
            (&cn_only, "CN.ACME"),
            (&cn_only, "cn.acme."),
        ] {
            assert!(
                matches!(
                    verify_peer(chain, &anchor, name, NOW),
                    Err(PkiError::NameMismatch { .. })
                ),
                "{name}"
            );
        }
        // Several SANs: any one of them.
        let two = leaf_with_names(&auth, None, &["a.acme", "b.acme"]);
        assert!(verify_peer(&two, &anchor, "b.acme", NOW).is_ok());
    }

    /// A CRL signed by the CA in `ca_cert_pem`/`ca_key_pem` listing the certificates `revoked`
    /// (DER; their serial numbers).
    fn crl(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        revoked: &[&[u8]],
    ) -> rcgen::CertificateRevocationList {
        let key = rcgen::KeyPair::from_pem(ca_key_pem).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(ca_cert_pem, key).unwrap();
        let t = |s: u64| time::OffsetDateTime::from_unix_timestamp(s as i64).unwrap();
        let revoked_certs = revoked
            .iter()
            .map(|der| {
                let (_, c) = X509Certificate::from_der(der).unwrap();
                rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(c.raw_serial()),
                    revocation_time: t(NOW - 3600),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                }
            })
            .collect();
        rcgen::CertificateRevocationListParams {
            this_update: t(NOW - 3600),
            next_update: t(NOW + 7 * 86_400),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
    }

    #[test]
    fn revoked_certificates_are_refused() {
        let auth = authority();
        let a = chain_der(&router(&auth, "a.acme", Validity::days_from(NOW, 30)).cert_chain_pem);
        let b = chain_der(&router(&auth, "b.acme", Validity::days_from(NOW, 30)).cert_chain_pem);
        let plain = TrustAnchor::load(auth.root_cert_pem.as_bytes()).unwrap();
        assert_eq!(plain.crl_count(), 0);

        // The intermediate revokes b: b is refused, a still verifies.
        let by_inter = crl(
            &auth.intermediate_cert_pem,
            &auth.intermediate_key_pem,
            &[&b[0]],
        );
        let anchor = plain
            .clone()
            .with_crls(by_inter.pem().unwrap().as_bytes())
            .unwrap();
        assert_eq!(anchor.crl_count(), 1);
        assert_eq!(
            verify_peer(&b, &anchor, "b.acme", NOW),
            Err(PkiError::Revoked)
        );
        assert_eq!(PkiError::Revoked.to_string(), "certificate revoked");
        assert!(verify_peer(&a, &anchor, "a.acme", NOW).is_ok());
        // The same list as DER.
        let der = plain.clone().with_crls(by_inter.der().as_ref()).unwrap();
        assert_eq!(verify_peer(&b, &der, "b.acme", NOW), Err(PkiError::Revoked));

        // The root revokes the intermediate (in a PEM file with the intermediate's empty list):
        // every router under it is refused.
        let by_root = crl(&auth.root_cert_pem, &auth.root_key_pem, &[&a[1]]);
        let empty = crl(&auth.intermediate_cert_pem, &auth.intermediate_key_pem, &[]);
        let file = format!("{}{}", empty.pem().unwrap(), by_root.pem().unwrap());
        let anchor = plain.clone().with_crls(file.as_bytes()).unwrap();
        assert_eq!(anchor.crl_count(), 2);
        assert_eq!(
            verify_peer(&a, &anchor, "a.acme", NOW),
            Err(PkiError::Revoked)
        );

        // A list from another authority is not authoritative for ours: nothing is revoked.
        let other =
            generate_authority("evil", Validity::days_from(NOW - 10 * 86_400, 3650)).unwrap();
        let foreign = crl(
            &other.intermediate_cert_pem,
            &other.intermediate_key_pem,
            &[],
        );
        let anchor = plain
            .clone()
            .with_crls(foreign.pem().unwrap().as_bytes())
            .unwrap();
        assert!(verify_peer(&b, &anchor, "b.acme", NOW).is_ok());

        // Files that are not CRLs.
        for bad in [
            &b"nope"[..],
            b"",
            auth.root_cert_pem.as_bytes(),
            b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        ] {
            assert!(
                matches!(plain.clone().with_crls(bad), Err(PkiError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
