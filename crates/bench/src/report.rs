//! The result of one run: a serialisable record, printed as a table for
//! people or as one JSON line for scripts (bench/compare.sh, bench-chart).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// What was timed, e.g. "submit to JOB_CREATED".
    pub what: String,
    pub samples: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    /// Summarises a histogram recorded in nanoseconds; None when empty.
    pub fn from_histogram(what: &str, h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            what: what.to_string(),
            samples: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

/// Everything a run measured, with the settings that produced it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub mode: String,
    pub server: String,
    pub connections: usize,
    pub workers: usize,
    pub size: usize,
    pub priority: String,
    pub unique: bool,
    pub window: usize,
    /// The -n limit.
    pub jobs_requested: u64,
    /// The --duration limit in seconds, if any.
    pub duration_limit_s: Option<f64>,
    /// Wall time of the measured phase.
    pub elapsed_s: f64,
    /// Operations counted for `throughput` (jobs, or connections in idle).
    pub jobs: u64,
    /// `jobs / elapsed_s`.
    pub throughput: f64,
    /// ERROR packets received (e.g. a full or failing queue).
    pub errors: u64,
    pub latency: Option<Latency>,
    /// Mode-specific counters, e.g. `status_queries`, `prefill_s`.
    #[serde(default)]
    pub details: BTreeMap<String, f64>,
}

/// 1234567.8 -> "1,234,568".
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "{k:<14} {v}");
        };
        row("mode", self.mode.clone());
        row("server", self.server.clone());
        row(
            "load",
            format!(
                "{} connections, {} workers, {} B payload, {} priority, {} uniques, window {}",
                self.connections,
                self.workers,
                self.size,
                self.priority,
                if self.unique { "with" } else { "no" },
                self.window
            ),
        );
        row("done", format!("{} in {:.3} s", thousands(self.jobs as f64), self.elapsed_s));
        let unit = if self.mode == "idle" { "connections/s" } else { "jobs/s" };
        row("throughput", format!("{} {unit}", thousands(self.throughput)));
        if self.errors > 0 {
            row("errors", format!("{} ERROR replies", self.errors));
        }
        if let Some(l) = &self.latency {
            row(
                "latency",
                format!(
                    "p50 {}  p99 {}  p99.9 {}  max {}  ({}, {} samples)",
                    ms(l.p50_us),
                    ms(l.p99_us),
                    ms(l.p999_us),
                    ms(l.max_us),
                    l.what,
                    l.samples
                ),
            );
        }
        for (k, v) in &self.details {
            row(k, if v.fract() == 0.0 { thousands(*v) } else { format!("{v:.3}") });
        }
        t
    }

    /// One line of JSON.
    pub fn json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }

    #[test]
    fn latency_from_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::from_histogram("x", &h).unwrap();
        assert_eq!(l.samples, 1000);
        assert!((l.p50_us - 500.0).abs() < 2.0, "{l:?}");
        assert!(Latency::from_histogram("x", &Histogram::<u64>::new(3).unwrap()).is_none());
    }
}
