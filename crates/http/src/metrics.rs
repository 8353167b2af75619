//! `/metrics` in Prometheus' text format (version 0.0.4).
//!
//! The per-function gauges carry gearman-exporter's names and labels, so
//! dashboards built for gearmand through that exporter keep working:
//! `gearman_jobs` is the total of `status`, `gearman_jobs_running` its
//! running column, `gearman_jobs_waiting` the difference, and
//! `gearman_workers` its worker column. The rest are sprocketd's own,
//! prefixed `sprocket_`.

use std::fmt::Write as _;

use sprocket_engine::{FunctionCounters, FunctionView, ServerInfo};

/// Renders the page. `uptime` is in seconds.
pub(crate) fn render(info: &ServerInfo, functions: &[FunctionView], uptime: f64) -> String {
    // About 750 bytes per function for the fourteen per-function series.
    let mut out = String::with_capacity(4096 + functions.len() * 770);
    gauge(&mut out, "gearman_up", "1 when the server answers.");
    out.push_str("gearman_up 1\n");
    gauge(&mut out, "gearman_version_info", "The server's version, in the version label.");
    let _ = writeln!(out, "gearman_version_info{{version=\"{}\"}} 1", escape(info.version.as_bytes()));

    let per_function: [(&str, &str, Count); 4] = [
        ("gearman_jobs", "Jobs of the function: queued, scheduled and running.", |f| f.total),
        ("gearman_jobs_running", "Jobs of the function a worker runs.", |f| f.running),
        ("gearman_jobs_waiting", "Jobs of the function not yet running.", |f| f.total.saturating_sub(f.running)),
        ("gearman_workers", "Workers registered for the function.", |f| f.workers),
    ];
    let names: Vec<String> = functions.iter().map(|f| escape(&f.name)).collect();
    for (metric, help, value) in per_function {
        gauge(&mut out, metric, help);
        for (f, name) in functions.iter().zip(&names) {
            let _ = writeln!(out, "{metric}{{function=\"{name}\"}} {}", value(f));
        }
    }
    gauge(&mut out, "sprocket_jobs_queued", "Jobs of the function waiting to run, by priority.");
    for (f, name) in functions.iter().zip(&names) {
        for (priority, n) in ["high", "normal", "low"].iter().zip(f.queued) {
            let _ = writeln!(out, "sprocket_jobs_queued{{function=\"{name}\",priority=\"{priority}\"}} {n}");
        }
    }
    gauge(
        &mut out,
        "sprocket_function_paused",
        "1 while an operator has paused the function (its jobs are not handed out).",
    );
    for (f, name) in functions.iter().zip(&names) {
        let _ = writeln!(out, "sprocket_function_paused{{function=\"{name}\"}} {}", u8::from(f.paused));
    }
    let counters: [(&str, &str, Counter); 6] = [
        ("sprocket_jobs_submitted_total", "New jobs submitted to the function.", |c| c.submitted),
        ("sprocket_jobs_completed_total", "Jobs of the function that ended with WORK_COMPLETE.", |c| c.completed),
        (
            "sprocket_jobs_failed_total",
            "Jobs of the function that failed: WORK_FAIL, time limit or retries used up.",
            |c| c.failed,
        ),
        ("sprocket_jobs_exceptions_total", "Jobs of the function that ended with WORK_EXCEPTION.", |c| c.exceptions),
        ("sprocket_jobs_retried_total", "Attempts of the function's jobs put back for a retry.", |c| c.retried),
        ("sprocket_jobs_dead_total", "Jobs of the function moved to the dead jobs.", |c| c.dead),
    ];
    for (metric, help, value) in counters {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (f, name) in functions.iter().zip(&names) {
            let _ = writeln!(out, "{metric}{{function=\"{name}\"}} {}", value(&f.counters));
        }
    }

    let whole: [(&str, &str, f64); 6] = [
        ("sprocket_uptime_seconds", "Seconds since the web port started with the server.", uptime),
        ("sprocket_connections", "Open Gearman connections.", info.connections as f64),
        ("sprocket_functions", "Functions the server knows.", info.functions as f64),
        ("sprocket_jobs_total_current", "Jobs that exist: queued, scheduled and running.", info.jobs as f64),
        (
            "sprocket_store_unconfirmed_inserts",
            "Background submits whose store insert is not yet confirmed.",
            info.unconfirmed_inserts as f64,
        ),
        ("sprocket_store_up", "0 while the store is known to be unreachable.", if info.store_down { 0.0 } else { 1.0 }),
    ];
    for (metric, help, value) in whole {
        gauge(&mut out, metric, help);
        let _ = writeln!(out, "{metric} {value}");
    }
    out
}

/// One number of a function's view.
type Count = fn(&FunctionView) -> usize;
/// One of a function's counters.
type Counter = fn(&FunctionCounters) -> u64;

fn gauge(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// A label value: backslash, double quote and line feed escaped as the
/// text format requires; bytes that are not UTF-8 become U+FFFD.
fn escape(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn function(name: &[u8], total: usize, running: usize, workers: usize) -> FunctionView {
        FunctionView {
            name: Bytes::copy_from_slice(name),
            total,
            running,
            queued: [0, total - running, 0],
            workers,
            max_queue: [0; 3],
            counters: FunctionCounters { submitted: 7, completed: 4, failed: 1, exceptions: 2, ..Default::default() },
            paused: false,
        }
    }

    fn info() -> ServerInfo {
        ServerInfo {
            version: "1.1.20+sprocket.0.1.0".into(),
            pid: 1,
            verbose: "ERROR".into(),
            jobs: 5,
            connections: 2,
            functions: 2,
            unconfirmed_inserts: 0,
            store_down: false,
            now: 0,
        }
    }

    #[test]
    fn exporter_gauges_and_label_escaping() {
        let page = render(&info(), &[function(b"resize", 4, 1, 2), function(b"a\"b\\c\nd\xff", 1, 0, 0)], 3.5);
        for line in [
            "gearman_up 1",
            "gearman_version_info{version=\"1.1.20+sprocket.0.1.0\"} 1",
            "gearman_jobs{function=\"resize\"} 4",
            "gearman_jobs_running{function=\"resize\"} 1",
            "gearman_jobs_waiting{function=\"resize\"} 3",
            "gearman_workers{function=\"resize\"} 2",
            "gearman_jobs{function=\"a\\\"b\\\\c\\nd\u{fffd}\"} 1",
            "sprocket_jobs_queued{function=\"resize\",priority=\"normal\"} 3",
            "sprocket_connections 2",
            "sprocket_uptime_seconds 3.5",
            "sprocket_jobs_submitted_total{function=\"resize\"} 7",
            "sprocket_jobs_completed_total{function=\"resize\"} 4",
            "sprocket_jobs_failed_total{function=\"resize\"} 1",
            "sprocket_jobs_exceptions_total{function=\"resize\"} 2",
            "sprocket_jobs_retried_total{function=\"resize\"} 0",
            "sprocket_jobs_dead_total{function=\"resize\"} 0",
            "sprocket_function_paused{function=\"resize\"} 0",
            "# TYPE sprocket_jobs_completed_total counter",
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line:?} in\n{page}");
        }
        assert_eq!(page.matches("# TYPE gearman_jobs gauge").count(), 1);
    }

    #[test]
    fn ten_thousand_functions_render_quickly() {
        let functions: Vec<FunctionView> =
            (0..10_000).map(|i| function(format!("fn-{i}").as_bytes(), 3, 1, 1)).collect();
        let started = std::time::Instant::now();
        let page = render(&info(), &functions, 1.0);
        assert_eq!(page.matches("gearman_workers{").count(), 10_000);
        // Generous for a debug build on a busy machine; release is ~5 ms.
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
