use std::time::Duration;

use sprocket_engine::cron::{CatchUp, CronPriority};
use sprocket_engine::policy::{Backoff, FunctionPolicy, RetryReason};

use super::*;

const FULL: &str = r#"
[functions."resize_*"]
max_attempts = 5
backoff = { kind = "exponential", base = "2s", factor = 2, max = "1h", jitter = 0.2 }
retry_on = ["fail", "timeout"]
timeout = "10m"
dead_letter = true
retry_foreground = false

[functions.mail]
backoff = { kind = "fixed", delay = "30s" }

[functions."a*"]

[[cron]]
name = "nightly-report"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"
function = "report"
payload = "daily"
priority = "low"
catch_up = "last"

[[cron]]
name = "beat"
schedule = "*/2 * * * * *"
function = "tick"
"#;

fn error_of(text: &str) -> (Option<(usize, usize)>, String) {
    match parse(text) {
        Ok(file) => panic!("accepted: {file:?}"),
        Err((at, message)) => (at.map(|offset| line_and_column(text, offset)), message),
    }
}

#[test]
fn every_key_is_read_and_left_out_keys_take_the_defaults() {
    let file = parse(FULL).expect("valid");
    let names: Vec<&str> = file.functions.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["resize_*", "mail", "a*"], "in file order");
    let resize = &file.functions[0].1;
    assert_eq!(resize.max_attempts, 5);
    assert_eq!(
        resize.backoff,
        Backoff::Exponential { base: Duration::from_secs(2), factor: 2.0, max: Duration::from_secs(3600), jitter: 0.2 }
    );
    assert_eq!(resize.retry_on.iter().collect::<Vec<_>>(), [RetryReason::Fail, RetryReason::Timeout]);
    assert_eq!(resize.timeout, Some(Duration::from_secs(600)));
    assert!(resize.dead_letter && !resize.retry_foreground);
    let mail = &file.functions[1].1;
    assert_eq!(mail.backoff, Backoff::Fixed { delay: Duration::from_secs(30) });
    assert_eq!(mail.max_attempts, FunctionPolicy::default().max_attempts);
    assert_eq!(file.functions[2].1, FunctionPolicy::default(), "an empty table is the default policy");

    assert_eq!(file.cron.len(), 2);
    let nightly = &file.cron[0];
    assert_eq!(nightly.name.as_str(), "nightly-report");
    assert_eq!(nightly.timezone.name(), "Europe/Berlin");
    assert_eq!(nightly.priority, CronPriority::Low);
    assert_eq!(nightly.catch_up, CatchUp::Last);
    assert_eq!(nightly.payload, "daily");
    let beat = &file.cron[1];
    assert_eq!((beat.timezone.name(), beat.catch_up, beat.priority), ("UTC", CatchUp::None, CronPriority::Normal));
    assert_eq!(parse("").expect("an empty file is valid"), PolicyFile::default());
}

#[test]
fn errors_name_the_line_and_what_is_wrong() {
    for (text, line, says) in [
        ("[functions.f]\nmax_attemps = 3\n", 2, "unknown field `max_attemps`"),
        ("[functions.f]\nmax_attempts = 0\n", 1, "max_attempts"),
        ("[functions.f]\ntimeout = \"10 years\"\n", 1, "not a duration"),
        ("[functions.f]\nretry_on = [\"fail\", \"crash\"]\n", 1, "\"crash\""),
        ("[functions.f]\nbackoff = { kind = \"linear\" }\n", 2, "linear"),
        ("[functions.f]\nbackoff = { kind = \"fixed\", delay = \"1s\", jitter = 0.1 }\n", 2, "jitter"),
        ("[functions.f]\nbackoff = { kind = \"exponential\", factor = 0.5 }\n", 1, "factor"),
        ("[policy]\n", 1, "unknown field `policy`"),
        ("[functions.f\n", 1, ""),
        ("\n\n[[cron]]\nname = \"a\"\nschedule = \"0 25 * * *\"\nfunction = \"f\"\n", 5, "hour"),
        ("[[cron]]\nname = \"a\"\nschedule = \"@daily\"\nfunction = \"f\"\ntimezone = \"Mars/Base\"\n", 5, "Mars/Base"),
        ("[[cron]]\nname = \"a\"\nschedule = \"@daily\"\nfunction = \"f\"\ncolour = 1\n", 5, "colour"),
        ("[[cron]]\nname = \"a\"\nschedule = \"@daily\"\n", 1, "function"),
        (
            "[[cron]]\nname = \"a\"\nschedule = \"@daily\"\nfunction = \"f\"\n[[cron]]\nname = \"a\"\nschedule = \"@daily\"\nfunction = \"f\"\n",
            5,
            "second [[cron]] entry named \"a\"",
        ),
    ] {
        let (at, message) = error_of(text);
        let (l, _) = at.unwrap_or_else(|| panic!("{text:?}: no place in {message}"));
        assert_eq!(l, line, "{text:?}: {message}");
        assert!(message.contains(says), "{text:?}: {message}");
    }
}

#[test]
fn a_file_error_names_the_file() {
    let dir = std::env::temp_dir().join(format!("sprocket-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("policy.toml");
    std::fs::write(&path, "[functions.f]\nmax_attempts = \"five\"\n").expect("write");
    let e = load(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("policy file {}, line 2, column 16: ", path.display())), "{e}");
    let missing = load(&dir.join("missing.toml")).unwrap_err().to_string();
    assert!(missing.contains("missing.toml: cannot be read"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}
