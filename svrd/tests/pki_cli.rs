//! `svrd pki init` / `svrd pki issue` make certificates that an independent implementation
//! (openssl) and our own peer verification both accept, with the right names, and never
//! overwrite keys.

use std::path::Path;
use std::process::Command;

fn svrd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_svrd"))
        .args(args)
        .output()
        .expect("run svrd")
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("svrd-pki-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn init_and_issue_make_a_chain_openssl_and_svrd_accept() {
    let dir = tmpdir("ok");
    let d = dir.to_str().unwrap();
    let out = svrd(&["pki", "init", d, "--authority", "testbed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["router-a.testbed.svr", "router-b.testbed.svr"] {
        let out = svrd(&["pki", "issue", d, name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Private keys are not readable by others.
    use std::os::unix::fs::PermissionsExt;
    for key in [
        "root.key.pem",
        "intermediate.key.pem",
        "router-a.testbed.svr.key.pem",
    ] {
        let mode = std::fs::metadata(dir.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }

    // Independent check: openssl verifies router -> intermediate -> root.
    let chain = std::fs::read_to_string(dir.join("router-a.testbed.svr.chain.pem")).unwrap();
    let leaf_end =
        chain.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    std::fs::write(dir.join("leaf.pem"), &chain[..leaf_end]).unwrap();
    let ossl = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("intermediate.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    assert!(
        ossl.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&ossl.stdout),
        String::from_utf8_lossy(&ossl.stderr)
    );
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-in",
        ])
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("CN = router-a.testbed.svr") || text.contains("CN=router-a.testbed.svr"),
        "{text}"
    );
    assert!(text.contains("DNS:router-a.testbed.svr"), "{text}");

    // Our own verification: the name must match; another router's name must not.
    let anchor =
        svr_keymgmt::pki::TrustAnchor::load(&std::fs::read(dir.join("root.pem")).unwrap()).unwrap();
    let id = svr_keymgmt::pki::Identity::load(
        chain.as_bytes(),
        &std::fs::read(dir.join("router-a.testbed.svr.key.pem")).unwrap(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    svr_keymgmt::pki::verify_peer(id.chain(), &anchor, "router-a.testbed.svr", now)
        .expect("chain verifies");
    assert!(
        svr_keymgmt::pki::verify_peer(id.chain(), &anchor, "router-b.testbed.svr", now).is_err()
    );

    // Never overwrite.
    let again = svrd(&["pki", "issue", d, "router-a.testbed.svr"]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.starts_with("svrd: error:") && err.contains("already exists"),
        "{err}"
    );
    let again = svrd(&["pki", "init", d]);
    assert_eq!(again.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn issue_without_init_says_what_to_do() {
    let dir = tmpdir("noinit");
    let out = svrd(&[
        "pki",
        "issue",
        dir.to_str().unwrap(),
        "router-a.testbed.svr",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("svrd pki init"), "{err}");
    assert!(!Path::new(&dir)
        .join("router-a.testbed.svr.key.pem")
        .exists());
}
