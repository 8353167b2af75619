//! The library mixed with third-party Gearman code over real sockets:
//! a Rust client with a PHP (php-gearman) worker, and Debian's gearman(1)
//! client with a Rust worker. Runs on gearmand and sprocketd.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::servers;
use sprocket_client::{Client, Error, Job, JobError, JobEvent, JobRequest, Worker};
use sprocket_testkit::process::{run, Background};
use sprocket_testkit::{skip, which};

fn php_worker_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reverse_worker.php")
}

fn have_php_gearman() -> bool {
    if which("php").is_none() {
        skip("php not installed");
        return false;
    }
    let out = Command::new("php").args(["-r", "echo class_exists('GearmanWorker') ? 'yes' : 'no';"]).output();
    if !matches!(out, Ok(o) if o.stdout == b"yes") {
        skip("php-gearman extension not installed");
        return false;
    }
    true
}

async fn wait_for_worker(srv: &sprocket_testkit::ServerProcess, function: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = srv.admin("status");
        if status.lines().any(|l| l.starts_with(&format!("{function}\t")) && !l.ends_with("\t0")) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{}: no {function} worker: {status}", srv.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rust_client_with_php_worker() {
    if !have_php_gearman() {
        return;
    }
    for srv in servers() {
        let mut cmd = Command::new("php");
        cmd.arg(php_worker_script()).arg(srv.port.to_string()).arg("4");
        let mut php = Background::spawn("php worker", &mut cmd);
        php.wait_for_line("ready", Duration::from_secs(10));
        wait_for_worker(&srv, "reverse").await;

        let client = Client::new(srv.addr()).unwrap();
        let mut events = Vec::new();
        let result =
            client.submit_with(JobRequest::new("reverse", "Rasmus"), |ev| events.push(ev.clone())).await.unwrap();
        assert_eq!(&result[..], b"sumsaR", "{}", srv.name);
        let pct: Vec<u64> = events.iter().filter_map(JobEvent::percent).collect();
        assert_eq!(pct, vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100], "{}", srv.name);
        assert!(events.contains(&JobEvent::Data("data:Rasmus".into())), "{events:?}");
        assert!(events.contains(&JobEvent::Warning("warning:Rasmus".into())), "{events:?}");

        // A background job, then its status until it is gone.
        let handle = client.submit_background("reverse", "ABC123").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while client.status(&handle).await.unwrap().known {
            assert!(std::time::Instant::now() < deadline, "background job never finished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let r = client.submit("php_fail", "x").await;
        assert!(matches!(r, Err(Error::JobFailed { .. })), "{}: {r:?}", srv.name);
        let r = client.submit("php_exception", "x").await;
        match r {
            Err(Error::JobException { data, .. }) => assert_eq!(&data[..], b"php says no"),
            other => panic!("{}: expected the PHP exception, got {other:?}", srv.name),
        }
        php.stop();
    }
}

#[tokio::test]
async fn gearman_cli_client_with_rust_worker() {
    if which("gearman").is_none() && !std::path::Path::new("/usr/bin/gearman").is_file() {
        skip("gearman-tools not installed");
        return;
    }
    for srv in servers() {
        let w = Worker::new(srv.addr())
            .unwrap()
            .register("reverse", |job: Job| async move {
                for i in 1..=10 {
                    job.status(i, 10)?;
                }
                Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
            })
            .register("wc", |job: Job| async move {
                let lines = job.payload().iter().filter(|b| **b == b'\n').count();
                Ok::<_, JobError>(format!("{lines}\n"))
            })
            .concurrency(2)
            .spawn()
            .unwrap();
        wait_for_worker(&srv, "reverse").await;
        let port = srv.port.to_string();
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new("/usr/bin/gearman");
            cmd.args(["-p", &port, "-f", "reverse", "Rasmus"]);
            run(&mut cmd, b"", Duration::from_secs(20))
        })
        .await
        .unwrap();
        assert!(out.success(), "{}", out.describe());
        let text = out.stdout_text();
        assert!(text.starts_with("sumsaR"), "{text}");
        assert!(text.contains("10% Complete\n") && text.ends_with("100% Complete\n"), "{text}");

        let port = srv.port.to_string();
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new("/usr/bin/gearman");
            cmd.args(["-p", &port, "-f", "wc"]);
            run(&mut cmd, b"a\nb\nc\n", Duration::from_secs(20))
        })
        .await
        .unwrap();
        assert_eq!(out.stdout_text(), "3\n", "{}", out.describe());
        w.shutdown().await.unwrap();
    }
}
