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
    #[test]
    fn cpu_lists() {
        assert_eq!(super::cpu_list(&[1, 0]), "0-1");
        assert_eq!(super::cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(super::cpu_list(&[5]), "5");
        assert_eq!(super::cpu_list(&[]), "none");
    }
}
