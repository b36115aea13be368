//! `EtcdStore` against a real etcd member (Debian's `etcd-server`; the test is skipped,
//! saying so, when `/usr/bin/etcd` is missing): two stores as two replicas, a commit
//! refused when the other wrote the key first, the feed without our own writes, and a put
//! with a lease deleted when it expires. testbed/conductor-etcd-test.sh runs the whole
//! conductor over a three-member cluster.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use svr_conductor::etcd::EtcdStore;
use svr_conductor::store::{Change, Feed, Op, Store, StoreError};

const ETCD: &str = "/usr/bin/etcd";
const CLIENT: &str = "127.0.0.1:23579";

/// The etcd member, killed and its data removed when the test ends (pass or fail).
struct Member(Child, PathBuf);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start() -> Option<Member> {
    if !std::path::Path::new(ETCD).exists() {
        eprintln!("SKIP: {ETCD} missing (Debian package etcd-server; scripts/setup.sh)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("svr-conductor-etcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(ETCD)
        .args(["--name", "t", "--data-dir"])
        .arg(&dir)
        .args([
            "--listen-client-urls",
            &format!("http://{CLIENT}"),
            "--advertise-client-urls",
            &format!("http://{CLIENT}"),
            "--listen-peer-urls",
            "http://127.0.0.1:23580",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23580",
            "--initial-cluster",
            "t=http://127.0.0.1:23580",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    Some(Member(child, dir))
}

fn store() -> EtcdStore {
    EtcdStore::connect(&[CLIENT.to_owned()], "etcd-test").unwrap()
}

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.into(),
        value: v.into(),
    }
}

/// The next non-empty batch of the feed, after `absorb`.
fn next(store: &mut EtcdStore, feed: &Receiver<Feed>) -> Vec<Change> {
    let end = Instant::now() + Duration::from_secs(10);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match feed.recv_timeout(left) {
            Ok(Feed::Changes { revision, changes }) => {
                let mine = store.absorb(revision, changes);
                if !mine.is_empty() {
                    return mine;
                }
            }
            Ok(Feed::Reload) => panic!("feed lost history"),
            Err(_) => break,
        }
    }
    panic!("no change within 10 s");
}

#[test]
fn two_replicas_conflict_follow_and_leases_expire() {
    let Some(_member) = start() else { return };
    let mut a = store();
    // The member is starting: wait for it to answer.
    let end = Instant::now() + Duration::from_secs(20);
    let (rev0, kv) = loop {
        match a.load() {
            Ok(x) => break x,
            Err(e) if Instant::now() < end => eprintln!("waiting for etcd: {e}"),
            Err(e) => panic!("etcd did not start: {e}"),
        }
    };
    assert!(kv.is_empty(), "a fresh member: {kv:?}");
    let feed = a.subscribe().unwrap().expect("etcd is a shared store");
    let mut b = store();
    b.load().unwrap();

    let r1 = a.commit(&[put("k", "1"), put("j", "1")]).unwrap();
    assert!(r1 > rev0);
    // b has not seen a's write: refused, nothing written.
    let e = b.commit(&[put("k", "2")]).unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    let (_, kv) = b.load().unwrap();
    assert_eq!(kv["k"], "1");
    // Keys b did not touch do not conflict; now b has seen k.
    b.commit(&[put("k", "2"), Op::Delete { key: "j".into() }])
        .unwrap();
    assert!(matches!(
        a.commit(&[put("k", "3")]),
        Err(StoreError::Conflict { .. })
    ));

    // a's feed: its own write is filtered out, b's arrives.
    let changes = next(&mut a, &feed);
    let got: Vec<(&str, Option<&str>)> = changes
        .iter()
        .map(|c| (c.key.as_str(), c.value.as_deref()))
        .collect();
    assert_eq!(got, [("k", Some("2")), ("j", None)]);
    // Having followed, a commits on top of b's write.
    a.commit(&[put("k", "3")]).unwrap();

    // A put with a lease: deleted when it expires, and the feed says so.
    a.commit(&[Op::PutExpiring {
        key: "routers/r/status".into(),
        value: "{}".into(),
        ttl: 1,
    }])
    .unwrap();
    let t0 = Instant::now();
    let changes = next(&mut a, &feed);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.key.as_str(), c.value.as_deref()))
            .collect::<Vec<_>>(),
        [("routers/r/status", None)],
        "the put itself was ours; then the lease expired"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    let (_, kv) = b.load().unwrap();
    assert!(!kv.contains_key("routers/r/status"));

    // A commit that finds exactly its own writes in place (a retried try whose first one
    // landed) is done, not a conflict; anything else still conflicts.
    b.commit(&[put("k", "5")]).unwrap();
    assert!(matches!(
        a.commit(&[put("k", "6")]),
        Err(StoreError::Conflict { .. })
    ));
    a.commit(&[put("k", "5")]).unwrap();
    a.commit(&[put("k", "7")]).unwrap();
}
