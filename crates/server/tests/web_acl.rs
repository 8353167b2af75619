//! The web port under the access control list (`--acl-file`), through curl
//! against the real sprocketd: identities from client certificates (made
//! by the test CA's openssl commands) on the `--web-tls` port, from a
//! section's `web_token` (Bearer or Basic), from the `net:` section of a
//! plaintext loopback peer, and the operator's `--web-token`; reads,
//! writes, submits limited by `invoke`, cancels, requeues that travel over
//! the Gearman port as the web identity, `/api/v1/whoami`, SIGHUP reloads
//! and `acl revoke` reaching the web port at once, and no ACL unchanged.

mod common;

use common::server_log as log;
#[path = "../../client/tests/tls_support/mod.rs"]
mod tls_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sprocket_testkit::databases::wait_until;
use sprocket_testkit::process::run;
use sprocket_testkit::{admin, free_port, require_tool, ServerProcess};
use tls_support::Pki;

/// The test kit checks readiness with `getpid` on the plain port, so
/// loopback may read there; on the `--web-tls` port `net:` sections do not
/// apply (as on the Gearman port's TLS connections).
const LOOPBACK_READS: &str = "[net:127.0.0.0/8]\nadmin = read\n";

/// curl's answer.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `curl ARGS… URL`, with the status, the response headers and the body.
fn curl(args: &[&str], url: &str) -> Answer {
    let dir = tempfile::tempdir().expect("temp dir");
    let headers = dir.path().join("headers");
    let out = run(
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}", "-D"])
            .arg(&headers)
            .args(args)
            .arg(url),
        b"",
        Duration::from_secs(30),
    );
    assert!(out.success(), "curl {args:?} {url}: {}", out.describe());
    let text = out.stdout_text();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    Answer {
        status: code.trim().parse().expect("status code"),
        headers: std::fs::read_to_string(headers).unwrap_or_default(),
        body: body.to_string(),
    }
}

/// The curl arguments of a POST with a JSON body.
fn post(body: &str) -> Vec<String> {
    ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body].map(String::from).to_vec()
}

fn bearer(token: &str) -> Vec<String> {
    vec!["-H".into(), format!("Authorization: Bearer {token}")]
}

/// A sprocketd with the ACL `acl` (written to `dir/acl.ini`), the test
/// CA's certificates, and a web port (HTTPS with `web_tls`), plus `extra`.
/// Returns the server and its web port.
fn start(pki: &Pki, dir: &Path, acl: &str, web_tls: bool, extra: &[&str]) -> (ServerProcess, u16) {
    let web = free_port();
    let (certificate, key, ca) = (pki.server_cert(), pki.server_key(), pki.ca());
    let tls = common::TlsFiles { certificate: &certificate, key: &key, ca: &ca };
    let mut args = vec![format!("--web-listen=127.0.0.1:{web}")];
    args.extend(common::acl_server_args(&tls, dir, acl, free_port()));
    if web_tls {
        args.push("--web-tls".into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::sprocketd(common::sprocketd(), &args);
    common::wait_for_port(web);
    (server, web)
}

/// curl's arguments to trust the test CA and, for `cn`, present that
/// name's client certificate.
fn tls_args(pki: &Pki, cn: Option<&str>) -> Vec<String> {
    let mut args = vec!["--cacert".to_string(), pki.ca().display().to_string()];
    if let Some(cn) = cn {
        let (cert, key) = pki.named_client(cn);
        args.extend(["--cert".into(), cert.display().to_string(), "--key".into(), key.display().to_string()]);
    }
    args
}

fn strs(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

#[test]
fn certificates_and_section_tokens_map_to_the_acl_on_the_https_web_port() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("dash.token");
    std::fs::write(&token_file, "dash-secret\n").unwrap();
    let acl = format!(
        "{LOOPBACK_READS}\n[viewer]\nadmin = read\n\n[ops]\nadmin = write\n\n[ci]\nweb_token = ci-secret\n\
         invoke = build:.*\n\n[dash]\nweb_token = {}\nadmin = read\n",
        token_file.display()
    );
    let (_srv, web) = start(pki, dir.path(), &acl, true, &["--web-token", "operator-secret"]);
    let url = |path: &str| format!("https://127.0.0.1:{web}{path}");
    let as_cert = |cn: Option<&str>, extra: &[String], path: &str| {
        let args = strs(&[&tls_args(pki, cn), extra]);
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &url(path))
    };

    // No certificate, no token: 401 with a challenge (net: sections are
    // for plaintext, so loopback's read right does not apply here).
    let answer = as_cert(None, &[], "/api/v1/functions");
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.headers.to_ascii_lowercase().contains("www-authenticate: basic"), "{}", answer.headers);
    let answer = as_cert(None, &bearer("not-a-token"), "/api/v1/functions");
    assert_eq!(answer.status, 401, "an unknown token was let in: {}", answer.body);

    // The operator's token submits (over the Gearman port, where loopback
    // alone may not submit: the web port's connection acts for the caller).
    let operator = bearer("operator-secret");
    let job = |function: &str| format!("{{\"function\":\"{function}\",\"data\":\"x\"}}");
    let answer = as_cert(None, &strs(&[&operator, &post(&job("deploy"))]), "/api/v1/jobs");
    assert_eq!(answer.status, 202, "operator submit: {}\n{}", answer.body, log(dir.path()));
    let deploy_handle = answer.json()["handle"].as_str().expect("handle").to_string();

    // A read-only certificate: every read, no write.
    for path in ["/", "/api/v1/functions", "/api/v1/server", "/metrics", "/api/v1/jobs", "/api/v1/dead"] {
        let answer = as_cert(Some("viewer"), &[], path);
        assert_eq!(answer.status, 200, "viewer GET {path}: {}", answer.body);
    }
    let answer = as_cert(Some("viewer"), &post("{}"), "/api/v1/functions/deploy/pause");
    assert_eq!(answer.status, 403, "viewer paused: {}", answer.body);
    let message = answer.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("\"viewer\"") && message.contains("admin = write"), "{message}");
    let me = as_cert(Some("viewer"), &[], "/api/v1/whoami").json();
    assert_eq!(me["identity"], "viewer", "{me}");
    assert_eq!(me["via"], "certificate", "{me}");
    assert_eq!((me["read"].as_bool(), me["write"].as_bool()), (Some(true), Some(false)), "{me}");

    // A write certificate pauses and resumes.
    let answer = as_cert(Some("ops"), &post("{}"), "/api/v1/functions/deploy/pause");
    assert_eq!(answer.status, 200, "ops pause: {}", answer.body);
    assert_eq!(answer.json()["paused"], true);
    let answer = as_cert(Some("ops"), &post("{}"), "/api/v1/functions/deploy/resume");
    assert_eq!(answer.status, 200, "ops resume: {}", answer.body);
    // Its requeue travels over the Gearman port as "ops" (admin = write):
    // the engine answers that no such job exists, where loopback's own
    // read-only identity would have been refused.
    let answer = as_cert(Some("ops"), &post("{}"), "/api/v1/dead/H:nowhere:1/requeue");
    assert_eq!(answer.status, 404, "ops requeue: {}\n{}", answer.body, log(dir.path()));
    let answer = as_cert(Some("viewer"), &post("{}"), "/api/v1/dead/H:nowhere:1/requeue");
    assert_eq!(answer.status, 403, "viewer requeue: {}", answer.body);

    // A certificate the list does not know: identified, allowed nothing.
    let answer = as_cert(Some("stranger"), &[], "/api/v1/functions");
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("stranger") && answer.body.contains("no section"), "{}", answer.body);

    // An invoke-only token: submits to build:.* only, reads nothing.
    let ci = bearer("ci-secret");
    let answer = as_cert(None, &strs(&[&ci, &post(&job("build:linux"))]), "/api/v1/jobs");
    assert_eq!(answer.status, 202, "ci submit build:linux: {}\n{}", answer.body, log(dir.path()));
    let build_handle = answer.json()["handle"].as_str().expect("handle").to_string();
    let answer = as_cert(None, &strs(&[&ci, &post(&job("deploy"))]), "/api/v1/jobs");
    assert_eq!(answer.status, 403, "ci submitted deploy: {}", answer.body);
    let message = answer.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("\"ci\"") && message.contains("invoke of \"deploy\""), "{message}");
    let answer = as_cert(None, &ci, "/api/v1/functions");
    assert_eq!(answer.status, 403, "ci read: {}", answer.body);
    let me = as_cert(None, &ci, "/api/v1/whoami").json();
    assert_eq!((me["identity"].as_str(), me["via"].as_str()), (Some("ci"), Some("token")), "{me}");
    assert_eq!(me["invoke"], "build:.*", "{me}");
    // It follows the jobs of the functions it may invoke, and no others.
    let answer = as_cert(None, &ci, &format!("/api/v1/jobs/{build_handle}"));
    assert_eq!(answer.status, 200, "ci reading its build job: {}", answer.body);
    assert_eq!(answer.json()["function"], "build:linux");
    let answer = as_cert(None, &ci, &format!("/api/v1/jobs/{deploy_handle}"));
    assert_eq!(answer.status, 403, "ci read a deploy job: {}", answer.body);
    // It cancels the jobs of the functions it may invoke, and no others.
    let cancel = |handle: &str| format!("/api/v1/jobs/{handle}/cancel");
    let answer = as_cert(None, &strs(&[&ci, &post("{}")]), &cancel(&deploy_handle));
    assert_eq!(answer.status, 403, "ci cancelled a deploy job: {}", answer.body);
    let answer = as_cert(None, &strs(&[&ci, &post("{}")]), &cancel(&build_handle));
    assert_eq!(answer.status, 200, "ci cancel of its build job: {}", answer.body);

    // A read-only token from a file, as a Basic password (any user name).
    let basic = ["--user".to_string(), "anyone:dash-secret".to_string()];
    let answer = as_cert(None, &basic, "/api/v1/functions");
    assert_eq!(answer.status, 200, "dash read: {}", answer.body);
    let answer = as_cert(None, &strs(&[&basic, &post("{}")]), "/api/v1/functions/deploy/pause");
    assert_eq!(answer.status, 403, "dash paused: {}", answer.body);
    // The operator's token does everything.
    let answer = as_cert(None, &strs(&[&operator, &post("{}")]), "/api/v1/functions/deploy/pause");
    assert_eq!(answer.status, 200, "operator pause: {}", answer.body);
    let me = as_cert(None, &operator, "/api/v1/whoami").json();
    assert_eq!((me["via"].as_str(), me["write"].as_bool()), (Some("operator_token"), Some(true)), "{me}");
}

#[test]
fn plaintext_loopback_gets_its_net_section_and_reloads_and_revokes_apply_at_once() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Loopback may also change the list (to revoke below).
    let acl = |dash_admin: &str| {
        format!(
            "[net:127.0.0.0/8]\nadmin = read\ngrant = yes\n\n[dash]\nweb_token = dash-secret\nadmin = {dash_admin}\n"
        )
    };
    let (srv, web) = start(pki, dir.path(), &acl("read"), false, &[]);
    let url = |path: &str| format!("http://127.0.0.1:{web}{path}");
    let call = |extra: &[String], path: &str| curl(&extra.iter().map(String::as_str).collect::<Vec<_>>(), &url(path));
    let dash = bearer("dash-secret");
    // A pause (which makes the function when it is unknown) answers 200
    // once the right is there, 403 before.
    let pause = "/api/v1/functions/nothing/pause";

    // No credentials: loopback's network section, read-only.
    assert_eq!(call(&[], "/api/v1/server").status, 200);
    let answer = call(&post("{}"), pause);
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("net:127.0.0.0/8"), "{}", answer.body);
    let me = call(&[], "/api/v1/whoami").json();
    assert_eq!((me["identity"].as_str(), me["via"].as_str()), (Some("net:127.0.0.0/8"), Some("network")), "{me}");
    assert_eq!(call(&strs(&[&dash, &post("{}")]), pause).status, 403);

    let hup = || {
        let status = Command::new("kill").args(["-HUP", &srv.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    };
    std::fs::write(dir.path().join("acl.ini"), acl("write")).unwrap();
    hup();
    assert!(wait_until(Duration::from_secs(10), || log(dir.path()).contains("ACL reloaded")), "{}", log(dir.path()));
    let answer = call(&strs(&[&dash, &post("{}")]), pause);
    assert_eq!(answer.status, 200, "the reload did not reach the web port: {}", answer.body);

    // A broken file keeps the rules in force for the web port too.
    std::fs::write(dir.path().join("acl.ini"), format!("{}\n[broken\n", acl("read"))).unwrap();
    hup();
    assert!(
        wait_until(Duration::from_secs(10), || log(dir.path()).contains("ACL not reloaded")),
        "{}",
        log(dir.path())
    );
    assert_eq!(call(&strs(&[&dash, &post("{}")]), pause).status, 200, "a broken file changed the web port's rules");

    // `acl revoke` on the Gearman port holds for the next web request.
    let reply = admin(srv.port, "acl revoke admin dash");
    assert!(reply.starts_with("OK"), "acl revoke: {reply}");
    let answer = call(&dash, "/api/v1/functions");
    assert_eq!(answer.status, 403, "the revoke did not reach the web port: {}", answer.body);
    // The section keeps its token: the holder is still known, with no rights.
    let me = call(&dash, "/api/v1/whoami").json();
    assert_eq!((me["identity"].as_str(), me["read"].as_bool()), (Some("dash"), Some(false)), "{me}");
}

#[test]
fn without_an_acl_the_web_port_is_unchanged_and_whoami_says_so() {
    if !require_tool("curl") {
        return;
    }
    let (_srv, web) = common::server_with_web(&[]);
    let url = |path: &str| format!("http://127.0.0.1:{web}{path}");
    let me = curl(&[], &url("/api/v1/whoami")).json();
    assert_eq!(me["acl"], false, "{me}");
    assert_eq!((me["read"].as_bool(), me["write"].as_bool()), (Some(true), Some(true)), "{me}");
    let args = post("{\"function\":\"anything\"}");
    let answer = curl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &url("/api/v1/jobs"));
    assert_eq!(answer.status, 202, "{}", answer.body);
    let args = post("{}");
    let answer = curl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &url("/api/v1/functions/anything/pause"));
    assert_eq!(answer.status, 200, "{}", answer.body);

    // With --web-token alone, everything still needs it.
    let (_srv, web) = common::server_with_web(&["--web-token", "t0ken"]);
    let url = format!("http://127.0.0.1:{web}/api/v1/whoami");
    assert_eq!(curl(&[], &url).status, 401);
    assert_eq!(curl(&["-H", "Authorization: Bearer t0ken"], &url).json()["acl"], false);
}

/// Whether Python can drive Chromium: python3 with selenium, chromium and
/// its driver.
fn browser_tools() -> bool {
    for tool in ["python3", "chromium", "chromedriver"] {
        if !require_tool(tool) {
            return false;
        }
    }
    let selenium = run(Command::new("python3").args(["-c", "import selenium"]), b"", Duration::from_secs(30));
    if !selenium.success() {
        sprocket_testkit::skip("the Python selenium package is not installed (pip install selenium)");
        return false;
    }
    true
}

#[test]
fn a_read_only_identitys_dashboard_in_chromium_shows_no_action_buttons() {
    let Some(pki) = Pki::get() else { return };
    if !require_tool("curl") || !browser_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acl = "[net:127.0.0.0/8]\nadmin = write\n\n[dash]\nweb_token = dash-secret\nadmin = read\n";
    let (_srv, web) = start(pki, dir.path(), acl, false, &[]);
    // A function for the table: pausing makes it.
    let args = post("{}");
    let url = format!("http://127.0.0.1:{web}/api/v1/functions/resize/pause");
    let answer = curl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &url);
    assert_eq!(answer.status, 200, "{}", answer.body);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard/read_only.py");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").to_path_buf();
    let shots = target.join("dashboard-screenshots").join("read-only");
    let out = run(
        Command::new("python3")
            .arg(script)
            .args(["--url", &format!("http://127.0.0.1:{web}/"), "--token", "dash-secret", "--identity", "dash"])
            .args(["--function", "resize", "--shots"])
            .arg(&shots)
            // Debian's browser and driver, named by path: selenium must not
            // go looking for (or downloading) others.
            .env("SE_OFFLINE", "true"),
        b"",
        Duration::from_secs(120),
    );
    assert!(out.success(), "{}\n{}", out.describe(), log(dir.path()));
    let text = out.stdout_text();
    assert!(text.contains("WRITE net:127.0.0.0/8 (read and write)"), "{text}");
    assert!(text.contains("READONLY dash (read-only)"), "{text}");
}
