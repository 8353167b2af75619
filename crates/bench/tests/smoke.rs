//! CI smoke test: every bench mode runs for a moment against a real server
//! and reports non-zero throughput. Runs against `sprocketd` (the CI's
//! target) and against Debian's gearmand (the reference the tool must
//! also drive).

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use sprocket_bench::{measure, BenchArgs, Report};
use sprocket_testkit::{skip, ServerProcess};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn args(server: &str, mode: &str, extra: &[&str]) -> BenchArgs {
    let mut argv = vec!["bench", mode, "--server", server, "-q"];
    // Small defaults, unless the caller gives its own value.
    for (flag, value) in [("-c", "2"), ("-w", "2"), ("-n", "2000"), ("-d", "2")] {
        if !extra.contains(&flag) {
            argv.extend([flag, value]);
        }
    }
    argv.extend_from_slice(extra);
    Cli::parse_from(argv).args
}

fn check(report: &Report, mode: &str) {
    assert_eq!(report.mode, mode);
    assert!(report.jobs > 0, "{mode}: nothing done: {report:?}");
    assert!(report.throughput > 0.0 && report.throughput.is_finite(), "{mode}: {report:?}");
    assert_eq!(report.errors, 0, "{mode}: server sent ERROR packets: {report:?}");
    if matches!(mode, "roundtrip" | "mixed" | "submit-bg") {
        let l = report.latency.as_ref().unwrap_or_else(|| panic!("{mode}: no latency: {report:?}"));
        assert!(l.p50_us > 0.0 && l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us, "{l:?}");
    }
    let table = report.table();
    assert!(table.contains("throughput") && table.contains(mode), "{table}");
}

/// Runs every mode in-process, then the binary once for its JSON output.
fn run_all_modes(server: &ServerProcess) {
    let addr = server.addr();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    for mode in ["submit-bg", "drain", "roundtrip", "mixed"] {
        let report = rt.block_on(measure(args(&addr, mode, &[]))).unwrap_or_else(|e| panic!("{mode} failed: {e:#}"));
        check(&report, mode);
    }
    let report = rt.block_on(measure(args(&addr, "roundtrip", &["--unique", "--priority", "high"]))).expect("unique");
    check(&report, "roundtrip");
    let report = rt.block_on(measure(args(&addr, "idle", &["-c", "50", "-d", "0.1"]))).expect("idle");
    assert_eq!(report.jobs, 50);

    // The binary builds its own runtime: one thread by default, a
    // multi-threaded one with --threads.
    for threads in ["1", "2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sprocket-bench"))
            .args(["submit-bg", "--server", &addr, "-n", "500", "-c", "2", "--threads", threads, "--json"])
            .output()
            .expect("run sprocket-bench");
        assert!(out.status.success(), "--threads {threads}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Report = serde_json::from_slice(&out.stdout).expect("one JSON report on stdout");
        assert_eq!(report.jobs, 500);
        check(&report, "submit-bg");
    }
}

#[test]
fn every_mode_runs_against_gearmand() {
    let Some(server) = ServerProcess::gearmand(&[]) else { return };
    run_all_modes(&server);
}

/// `sprocketd` from this workspace's target directory (or `SPROCKETD_BIN`).
fn sprocketd_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPROCKETD_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("sprocketd");
    bin.is_file().then_some(bin)
}

#[test]
fn every_mode_runs_against_sprocketd() {
    let Some(bin) = sprocketd_bin() else {
        skip("sprocketd not built in this target directory (cargo build -p sprocket-server)");
        return;
    };
    let server = ServerProcess::sprocketd(&bin, &[]);
    run_all_modes(&server);
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let port = sprocket_testkit::free_port();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let err = rt.block_on(measure(args(&format!("127.0.0.1:{port}"), "submit-bg", &[]))).expect_err("nothing listens");
    assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
}

#[test]
fn bad_options_are_rejected() {
    assert!(Cli::try_parse_from(["bench", "nonsense"]).is_err());
    assert!(Cli::try_parse_from(["bench", "drain", "-d", "-3"]).is_err());
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let e = rt.block_on(measure(args("127.0.0.1:1", "drain", &["-w", "0"]))).expect_err("no workers");
    assert!(e.to_string().contains("workers"), "{e}");
    let e = sprocket_bench::run_blocking(args("127.0.0.1:1", "drain", &["--threads", "0"])).expect_err("no threads");
    assert!(e.to_string().contains("--threads"), "{e}");
}

/// A CA and a server certificate for 127.0.0.1, made with openssl (the
/// commands of docs/security.md); `None` (skipped) without openssl.
fn test_pki(dir: &std::path::Path) -> Option<()> {
    if !sprocket_testkit::require_tool("openssl") {
        return None;
    }
    let sh = |script: &str| {
        let status = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().expect("sh");
        assert!(status.success(), "{script}");
    };
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout ca.key -out ca.pem \
        -subj '/CN=Bench CA' 2>/dev/null");
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null");
    sh("openssl req -new -key server.key -out server.csr -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null");
    sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -copy_extensions copy \
        -out server.pem 2>/dev/null");
    Some(())
}

#[test]
fn the_load_runs_over_tls_to_sprocketds_tls_port_and_verifies_its_certificate() {
    let Some(bin) = sprocketd_bin() else {
        skip("sprocketd not built in this target directory (cargo build -p sprocket-server)");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    if test_pki(dir.path()).is_none() {
        return;
    }
    let tls_port = sprocket_testkit::free_port();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let server = ServerProcess::sprocketd(
        &bin,
        &["--ssl-port", &tls_port.to_string(), "--ssl-certificate", &cert, "--ssl-key", &key],
    );
    let tls_addr = format!("127.0.0.1:{tls_port}");
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    for mode in ["submit-bg", "roundtrip"] {
        let report = rt
            .block_on(measure(args(&tls_addr, mode, &["--ssl-ca", &ca])))
            .unwrap_or_else(|e| panic!("{mode} over TLS failed: {e:#}"));
        check(&report, mode);
    }
    let report =
        rt.block_on(measure(args(&tls_addr, "idle", &["-c", "20", "-d", "0.1", "--ssl-ca", &ca]))).expect("idle");
    assert_eq!(report.jobs, 20, "20 TLS connections made");
    // Without the CA the system's roots do not know the certificate.
    let err = rt.block_on(measure(args(&tls_addr, "submit-bg", &["--ssl"]))).expect_err("an unknown CA");
    assert!(format!("{err:#}").to_lowercase().contains("certificate"), "{err:#}");
    // The plain port of the same server still works.
    check(&rt.block_on(measure(args(&server.addr(), "submit-bg", &[]))).expect("plain"), "submit-bg");
}
