//! Shared helpers of the svr-fastpath benchmarks: pinning, the time-stamp counter, command-line
//! options and the `key=value` output lines that `scripts/bench.sh` parses.
//!
//! # Clocks
//!
//! Wall time comes from [`std::time::Instant`]. "Cycles" are **TSC ticks** read with `rdtsc`
//! ([`rdtsc`]), the same unit as DPDK's `rte_rdtsc()` and therefore as the `Cycles/Buf` column
//! of `dpdk-test-crypto-perf`: on a CPU with `constant_tsc` the TSC runs at a fixed nominal rate
//! whatever the core clock does, so a "cycle" here is 1 / [`tsc_hz`] seconds, not necessarily a
//! core clock cycle. [`tsc_hz`] calibrates the TSC against `Instant` over 100 ms at start-up and
//! every run prints both, so the conversion can be checked.
//!
//! # Output
//!
//! Every result is one line `bench=<name> key=value key=value …` on stdout (no spaces inside
//! values); everything else (progress, notes) goes to stderr.
#![deny(unsafe_code)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The CPU the measured thread runs on (CPU 0 takes interrupts and the other helpers).
pub const BENCH_CPU: usize = 1;

/// Reads the time-stamp counter.
#[inline(always)]
#[allow(unsafe_code)]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a register and has no memory effects or preconditions; every
    // x86_64 CPU has it (the `tsc` flag is part of the x86_64 baseline). It is `unsafe` in
    // `core::arch` only because all intrinsics are. Not serialising: a few instructions around
    // a stamp may be reordered, which is noise at the burst granularity we time (≥ 1 µs).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC ticks per second, calibrated against the monotonic clock over 100 ms.
pub fn tsc_hz() -> f64 {
    let t0 = Instant::now();
    let c0 = rdtsc();
    while t0.elapsed() < Duration::from_millis(100) {
        std::hint::spin_loop();
    }
    let c1 = rdtsc();
    let dt = t0.elapsed();
    (c1 - c0) as f64 / dt.as_secs_f64()
}

/// The first `cpu MHz` of /proc/cpuinfo (what the kernel reports, for the record).
pub fn cpuinfo_mhz() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    s.lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

/// Pins the calling thread to `cpu`; returns whether it worked.
pub fn pin(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

/// Pins to [`BENCH_CPU`] (or `--cpu N`), calibrates the TSC and prints one `bench=env` line.
/// Returns the TSC rate.
pub fn setup(bench: &str, args: &Args) -> f64 {
    let cpu = args.get_usize("cpu", BENCH_CPU);
    let pinned = pin(cpu);
    if !pinned {
        eprintln!("warning: could not pin to CPU {cpu}; figures are per core but unpinned");
    }
    let hz = tsc_hz();
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .find(|w| w.starts_with('['))
                .map(|w| w.trim_matches(['[', ']']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Line::new("env")
        .kv("for", bench)
        .kv("cpu", cpu)
        .kv("pinned", pinned)
        .f("tsc_mhz", hz / 1e6, 1)
        .f("cpuinfo_mhz", cpuinfo_mhz().unwrap_or(0.0), 1)
        .kv("thp", thp)
        .print();
    hz
}

/// `--name value` options (and bare `--flag`s) from the command line.
#[derive(Debug, Default)]
pub struct Args {
    pairs: Vec<(String, Option<String>)>,
}

impl Args {
    /// The process arguments.
    pub fn from_env() -> Args {
        let mut pairs = Vec::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                eprintln!("ignoring argument {a:?}");
                continue;
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next(),
                _ => None,
            };
            pairs.push((name.to_string(), value));
        }
        Args { pairs }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `--name VALUE`, if given.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)
    }

    /// True when `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// `--name N` (accepts `K`/`M` suffixes: `100K`, `10M`), or `default`.
    pub fn get_usize(&self, name: &str, default: usize) -> usize {
        self.get(name).map_or(default, |v| {
            parse_count(v).unwrap_or_else(|| {
                eprintln!("bad value for --{name}: {v:?}");
                std::process::exit(2)
            })
        })
    }

    /// `--name a,b,c` as counts, or `default`.
    pub fn get_list(&self, name: &str, default: &[usize]) -> Vec<usize> {
        self.get(name).map_or_else(
            || default.to_vec(),
            |v| {
                v.split(',')
                    .map(|x| {
                        parse_count(x).unwrap_or_else(|| {
                            eprintln!("bad value in --{name}: {x:?}");
                            std::process::exit(2)
                        })
                    })
                    .collect()
            },
        )
    }
}

/// `123`, `100K`, `10M` (powers of ten).
pub fn parse_count(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1_000),
        b'M' | b'm' => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mult)
}

/// One `bench=… key=value …` output line.
#[derive(Debug)]
pub struct Line(String);

impl Line {
    /// A line for benchmark `bench`.
    pub fn new(bench: &str) -> Line {
        Line(format!("bench={bench}"))
    }

    /// Adds `key=value` (the value must not contain spaces).
    pub fn kv(mut self, key: &str, value: impl std::fmt::Display) -> Line {
        let _ = write!(self.0, " {key}={value}");
        self
    }

    /// Adds a float with `prec` decimals.
    pub fn f(mut self, key: &str, value: f64, prec: usize) -> Line {
        let _ = write!(self.0, " {key}={value:.prec$}");
        self
    }

    /// Prints the line on stdout.
    pub fn print(self) {
        println!("{}", self.0);
    }
}

/// Nanoseconds per item of `ticks` TSC ticks over `items` items.
pub fn ns_per(ticks: u64, items: u64, hz: f64) -> f64 {
    ticks as f64 / hz * 1e9 / items.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("10M"), Some(10_000_000));
        assert_eq!(parse_count("1k"), Some(1_000));
        assert_eq!(parse_count("64"), Some(64));
        assert_eq!(parse_count("x"), None);
        assert_eq!(parse_count(""), None);
    }

    #[test]
    fn line_format() {
        let l = Line::new("x").kv("a", 1).f("b", 1.23456, 2);
        assert_eq!(l.0, "bench=x a=1 b=1.23");
    }
}
