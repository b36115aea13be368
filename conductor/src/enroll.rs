//! Enrollment pieces: one-time tokens, the per-source rate limit, CSR checks, certificate
//! issuance from the operator's intermediate CA, and the CRL.
//!
//! Certificates are issued with the profile of `svrd pki issue`
//! (`svr_keymgmt::pki::issue_router`): subject CN and one DNS SAN = the router's
//! `peering-common-name`, key usage digitalSignature, extended key usage serverAuth and
//! clientAuth, an authority key identifier; the chain returned is the certificate followed
//! by the intermediate, as `node.pki.certificate-chain` wants. Only the public key comes
//! from the CSR.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A token's secret, as given to the operator once: 64 hex digits (256 random bits).
pub struct TokenSecret(Zeroizing<String>);

impl TokenSecret {
    /// The secret made from 32 random bytes (the caller draws them: no randomness here).
    pub fn from_random(bytes: [u8; 32]) -> TokenSecret {
        let bytes = Zeroizing::new(bytes);
        TokenSecret(Zeroizing::new(hex::encode(*bytes)))
    }

    /// The text to give the router (in its bootstrap file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

/// The store key of a token: hex SHA-256 of the secret as sent (only this is stored).
pub fn token_id(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// A token that has not been used yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssuedToken {
    /// The router it enrolls.
    pub router: String,
    /// When it was made (unix seconds).
    pub created: u64,
    /// Unusable from this time on (unix seconds).
    pub expires: u64,
}

/// A token that enrolled its router; it can never be used again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumedToken {
    /// The router it enrolled.
    pub router: String,
    /// When (unix seconds).
    pub at: u64,
    /// Until when it is kept, to name reuse as reuse (its former expiry).
    pub expires: u64,
}

impl IssuedToken {
    /// Uses the token: the only way to a [`ConsumedToken`].
    pub fn consume(self, now: u64) -> ConsumedToken {
        ConsumedToken {
            router: self.router,
            at: now,
            expires: self.expires,
        }
    }
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum TokenState {
    /// Not used yet.
    Issued(IssuedToken),
    /// Used.
    Consumed(ConsumedToken),
}

/// Enrollment attempts allowed per source address: a token bucket of [`RateLimit::BURST`]
/// attempts refilled at one per [`RateLimit::REFILL_SECS`] seconds. At most
/// [`RateLimit::MAX_SOURCES`] sources are tracked; past that the fullest buckets are
/// forgotten first (they carry no debt).
#[derive(Debug, Default, Clone)]
pub struct RateLimit {
    buckets: HashMap<IpAddr, (u64, u32)>,
}

impl RateLimit {
    /// Attempts a source may make at once.
    pub const BURST: u32 = 5;
    /// Seconds to earn one more attempt.
    pub const REFILL_SECS: u64 = 12;
    /// Sources remembered.
    pub const MAX_SOURCES: usize = 4096;

    /// Takes one attempt for `source` at `now`; false if it has none left.
    pub fn allow(&mut self, now: u64, source: IpAddr) -> bool {
        if self.buckets.len() >= Self::MAX_SOURCES && !self.buckets.contains_key(&source) {
            self.forget_full(now);
        }
        let (last, tokens) = self.buckets.entry(source).or_insert((now, Self::BURST));
        let earned = now.saturating_sub(*last) / Self::REFILL_SECS;
        if earned > 0 {
            *tokens = (*tokens).saturating_add(u32::try_from(earned).unwrap_or(u32::MAX));
            *tokens = (*tokens).min(Self::BURST);
            *last += earned * Self::REFILL_SECS;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }

    fn forget_full(&mut self, now: u64) {
        let full = Self::REFILL_SECS * u64::from(Self::BURST);
        self.buckets
            .retain(|_, (last, _)| now.saturating_sub(*last) < full);
        if self.buckets.len() >= Self::MAX_SOURCES {
            self.buckets.clear();
        }
    }
}

/// Why a CSR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not a PEM `CERTIFICATE REQUEST`, or not a PKCS#10 request.
    #[error("not a PKCS#10 certificate request in PEM")]
    Malformed,
    /// The request's self-signature does not verify.
    #[error("the request's signature does not verify")]
    BadSignature,
    /// A key other than Ed25519 or ECDSA P-256 (what svrd signs with).
    #[error("key algorithm not supported (Ed25519 or ECDSA P-256)")]
    UnsupportedKey,
    /// An extension other than SAN, key usage, extended key usage, basic constraints.
    #[error("the request has an extension the conductor does not accept")]
    UnsupportedExtension,
    /// The request asks for a CA certificate.
    #[error("the request asks for a CA certificate")]
    AsksForCa,
    /// A name in the request is not the router's `peering-common-name`.
    #[error("the request names {found:?}; router {router} has peering-common-name {expected:?}")]
    WrongName {
        /// The router enrolling.
        router: String,
        /// Its configured `peering-common-name`.
        expected: String,
        /// The offending name in the request (subject or SAN).
        found: String,
    },
    /// Issuing failed (a conductor problem, not the router's).
    #[error("issuing the certificate failed: {0}")]
    Issue(String),
}

/// The operator's issuing CA (the intermediate), with its key in memory.
pub struct CertificateAuthority {
    cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// A certificate issued to a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Leaf certificate then the intermediate (PEM).
    pub chain_pem: String,
    /// The leaf's serial number (hex).
    pub serial: String,
    /// notAfter (unix seconds).
    pub not_after: u64,
}

impl CertificateAuthority {
    /// The CA from its certificate and PKCS#8 key (PEM), as `svrd pki init` writes them.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, CsrError> {
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| CsrError::Issue(e.to_string()))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| CsrError::Issue(e.to_string()))?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_owned(),
            issuer,
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Checks `csr_pem` (signature, key type, every name = `common_name`) and issues a
    /// certificate for its key with serial `serial` (the caller draws it), valid from one
    /// hour before `now` for `days` days.
    pub fn issue(
        &self,
        csr_pem: &str,
        router: &str,
        common_name: &str,
        serial: [u8; 16],
        now: u64,
        days: u32,
    ) -> Result<Issued, CsrError> {
        let csr = parse_csr(csr_pem)?;
        check_names(&csr.params, router, common_name)?;
        let mut p = rcgen::CertificateParams::new(vec![common_name.to_owned()])
            .map_err(|e| CsrError::Issue(e.to_string()))?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let mut serial = serial;
        serial[0] &= 0x7f; // positive
        serial[0] |= 0x01; // and 16 bytes long (no leading zero to strip)
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let validity = svr_keymgmt::pki::Validity::days_from(now, days);
        p.not_before = unix_time(validity.not_before)?;
        p.not_after = unix_time(validity.not_after)?;
        let signed = rcgen::CertificateSigningRequestParams {
            params: p,
            public_key: csr.public_key,
        };
        let cert = signed
            .signed_by(&self.issuer)
            .map_err(|e| CsrError::Issue(e.to_string()))?;
        let mut chain_pem = cert.pem();
        if !chain_pem.ends_with('\n') {
            chain_pem.push('\n');
        }
        chain_pem.push_str(&self.cert_pem);
        Ok(Issued {
            chain_pem,
            serial: hex::encode(serial),
            not_after: u64::try_from(validity.not_after).unwrap_or(0),
        })
    }

    /// A CRL (PEM) numbered `number`, listing `revoked` (hex serial, revocation time),
    /// valid from `now` for `days` days.
    pub fn crl(
        &self,
        revoked: &[(String, u64)],
        number: u64,
        now: u64,
        days: u32,
    ) -> Result<String, CsrError> {
        let revoked_certs = revoked
            .iter()
            .filter_map(|(serial, at)| {
                let bytes = hex::decode(serial).ok()?;
                Some(Ok(rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(&bytes),
                    revocation_time: match unix_time(i64::try_from(*at).unwrap_or(0)) {
                        Ok(t) => t,
                        Err(e) => return Some(Err(e)),
                    },
                    reason_code: Some(rcgen::RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now_i = i64::try_from(now).unwrap_or(0);
        let params = rcgen::CertificateRevocationListParams {
            this_update: unix_time(now_i.saturating_sub(3600))?,
            next_update: unix_time(now_i.saturating_add(i64::from(days) * 86_400))?,
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(|e| CsrError::Issue(e.to_string()))?;
        crl.pem().map_err(|e| CsrError::Issue(e.to_string()))
    }
}

fn unix_time(s: i64) -> Result<time::OffsetDateTime, CsrError> {
    time::OffsetDateTime::from_unix_timestamp(s)
        .map_err(|e| CsrError::Issue(format!("time {s}: {e}")))
}

fn parse_csr(csr_pem: &str) -> Result<rcgen::CertificateSigningRequestParams, CsrError> {
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|_| CsrError::Malformed)?;
    let csr = rcgen::CertificateSigningRequestParams::from_der(&der).map_err(|e| match e {
        rcgen::Error::InvalidCertificationRequestSignature => CsrError::BadSignature,
        rcgen::Error::UnsupportedExtension => CsrError::UnsupportedExtension,
        rcgen::Error::UnsupportedSignatureAlgorithm => CsrError::UnsupportedKey,
        _ => CsrError::Malformed,
    })?;
    let alg = csr.public_key.algorithm();
    if alg != &rcgen::PKCS_ED25519 && alg != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err(CsrError::UnsupportedKey);
    }
    if matches!(csr.params.is_ca, rcgen::IsCa::Ca(_)) {
        return Err(CsrError::AsksForCa);
    }
    Ok(csr)
}

/// Every name of the request must be `expected`: the subject is exactly `CN=expected`
/// (or empty), every SAN is the DNS name `expected`.
fn check_names(
    params: &rcgen::CertificateParams,
    router: &str,
    expected: &str,
) -> Result<(), CsrError> {
    let wrong = |found: String| CsrError::WrongName {
        router: router.to_owned(),
        expected: expected.to_owned(),
        found,
    };
    for (ty, value) in params.distinguished_name.iter() {
        let text = match value {
            rcgen::DnValue::PrintableString(s) => s.to_string(),
            rcgen::DnValue::Utf8String(s) => s.clone(),
            rcgen::DnValue::Ia5String(s) => s.to_string(),
            other => format!("{other:?}"),
        };
        if *ty != rcgen::DnType::CommonName {
            return Err(wrong(format!("{ty:?}={text}")));
        }
        if text != expected {
            return Err(wrong(text));
        }
    }
    for san in &params.subject_alt_names {
        match san {
            rcgen::SanType::DnsName(n) if n.as_str() == expected => {}
            rcgen::SanType::DnsName(n) => return Err(wrong(n.to_string())),
            other => return Err(wrong(format!("{other:?}"))),
        }
    }
    Ok(())
}

/// The serial number (hex) and subject CN of the leaf certificate `der`.
pub fn leaf_serial_and_name(der: &CertificateDer<'_>) -> Option<(String, String)> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())?
        .to_owned();
    Some((hex::encode(cert.raw_serial()), cn))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use svr_keymgmt::pki::{generate_authority, verify_peer, TrustAnchor, Validity};

    pub(crate) const NOW: u64 = 1_800_000_000;

    pub(crate) fn authority() -> (svr_keymgmt::pki::AuthorityPems, CertificateAuthority) {
        let pems = generate_authority("acme", Validity::days_from(NOW - 86_400, 3650)).unwrap();
        let ca =
            CertificateAuthority::from_pem(&pems.intermediate_cert_pem, &pems.intermediate_key_pem)
                .unwrap();
        (pems, ca)
    }

    pub(crate) fn csr(names: &[&str], cn: Option<&str>) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn ders(pem: &str) -> Vec<Vec<u8>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.unwrap().as_ref().to_vec())
            .collect()
    }

    #[test]
    fn issued_chain_passes_svrd_verification() {
        let (pems, ca) = authority();
        let name = "router-a.acme.svr";
        let issued = ca
            .issue(
                &csr(&[name], Some(name)),
                "router-a",
                name,
                [7; 16],
                NOW,
                30,
            )
            .unwrap();
        let anchor = TrustAnchor::load(pems.root_cert_pem.as_bytes()).unwrap();
        let chain = ders(&issued.chain_pem);
        assert_eq!(chain.len(), 2);
        let peer = verify_peer(&chain, &anchor, name, NOW).unwrap();
        assert_eq!(peer.name(), name);
        assert!(verify_peer(&chain, &anchor, "router-b.acme.svr", NOW).is_err());
        assert_eq!(issued.serial.len(), 32);
        // A CN-only or SAN-only request is fine: the certificate gets both.
        assert!(ca
            .issue(&csr(&[], Some(name)), "router-a", name, [8; 16], NOW, 1)
            .is_ok());
        assert!(ca
            .issue(&csr(&[name], None), "router-a", name, [9; 16], NOW, 1)
            .is_ok());
    }

    #[test]
    fn requests_with_another_name_are_refused() {
        let (_, ca) = authority();
        let name = "router-a.acme.svr";
        let cases = [
            csr(&["router-b.acme.svr"], Some("router-b.acme.svr")),
            csr(&[name], Some("router-b.acme.svr")),
            csr(&[name, "router-b.acme.svr"], Some(name)),
            csr(&["10.0.0.1"], Some(name)),
            csr(&[], Some("ROUTER-A.acme.svr")),
        ];
        for c in cases {
            let e = ca.issue(&c, "router-a", name, [1; 16], NOW, 1).unwrap_err();
            assert!(matches!(e, CsrError::WrongName { .. }), "{e}");
        }
        assert_eq!(
            ca.issue("garbage", "router-a", name, [1; 16], NOW, 1),
            Err(CsrError::Malformed)
        );
        // A request whose signature does not match its key.
        let good = csr(&[name], Some(name));
        let der = CertificateSigningRequestDer::from_pem_slice(good.as_bytes()).unwrap();
        let mut bytes = der.as_ref().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = pem_of("CERTIFICATE REQUEST", &bytes);
        assert_eq!(
            ca.issue(&tampered, "router-a", name, [1; 16], NOW, 1),
            Err(CsrError::BadSignature)
        );
    }

    pub(crate) fn pem_of(label: &str, der: &[u8]) -> String {
        use base64_lite::encode;
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            encode(der)
        )
    }

    /// Enough base64 for a test fixture.
    mod base64_lite {
        pub fn encode(b: &[u8]) -> String {
            const T: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut out = String::new();
            for c in b.chunks(3) {
                let n = (u32::from(c[0]) << 16)
                    | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*c.get(2).unwrap_or(&0));
                for i in 0..4 {
                    if i <= c.len() {
                        out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                    } else {
                        out.push('=');
                    }
                }
            }
            out
        }
    }

    #[test]
    fn crl_revokes_for_svrd() {
        let (pems, ca) = authority();
        let name = "router-a.acme.svr";
        let issued = ca
            .issue(
                &csr(&[name], Some(name)),
                "router-a",
                name,
                [3; 16],
                NOW,
                30,
            )
            .unwrap();
        let crl = ca.crl(&[(issued.serial.clone(), NOW)], 2, NOW, 7).unwrap();
        let anchor = TrustAnchor::load(pems.root_cert_pem.as_bytes())
            .unwrap()
            .with_crls(crl.as_bytes())
            .unwrap();
        let e = verify_peer(&ders(&issued.chain_pem), &anchor, name, NOW).unwrap_err();
        assert!(e.to_string().contains("revoked"), "{e}");
        let leaf = CertificateDer::from(ders(&issued.chain_pem)[0].clone());
        assert_eq!(
            leaf_serial_and_name(&leaf),
            Some((issued.serial, name.to_owned()))
        );
    }

    #[test]
    fn rate_limit_per_source() {
        let mut r = RateLimit::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..RateLimit::BURST {
            assert!(r.allow(NOW, a));
        }
        assert!(!r.allow(NOW, a));
        assert!(r.allow(NOW, b), "another source has its own budget");
        assert!(r.allow(NOW + RateLimit::REFILL_SECS, a));
        assert!(!r.allow(NOW + RateLimit::REFILL_SECS, a));
    }

    #[test]
    fn token_state_and_secret() {
        let s = TokenSecret::from_random([0xab; 32]);
        assert_eq!(s.expose().len(), 64);
        assert_eq!(format!("{s:?}"), "TokenSecret(..)");
        assert_eq!(token_id(s.expose()), token_id(&format!("{}\n", s.expose())));
        let t = IssuedToken {
            router: "r".into(),
            created: 1,
            expires: 10,
        };
        let c = t.consume(5);
        assert_eq!((c.at, c.expires), (5, 10));
    }
}
