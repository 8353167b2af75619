//! Turns the JSON lines written by `bench/compare.sh` into medians,
//! Sprocket/gearmand ratios and Markdown tables.
//!
//! Line kinds (field `kind`):
//! * `run`: one load against one server: `group`, `load`, `server`, `rep`,
//!   optional `series` (chart line name), and `report` (a [`Report`]) or
//!   `error` (text).
//! * `memory`: `what`, `server`, `vmhwm_kb`, `baseline_kb`, `count`.
//! * `floor`: redis-benchmark `test`, `connections`, `rep`, `rps`.

use std::fmt::Write as _;

use serde_json::Value;

use crate::report::{thousands, Report};

/// The server names compare.sh uses.
pub const SPROCKET: &str = "sprocketd";
pub const GEARMAND: &str = "gearmand";

/// Median of the values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// One row of the throughput table: a load in a group, both servers.
#[derive(Debug, Default, Clone)]
pub struct Row {
    pub group: String,
    pub load: String,
    pub series: Option<String>,
    pub connections: usize,
    pub sprocket: Samples,
    pub gearmand: Samples,
}

/// The measurements of one server for one row.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub throughput: Vec<f64>,
    pub p99_us: Vec<f64>,
    pub errors: Vec<String>,
}

impl Samples {
    pub fn median_throughput(&self) -> Option<f64> {
        median(&self.throughput)
    }
    pub fn median_p99(&self) -> Option<f64> {
        median(&self.p99_us)
    }
}

/// A peak-memory measurement.
#[derive(Debug, Clone)]
pub struct Memory {
    pub what: String,
    pub server: String,
    pub vmhwm_kb: f64,
    pub baseline_kb: f64,
    pub count: f64,
}

/// Everything read from a results file, in first-seen order.
#[derive(Debug, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub memory: Vec<Memory>,
    /// (test, connections) -> requests/s samples.
    pub floor: Vec<(String, usize, Vec<f64>)>,
    pub meta: Vec<(String, String)>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

impl Results {
    /// Parses JSON lines; bad lines are reported with their number.
    pub fn parse(input: &str) -> anyhow::Result<Results> {
        let mut r = Results::default();
        for (i, line) in input.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("results line {}: {e}", i + 1))?;
            match v.get("kind").and_then(Value::as_str) {
                Some("run") => r.add_run(&v)?,
                Some("memory") => r.memory.push(Memory {
                    what: text(&v, "what"),
                    server: text(&v, "server"),
                    vmhwm_kb: num(&v, "vmhwm_kb").unwrap_or(f64::NAN),
                    baseline_kb: num(&v, "baseline_kb").unwrap_or(f64::NAN),
                    count: num(&v, "count").unwrap_or(0.0),
                }),
                Some("floor") => {
                    let test = text(&v, "test");
                    let c = num(&v, "connections").unwrap_or(0.0) as usize;
                    let rps = num(&v, "rps").unwrap_or(f64::NAN);
                    match r.floor.iter_mut().find(|(t, cc, _)| *t == test && *cc == c) {
                        Some(f) => f.2.push(rps),
                        None => r.floor.push((test, c, vec![rps])),
                    }
                }
                Some("meta") => r.meta.push((text(&v, "key"), text(&v, "value"))),
                _ => anyhow::bail!("results line {}: unknown kind", i + 1),
            }
        }
        Ok(r)
    }

    fn add_run(&mut self, v: &Value) -> anyhow::Result<()> {
        let group = text(v, "group");
        let load = text(v, "load");
        let idx = match self.rows.iter().position(|r| r.group == group && r.load == load) {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    group: group.clone(),
                    load: load.clone(),
                    series: v.get("series").and_then(Value::as_str).map(str::to_string),
                    ..Row::default()
                });
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[idx];
        let samples = match text(v, "server").as_str() {
            SPROCKET => &mut row.sprocket,
            GEARMAND => &mut row.gearmand,
            other => anyhow::bail!("unknown server {other:?} in results"),
        };
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            samples.errors.push(err.to_string());
            return Ok(());
        }
        let report: Report = serde_json::from_value(v.get("report").cloned().unwrap_or(Value::Null))?;
        row.connections = report.connections;
        if report.errors > 0 {
            samples.errors.push(format!("{} ERROR replies", report.errors));
        }
        samples.throughput.push(report.throughput);
        if let Some(l) = &report.latency {
            samples.p99_us.push(l.p99_us);
        }
        Ok(())
    }

    /// The in-memory row of chart series `series` at `connections`.
    fn memory_row(&self, series: &str, connections: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.group == "memory" && r.series.as_deref() == Some(series) && r.connections == connections)
    }

    /// Median roundtrip throughput of Sprocket at `connections`, in the
    /// in-memory group, for the cost-floor comparison.
    fn sprocket_roundtrip(&self, connections: usize) -> Option<f64> {
        self.memory_row("roundtrip", connections).and_then(|r| r.sprocket.median_throughput())
    }

    /// Sprocket's durable `submit-bg` rows against its own in-memory row
    /// of the same load and load generator (the durability target: `--sync=full` must
    /// keep at least half of the in-memory throughput). A group is a store
    /// name, followed by the generator in parentheses when it is not
    /// `sprocket bench` (`sqlite (libgearman)`): a generator's cost per job
    /// is taken from the server on a small machine, so only rows of one
    /// generator compare.
    fn durable_vs_memory(&self, out: &mut String) {
        let store = |group: &str| group.split(' ').next().unwrap_or_default().to_string();
        let generator = |group: &str| group.split_once(' ').map(|(_, g)| g.to_string()).unwrap_or_default();
        let mut lines = Vec::new();
        for r in self.rows.iter().filter(|r| store(&r.group) != "memory" && r.load.starts_with("submit-bg")) {
            let same_load_in_memory = |m: &&Row| {
                store(&m.group) == "memory" && generator(&m.group) == generator(&r.group) && m.load == r.load
            };
            let Some(mem) = self.rows.iter().find(same_load_in_memory) else { continue };
            let (d, m) = (r.sprocket.median_throughput(), mem.sprocket.median_throughput());
            if let (Some(d), Some(m)) = (d, m) {
                if m > 0.0 {
                    lines.push(format!(
                        "| {} | {} | {} | {} | **{:.2}** |",
                        r.group,
                        r.load,
                        thousands(d),
                        thousands(m),
                        d / m
                    ));
                }
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(
                out,
                "\n| Sprocket durable vs in-memory | Load | Durable jobs/s | In-memory jobs/s (same load) | Durable / in-memory |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|");
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
    }

    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let cell = |v: Option<f64>, s: &Samples| match v {
            Some(x) => thousands(x),
            None if !s.errors.is_empty() => "failed".to_string(),
            None => "not measured".to_string(),
        };
        let ms = |v: Option<f64>| v.map(|us| format!("{:.2}", us / 1000.0)).unwrap_or_else(|| "–".into());
        let _ = writeln!(out, "| Store | Load | Sprocket jobs/s | gearmand jobs/s | Sprocket / gearmand | Sprocket p99 ms | gearmand p99 ms | runs (S/g) |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
        for r in &self.rows {
            let (s, g) = (r.sprocket.median_throughput(), r.gearmand.median_throughput());
            let ratio = match (s, g) {
                (Some(s), Some(g)) if g > 0.0 => format!("**{:.2}×**", s / g),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {}/{} |",
                r.group,
                r.load,
                cell(s, &r.sprocket),
                cell(g, &r.gearmand),
                ratio,
                ms(r.sprocket.median_p99()),
                ms(r.gearmand.median_p99()),
                r.sprocket.throughput.len(),
                r.gearmand.throughput.len(),
            );
        }
        let errors: Vec<String> = self
            .rows
            .iter()
            .flat_map(|r| {
                let mut v = Vec::new();
                for (who, s) in [(SPROCKET, &r.sprocket), (GEARMAND, &r.gearmand)] {
                    if let Some(e) = s.errors.first() {
                        v.push(format!("- {} / {} / {who}: {} ({} times)", r.group, r.load, e, s.errors.len()));
                    }
                }
                v
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\nFailures:\n{}", errors.join("\n"));
        }
        if !self.memory.is_empty() {
            let _ = writeln!(out, "\n| Peak resident memory (VmHWM) | Sprocket | gearmand | Sprocket / gearmand |");
            let _ = writeln!(out, "|---|---:|---:|---:|");
            let mut whats: Vec<&str> = Vec::new();
            for m in &self.memory {
                if !whats.contains(&m.what.as_str()) {
                    whats.push(&m.what);
                }
            }
            for w in whats {
                let get = |server: &str| self.memory.iter().find(|m| m.what == w && m.server == server);
                let show = |m: Option<&Memory>| match m {
                    Some(m) if m.vmhwm_kb.is_finite() => {
                        let mut s = format!("{:.1} MB", m.vmhwm_kb / 1024.0);
                        if m.count > 0.0 && m.baseline_kb.is_finite() {
                            let per = (m.vmhwm_kb - m.baseline_kb) * 1024.0 / m.count;
                            let _ = write!(s, " ({per:.0} B each)");
                        }
                        s
                    }
                    Some(_) => "failed".into(),
                    None => "not measured".into(),
                };
                let (s, g) = (get(SPROCKET), get(GEARMAND));
                let ratio = match (s, g) {
                    (Some(s), Some(g)) if s.vmhwm_kb.is_finite() && g.vmhwm_kb > 0.0 => {
                        format!("{:.2}", s.vmhwm_kb / g.vmhwm_kb)
                    }
                    _ => "–".into(),
                };
                let _ = writeln!(out, "| {w} | {} | {} | {ratio} |", show(s), show(g));
            }
        }
        self.durable_vs_memory(&mut out);
        if !self.floor.is_empty() {
            // One request and one reply per job, as for a redis PING: the
            // submit-bg rows (one in flight per connection) set against
            // what a server that does nothing per request reaches.
            let _ = writeln!(
                out,
                "\n| Cost floor: redis-benchmark | Connections | Requests/s (median) | Sprocket submit-bg (fraction) | gearmand submit-bg (fraction) | Sprocket roundtrip jobs/s | Sprocket roundtrip as a fraction |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            for (test, c, samples) in &self.floor {
                let rps = median(samples);
                let frac = |v: Option<f64>| match (v, rps) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                    _ => "–".into(),
                };
                let show = |v: Option<f64>| v.map(thousands).unwrap_or_else(|| "–".into());
                let with_frac = |v: Option<f64>| match v {
                    Some(_) => format!("{} ({})", show(v), frac(v)),
                    None => "–".into(),
                };
                let bg = self.memory_row("submit-bg", *c);
                let (bg_s, bg_g) =
                    (bg.and_then(|r| r.sprocket.median_throughput()), bg.and_then(|r| r.gearmand.median_throughput()));
                let rt = self.sprocket_roundtrip(*c);
                let _ = writeln!(
                    out,
                    "| {test} | {c} | {} | {} | {} | {} | {} |",
                    show(rps),
                    with_frac(bg_s),
                    with_frac(bg_g),
                    show(rt),
                    frac(rt)
                );
            }
        }
        out
    }

    /// Chart lines: (label, points of (connections, median jobs/s)).
    pub fn chart_series(&self) -> Vec<(String, Vec<(usize, f64)>)> {
        let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
        for r in self.rows.iter().filter(|r| r.group == "memory") {
            let Some(name) = &r.series else { continue };
            for (server, s) in [(SPROCKET, &r.sprocket), (GEARMAND, &r.gearmand)] {
                let Some(t) = s.median_throughput() else { continue };
                let label = format!("{server} {name}");
                match series.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, pts)) => pts.push((r.connections, t)),
                    None => series.push((label, vec![(r.connections, t)])),
                }
            }
        }
        for (_, pts) in series.iter_mut() {
            pts.sort_by_key(|p| p.0);
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
    }

    fn run_line(server: &str, c: usize, t: f64) -> String {
        format!(
            r#"{{"kind":"run","group":"memory","load":"roundtrip c={c}","series":"roundtrip","server":"{server}","rep":1,"report":{{"mode":"roundtrip","server":"x","connections":{c},"workers":4,"size":100,"priority":"normal","unique":false,"window":16,"jobs_requested":10,"duration_limit_s":null,"elapsed_s":1.0,"jobs":10,"throughput":{t},"errors":0,"latency":null,"details":{{}}}}}}"#
        )
    }

    #[test]
    fn rows_ratios_and_series() {
        let input = [
            run_line("sprocketd", 1, 300.0),
            run_line("gearmand", 1, 100.0),
            run_line("sprocketd", 1, 100.0),
            run_line("gearmand", 1, 100.0),
            r#"{"kind":"run","group":"memory","load":"roundtrip c=16","series":"roundtrip","server":"sprocketd","rep":1,"error":"boom"}"#.to_string(),
            r#"{"kind":"memory","what":"idle","server":"gearmand","vmhwm_kb":2048,"baseline_kb":1024,"count":1024}"#.to_string(),
            r#"{"kind":"floor","test":"PING_MBULK","connections":1,"rep":1,"rps":1000}"#.to_string(),
        ]
        .join("\n");
        let r = Results::parse(&input).unwrap();
        assert_eq!(r.rows.len(), 2);
        let md = r.markdown();
        assert!(md.contains("| memory | roundtrip c=1 | 200 | 100 | **2.00×**"), "{md}");
        assert!(md.contains("failed"), "{md}");
        assert!(md.contains("1024 B each"), "{md}");
        assert!(md.contains("| PING_MBULK | 1 | 1,000 | – | – | 200 | 0.20 |"), "{md}");
        let s = r.chart_series();
        assert_eq!(s[0].0, "sprocketd roundtrip");
        assert_eq!(s[0].1, vec![(1, 200.0)]);
    }

    fn bg_line(group: &str, server: &str, c: usize, t: f64) -> String {
        run_line(server, c, t)
            .replace(r#""group":"memory""#, &format!(r#""group":"{group}""#))
            .replace(&format!("roundtrip c={c}"), &format!("submit-bg c={c} window=1"))
            .replace(r#""series":"roundtrip""#, r#""series":"submit-bg""#)
    }

    /// The Markdown of these results lines.
    fn markdown_of(lines: &[String]) -> String {
        Results::parse(&lines.join("\n")).unwrap().markdown()
    }

    /// The durable-against-in-memory table of a Markdown summary.
    fn durable_table(md: &str) -> &str {
        md.split("Durable / in-memory").nth(1).and_then(|t| t.split("\n\n").next()).unwrap_or("")
    }

    #[test]
    fn durable_rows_against_in_memory_and_floor_fractions() {
        let md = markdown_of(&[
            bg_line("memory", "sprocketd", 64, 1000.0),
            bg_line("memory", "gearmand", 64, 400.0),
            bg_line("sqlite", "sprocketd", 64, 600.0),
            bg_line("sqlite", "gearmand", 64, 10.0),
            bg_line("sqlite", "sprocketd", 4, 100.0),
            r#"{"kind":"floor","test":"PING_MBULK","connections":64,"rep":1,"rps":2000}"#.to_string(),
        ]);
        assert!(md.contains("| sqlite | submit-bg c=64 window=1 | 600 | 1,000 | **0.60** |"), "{md}");
        // No in-memory row at 4 connections: no line for it.
        assert!(!durable_table(&md).contains("c=4"), "{md}");
        assert!(md.contains("| PING_MBULK | 64 | 2,000 | 1,000 (0.50) | 400 (0.20) | – | – |"), "{md}");
    }

    #[test]
    fn durable_rows_compare_with_the_in_memory_row_of_their_own_generator() {
        let md = markdown_of(&[
            bg_line("memory", "sprocketd", 64, 2000.0),
            bg_line("memory (libgearman)", "sprocketd", 64, 1000.0),
            bg_line("sqlite", "sprocketd", 64, 700.0),
            bg_line("sqlite (libgearman)", "sprocketd", 64, 550.0),
            // No libgearman in-memory row at 4 connections.
            bg_line("sqlite (libgearman)", "sprocketd", 4, 100.0),
        ]);
        assert!(md.contains("| sqlite | submit-bg c=64 window=1 | 700 | 2,000 | **0.35** |"), "{md}");
        assert!(md.contains("| sqlite (libgearman) | submit-bg c=64 window=1 | 550 | 1,000 | **0.55** |"), "{md}");
        assert!(!durable_table(&md).contains("c=4"), "{md}");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        assert!(Results::parse("{nope").is_err());
        assert!(Results::parse(r#"{"kind":"what"}"#).is_err());
        assert!(Results::parse(r#"{"kind":"run","server":"other"}"#).is_err());
    }
}
