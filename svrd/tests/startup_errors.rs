//! What an operator sees when svrd cannot start: one `svrd: error:` line naming the field or
//! device, a non-zero exit, no panic and no hang. These run the real binary (and, where the
//! error comes from DPDK, the real EAL with `--no-huge`), so they need root like svrd itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../../testbed/router-a.yaml");

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs svrd with a deadline: a hang is a test failure, not a stuck CI job.
fn svrd(args: &[&str]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_svrd"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn svrd");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("svrd {args:?} did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Outcome {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("svrd-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The example with `from` replaced by `to` (which must occur).
fn example_with(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "example config lacks {from:?}");
    EXAMPLE.replacen(from, to, 1)
}

/// Exactly one `svrd: error:` line, it contains `needle`, exit status 1, no panic text.
fn assert_one_error(out: &Outcome, needle: &str) {
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("svrd: error:"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one error line, stderr:\n{}",
        out.stderr
    );
    assert!(
        errors[0].contains(needle),
        "error line {:?} lacks {needle:?}",
        errors[0]
    );
    assert_eq!(out.code, Some(1), "exit status; stderr:\n{}", out.stderr);
    assert!(
        !out.stderr.contains("panicked"),
        "svrd panicked:\n{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("svrd: forwarding"),
        "svrd started despite the error"
    );
}

fn no_huge(text: &str) -> String {
    text.replacen("hugepages: true", "hugepages: false", 1)
}

#[test]
fn check_accepts_the_examples() {
    for file in ["router-a.yaml", "router-b.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testbed")
            .join(file);
        let out = svrd(&["--check", path.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.stdout.contains("configuration is valid"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn no_config_is_an_error() {
    let out = svrd(&[]);
    assert_one_error(&out, "--config");
}

#[test]
fn missing_file_names_the_file() {
    let out = svrd(&["--config", "/nonexistent/svrd.yaml"]);
    assert_one_error(&out, "/nonexistent/svrd.yaml");
}

#[test]
fn malformed_yaml_gives_line_and_column() {
    let path = write_config("malformed.yaml", "local-router: [router-a\nauthority: {");
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(&out, "line");
}

#[test]
fn out_of_range_field_names_path_and_rule() {
    let text = example_with(
        "peer-key-retransmit-interval: 30",
        "peer-key-retransmit-interval: 4",
    );
    let path = write_config("range.yaml", &text);
    for mode in ["--config", "--check"] {
        let out = svrd(&[mode, path.to_str().unwrap()]);
        assert_one_error(
            &out,
            "authority.security-key-management.peer-key-retransmit-interval: 4 is below the minimum 5",
        );
    }
}

#[test]
fn core_map_naming_a_missing_cpu() {
    let text = example_with("cpu: 1", "cpu: 999");
    let path = write_config("cpu.yaml", &text);
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(
        &out,
        "core-map.workers[0].cpu: CPU 999 does not exist on this machine",
    );
}

#[test]
fn not_enough_hugepages() {
    let text = example_with("memory-mb: 128", "memory-mb: 65536");
    let path = write_config("huge.yaml", &text);
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(
        &out,
        "authority.router[0].node[0].eal.memory-mb: 65536 MiB of hugepages needed",
    );
}

#[test]
fn huge_dir_that_is_not_hugetlbfs() {
    let text = example_with(
        "file-prefix: router-a",
        "file-prefix: router-a\n            huge-dir: /tmp",
    );
    let path = write_config("hugedir.yaml", &text);
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(&out, "eal.huge-dir: /tmp is not a mounted hugetlbfs");
}

#[test]
fn unknown_device_names_the_interface() {
    // A real EAL start (no hugepages needed), then the probe of an interface that does not exist.
    let text = no_huge(&example_with("iface=ra-lan", "iface=svrd-no-such-if0")).replacen(
        "file-prefix: router-a",
        "file-prefix: svrd-test-unknown-dev",
        1,
    );
    let path = write_config("unknown-dev.yaml", &text);
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(
        &out,
        "authority.router[0].node[0].device-interface[0].vdev: cannot open device \"net_af_packet0,iface=svrd-no-such-if0\"",
    );
}

#[test]
fn unknown_driver_names_the_interface() {
    let text = no_huge(&example_with(
        "net_af_packet1,iface=ra-wan",
        "net_nosuchdriver1",
    ))
    .replacen("net_af_packet0,iface=ra-lan", "net_null0", 1)
    .replacen(
        "file-prefix: router-a",
        "file-prefix: svrd-test-unknown-drv",
        1,
    );
    let path = write_config("unknown-drv.yaml", &text);
    let out = svrd(&["--config", path.to_str().unwrap()]);
    assert_one_error(&out, "device-interface[1].vdev");
}

/// Enhanced security key management: the PKI files are loaded and checked before anything
/// starts, and a certificate that does not name the router's own peering-common-name (or a
/// key that is not the certificate's) is refused with the field that names it.
#[test]
fn pki_is_checked_before_start() {
    let dir = std::env::temp_dir().join(format!("svrd-startup-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = dir.join("pki");
    let d = pki.to_str().unwrap();
    for args in [
        vec!["pki", "init", d],
        vec!["pki", "issue", d, "router-a.testbed.svr"],
        vec!["pki", "issue", d, "router-c.testbed.svr"],
    ] {
        let out = svrd(&args);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
    }
    let zt = include_str!("../../testbed/router-a-zt.yaml").replace("run/pki", d);
    let good = write_config("zt-good.yaml", &zt);
    let out = svrd(&["--check", good.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let misnamed = zt.replace(
        "router-a.testbed.svr.chain.pem",
        "router-c.testbed.svr.chain.pem",
    );
    let misnamed = misnamed.replace(
        "router-a.testbed.svr.key.pem",
        "router-c.testbed.svr.key.pem",
    );
    let out = svrd(&[
        "--check",
        write_config("zt-misnamed.yaml", &misnamed)
            .to_str()
            .unwrap(),
    ]);
    assert_one_error(
        &out,
        "authority.router[0].peering-common-name: \"router-a.testbed.svr\" is not named by the certificate",
    );

    let wrong_key = zt.replace(
        "router-a.testbed.svr.key.pem",
        "router-c.testbed.svr.key.pem",
    );
    let out = svrd(&[
        "--check",
        write_config("zt-key.yaml", &wrong_key).to_str().unwrap(),
    ]);
    assert_one_error(
        &out,
        "authority.router[0].node[0].pki.certificate-chain: private key does not match the certificate",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
