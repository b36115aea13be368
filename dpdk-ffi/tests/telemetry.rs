//! Real-EAL test of the telemetry commands and of `rte_pdump_init`: an EAL with its telemetry
//! socket and shared configuration on (no `--no-telemetry`, no `--no-shconf`), a `net_null`
//! vdev, and DPDK's own client `dpdk-telemetry.py` (package dpdk-dev) asking the questions.
//! One EAL per process, so one `#[test]`.

use std::io::Write;
use std::process::{Command, Stdio};

use dpdk_ffi::{pdump, telemetry, Eal, PdumpError, Port, TelValue, TelemetryError};

/// Sends `cmds` (one per line) to this process's telemetry socket with `dpdk-telemetry.py`
/// and returns its output.
fn ask(prefix: &str, cmds: &[&str]) -> String {
    let mut child = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (package dpdk-dev) runs");
    let mut stdin = child.stdin.take().expect("stdin");
    for c in cmds {
        writeln!(stdin, "{c}").expect("write a command");
    }
    drop(stdin);
    let out = child
        .wait_with_output()
        .expect("dpdk-telemetry.py finishes");
    assert!(
        out.status.success(),
        "dpdk-telemetry.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn telemetry_commands_and_pdump() {
    let prefix = format!("dpdkffi-tel-{}", std::process::id());
    let args: Vec<String> = [
        "dpdk-ffi-telemetry-test",
        "-l",
        "0",
        "--no-huge",
        "--no-pci",
        "-m",
        "64",
        "--file-prefix",
        &prefix,
        "--vdev",
        "net_null0",
        "--log-level",
        "*:warning",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL starts");
    let _port = Port::by_name("net_null0").expect("the vdev is a port");

    // pdump: once per process; uninit lets it start again.
    pdump::init(&eal).expect("rte_pdump_init");
    assert_eq!(pdump::init(&eal), Err(PdumpError::AlreadyInitialised));
    pdump::uninit(&eal).expect("rte_pdump_uninit");
    pdump::init(&eal).expect("rte_pdump_init after uninit");

    telemetry::register("/test/echo", "Echoes its parameters, nested.", |params| {
        TelValue::Dict(vec![
            ("params".into(), TelValue::Str(params.into())),
            ("neg".into(), TelValue::I64(-3)),
            ("big".into(), TelValue::U64(u64::MAX)),
            ("rx-packets".into(), TelValue::U64(1)),
            (
                "peers".into(),
                TelValue::Array(vec![TelValue::Dict(vec![
                    ("name".into(), TelValue::Str("router-b".into())),
                    (
                        "paths".into(),
                        TelValue::Dict(vec![("up".into(), TelValue::U64(1))]),
                    ),
                ])]),
            ),
            (
                "list".into(),
                TelValue::Array(vec![TelValue::U64(1), TelValue::U64(2)]),
            ),
        ])
    })
    .expect("register /test/echo");
    telemetry::register("/test/panic", "Panics.", |_| panic!("a test panic"))
        .expect("register /test/panic");
    telemetry::register("/test/big", "300 entries.", |_| {
        TelValue::Dict(
            (0..300)
                .map(|i| (format!("k{i}"), TelValue::U64(i)))
                .collect(),
        )
    })
    .expect("register /test/big");
    assert_eq!(
        telemetry::register("/test/echo", "", |_| TelValue::U64(0)),
        Err(TelemetryError::AlreadyRegistered("/test/echo".into()))
    );

    let out = ask(
        &prefix,
        &[
            "/",
            "/test/echo,hello",
            "/test/panic",
            "/test/big",
            "/ethdev/list",
        ],
    );
    assert!(out.contains("\"/test/echo\""), "command listed: {out}");
    assert!(
        out.contains(
            r#"{"/test/echo": {"params": "hello", "neg": -3, "big": 18446744073709551615, "rx_packets": 1, "peers": {"0": {"name": "router-b", "paths": {"up": 1}}}, "list": [1, 2]}}"#
        ),
        "echo answer: {out}"
    );
    assert!(
        out.contains(r#"{"/test/panic": null}"#),
        "a panic answers null and the process lives on: {out}"
    );
    assert!(
        out.contains(r#""k254": 254, "truncated": 45}"#),
        "big: {out}"
    );
    assert!(out.contains(r#"{"/ethdev/list": [0]}"#), "ethdev: {out}");
    // Still alive after the panic.
    let again = ask(&prefix, &["/test/echo"]);
    assert!(again.contains(r#""params": """#), "{again}");
    pdump::uninit(&eal).expect("rte_pdump_uninit");
    // rte_eal_cleanup, then the runtime directory this EAL made (socket, config files).
    drop(_port);
    drop(eal);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
