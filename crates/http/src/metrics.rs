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
    // About 820 bytes per function for the fifteen per-function series,
    // and 2,800 for a function's two duration histograms (forty lines):
    // sized once, a page of tens of megabytes is not copied as it grows.
    let mut out = String::with_capacity(4096 + functions.len() * 820 + telemetry.job_timings.len() * 2800);
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
            function_line(&mut out, metric, name, "", value(f) as u64);
        }
    }
    gauge(&mut out, "sprocket_jobs_queued", "Jobs of the function waiting to run, by priority.");
    for (f, name) in functions.iter().zip(&names) {
        for (priority, n) in [",priority=\"high\"", ",priority=\"normal\"", ",priority=\"low\""].iter().zip(f.queued) {
            function_line(&mut out, "sprocket_jobs_queued", name, priority, n as u64);
        }
    }
    gauge(&mut out, "sprocket_jobs_retrying", "Jobs of the function waiting out a retry's backoff (also queued).");
    for (f, name) in functions.iter().zip(&names) {
        function_line(&mut out, "sprocket_jobs_retrying", name, "", f.retrying as u64);
    }
    gauge(
        &mut out,
        "sprocket_function_paused",
        "1 while an operator has paused the function (its jobs are not handed out).",
    );
    for (f, name) in functions.iter().zip(&names) {
        function_line(&mut out, "sprocket_function_paused", name, "", u64::from(f.paused));
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
            function_line(&mut out, metric, name, "", value(&f.counters));
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
    let mut writer = HistogramWriter::default();
    let labels: Vec<String> = names.iter().map(|name| format!("function=\"{name}\"")).collect();
    for (metric, help, histogram) in per_function {
        histogram_head(out, metric, help);
        for (f, labels) in t.job_timings.iter().zip(&labels) {
            writer.write(out, metric, labels, histogram(f));
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
            writer.write(out, metric, "", h);
        }
    }
    let metric = "sprocket_submit_to_created_seconds";
    histogram_head(
        out,
        metric,
        "Time from reading a SUBMIT_JOB* packet to writing its JOB_CREATED, the store's commit included.",
    );
    writer.write(out, metric, "", &t.submit_to_created_seconds);
}

fn histogram_head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

/// Writes histograms' `_bucket` (cumulative), `_sum` and `_count` lines,
/// formatting the bucket bounds (`le="0.005"`) once for all the histograms
/// that share them: with thousands of functions, each with two histograms
/// of eighteen buckets, formatting every bound of every histogram again
/// took most of the page's time (see docs/benchmarks.md, the web port).
#[derive(Default)]
struct HistogramWriter {
    /// The bounds `le` was made from.
    bounds: Vec<f64>,
    /// `le="…"} ` for each bound, then `le="+Inf"} `.
    le: Vec<String>,
}

impl HistogramWriter {
    /// One histogram's lines; `labels` goes before `le`.
    fn write(&mut self, out: &mut String, name: &str, labels: &str, h: &Histogram) {
        if self.le.is_empty() || self.bounds != h.bounds {
            self.bounds.clone_from(&h.bounds);
            self.le = h.bounds.iter().map(|bound| format!("le=\"{bound}\"}} ")).collect();
            self.le.push("le=\"+Inf\"} ".to_string());
        }
        let sep = if labels.is_empty() { "" } else { "," };
        let finite = self.le.len() - 1;
        let mut seen = 0u64;
        let mut bucket = |le: &str, seen: u64| {
            out.push_str(name);
            out.push_str("_bucket{");
            out.push_str(labels);
            out.push_str(sep);
            out.push_str(le);
            push_u64(out, seen);
            out.push('\n');
        };
        for (le, count) in self.le[..finite].iter().zip(&h.counts) {
            seen += count;
            bucket(le, seen);
        }
        seen += h.counts.get(finite).copied().unwrap_or(0);
        bucket(&self.le[finite], seen);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}\n{name}_count{braces} {seen}", h.sum);
    }
}

/// One `metric{function="name"<more>} value` line. Written piece by piece
/// rather than with `writeln!`: with 10,000 functions the page has
/// 140,000 of these lines, and the formatting machinery was a large part
/// of its time.
fn function_line(out: &mut String, metric: &str, name: &str, more: &str, value: u64) {
    out.push_str(metric);
    out.push_str("{function=\"");
    out.push_str(name);
    out.push('"');
    out.push_str(more);
    out.push_str("} ");
    push_u64(out, value);
    out.push('\n');
}

/// Appends `n` in decimal, without the formatting machinery (the page has
/// hundreds of thousands of them).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
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
    fn histograms_with_different_bounds_each_get_their_own() {
        let durations = |n| Histogram { bounds: vec![0.001, 0.005], counts: vec![n, 0, 1], sum: 1.5 };
        let telemetry = Telemetry {
            job_timings: (0..3)
                .map(|i| FunctionTimings {
                    function: Bytes::from(format!("f{i}")),
                    queue_wait: durations(i),
                    run_time: durations(10 + i),
                })
                .collect(),
            store_commit_seconds: Some(Histogram { bounds: vec![0.0001], counts: vec![4, 1], sum: 0.01 }),
            store_batch_size: Some(Histogram { bounds: vec![1.0, 2.0, 4.0], counts: vec![1, 2, 3, 4], sum: 30.0 }),
            submit_to_created_seconds: Histogram { bounds: vec![0.5], counts: vec![0, 2], sum: 2.0 },
            bytes_received: 0,
            bytes_sent: 0,
        };
        let page = render(&info(), &[], &telemetry, 1.0);
        for line in [
            "sprocket_job_queue_wait_seconds_bucket{function=\"f2\",le=\"0.001\"} 2",
            "sprocket_job_queue_wait_seconds_bucket{function=\"f2\",le=\"0.005\"} 2",
            "sprocket_job_queue_wait_seconds_bucket{function=\"f2\",le=\"+Inf\"} 3",
            "sprocket_job_run_time_seconds_bucket{function=\"f0\",le=\"0.001\"} 10",
            "sprocket_job_run_time_seconds_count{function=\"f0\"} 11",
            "sprocket_job_run_time_seconds_sum{function=\"f0\"} 1.5",
            "sprocket_store_commit_seconds_bucket{le=\"0.0001\"} 4",
            "sprocket_store_commit_seconds_bucket{le=\"+Inf\"} 5",
            "sprocket_store_commit_batch_size_bucket{le=\"1\"} 1",
            "sprocket_store_commit_batch_size_bucket{le=\"4\"} 6",
            "sprocket_store_commit_batch_size_bucket{le=\"+Inf\"} 10",
            "sprocket_store_commit_batch_size_count 10",
            "sprocket_submit_to_created_seconds_bucket{le=\"0.5\"} 0",
            "sprocket_submit_to_created_seconds_bucket{le=\"+Inf\"} 2",
        ] {
            assert!(page.lines().any(|l| l == line), "missing {line:?} in\n{page}");
        }
        assert_eq!(page.lines().filter(|l| l.starts_with("sprocket_store_commit_seconds_bucket")).count(), 2);
        assert_eq!(page.lines().filter(|l| l.starts_with("sprocket_store_commit_batch_size_bucket")).count(), 4);
        assert_eq!(page.lines().filter(|l| l.starts_with("sprocket_job_run_time_seconds_bucket")).count(), 9);
    }

    #[test]
    fn decimal_numbers() {
        for n in [0, 7, 10, 1_234_567, u64::MAX] {
            let mut out = String::from("x");
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
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
