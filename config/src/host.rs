//! Checks that depend on the machine svrd runs on, kept apart so that parsing is pure.

use crate::{Config, ConfigError};

impl Config {
    /// Checks the local node against this machine: every CPU the core map pins an lcore to
    /// (main, slow path, each worker's `cpu` or, without one, its `lcore`) must be one this
    /// process may run on (`core_affinity::get_core_ids`, i.e. the affinity mask), a
    /// configured `huge-dir` must be a directory, and the PEM files configured for this
    /// router (`trusted-ca-certificate`, `certificate-revocation-list`, the local node's `pki`) must exist and be files.
    pub fn check_host(&self) -> Result<(), ConfigError> {
        let cpus: Vec<usize> = core_affinity::get_core_ids()
            .ok_or_else(|| ConfigError::Host {
                path: "(host)".into(),
                message: "cannot read the list of CPUs this process may run on".into(),
            })?
            .into_iter()
            .map(|c| c.id)
            .collect();
        self.check_cpus(&cpus)?;
        let (_, node) = self.local();
        if let (true, Some(dir)) = (node.eal.hugepages, &node.eal.huge_dir) {
            if !std::path::Path::new(dir).is_dir() {
                return Err(ConfigError::Host {
                    path: format!("{}.eal.huge-dir", self.local_path()),
                    message: format!("{dir} is not a directory on this machine"),
                });
            }
        }
        let mut files = Vec::new();
        if let Some(ca) = &self.authority.trusted_ca_certificate {
            files.push(("authority.trusted-ca-certificate".to_string(), ca));
        }
        if let Some(crl) = &self.authority.certificate_revocation_list {
            files.push(("authority.certificate-revocation-list".to_string(), crl));
        }
        if let Some(pki) = &node.pki {
            let base = format!("{}.pki", self.local_path());
            files.push((format!("{base}.certificate-chain"), &pki.certificate_chain));
            files.push((format!("{base}.private-key"), &pki.private_key));
        }
        for (path, file) in files {
            let problem = match std::fs::metadata(file) {
                Ok(m) if m.is_file() => continue,
                Ok(_) => "is not a file".to_string(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".into(),
                Err(e) => format!("cannot be read: {e}"),
            };
            return Err(ConfigError::Host {
                path,
                message: format!("{} {problem}", file.display()),
            });
        }
        Ok(())
    }

    /// Checks the local node's hugepage needs against this machine (`/proc/mounts`,
    /// `/proc/meminfo`); see [`check_hugepages_with`](Config::check_hugepages_with). Kept out
    /// of [`check_host`](Config::check_host) because free pages change from minute to minute
    /// (other processes take and return them): svrd runs it just before it starts the EAL.
    pub fn check_hugepages(&self) -> Result<(), ConfigError> {
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        self.check_hugepages_with(&read("/proc/mounts"), &read("/proc/meminfo"))
    }

    /// The hugepage check against given `/proc/mounts` and `/proc/meminfo` texts. With
    /// `eal.hugepages: true`: the configured `huge-dir` must be a hugetlbfs mount point, or,
    /// without one, some hugetlbfs must be mounted (the EAL looks for one; normally
    /// `/dev/hugepages`); and `memory-mb` must not exceed the free hugepages of the default
    /// size (`HugePages_Free` × `Hugepagesize`). With `hugepages: false` nothing is checked.
    pub fn check_hugepages_with(&self, mounts: &str, meminfo: &str) -> Result<(), ConfigError> {
        let (_, node) = self.local();
        if !node.eal.hugepages {
            return Ok(());
        }
        let base = format!("{}.eal", self.local_path());
        let hugetlbfs = hugetlbfs_mounts(mounts);
        let dir = match &node.eal.huge_dir {
            Some(dir) => {
                let want = dir.trim_end_matches('/');
                if !hugetlbfs.iter().any(|m| m == want || (want.is_empty() && m == "/")) {
                    return Err(ConfigError::Host {
                        path: format!("{base}.huge-dir"),
                        message: format!(
                            "{dir} is not a mounted hugetlbfs (mount -t hugetlbfs nodev {dir}, or run scripts/setup.sh)"
                        ),
                    });
                }
                dir.clone()
            }
            None => match hugetlbfs.first() {
                Some(m) => m.clone(),
                None => {
                    return Err(ConfigError::Host {
                        path: format!("{base}.huge-dir"),
                        message: "no hugetlbfs is mounted (default /dev/hugepages: mount -t hugetlbfs nodev /dev/hugepages, or run scripts/setup.sh; or set hugepages: false)".into(),
                    })
                }
            },
        };
        let free = free_hugepage_mib(meminfo);
        let need = u64::from(node.eal.memory_mb);
        if free < need {
            return Err(ConfigError::Host {
                path: format!("{base}.memory-mb"),
                message: format!(
                    "{need} MiB of hugepages needed but only {free} MiB are free for {dir} (run scripts/setup.sh to reserve them, lower memory-mb, or set hugepages: false)"
                ),
            });
        }
        Ok(())
    }

    /// Checks that a DPDK driver exists for every `vdev` of the local node: `drivers` are the
    /// driver names this DPDK has (e.g. `net_af_packet`); a device name `net_foo0` needs a
    /// driver whose name it starts with, as DPDK's vdev bus matches them. An empty `drivers`
    /// (the list could not be found) checks nothing.
    pub fn check_vdev_drivers(&self, drivers: &[String]) -> Result<(), ConfigError> {
        if drivers.is_empty() {
            return Ok(());
        }
        let (_, node) = self.local();
        for (i, ifc) in node.device_interface.iter().enumerate() {
            let crate::Device::Vdev(devargs) = &ifc.device else {
                continue;
            };
            let name = devargs.split(',').next().unwrap_or(devargs);
            if drivers
                .iter()
                .any(|d| !d.is_empty() && name.starts_with(d.as_str()))
            {
                continue;
            }
            let mut net: Vec<&str> = drivers
                .iter()
                .map(String::as_str)
                .filter(|d| d.starts_with("net_"))
                .collect();
            net.sort_unstable();
            net.dedup();
            return Err(ConfigError::Host {
                path: format!("{}.device-interface[{i}].vdev", self.local_path()),
                message: format!(
                    "no DPDK driver for {name:?} in this DPDK (its net vdev drivers: {})",
                    net.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// The CPU part of [`check_host`](Config::check_host) against a given list of CPU
    /// numbers (for tests and for tools that plan for another machine).
    pub fn check_cpus(&self, available: &[usize]) -> Result<(), ConfigError> {
        let (_, node) = self.local();
        let cm = &node.core_map;
        let base = format!("{}.core-map", self.local_path());
        let mut wanted = vec![
            (format!("{base}.main-lcore"), cm.main_lcore),
            (format!("{base}.slowpath-lcore"), cm.slowpath_lcore),
        ];
        for (i, w) in cm.workers.iter().enumerate() {
            let field = if w.cpu.is_some() { "cpu" } else { "lcore" };
            wanted.push((format!("{base}.workers[{i}].{field}"), w.pinned_cpu()));
        }
        for (path, cpu) in wanted {
            if !usize::try_from(cpu).is_ok_and(|c| available.contains(&c)) {
                return Err(ConfigError::Host {
                    path,
                    message: format!(
                        "CPU {cpu} does not exist on this machine (CPUs {})",
                        cpu_list(available)
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The mount points of hugetlbfs file systems in a `/proc/mounts` text (octal escapes such
/// as `\040` for a space undone).
pub fn hugetlbfs_mounts(mounts: &str) -> Vec<String> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mnt, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "hugetlbfs").then(|| unescape_mount(mnt))
        })
        .collect()
}

/// `/proc/mounts` writes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Free hugepage memory of the default page size in MiB, from a `/proc/meminfo` text
/// (`HugePages_Free` × `Hugepagesize`); 0 when either line is missing.
pub fn free_hugepage_mib(meminfo: &str) -> u64 {
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:").saturating_mul(field("Hugepagesize:")) / 1024
}

/// `0-3,6,8-9`.
fn cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if out.is_empty() {
        "none".into()
    } else {
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1631324k,mode=755 0 0
nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
none /mnt/huge\\0401G hugetlbfs rw,relatime,pagesize=1024M 0 0
tmpfs /mnt/notHuge tmpfs rw 0 0
";

    const MEMINFO: &str = "\
MemTotal:       16303252 kB
AnonHugePages:         0 kB
HugePages_Total:     384
HugePages_Free:      300
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:          786432 kB
";

    #[test]
    fn hugetlbfs_mounts_are_read_from_proc_mounts() {
        assert_eq!(
            hugetlbfs_mounts(MOUNTS),
            vec!["/dev/hugepages".to_string(), "/mnt/huge 1G".to_string()]
        );
        assert!(hugetlbfs_mounts("").is_empty());
        assert!(hugetlbfs_mounts("garbage\n\n x").is_empty());
    }

    #[test]
    fn free_hugepages_from_meminfo() {
        assert_eq!(free_hugepage_mib(MEMINFO), 600);
        assert_eq!(free_hugepage_mib(""), 0);
        // 1 GiB pages.
        assert_eq!(
            free_hugepage_mib("HugePages_Free: 2\nHugepagesize: 1048576 kB\n"),
            2048
        );
        assert_eq!(
            free_hugepage_mib("HugePages_Free: x\nHugepagesize: 2048 kB\n"),
            0
        );
    }
    #[test]
    fn cpu_lists() {
        assert_eq!(super::cpu_list(&[1, 0]), "0-1");
        assert_eq!(super::cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(super::cpu_list(&[5]), "5");
        assert_eq!(super::cpu_list(&[]), "none");
    }
}
