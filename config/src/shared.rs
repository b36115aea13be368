//! One authority checked as each of its routers' nodes, without a full check per node.
//!
//! Almost every rule is the same whichever router and node are local; three are not: the
//! `local-router` / `local-node` references themselves, `pki` (required on the local node
//! with enhanced security key management) and the test-key rule (the local router and its
//! peers need keys without it). [`SharedCheck::new`] runs everything else once and keeps
//! the local rules as hooks, each with the number of errors found before it; [`SharedCheck::check_as`]
//! runs the hooks for one (router, node) and merges their errors into the shared ones
//! exactly as one walk would have found them, so the first error is the one
//! [`Config::parse`](crate::Config::parse) of that router's view reports.

use std::collections::HashMap;

use serde_norway::Value;

use crate::model::Authority;
use crate::parse::{self, Hook};
use crate::walk::{line, raw, Cx, Found, Path};
use crate::ConfigError;

/// An svrd configuration's `authority`, validated once for checking it as any of its
/// routers' nodes ([`SharedCheck::check_as`]). Building it costs one validation of the
/// document; each `check_as` costs only the rules that depend on the local router and node
/// (about the size of that router's peer list), so checking every node of an authority of
/// thousands of routers is linear in its size, not quadratic.
#[derive(Debug)]
pub struct SharedCheck {
    /// The errors of the shared rules, in the order they were found, with order keys.
    errors: Vec<Found>,
    /// The index in `errors` of the first in document order.
    first: Option<usize>,
    /// The deferred local rules, each with the number of errors found before it.
    hooks: Vec<(usize, Hook)>,
    /// The authority, if the shared rules pass.
    authority: Option<Authority>,
    /// Is `authority.router` a list whose entries all have a string name?
    all_named: bool,
    /// The raw node names of the first router entry with each name (`None`: a node list
    /// that cannot be read, or a node without a string name).
    nodes: HashMap<String, Option<Vec<String>>>,
}

impl SharedCheck {
    /// Validates `document` (an svrd configuration as YAML value) except for the rules
    /// that depend on `local-router` and `local-node`; those keys, if present, are ignored.
    /// A document that is not a mapping fails every check with a type error.
    pub fn new(document: &Value) -> SharedCheck {
        let mut cx = Cx::deferring();
        let authority = parse::shared(&mut cx, document);
        let (errors, hooks) = cx.into_parts();
        let first = (0..errors.len()).min_by(|&a, &b| errors[a].0.cmp(&errors[b].0));
        let routers = raw::get(document, "authority").and_then(|a| raw::seq_of(a, "router"));
        let mut all_named = routers.is_some();
        let mut nodes = HashMap::new();
        for r in routers.unwrap_or_default() {
            let Some(name) = raw::str_of(r, "name") else {
                all_named = false;
                continue;
            };
            if nodes.contains_key(name) {
                continue;
            }
            let names = raw::seq_of(r, "node").and_then(|ns| {
                ns.iter()
                    .map(|n| raw::str_of(n, "name").map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
            });
            nodes.insert(name.to_owned(), names);
        }
        SharedCheck {
            authority: authority.filter(|_| errors.is_empty()),
            errors,
            first,
            hooks,
            all_named,
            nodes,
        }
    }

    /// The authority, if the rules that do not depend on the local router and node pass
    /// (then [`check_as`](SharedCheck::check_as) fails only on those that do).
    pub fn authority(&self) -> Option<&Authority> {
        self.authority.as_ref()
    }

    /// The first error [`Config::parse`](crate::Config::parse) reports for the document
    /// with `local-router: router` and `local-node: node` (in place of its own), leaving
    /// out errors on those two keys themselves; `Ok` if it has none. When the only errors
    /// are on those keys, the error is `(top level): invalid configuration`.
    pub fn check_as(&self, router: &str, node: &str) -> Result<(), ConfigError> {
        // The first error: (order key, place found, error). A shared error i counts as
        // found at 2i + 1, a hook's errors as found at 2n when n errors came before it; ties
        // within one hook keep the order it found them in (the walk's sort is stable).
        let mut best: Option<(Vec<u32>, usize, ConfigError)> = self.first.map(|i| {
            (
                self.errors[i].0.clone(),
                2 * i + 1,
                self.errors[i].1.clone(),
            )
        });
        let resolves = self.resolves(router, node);
        if resolves {
            for (found, hook) in &self.hooks {
                let mut cx = Cx::default();
                parse::run_hook(&mut cx, hook, router, node);
                let (errors, _) = cx.into_parts();
                let first = (0..errors.len()).min_by(|&a, &b| errors[a].0.cmp(&errors[b].0));
                let Some((order, error)) = first.and_then(|i| errors.into_iter().nth(i)) else {
                    continue;
                };
                let beats = match &best {
                    None => true,
                    Some((o, at, _)) => (&order, 2 * found) < (o, *at),
                };
                if beats {
                    best = Some((order, 2 * found, error));
                }
            }
        }
        match best {
            Some((_, _, e)) => Err(e),
            // Without errors, the view fails only on its local keys if they do not resolve.
            None if resolves && self.authority.is_some() => Ok(()),
            None => Err(crate::internal_error()),
        }
    }

    /// Does `local-router: router`, `local-node: node` name a router's node, as
    /// `Config::parse` resolves them (else it skips the local rules)?
    fn resolves(&self, router: &str, node: &str) -> bool {
        let is_line = |s: &str| {
            let mut cx = Cx::default();
            line(&mut cx, &Path::root(), &Value::String(s.to_owned())).is_some()
        };
        self.all_named
            && is_line(router)
            && is_line(node)
            && matches!(self.nodes.get(router), Some(Some(ns)) if ns.iter().any(|n| n == node))
    }
}

/// An authority of `n` routers in pairs that peer (r0-r1, ...), each serving one service,
/// with enhanced security key management: for scale tests and benchmarks.
pub fn generated_authority(n: usize) -> String {
    let mut y = String::from(
        "authority:\n  name: big\n  enhanced-security-key-management: true\n  \
         trusted-ca-certificate: /var/lib/svrd/root.pem\n  service:\n",
    );
    for i in 0..n {
        y.push_str(&format!(
            "    - {{name: s{i}, tenant: t, prefix: [10.{}.{}.0/24], router: r{i}}}\n",
            i / 256,
            i % 256
        ));
    }
    y.push_str("  router:\n");
    for i in 0..n {
        y.push_str(&format!(
            "    - name: r{i}\n      peering-common-name: r{i}.big.svr\n      peer: [{{router: r{}}}]\n      node:\n        - name: node-1\n          core-map: {{workers: [{{lcore: 1}}]}}\n          pki: {{certificate-chain: /c.pem, private-key: /k.pem}}\n          device-interface:\n            - {{name: wan, role: wan, vdev: net_null0, address: [172.{}.{}.1/24]}}\n",
            i ^ 1,
            16 + i / 256,
            i % 256
        ));
    }
    y
}
