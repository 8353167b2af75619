//! `/metrics` in Prometheus' text format (version 0.0.4).
//!
//! The per-function gauges carry gearman-exporter's names and labels, so
//! dashboards built for gearmand through that exporter keep working:
//! `gearman_jobs` is the total of `status`, `gearman_jobs_running` its
//! running column, `gearman_jobs_waiting` the difference, and
//! `gearman_workers` its worker column. The rest are sprocketd's own,
//! prefixed `sprocket_`.

use std::fmt::Write as _;

use bytes::Bytes;
use sprocket_engine::{FunctionCounters, FunctionView, ServerInfo};

/// A histogram as Prometheus shows it, in the metric's own unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// The buckets' upper bounds, increasing.
    pub bounds: Vec<f64>,
    /// Samples per bucket, not cumulative; one more than `bounds` (the
    /// last counts samples above every bound).
    pub counts: Vec<u64>,
    /// The sum of every sample.
    pub sum: f64,
}

/// One function's job durations: queue wait and run time, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionTimings {
    /// The function's name.
    pub function: Bytes,
    /// From submission to the first start of each job that started.
    pub queue_wait: Histogram,
    /// Each ended job's last attempt, from its start to its end.
    pub run_time: Histogram,
}

/// What `/metrics` shows besides the engine's views: numbers the server
/// keeps beside the engine, read without asking it (except the job
/// durations, which the engine task keeps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    /// Job durations per function, from the jobs that ended.
    pub job_timings: Vec<FunctionTimings>,
    /// Store commits' durations in seconds; `None` without a store.
    pub store_commit_seconds: Option<Histogram>,
    /// Operations per store commit; `None` without a store.
    pub store_batch_size: Option<Histogram>,
    /// From reading a SUBMIT_JOB* packet to writing its JOB_CREATED, in
    /// seconds (the store's commit included for a durable background job).
    pub submit_to_created_seconds: Histogram,
    /// Bytes read from Gearman connections (TLS: after decryption).
    pub bytes_received: u64,
    /// Bytes written to Gearman connections (TLS: before encryption).
    pub bytes_sent: u64,
}

/// Renders the page. `uptime` is in seconds.
pub(crate) fn render(info: &ServerInfo, functions: &[FunctionView], telemetry: &Telemetry, uptime: f64) -> String {
    // About 820 bytes per function for the fifteen per-function series.
    let mut out = String::with_capacity(4096 + functions.len() * 820);
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
    gauge(&mut out, "sprocket_jobs_retrying", "Jobs of the function waiting out a retry's backoff (also queued).");
    for (f, name) in functions.iter().zip(&names) {
        let _ = writeln!(out, "sprocket_jobs_retrying{{function=\"{name}\"}} {}", f.retrying);
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
    render_telemetry(&mut out, telemetry);
    out
}

fn render_telemetry(out: &mut String, t: &Telemetry) {
    let traffic = [
        ("sprocket_received_bytes_total", "Bytes read from Gearman connections.", t.bytes_received),
        ("sprocket_sent_bytes_total", "Bytes written to Gearman connections.", t.bytes_sent),
    ];
    for (metric, help, value) in traffic {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter\n{metric} {value}");
    }
    let names: Vec<String> = t.job_timings.iter().map(|f| escape(&f.function)).collect();
    let per_function: [(&str, &str, Timing); 2] = [
        (
            "sprocket_job_queue_wait_seconds",
            "Time from submission to a job's first start, by function, for the jobs that ended.",
            |f| &f.queue_wait,
        ),
        (
            "sprocket_job_run_time_seconds",
            "Time a job's last attempt ran, by function, for the jobs that ended.",
            |f| &f.run_time,
        ),
    ];
    for (metric, help, histogram) in per_function {
        histogram_head(out, metric, help);
        for (f, name) in t.job_timings.iter().zip(&names) {
            histogram_series(out, metric, &format!("function=\"{name}\""), histogram(f));
        }
    }
    let store = [
        ("sprocket_store_commit_seconds", "Time each store commit took.", &t.store_commit_seconds),
        (
            "sprocket_store_commit_batch_size",
            "Operations (inserts, deletes, records) per store commit.",
            &t.store_batch_size,
        ),
    ];
    for (metric, help, histogram) in store {
        if let Some(h) = histogram {
            histogram_head(out, metric, help);
            histogram_series(out, metric, "", h);
        }
    }
    let metric = "sprocket_submit_to_created_seconds";
    histogram_head(
        out,
        metric,
        "Time from reading a SUBMIT_JOB* packet to writing its JOB_CREATED, the store's commit included.",
    );
    histogram_series(out, metric, "", &t.submit_to_created_seconds);
}

fn histogram_head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

/// One histogram's `_bucket` (cumulative), `_sum` and `_count` lines;
/// `labels` goes before `le`.
fn histogram_series(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut seen = 0u64;
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        seen += count;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {seen}");
    }
    seen += h.counts.get(h.bounds.len()).copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {seen}");
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}\n{name}_count{braces} {seen}", h.sum);
}

/// One number of a function's view.
type Count = fn(&FunctionView) -> usize;
/// One of a function's counters.
type Counter = fn(&FunctionCounters) -> u64;
/// One of a function's duration histograms.
type Timing = fn(&FunctionTimings) -> &Histogram;

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
            retrying: 0,
            workers,
            max_queue: [0; 3],
            counters: FunctionCounters { submitted: 7, completed: 4, failed: 1, exceptions: 2, ..Default::default() },
            paused: false,
            policy: None,
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
        let page = render(
            &info(),
            &[function(b"resize", 4, 1, 2), function(b"a\"b\\c\nd\xff", 1, 0, 0)],
            &Telemetry::default(),
            3.5,
        );
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
            "sprocket_jobs_retrying{function=\"resize\"} 0",
            "# TYPE sprocket_jobs_completed_total counter",
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line:?} in\n{page}");
        }
        assert_eq!(page.matches("# TYPE gearman_jobs gauge").count(), 1);
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let h = |counts: Vec<u64>, sum| Histogram { bounds: vec![0.001, 0.5], counts, sum };
        let telemetry = Telemetry {
            job_timings: vec![FunctionTimings {
                function: Bytes::from_static(b"resize"),
                queue_wait: h(vec![2, 1, 1], 2.25),
                run_time: h(vec![0, 0, 0], 0.0),
            }],
            store_commit_seconds: Some(h(vec![5, 0, 0], 0.004)),
            store_batch_size: None,
            submit_to_created_seconds: h(vec![1, 0, 1], 0.6),
            bytes_received: 10,
            bytes_sent: 20,
        };
        let page = render(&info(), &[], &telemetry, 1.0);
        for line in [
            "# TYPE sprocket_job_queue_wait_seconds histogram",
            "sprocket_job_queue_wait_seconds_bucket{function=\"resize\",le=\"0.001\"} 2",
            "sprocket_job_queue_wait_seconds_bucket{function=\"resize\",le=\"0.5\"} 3",
            "sprocket_job_queue_wait_seconds_bucket{function=\"resize\",le=\"+Inf\"} 4",
            "sprocket_job_queue_wait_seconds_sum{function=\"resize\"} 2.25",
            "sprocket_job_queue_wait_seconds_count{function=\"resize\"} 4",
            "sprocket_store_commit_seconds_bucket{le=\"+Inf\"} 5",
            "sprocket_store_commit_seconds_count 5",
            "# TYPE sprocket_submit_to_created_seconds histogram",
            "sprocket_submit_to_created_seconds_bucket{le=\"0.5\"} 1",
            "sprocket_submit_to_created_seconds_count 2",
            "sprocket_received_bytes_total 10",
            "sprocket_sent_bytes_total 20",
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line:?} in\n{page}");
        }
        assert!(!page.contains("sprocket_store_commit_batch_size"), "no store batch sizes without them");
    }

    #[test]
    fn ten_thousand_functions_render_quickly() {
        let functions: Vec<FunctionView> =
            (0..10_000).map(|i| function(format!("fn-{i}").as_bytes(), 3, 1, 1)).collect();
        let started = std::time::Instant::now();
        let page = render(&info(), &functions, &Telemetry::default(), 1.0);
        assert_eq!(page.matches("gearman_workers{").count(), 10_000);
        // Generous for a debug build on a busy machine; release is ~5 ms.
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
