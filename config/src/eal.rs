//! The EAL command line of a node.

use crate::model::{Device, Eal, Node};

impl Eal {
    /// The argument vector for `rte_eal_init`, program name first.
    ///
    /// ```text
    /// <program>
    /// --lcores <main>@<main>[,<slowpath>@<slowpath>],<worker>@<cpu>,...
    /// --main-lcore <main>
    /// -m <memory-mb>
    /// --file-prefix <file-prefix>
    /// [--huge-unlink] --socket-limit <memory-mb> [--huge-dir <huge-dir>]   (hugepages: true;
    ///                                            --huge-unlink only with pdump: false)
    /// --no-huge                                  (hugepages: false)
    /// --no-pci | -a <pci> ...                    (pci-allow, then each pci-address)
    /// [--no-telemetry]                           (telemetry: false)
    /// --log-level <1-8>
    /// ```
    ///
    /// * The main and slow-path lcores are pinned to the CPU with their own number; the
    ///   slow-path lcore is listed only when it differs from the main lcore.
    /// * Two svrd processes (and tests) coexist on one machine because each has its own
    ///   `--file-prefix` (the router name by default): runtime directory, hugepage files and
    ///   multi-process socket are all named from it. `--in-memory` and `--no-shconf` are not
    ///   needed for that and are not passed.
    /// * `--huge-unlink` removes each hugepage file as soon as it is mapped, so the pages go
    ///   back to the kernel when the process exits, even after `SIGKILL`. Without it a killed
    ///   router strands its pages until a process with the same prefix starts again (DPDK
    ///   removes a previous run's files at start), starving everything else that shares the
    ///   machine's small hugepage pool. But it also means DPDK secondary processes cannot
    ///   attach, and `dpdk-dumpcap` is one: it maps svrd's hugepage files by name. So
    ///   `--huge-unlink` is passed only with `pdump: false`. With `pdump: true` svrd removes
    ///   its own `<prefix>map_<n>` files when it exits cleanly (SIGTERM/SIGINT, or a start-up
    ///   error): DPDK itself leaves the files of memory still allocated at exit.
    /// * Nothing else stops secondary processes: no `--in-memory`, no `--no-shconf`; the
    ///   multi-process socket and shared configuration live in `/var/run/dpdk/<file-prefix>/`
    ///   (as root), where `dpdk-dumpcap --file-prefix` and `dpdk-telemetry.py -f` find them.
    /// * `--no-telemetry` only with `telemetry: false`; otherwise the EAL opens
    ///   `/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2`.
    /// * `-m` only preallocates: DPDK grows its heap on demand beyond it. With hugepages,
    ///   `--socket-limit` (same number) makes `memory-mb` a hard budget, so a router cannot
    ///   take pages that another process on the machine counts on; an allocation beyond it
    ///   fails (the mempool must fit). The limit applies to NUMA socket 0, the only one on
    ///   the testbed. DPDK refuses `--socket-limit` with `--no-huge`, so it is left out there.
    /// * The log level is passed as DPDK's number (`notice` = 6), which every DPDK release
    ///   parses the same way.
    /// * Virtual devices are **not** on the command line: svrd probes each `vdev` after
    ///   `rte_eal_init`, so that a bad one gives an error naming its interface.
    /// * `node` is the node this `Eal` belongs to (its core map and PCI interfaces are used).
    pub fn args(&self, node: &Node, program: &str) -> Vec<String> {
        let cm = &node.core_map;
        let mut lcores = vec![format!("{0}@{0}", cm.main_lcore)];
        if cm.slowpath_lcore != cm.main_lcore {
            lcores.push(format!("{0}@{0}", cm.slowpath_lcore));
        }
        lcores.extend(
            cm.workers
                .iter()
                .map(|w| format!("{}@{}", w.lcore, w.pinned_cpu())),
        );

        let mut args: Vec<String> = vec![
            program.into(),
            "--lcores".into(),
            lcores.join(","),
            "--main-lcore".into(),
            cm.main_lcore.to_string(),
            "-m".into(),
            self.memory_mb.to_string(),
            "--file-prefix".into(),
            self.file_prefix.clone(),
        ];
        if self.hugepages {
            if !self.pdump {
                args.push("--huge-unlink".into());
            }
            args.push("--socket-limit".into());
            args.push(self.memory_mb.to_string());
            if let Some(dir) = &self.huge_dir {
                args.push("--huge-dir".into());
                args.push(dir.clone());
            }
        } else {
            args.push("--no-huge".into());
        }

        let mut allow: Vec<&str> = Vec::new();
        let pci_ifaces = node
            .device_interface
            .iter()
            .filter_map(|i| match &i.device {
                Device::Pci(a) => Some(a.as_str()),
                Device::Vdev(_) => None,
            });
        for a in self.pci_allow.iter().map(String::as_str).chain(pci_ifaces) {
            if !allow.iter().any(|b| b.eq_ignore_ascii_case(a)) {
                allow.push(a);
            }
        }
        if allow.is_empty() {
            args.push("--no-pci".into());
        } else {
            for a in allow {
                args.push("-a".into());
                args.push(a.into());
            }
        }

        if !self.telemetry {
            args.push("--no-telemetry".into());
        }
        args.push("--log-level".into());
        args.push(self.log_level.dpdk_level().to_string());
        args
    }
}
