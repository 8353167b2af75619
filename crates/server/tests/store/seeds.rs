//! The seeds' persistent-queue walkthroughs, command for command, with
//! sprocketd in gearmand's place: seed 000 (PostgreSQL through the PG*
//! variables, `gearman -w -f wc -- wc -l`), seeds 002/003 (MySQL and libpq
//! flags, the operators' GROUP BY and DELETE queries), seeds 001/004
//! (the legacy libdrizzle flags).

use crate::{common, store_support};

use std::process::Command;
use std::time::Duration;

use sprocket_testkit::databases::{mysql, shared_available, wait_until, Shared, SharedTable};
use sprocket_testkit::process::{run, Background, RunOutput};
use sprocket_testkit::status::{wait_for_status, wait_for_workers};
use sprocket_testkit::{free_port, require_tool};
use store_support::run_all_queued;

/// The PG* variables of seed 000, pointed at the local server's `test` database.
const PG_ENV: [(&str, &str); 4] =
    [("PGHOST", "127.0.0.1"), ("PGPORT", "5432"), ("PGUSER", "postgres"), ("PGDATABASE", "test")];

/// sprocketd started the way the seeds' init script would (`sprocketd $PARAMS`),
/// with `env` exported; killed with its process group when dropped.
struct Daemon {
    port: u16,
    proc: Background,
}

impl Daemon {
    fn start(params: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let mut cmd = Command::new(common::sprocketd());
        cmd.args(params).arg(format!("--port={port}")).envs(env.iter().copied());
        let mut proc = Background::spawn("sprocketd", &mut cmd);
        let up = wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up && proc.running(), "sprocketd {params:?} did not listen:\n{}", proc.output());
        Daemon { port, proc }
    }

    /// `gearman -p PORT args…` with `stdin`, 20 s at most.
    fn gearman(&self, args: &[&str], stdin: &[u8]) -> RunOutput {
        let out = run(
            Command::new("gearman").args(["-h", "127.0.0.1", "-p", &self.port.to_string()]).args(args),
            stdin,
            Duration::from_secs(20),
        );
        assert!(out.success(), "gearman {args:?}: {}", out.describe());
        out
    }

    fn stop(mut self) {
        self.proc.stop();
    }
}

/// psql the way seed 000 runs it: connection settings from the PG* variables only.
fn psql_pg_env(sql: &str) -> String {
    let out = run(
        Command::new("psql").envs(PG_ENV).args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.success(), "psql {sql:?}: {}", out.describe());
    out.stdout_text().trim().to_string()
}

#[test]
fn seed_000_postgres_queue_through_pg_environment() {
    if !require_tool("gearman") || !require_tool("psql") {
        return;
    }
    let Some(table) = SharedTable::new(Shared::Postgres, "queue") else { return };
    let t = table.name.as_str();
    let libpq_table = format!("--libpq-table={t}");
    let server =
        Daemon::start(&["--listen=127.0.0.1", "--queue-type", "Postgres", &libpq_table, "--verbose", "DEBUG"], &PG_ENV);

    // $ gearman -w -f wc -- wc -l
    let mut worker = Background::spawn(
        "gearman -w",
        Command::new("gearman").args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-w",
            "-f",
            "wc",
            "--",
            "wc",
            "-l",
        ]),
    );
    wait_for_workers(server.port, "wc", 1);
    // $ gearman -f wc < /etc/group
    let group = std::fs::read("/etc/group").expect("read /etc/group");
    let lines = group.iter().filter(|&&c| c == b'\n').count();
    let out = server.gearman(&["-f", "wc"], &group);
    assert_eq!(out.stdout_text().trim(), lines.to_string(), "gearman -f wc < /etc/group");

    // gearman=# \dt  — the queue table exists.
    let found = psql_pg_env(&format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{t}'"));
    assert_eq!(found, "1", "sprocketd created table {t}");
    // The foreground job was not stored.
    assert_eq!(psql_pg_env(&format!("SELECT COUNT(*) FROM {t}")), "0");

    // Stop the worker, then: $ gearman -b -f wc < /etc/passwd
    worker.stop();
    wait_for_status(server.port, "wc", Duration::from_secs(10), "worker gone", |s| s.workers == 0);
    let passwd = std::fs::read("/etc/passwd").expect("read /etc/passwd");
    server.gearman(&["-b", "-f", "wc"], &passwd);
    // gearman=# SELECT COUNT(*) FROM queue;
    assert_eq!(psql_pg_env(&format!("SELECT COUNT(*) FROM {t}")), "1", "the background job is stored");
    server.stop();
}

/// Jobs of two functions, submitted with the gearman CLI as the seeds'
/// application would: 3 of a broken function and 2 good ones.
fn fill_with_cli(server: &Daemon) {
    for i in 0..3 {
        server.gearman(&["-b", "-f", "my_borked_function_name", &format!("bad {i}")], b"");
    }
    for i in 0..2 {
        server.gearman(&["-b", "-f", "my_module_hello_world", &format!("Danny {i}")], b"");
    }
}

fn group_by(rows: &str) -> Vec<String> {
    let mut v: Vec<String> = rows.lines().map(|l| l.replace('|', "\t")).filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

/// Runs the good jobs after the restart and checks nothing of the deleted function came back.
fn only_good_jobs_after_restart(server: &Daemon) {
    let status = sprocket_testkit::admin(server.port, "status");
    assert!(!status.contains("my_borked_function_name"), "deleted rows were replayed:\n{status}");
    let ran = run_all_queued(server.port, &["my_module_hello_world", "my_borked_function_name"]);
    let mut data: Vec<String> = ran.iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect();
    data.sort();
    assert_eq!(data, ["Danny 0", "Danny 1"]);
}

#[test]
fn seed_002_003_mysql_queue_and_operator_queries() {
    if !require_tool("gearman") {
        return;
    }
    let Some(table) = SharedTable::new(Shared::Mysql, "gearman_queue") else { return };
    let t = table.name.as_str();
    let params = [
        "--queue-type=MySQL".to_string(),
        "--mysql-host=127.0.0.1".into(),
        "--mysql-port=3306".into(),
        "--mysql-user=root".into(),
        "--mysql-db=test".into(),
        format!("--mysql-table={t}"),
        "--listen=127.0.0.1".into(),
    ];
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let server = Daemon::start(&params, &[]);
    fill_with_cli(&server);
    let sql = format!("SELECT function_name, COUNT(function_name) FROM {t} GROUP BY function_name;");
    let rows = mysql(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(group_by(&rows), ["my_borked_function_name\t3", "my_module_hello_world\t2"]);

    // The seed's DELETE, with MySQL's double quotes, while the server is stopped.
    server.stop();
    let sql = format!("DELETE FROM {t} WHERE function_name = \"my_borked_function_name\";");
    mysql(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let server = Daemon::start(&params, &[]);
    only_good_jobs_after_restart(&server);
    assert!(wait_until(Duration::from_secs(10), || table.count() == 0), "rows of completed jobs deleted");

    // "Nuke 'em Rico!"
    fill_with_cli(&server);
    mysql(&format!("TRUNCATE TABLE {t};")).expect("TRUNCATE TABLE");
    assert_eq!(table.count(), 0);
    server.stop();
}

#[test]
fn seed_002_003_libpq_queue_and_operator_queries() {
    if !require_tool("gearman") || !require_tool("psql") {
        return;
    }
    let Some(table) = SharedTable::new(Shared::Postgres, "gearmanqueue1") else { return };
    let t = table.name.as_str();
    let libpq_table = format!("--libpq-table={t}");
    let params = ["--verbose", "-q", "libpq", &libpq_table, "--listen=127.0.0.1"];
    let server = Daemon::start(&params, &PG_ENV);
    fill_with_cli(&server);
    let rows = psql_pg_env(&format!("SELECT function_name, COUNT(function_name) FROM {t} GROUP BY function_name;"));
    assert_eq!(group_by(&rows), ["my_borked_function_name\t3", "my_module_hello_world\t2"]);

    server.stop();
    // PostgreSQL wants single quotes (double quotes name a column there).
    psql_pg_env(&format!("DELETE FROM {t} WHERE function_name = 'my_borked_function_name';"));
    let server = Daemon::start(&params, &PG_ENV);
    only_good_jobs_after_restart(&server);
    assert!(wait_until(Duration::from_secs(10), || table.count() == 0), "rows of completed jobs deleted");
    fill_with_cli(&server);
    psql_pg_env(&format!("TRUNCATE TABLE {t};"));
    assert_eq!(table.count(), 0);
    server.stop();
}

/// Seeds 002/003's line `PARAMS=”--verbose -q libpq --libpq-table=gearmanqueue1 --verbose”`,
/// expanded unquoted by the init script: the word-processor quotes stick to
/// the first and last word, and `--verbose` comes twice. (gearmand 1.1.20
/// itself rejects this line: its `--verbose` needs a value.)
#[test]
fn seed_002_003_params_line_verbatim() {
    if !require_tool("gearman") || !require_tool("psql") {
        return;
    }
    let Some(table) = SharedTable::new(Shared::Postgres, "gearmanqueue1") else { return };
    let t = table.name.as_str();
    let libpq_table = format!("--libpq-table={t}");
    let params = ["\u{201d}--verbose", "-q", "libpq", &libpq_table, "--verbose\u{201d}"];
    let server = Daemon::start(&params, &PG_ENV);
    server.gearman(&["-b", "-f", "my_module_hello_world", "Jordan"], b"");
    assert_eq!(psql_pg_env(&format!("SELECT COUNT(*) FROM {t}")), "1");
    server.stop();
}

#[test]
fn seed_001_004_libdrizzle_flags() {
    if !require_tool("gearman") || !shared_available(Shared::Mysql) {
        return;
    }
    let Some(table) = SharedTable::new(Shared::Mysql, "gearman_queue") else { return };
    let t = table.name.as_str();
    let drizzle_table = format!("--libdrizzle-table={t}");
    let params = [
        "-q",
        "libdrizzle",
        "--libdrizzle-host=127.0.0.1",
        "--libdrizzle-user=root",
        "--libdrizzle-db=test",
        &drizzle_table,
        "--libdrizzle-mysql",
        "--listen=127.0.0.1",
    ];
    let server = Daemon::start(&params, &[]);
    fill_with_cli(&server);
    assert_eq!(table.count(), 5, "jobs stored in the MySQL table {t}");
    server.stop();
    let server = Daemon::start(&params, &[]);
    let status = sprocket_testkit::admin(server.port, "status");
    assert!(
        status.contains("my_borked_function_name\t3\t0\t0") && status.contains("my_module_hello_world\t2\t0\t0"),
        "replayed from {t}:\n{status}"
    );
    assert_eq!(run_all_queued(server.port, &["my_module_hello_world", "my_borked_function_name"]).len(), 5);
    assert!(wait_until(Duration::from_secs(10), || table.count() == 0), "rows of completed jobs deleted");
    server.stop();
}
