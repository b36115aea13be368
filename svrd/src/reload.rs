//! Live reconfiguration: `svrctl reload [CONFIG]` and SIGHUP, carried out by the slow-path
//! thread (the owner of the slow path, key management and BFD).
//!
//! A reload reads the file, validates it with the rules and messages of `svrd --check`
//! (`Config::load`: every schema and cross-field rule), and asks [`svr_config::diff`] what
//! differs from the running configuration. `--check`'s host checks (CPUs, hugepage mount and
//! memory, vdev drivers, certificate files) are not run again: they concern only fields that
//! cannot change while running, which `diff` holds equal, and the CPU check would see the
//! pinned slow-path thread's one CPU rather than the machine's. A field that cannot change live refuses the whole reload with its path.
//! Otherwise every new piece is built first, then published in an order that never shows a
//! worker something it cannot use:
//!
//! 1. the SVR service table (services, policies, session timeouts, enable-metadata rate,
//!    revert hold-down) in one `ArcSwap` store; [`SvrShared::replace_table`] is the only
//!    step that can still refuse, so it goes first and a refusal changes nothing;
//! 2. static neighbours (slow path, then the workers' neighbour snapshot);
//! 3. routes (slow path, then the workers' route table, loaded once per burst);
//! 4. key timers and each path's BFD, link-test and hold-down settings.
//!
//! Established sessions keep their state (see [`fastpath::svr_path::ServiceTable`]). Each
//! reload, accepted or refused, is an event (`config-reloaded` with the revision and what
//! changed, or `config-rejected` with the error) in the log and `svrctl show events`, and is
//! counted. The revision starts at 1 and moves on each reload that changed something.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwap;
use fastpath::forward::NeighborSnapshot;
use fastpath::route::RouteTable;
use fastpath::svr_path::SvrShared;
use fastpath::time::Instant;
use serde_json::{json, Value};
use slowpath::SlowPath;
use svr_config::{Changes, Config};
use svr_mgmt::model::EventInfo;
use svr_mgmt::MgmtError;

use crate::mgmt::ShownConfig;

/// Why a reload changed nothing: one line naming the field.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("{0}")]
    Config(#[from] svr_config::ConfigError),
    #[error("{0}")]
    NotLive(#[from] svr_config::NotLive),
    #[error("{0}")]
    KeyTimers(#[from] svr_keymgmt::SetupError),
    #[error("{0}")]
    Routes(#[from] crate::startup::StartupError),
    #[error("{0}")]
    Trust(crate::startup::StartupError),
    #[error("authority.service: {0} (restart svrd)")]
    ServiceTable(#[from] fastpath::svr_path::TableRefused),
}
use crate::zt::ZeroTrust;

/// Reload events kept for `show events`.
const HISTORY: usize = 64;

/// Reload counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReloadCounters {
    /// Reloads applied (including those that changed nothing).
    pub applied: u64,
    /// Reloads refused (bad file, or a change that needs a restart).
    pub rejected: u64,
}

/// The running configuration and what a reload replaces, owned by the slow-path thread.
pub struct Reloader {
    running: Config,
    path: PathBuf,
    /// Set by SIGHUP.
    hup: Arc<AtomicBool>,
    shown: Arc<ArcSwap<ShownConfig>>,
    /// Port ids of the node's device interfaces, in order.
    port_ids: Vec<u16>,
    /// The workers' route table.
    routes: Arc<ArcSwap<RouteTable>>,
    revision: u64,
    counters: ReloadCounters,
    history: VecDeque<(u64, String)>,
}

/// Who asked.
#[derive(Debug, Clone, Copy)]
pub enum By {
    ControlSocket,
    Signal,
}

impl By {
    fn as_str(self) -> &'static str {
        match self {
            By::ControlSocket => "control-socket",
            By::Signal => "sighup",
        }
    }
}

/// What a reload touches besides its own state.
pub struct Parts<'a> {
    pub slow: &'a mut SlowPath,
    pub neighbors: &'a ArcSwap<NeighborSnapshot>,
    pub svr: Option<&'a SvrShared>,
    pub zt: Option<&'a mut ZeroTrust>,
}

impl Reloader {
    pub fn new(
        running: Config,
        path: PathBuf,
        hup: Arc<AtomicBool>,
        shown: Arc<ArcSwap<ShownConfig>>,
        port_ids: Vec<u16>,
        routes: Arc<ArcSwap<RouteTable>>,
    ) -> Reloader {
        Reloader {
            running,
            path,
            hup,
            shown,
            port_ids,
            routes,
            revision: 1,
            counters: ReloadCounters::default(),
            history: VecDeque::new(),
        }
    }

    /// Whether SIGHUP arrived since the last call.
    pub fn take_signal(&self) -> bool {
        self.hup.swap(false, Relaxed)
    }

    /// `(name, value)` counters for the report and `show stats`.
    pub fn counter_list(&self) -> [(&'static str, u64); 3] {
        [
            ("config_revision", self.revision),
            ("config_reloads", self.counters.applied),
            ("config_reloads_rejected", self.counters.rejected),
        ]
    }

    /// The reload events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = EventInfo> + '_ {
        self.history
            .iter()
            .map(|(ms, line)| EventInfo::from_line(*ms, line))
    }

    /// Reloads `path` (default: the running file) at `now`; the answer for the control
    /// socket. Records the event either way.
    pub fn reload(
        &mut self,
        now: Instant,
        path: Option<PathBuf>,
        by: By,
        parts: Parts<'_>,
    ) -> Result<Value, MgmtError> {
        let path = path.unwrap_or_else(|| self.path.clone());
        match self.apply(now, &path, parts) {
            Ok(changes) => {
                self.counters.applied += 1;
                if !changes.is_empty() {
                    self.revision += 1;
                }
                self.path = path.clone();
                let names = changes.names();
                self.record(format!(
                    "event=config-reloaded revision={} changes={} file={} by={}",
                    self.revision,
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(",")
                    },
                    path.display(),
                    by.as_str()
                ));
                Ok(json!({
                    "path": path.display().to_string(),
                    "revision": self.revision,
                    "changes": names,
                }))
            }
            Err(e) => {
                self.counters.rejected += 1;
                self.record(format!(
                    "event=config-rejected revision={} file={} by={} error=\"{}\"",
                    self.revision,
                    path.display(),
                    by.as_str(),
                    e.to_string().replace('"', "'")
                ));
                Err(MgmtError::Refused(e.to_string()))
            }
        }
    }

    fn record(&mut self, line: String) {
        if line.contains("event=config-rejected") {
            log::warn!("{line}");
        } else {
            log::info!("{line}");
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.history.push_back((ms, line));
    }

    /// Validates `path` and applies it; on `Err` (one line naming the field) nothing
    /// changed.
    fn apply(
        &mut self,
        now: Instant,
        path: &std::path::Path,
        p: Parts<'_>,
    ) -> Result<Changes, ReloadError> {
        let new = Config::load(path)?;
        let mut changes = svr_config::diff(&self.running, &new)?;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // Build everything first.
        let table = match p.svr {
            Some(_)
                if changes.services
                    || changes.session_timeouts
                    || changes.enable_metadata_rate
                    || changes.peer_timers =>
            {
                crate::svr::service_table(&new)
            }
            _ => None,
        };
        let keys = match &p.zt {
            Some(zt) if changes.key_timers || changes.peer_timers => Some(zt.reload_check(&new)?),
            _ => None,
        };
        // The root certificate and CRL are read on every reload: a conductor replaces the
        // CRL file in place.
        let trust = match &p.zt {
            Some(zt) => zt.trust_check(&new).map_err(ReloadError::Trust)?,
            None => None,
        };
        changes.trust_anchor = trust.is_some();
        let tables = if changes.routes || changes.neighbors {
            let (_, node) = new.local();
            Some(crate::startup::routes_of(
                node,
                &new.local_path(),
                &self.port_ids,
            )?)
        } else {
            None
        };
        // Publish; the service table is the one step that can still refuse.
        if let (Some(svr), Some(t)) = (p.svr, table) {
            svr.replace_table(t)?;
        }
        if let Some((routes, statics)) = tables {
            if changes.neighbors {
                p.slow.set_static_neighbors(&statics);
                p.neighbors.store(Arc::new(p.slow.neighbors()));
            }
            if changes.routes {
                p.slow.set_routes(routes.clone());
                self.routes.store(Arc::new(RouteTable::new(routes)));
            }
        }
        if let Some(zt) = p.zt {
            if let Some(keys) = keys {
                zt.reload_apply(now, &new, keys);
            }
            if let Some(t) = trust {
                zt.trust_apply(now, t);
            }
        }
        if !changes.is_empty() || path != self.path {
            self.shown.store(Arc::new(ShownConfig {
                path: path.to_path_buf(),
                config: crate::mgmt::elided_config(&text),
                revision: self.revision + u64::from(!changes.is_empty()),
            }));
        }
        self.running = new;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slowpath::{NeighborTimers, SlowPathConfig};

    const ROUTER_A: &str = include_str!("../../testbed/router-a.yaml");

    /// A test-key router-a (no key management) with its file in a fresh directory.
    struct Rig {
        dir: PathBuf,
        reloader: Reloader,
        slow: SlowPath,
        neighbors: ArcSwap<NeighborSnapshot>,
        svr: SvrShared,
        routes: Arc<ArcSwap<RouteTable>>,
    }

    impl Rig {
        fn new(tag: &str) -> Rig {
            let dir =
                std::env::temp_dir().join(format!("svrd-reload-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("a.yaml");
            std::fs::write(&path, ROUTER_A).unwrap();
            let cfg = Config::load(&path).unwrap();
            let ids = [0u16, 1];
            let (node_routes, statics) =
                crate::startup::routes_of(cfg.local().1, &cfg.local_path(), &ids).unwrap();
            let slow = SlowPath::new(
                SlowPathConfig {
                    interfaces: Vec::new(),
                    routes: node_routes.clone(),
                    static_neighbors: statics,
                    timers: NeighborTimers::default(),
                },
                Instant::from_nanos(0),
            );
            let neighbors = ArcSwap::from_pointee(slow.neighbors());
            let routes = Arc::new(ArcSwap::from_pointee(RouteTable::new(node_routes)));
            let svr = crate::svr::build(&cfg).unwrap();
            let shown = Arc::new(ArcSwap::from_pointee(ShownConfig {
                path: path.clone(),
                config: Value::Null,
                revision: 1,
            }));
            let reloader = Reloader::new(
                cfg,
                path,
                Arc::new(AtomicBool::new(false)),
                shown,
                ids.to_vec(),
                Arc::clone(&routes),
            );
            Rig {
                dir,
                reloader,
                slow,
                neighbors,
                svr,
                routes,
            }
        }

        /// Reloads `text` (written to `name` in the rig's directory).
        fn reload(&mut self, name: &str, text: &str) -> Result<Value, MgmtError> {
            let path = self.dir.join(name);
            std::fs::write(&path, text).unwrap();
            self.reloader.reload(
                Instant::from_nanos(1),
                Some(path),
                By::ControlSocket,
                Parts {
                    slow: &mut self.slow,
                    neighbors: &self.neighbors,
                    svr: Some(&self.svr),
                    zt: None,
                },
            )
        }

        fn service(&self, dst: &str) -> Option<String> {
            self.svr
                .services()
                .service_for(dst.parse().unwrap())
                .map(|(_, s)| s.name.clone())
        }

        fn counters(&self) -> [(&'static str, u64); 3] {
            self.reloader.counter_list()
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_bad_or_non_live_file_changes_nothing() {
        let mut rig = Rig::new("bad");
        let table = Arc::clone(&rig.svr.services());
        let routes = rig.routes.load_full();
        for (text, want) in [
            (
                ROUTER_A.replacen("udp: 60", "udp: sixty", 1),
                "svr.session-timeouts.udp",
            ),
            (
                ROUTER_A.replacen("mempool-mbufs: 4095", "mempool-mbufs: 8191", 1),
                "authority.router[0].node[0].mempool-mbufs: cannot change while running (restart svrd)",
            ),
        ] {
            // The second edit also adds a route: refused as a whole.
            let text = text.replacen(
                "          route:\n",
                "          route:\n            - {prefix: 10.7.0.0/16, next-hop: 10.9.0.2, interface: wan}\n",
                1,
            );
            let e = rig.reload("bad.yaml", &text).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        assert!(
            Arc::ptr_eq(&table, &rig.svr.services()),
            "service table kept"
        );
        assert!(Arc::ptr_eq(&routes, &rig.routes.load_full()), "routes kept");
        assert_eq!(
            rig.counters(),
            [
                ("config_revision", 1),
                ("config_reloads", 0),
                ("config_reloads_rejected", 2)
            ]
        );
        let events: Vec<_> = rig.reloader.events().collect();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.kind == "config.rejected"));
    }

    #[test]
    fn live_changes_are_published_and_counted() {
        let mut rig = Rig::new("live");
        assert_eq!(rig.service("10.2.0.3").as_deref(), Some("site-b"));
        // Unchanged: applied, revision stays, nothing republished.
        let table = Arc::clone(&rig.svr.services());
        let v = rig.reload("same.yaml", ROUTER_A).unwrap();
        assert_eq!(
            (
                v["revision"].as_u64(),
                v["changes"].as_array().map(Vec::len)
            ),
            (Some(1), Some(0))
        );
        assert!(Arc::ptr_eq(&table, &rig.svr.services()));
        // A new service, a route, a static neighbour and a timeout.
        let text = ROUTER_A
            .replacen(
                "  router:\n",
                "    - name: site-b-host\n      tenant: blue\n      prefix: [10.2.0.3/32]\n      router: router-b\n\n  router:\n",
                1,
            )
            .replacen(
                "          route:\n",
                "          route:\n            - {prefix: 10.7.0.0/16, next-hop: 10.9.0.2, interface: wan}\n",
                1,
            )
            .replacen(
                "          neighbor: []",
                "          neighbor:\n            - {address: 10.9.0.7, mac: \"02:00:00:00:00:07\", interface: wan}",
                1,
            )
            .replacen("udp: 60", "udp: 90", 1);
        let v = rig.reload("new.yaml", &text).unwrap();
        assert_eq!(v["revision"], 2);
        assert_eq!(
            v["changes"],
            json!(["services", "routes", "neighbors", "session-timeouts"])
        );
        assert_eq!(rig.service("10.2.0.3").as_deref(), Some("site-b-host"));
        assert_eq!(rig.service("10.2.0.2").as_deref(), Some("site-b"));
        assert_eq!(rig.svr.services().timeouts.udp.as_secs(), 90);
        let hop = rig
            .routes
            .load()
            .lookup("10.7.1.1".parse().unwrap())
            .map(|r| r.next_hop);
        assert_eq!(hop, Some(Some("10.9.0.2".parse().unwrap())));
        assert!(rig
            .slow
            .routes()
            .lookup("10.7.1.1".parse().unwrap())
            .is_some());
        assert!(rig
            .neighbors
            .load()
            .get(1, "10.9.0.7".parse().unwrap())
            .is_some());
        assert_eq!(
            rig.counters()[..2],
            [("config_revision", 2), ("config_reloads", 2)]
        );
        let last = rig.reloader.events().last().unwrap();
        assert_eq!(last.kind, "config.reloaded");
        assert!(
            last.line
                .contains("revision=2 changes=services,routes,neighbors,session-timeouts"),
            "{}",
            last.line
        );
        // The next reload without a path reads the file last loaded.
        let v = rig
            .reloader
            .reload(
                Instant::from_nanos(2),
                None,
                By::Signal,
                Parts {
                    slow: &mut rig.slow,
                    neighbors: &rig.neighbors,
                    svr: Some(&rig.svr),
                    zt: None,
                },
            )
            .unwrap();
        assert!(v["path"].as_str().unwrap().ends_with("new.yaml"));
        assert_eq!(v["revision"], 2);
    }
}
