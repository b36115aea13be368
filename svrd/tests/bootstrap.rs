//! `svrd --bootstrap` against a real conductor (the `svr_conductor` server, in this test
//! process, on 127.0.0.1), up to the point where svrd would start DPDK: enrollment (own key
//! 0600, chain, CRL saved), the configuration fetched over mutual TLS, composed with the local
//! node settings and checked; a configuration that does not check stops svrd with one line
//! naming the revision and the field, and is reported to the conductor; a reused token is
//! refused with one line naming the conductor and the reason. The testbed test
//! (testbed/conductor-test.sh) runs the rest with DPDK.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use svr_conductor::admin::AdminRequest;
use svr_conductor::server::{self, ServeOptions};
use svr_keymgmt::pki::{generate_authority, Validity};

const DOC: &str = include_str!("../../conductor/tests/acme.yaml");

fn admin(state: &Path, req: AdminRequest) -> svr_conductor::admin::AdminResponse {
    let resp = server::admin(state, &req).expect("admin socket");
    assert!(resp.ok, "{}", resp.text);
    resp
}

fn bootstrap_file(dir: &Path, addr: std::net::SocketAddr, token: &str, state: &str) -> PathBuf {
    let p = dir.join(format!("{state}.bootstrap.yaml"));
    std::fs::write(
        &p,
        format!(
            "router: router-a\nnode: node-1\npeering-common-name: router-a.acme.svr\n\
             conductor:\n  server-name: conductor.acme.svr\n  addresses: [127.0.0.1:1, {addr}]\n  \
             trusted-ca-certificate: pki/root.pem\nenrollment-token: {token}\nstate-dir: {state}\n\
             local-node-settings:\n  core-map: {{workers: [{{lcore: 4000}}]}}\n"
        ),
    )
    .unwrap();
    p
}

fn svrd(file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_svrd"))
        .arg("--bootstrap")
        .arg(file)
        .output()
        .expect("run svrd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bootstrap_enrolls_fetches_checks_and_refuses_a_reused_token() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let dir = std::env::temp_dir().join(format!("svrd-bootstrap-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("pki")).unwrap();
    let pems = generate_authority("acme", Validity::days_from(now - 3600, 30)).unwrap();
    std::fs::write(dir.join("pki/root.pem"), &pems.root_cert_pem).unwrap();
    std::fs::write(dir.join("pki/ca.pem"), &pems.intermediate_cert_pem).unwrap();
    std::fs::write(dir.join("pki/ca.key.pem"), &pems.intermediate_key_pem).unwrap();
    let cstate = dir.join("conductor");
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: cstate.clone(),
        root: dir.join("pki/root.pem"),
        ca_cert: dir.join("pki/ca.pem"),
        ca_key: dir.join("pki/ca.key.pem"),
        server_name: "conductor.acme.svr".into(),
        store: svr_conductor::server::StoreChoice::File,
        status_ttl: svr_conductor::STATUS_TTL,
        max_connections: svr_conductor::server::MAX_CONNECTIONS,
        replica: None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::fs::create_dir_all(&cstate).unwrap();
    // The server runs until the test process ends.
    std::thread::spawn(move || {
        let _ = server::serve(&opts, |addr| {
            let _ = tx.send(addr);
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("listening");
    admin(&cstate, AdminRequest::Apply { yaml: DOC.into() });
    let token = |router: &str| {
        let text = admin(
            &cstate,
            AdminRequest::TokenCreate {
                router: router.into(),
                ttl: 3600,
                readmit: false,
            },
        )
        .text;
        text.lines().next().unwrap().to_owned()
    };
    let tok = token("router-a");

    // Enrolls (after failing over from 127.0.0.1:1), fetches revision 1, and stops at the
    // check: lcore 4000 does not exist. The conductor hears why.
    let file = bootstrap_file(&dir, addr, &tok, "state-a");
    let (ok, err) = svrd(&file);
    assert!(!ok);
    assert!(err.contains("event=enrolled router=router-a"), "{err}");
    assert!(
        err.contains("svrd: error: bootstrap: configuration revision 1 from the conductor:")
            && err.contains("core-map"),
        "{err}"
    );
    assert!(!err.contains(&tok), "the token is never logged");
    let st = dir.join("state-a");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&st.join("key.pem")), 0o600);
    assert_eq!(mode(&st), 0o700);
    for f in ["chain.pem", "crl.pem", "root.pem"] {
        assert!(st.join(f).exists(), "{f}");
    }
    assert!(
        !st.join("running.yaml").exists(),
        "nothing unchecked is kept"
    );
    let rows = admin(&cstate, AdminRequest::ShowRouters).routers;
    let a = rows.iter().find(|r| r.router == "router-a").unwrap();
    assert_eq!(a.state, "error", "{rows:?}");

    // The same token again, from a fresh state directory: refused, one line.
    let file = bootstrap_file(&dir, addr, &tok, "state-again");
    let (ok, err) = svrd(&file);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "svrd: error: bootstrap: conductor {addr}: token refused: token-reused"
        )),
        "{err}"
    );
    assert!(err.contains("event=enroll-refused"), "{err}");
    assert!(!dir.join("state-again/chain.pem").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
