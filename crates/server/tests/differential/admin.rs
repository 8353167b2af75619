//! Differential test of the admin text protocol: the same connections and
//! commands against the server under test and gearmand 1.1.20, replies
//! compared byte for byte (line endings included) after the normalisations
//! documented in `sprocket_testkit::differential`.

use std::path::Path;
use std::time::Duration;

use sprocket_testkit::differential::{assert_has, compare, Recorder};
use sprocket_testkit::wire::{kind, Conn};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sprocketd"))
}

/// A worker with a client id and three registrations (one duplicated), a
/// client with queued background jobs, one job running; then every listing.
fn listings_scenario(port: u16, rec: &mut Recorder) {
    let mut worker = Conn::connect(port);
    worker.send_req(kind::SET_CLIENT_ID, &[b"wrk-1"]);
    worker.send_req(kind::CAN_DO, &[b"adm_a"]);
    worker.send_req(kind::CAN_DO, &[b"adm_b"]);
    worker.send_req(kind::CAN_DO, &[b"adm_a"]);
    rec.sync("worker", &mut worker);

    let mut client = Conn::connect(port);
    client.send_req(kind::SUBMIT_JOB_BG, &[b"adm_a", b"u1", b"data1"]);
    rec.read("client", &mut client);
    client.send_req(kind::SUBMIT_JOB_LOW_BG, &[b"adm_a", b"u2", b"data2"]);
    let low = rec.read("client", &mut client).map(|p| p.body).unwrap_or_default();
    client.send_req(kind::SUBMIT_JOB_HIGH_BG, &[b"adm_b", b"", b"data3"]);
    rec.read("client", &mut client);
    client.send_req(kind::SUBMIT_JOB_BG, &[b"adm_c", b"-", b"data4"]);
    rec.read("client", &mut client);
    client.send_req(kind::SUBMIT_JOB, &[b"adm_c", b"fg1", b"data5"]);
    rec.read("client", &mut client);

    // Newest registration first: adm_a; its normal level holds u1.
    worker.send_req(kind::GRAB_JOB, &[]);
    rec.read("worker", &mut worker);

    let mut admin = Conn::connect(port);
    for line in [
        "status\r\n",
        "prioritystatus\r\n",
        "workers\r\n",
        "show jobs\r\n",
        "show unique jobs\r\n",
        "STATUS\r\n",
        "status extra tokens\n",
        "Workers\n",
    ] {
        rec.admin(&mut admin, line);
    }
    // A binary ECHO on the text connection (python-gearman's ping).
    admin.send_req(kind::ECHO_REQ, &[b"ping? pong!"]);
    rec.read("admin", &mut admin);
    rec.admin(&mut admin, "status\n");

    rec.note("cancel a queued job");
    let cancel = format!("cancel job {}\r\n", String::from_utf8_lossy(&low));
    rec.admin(&mut admin, &cancel);
    rec.admin(&mut admin, "cancel job H:nosuchhost:999\r\n");
    // What `show jobs` and `prioritystatus` list after the cancel differs on
    // purpose: gearmand keeps the cancelled job until a worker reaps it
    // (gearman-reference.md §8.2), Sprocket removes it at once (sprocket_fixes.rs).
}

/// Every one-line command and error reply.
fn commands_scenario(port: u16, rec: &mut Recorder) {
    let mut worker = Conn::connect(port);
    worker.send_req(kind::CAN_DO, &[b"cmd_busy"]);
    rec.sync("worker", &mut worker);

    let mut admin = Conn::connect(port);
    for line in [
        "getpid\r\n",
        "getpid\n",
        "version\r\n",
        "verbose\r\n",
        "foo\r\n",
        "foo bar\n",
        "\r\n",
        "\n",
        " status\r\n",
        "status\tx\r\n",
        "show\r\n",
        "show foo\r\n",
        "show unique\r\n",
        "show unique foo\r\n",
        "cancel\r\n",
        "cancel job\r\n",
        "cancel foo bar\r\n",
        "create\r\n",
        "create function\r\n",
        "create foo bar\r\n",
        "create function cmd_new\r\n",
        "create function cmd_new2 extra\r\n",
        "status\r\n",
        "drop\r\n",
        "drop function\r\n",
        "drop function CMD_NEW\r\n",
        "drop function cmd_new\r\n",
        "drop function cmd_busy\r\n",
        "drop function nosuch\r\n",
        "status\r\n",
        "maxqueue\r\n",
        "maxqueue cmd_busy\r\n",
        "maxqueue cmd_busy 5\r\n",
        "maxqueue cmd_busy 1 2\r\n",
        "maxqueue cmd_busy 1 2 3\r\n",
        "maxqueue cmd_busy -4\r\n",
        "maxqueue nosuch 3\r\n",
        "maxqueue cmd_busy x\r\n",
        "status\r\n",
    ] {
        rec.admin(&mut admin, line);
    }

    rec.note("pipelined lines in one write are answered in order");
    admin.send(b"version\r\nfoo\r\ncreate function cmd_pipe\r\nstatus\r\n").expect("write");
    let (bytes, closed) = admin.read_quiet(Duration::from_millis(300), Duration::from_secs(5));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // Four replies: the version line (differs by design), two one-liners
    // kept byte-exact, and a listing (sorted, as everywhere).
    let mut parts = text.splitn(4, '\n');
    let version = parts.next().unwrap_or_default();
    let err = parts.next().unwrap_or_default();
    let ok = parts.next().unwrap_or_default();
    let listing = parts.next().unwrap_or_default();
    rec.lines.push(format!(
        "pipelined -> version:{} | {} | {} | {} closed={closed}",
        version.starts_with("OK "),
        sprocket_testkit::wire::escape(err.as_bytes()),
        sprocket_testkit::wire::escape(ok.as_bytes()),
        rec.normalise_admin("status", listing.as_bytes())
    ));

    rec.note("a sixth token closes the connection");
    let mut six = Conn::connect(port);
    six.send(b"status a b c d e\r\n").expect("write");
    let (bytes, closed) = six.read_quiet(Duration::from_millis(300), Duration::from_secs(3));
    rec.lines.push(format!("six tokens -> {:?} closed={closed}", sprocket_testkit::wire::escape(&bytes)));
    let mut five = Conn::connect(port);
    five.send(b"status a b c d\r\n").expect("write");
    let (bytes, closed) = five.read_quiet(Duration::from_millis(300), Duration::from_secs(3));
    rec.lines.push(format!("five tokens -> {:?} closed={closed}", rec.normalise_admin("status", &bytes)));
}

/// `maxqueue` limits are enforced on submissions (running jobs count).
fn maxqueue_scenario(port: u16, rec: &mut Recorder) {
    let mut admin = Conn::connect(port);
    let mut client = Conn::connect(port);
    rec.admin(&mut admin, "maxqueue mq_fn 2\r\n");
    rec.note("maxqueue on a function that does not exist yet has no effect");
    for i in 0..3 {
        client.send_req(kind::SUBMIT_JOB_BG, &[b"mq_fn", format!("a{i}").as_bytes(), b"x"]);
        rec.read("client", &mut client);
    }
    rec.admin(&mut admin, "maxqueue mq_fn 4\r\n");
    for i in 0..3 {
        client.send_req(kind::SUBMIT_JOB_BG, &[b"mq_fn", format!("b{i}").as_bytes(), b"x"]);
        rec.read("client", &mut client);
    }
    rec.note("coalescing bypasses the limit");
    client.send_req(kind::SUBMIT_JOB_BG, &[b"mq_fn", b"a0", b"x"]);
    rec.read("client", &mut client);
    rec.note("per-priority limits: high 0 (none), normal 5, low 1");
    rec.admin(&mut admin, "maxqueue mq_fn 0 5 1\r\n");
    client.send_req(kind::SUBMIT_JOB_HIGH_BG, &[b"mq_fn", b"h1", b"x"]);
    rec.read("client", &mut client);
    client.send_req(kind::SUBMIT_JOB_LOW_BG, &[b"mq_fn", b"l1", b"x"]);
    rec.read("client", &mut client);
    client.send_req(kind::SUBMIT_JOB_BG, &[b"mq_fn", b"n1", b"x"]);
    rec.read("client", &mut client);
    rec.admin(&mut admin, "maxqueue mq_fn\r\n");
    client.send_req(kind::SUBMIT_JOB_LOW_BG, &[b"mq_fn", b"l2", b"x"]);
    rec.read("client", &mut client);
    rec.admin(&mut admin, "prioritystatus\r\n");
}

#[test]
fn admin_listings_match_gearmand() {
    let Some(t) = compare(bin(), &[], &listings_scenario) else { return };
    assert_has(&t, r#"admin "status\r\n" -> adm_a\t2\t1\t2\n|adm_b\t1\t0\t1\n|adm_c\t2\t0\t0\n|.\n"#);
    assert_has(&t, r#"admin "cancel job H:HOST:999\r\n" -> ERR UNKNOWN_JOB\r\n"#);
}

#[test]
fn admin_commands_and_errors_match_gearmand() {
    let Some(t) = compare(bin(), &[], &commands_scenario) else { return };
    assert_has(&t, r#"admin "foo\r\n" -> ERR UNKNOWN_COMMAND Unknown+server+commandfoo\r\n"#);
    assert_has(&t, r#"admin "getpid\r\n" -> OK PID \n"#);
}

#[test]
fn admin_maxqueue_limits_match_gearmand() {
    let Some(t) = compare(bin(), &[], &maxqueue_scenario) else { return };
    assert_has(&t, r#"client <- RES 19 QUEUE_ERROR\0Job queue is full"#);
}
