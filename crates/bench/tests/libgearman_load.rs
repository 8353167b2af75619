//! bench/libgearman-load.c, the load generator on Debian's libgearman that
//! bench/compare.sh runs beside `sprocket bench`: it builds, its JSON report
//! reads as a `sprocket bench` report, and the jobs it counts are exactly
//! the jobs the server queued (so its throughput figures can be trusted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sprocket_bench::Report;
use sprocket_testkit::{process, skip, under_ci, ServerProcess};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles the generator into a scratch directory; None (with a SKIPPED
/// line, or a failure under CI) when libgearman-dev or cc is missing.
fn build_generator(dir: &Path) -> Option<PathBuf> {
    if !Path::new("/usr/include/libgearman/gearman.h").exists() {
        assert!(!under_ci(), "libgearman-dev is not installed (.ci/run installs it)");
        skip("libgearman-dev is not installed (apt-get install libgearman-dev)");
        return None;
    }
    let out = dir.join("libgearman-load");
    let source = repo_root().join("bench/libgearman-load.c");
    let built = process::run(
        Command::new("cc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&out)
            .arg(&source)
            .args(["-lgearman", "-lpthread"]),
        b"",
        Duration::from_secs(120),
    );
    assert!(built.success(), "cc failed: {}", built.describe());
    Some(out)
}

fn sprocketd_bin() -> Option<PathBuf> {
    let bin = sprocket_testkit::find_workspace_bin("sprocketd");
    if bin.is_none() {
        skip("sprocketd not built in this target directory (cargo build -p sprocket-server)");
    }
    bin
}

/// The queued count of `function` in the admin `status` reply.
fn queued(server: &ServerProcess, function: &str) -> u64 {
    let status = server.admin("status");
    status
        .lines()
        .find_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.first() == Some(&function)).then(|| cols.get(1).and_then(|n| n.parse().ok())).flatten()
        })
        .unwrap_or_else(|| panic!("{function} not in status:\n{status}"))
}

#[test]
fn libgearman_generator_counts_exactly_the_jobs_the_server_queued() {
    let Some(bin) = sprocketd_bin() else { return };
    let dir = tempfile::tempdir().expect("scratch dir");
    let Some(generator) = build_generator(dir.path()) else { return };
    // The durable default: each counted job had its JOB_CREATED after its commit.
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let server = ServerProcess::sprocketd(&bin, &["--data-dir", &data_arg]);
    let port = server.addr().rsplit(':').next().unwrap_or_default().to_string();
    let run =
        process::run(
            Command::new(&generator)
                .args(["-h", "127.0.0.1", "-p", &port, "-c", "4", "-d", "0.5", "-s", "100"])
                .args(["-f", "lgload-count", "-j"]),
            b"",
            Duration::from_secs(60),
        );
    assert!(run.success(), "generator failed: {}", run.describe());
    let report: Report = serde_json::from_str(run.stdout_text().trim()).expect("a sprocket bench JSON report");
    assert_eq!(report.mode, "submit-bg");
    assert_eq!(report.connections, 4);
    assert_eq!(report.errors, 0);
    assert!(report.jobs > 0, "{report:?}");
    assert!((report.throughput - report.jobs as f64 / report.elapsed_s).abs() < 1.0, "{report:?}");
    assert_eq!(queued(&server, "lgload-count"), report.jobs, "every JOB_CREATED counted, nothing else");
}

#[test]
fn libgearman_generator_reports_a_server_it_cannot_reach() {
    let dir = tempfile::tempdir().expect("scratch dir");
    let Some(generator) = build_generator(dir.path()) else { return };
    let port = sprocket_testkit::free_port().to_string();
    let run = process::run(
        Command::new(&generator).args(["-p", &port, "-c", "2", "-d", "0.2"]),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(run.status.and_then(|s| s.code()), Some(1), "{}", run.describe());
    assert!(run.stderr_text().contains("submit failed"), "{}", run.describe());
    assert!(run.stdout_text().contains("errors 2"), "{}", run.describe());
}
