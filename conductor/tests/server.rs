//! The conductor end to end on 127.0.0.1: the real binary serves, the CLI applies and makes
//! a token over the admin socket, a simulated router enrolls with a real CSR (its chain
//! checked by openssl), watches its configuration over mutual TLS and sees an apply
//! arrive, reports its status, and is refused after `revoke`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use svr_conductor::client::{Client, ClientError};
use svr_conductor::{EnrollRequest, Refusal, RouterRow, StatusReport};
use svr_keymgmt::pki::{generate_authority, verify_peer, TrustAnchor, Validity};

const BIN: &str = env!("CARGO_BIN_EXE_svr-conductor");
const DOC: &str = include_str!("acme.yaml");
const SERVER_NAME: &str = "conductor.acme.svr";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The server process, killed when the test ends (pass or fail).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(state: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn csr(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let csr = p.serialize_request(&key).unwrap().pem().unwrap();
    (csr, key.serialize_pem())
}

fn pem_blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| format!("{}\n", b.trim()))
        .collect()
}

/// Independent check: openssl verifies the issued chain against the root.
fn openssl_verify(dir: &Path, root: &Path, chain: &str) {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIP openssl check: openssl is not installed");
        return;
    }
    let blocks = pem_blocks(chain);
    assert_eq!(blocks.len(), 2, "leaf and intermediate");
    let leaf = write(dir, "leaf.pem", &blocks[0]);
    let inter = write(dir, "inter.pem", &blocks[1]);
    for purpose in ["sslclient", "sslserver"] {
        let out = Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
            .arg(root)
            .arg("-untrusted")
            .arg(&inter)
            .arg(&leaf)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("OK"),
            "openssl verify: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(&leaf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CN = router-a.acme.svr") || text.contains("CN=router-a.acme.svr"),
        "{text}"
    );
    assert!(text.contains("DNS:router-a.acme.svr"), "{text}");
}

#[test]
fn enroll_watch_apply_status_revoke() {
    let dir = std::env::temp_dir().join(format!("svr-conductor-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    let pems = generate_authority("acme", Validity::days_from(now(), 30)).unwrap();
    let root = write(&dir, "root.pem", &pems.root_cert_pem);
    let ca_cert = write(&dir, "intermediate.pem", &pems.intermediate_cert_pem);
    let ca_key = write(&dir, "intermediate.key.pem", &pems.intermediate_key_pem);

    // Before any server runs, the CLI works on the store file directly.
    let doc1 = write(&dir, "acme.yaml", DOC);
    let (ok, out, err) = cli(&state, &["apply", doc1.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("revision 1 stored"), "{out}");

    let mut child = Command::new(BIN)
        .arg("--state")
        .arg(&state)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--server-name",
            SERVER_NAME,
            "--root",
        ])
        .arg(&root)
        .arg("--ca-cert")
        .arg(&ca_cert)
        .arg("--ca-key")
        .arg(&ca_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("server said {line:?}"))
        .parse()
        .unwrap();

    // An invalid apply is refused with svrd's message and changes nothing.
    let bad = write(&dir, "bad.yaml", &DOC.replace("10.9.0.2/24", "10.9.0.2/33"));
    let (ok, _, err) = cli(&state, &["apply", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.starts_with("authority.router[1].node[0].device-interface[1].address[0]:"),
        "{err}"
    );

    let (ok, out, err) = cli(&state, &["token", "create", "router-a", "--ttl", "600"]);
    assert!(ok, "{err}");
    let token = out.lines().next().unwrap().to_owned();
    assert_eq!(token.len(), 64);

    // Stage 1: server-authenticated TLS, token + CSR.
    let anon = Client::new(addr, SERVER_NAME, &pems.root_cert_pem, None).unwrap();
    let (csr_pem, key_pem) = csr("router-a.acme.svr");
    let req = EnrollRequest {
        token: zeroize::Zeroizing::new(token.clone()),
        router: "router-a".into(),
        node: "node-1".into(),
        version: svr_conductor::version::OURS.into(),
        csr: csr_pem,
    };
    let enrolled = anon.enroll(&req).unwrap();
    assert_eq!(enrolled.enrolled.revision, 1);
    assert!(enrolled.crl.contains("BEGIN X509 CRL"));
    let chain = enrolled.enrolled.certificate_chain.clone();
    openssl_verify(&dir, &root, &chain);
    // svrd's own verification accepts it for router-a's peering-common-name.
    let ders: Vec<Vec<u8>> = pem_blocks(&chain)
        .iter()
        .map(|b| {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::from_pem_slice(b.as_bytes())
                .unwrap()
                .to_vec()
        })
        .collect();
    let anchor = TrustAnchor::load(pems.root_cert_pem.as_bytes()).unwrap();
    verify_peer(&ders, &anchor, "router-a.acme.svr", now()).unwrap();

    // The token is single use.
    match anon.enroll(&req) {
        Err(ClientError::Refused {
            status: 403,
            reason: Some(Refusal::TokenReused),
            error,
        }) => {
            assert!(error.contains("already used"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    // Stage 2 needs a router certificate.
    match anon.config("node-1", 0, Duration::ZERO) {
        Err(ClientError::Refused { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Stage 2: mutual TLS with the issued certificate.
    let router = Client::new(
        addr,
        SERVER_NAME,
        &pems.root_cert_pem,
        Some((&chain, &key_pem)),
    )
    .unwrap();
    let c1 = router
        .config("node-1", 0, Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert_eq!(c1.revision, 1);
    assert!(c1.yaml.contains("local-router: router-a"));
    assert!(
        !c1.yaml.contains("router-c"),
        "router-c is not router-a's business"
    );
    // Nothing newer: the long poll ends empty after its wait.
    let t = Instant::now();
    assert!(router
        .config("node-1", 1, Duration::from_secs(1))
        .unwrap()
        .is_none());
    assert!(t.elapsed() >= Duration::from_millis(900));

    // A watch is waiting when the operator applies: it returns the new revision at once.
    let watcher = {
        let router = router.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let c = router.config("node-1", 1, Duration::from_secs(30));
            (c, t.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let doc2 = write(
        &dir,
        "acme2.yaml",
        &DOC.replace("10.2.0.0/24", "10.2.0.0/16"),
    );
    let (ok, out, err) = cli(&state, &["apply", doc2.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("router-a: service site-b changed"), "{out}");
    assert!(!out.contains("router-c"), "{out}");
    let (c2, waited) = watcher.join().unwrap();
    let c2 = c2.unwrap().unwrap();
    assert_eq!(c2.revision, 2);
    assert!(c2.yaml.contains("10.2.0.0/16"));
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    router
        .status(&StatusReport {
            node: "node-1".into(),
            version: svr_conductor::version::OURS.into(),
            applied_revision: Some(2),
            error: None,
        })
        .unwrap();
    let (ok, out, err) = cli(&state, &["show", "routers", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<RouterRow> = serde_json::from_str(&out).unwrap();
    let a = rows.iter().find(|r| r.router == "router-a").unwrap();
    assert_eq!(
        (a.applied, a.revision, a.state.as_str()),
        (Some(2), Some(2), "up-to-date")
    );
    assert_eq!(a.node.as_deref(), Some("node-1"));
    let (_, table, _) = cli(&state, &["show", "routers"]);
    assert!(table.starts_with("ROUTER"), "{table}");

    // Revoked: the CRL lists the certificate, and stage 2 refuses it.
    let (ok, out, err) = cli(&state, &["revoke", "router-a"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let crl = anon.crl().unwrap();
    let with_crl = anchor.clone().with_crls(crl.as_bytes()).unwrap();
    let e = verify_peer(&ders, &with_crl, "router-a.acme.svr", now()).unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
    assert!(
        router.config("node-1", 0, Duration::ZERO).is_err(),
        "revoked router refused"
    );
    // And it may not enroll again with a fresh token unless readmitted.
    let (ok, _, err) = cli(&state, &["token", "create", "router-a"]);
    assert!(!ok && err.contains("revoked"), "{err}");

    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
