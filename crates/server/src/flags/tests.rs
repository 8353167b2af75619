use super::*;

fn parse(args: &[&str]) -> Result<Flags, String> {
    parse_flags(args).map_err(|e| e.to_string())
}

fn parse_flags(args: &[&str]) -> Result<Flags, FlagsError> {
    let mut v = vec!["sprocketd".to_string(), "--config-file=/nonexistent-default".into()];
    v.extend(args.iter().map(|s| s.to_string()));
    // Use an explicit but missing config file only where asked.
    v.remove(1);
    parse_from(v)
}

#[test]
fn seed_params_lines_parse() {
    let f = parse(&["--listen=127.0.0.1", "--queue-type", "Postgres", "--libpq-table=queue", "--verbose", "DEBUG"])
        .unwrap();
    assert_eq!(f.listen.as_deref(), Some("127.0.0.1"));
    assert_eq!(f.queue_type.as_deref(), Some("Postgres"));
    assert_eq!(f.libpq_table, "queue");
    assert_eq!(f.verbose.as_deref(), Some("DEBUG"));

    let f = parse(&["\u{201d}--verbose", "-q", "libpq", "--libpq-table=gearmanqueue1", "--verbose\u{201d}"]).unwrap();
    assert_eq!(f.queue_type.as_deref(), Some("libpq"));
    assert_eq!(f.verbose.as_deref(), Some("INFO"));

    let f = parse(&[
        "--queue-type=MySQL",
        "--mysql-host=localhost",
        "--mysql-port=3306",
        "--mysql-user=drupal",
        "--mysql-password=your_pw",
        "--mysql-db=drupal",
        "--mysql-table=gearman_queue",
    ])
    .unwrap();
    assert_eq!(f.mysql_user, "drupal");
}

#[test]
fn help_is_told_apart_from_errors_by_its_kind() {
    assert!(parse_flags(&["--help"]).unwrap_err().is_request_for_help());
    assert!(!parse_flags(&["--no-such-flag"]).unwrap_err().is_request_for_help());
}

#[test]
fn a_repeated_flag_takes_its_last_value() {
    let f = parse(&[
        "--daemon",
        "--log-file=/var/log/a.log",
        "-p",
        "4731",
        "--daemon",
        "--log-file=/var/log/b.log",
        "--port=4732",
        "-v",
        "-v",
    ])
    .unwrap();
    assert!(f.daemon);
    assert_eq!(f.log_file, "/var/log/b.log");
    assert_eq!(f.port, 4732);
    assert_eq!(f.more_verbose, 2, "-v counts");
}

#[test]
fn unknown_flag_is_an_error() {
    let err = parse(&["--no-such-flag"]).unwrap_err();
    assert!(err.contains("--no-such-flag"), "{err}");
}

fn with_config(text: &str, args: &[&str]) -> Result<Flags, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("sprocketd.conf");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let mut v = vec!["sprocketd".to_string(), format!("--config-file={}", path.display())];
    v.extend(args.iter().map(|s| s.to_string()));
    parse_from(v).map_err(|e| e.to_string())
}

#[test]
fn config_file_comments_run_to_the_end_of_the_line() {
    let text = "# the port we listen on\n--port 4731   # not 4730: another gearmand runs there\n\
                --listen=127.0.0.1\n  # an indented comment with 'quotes' and \"more\"\n--verbose DEBUG\n";
    let f = with_config(text, &[]).unwrap();
    assert_eq!((f.port, f.listen.as_deref(), f.verbose.as_deref()), (4731, Some("127.0.0.1"), Some("DEBUG")));
    // A # inside a word or quotes is not a comment.
    let f = with_config("--job-handle-prefix 'H:#1'\n--mysql-password=pa#ss\n", &[]).unwrap();
    assert_eq!((f.job_handle_prefix.as_deref(), f.mysql_password.as_str()), (Some("H:#1"), "pa#ss"));
}

#[test]
fn config_file_words_are_quoted_as_in_a_shell() {
    let f =
        with_config("--libpq-conninfo 'host=127.0.0.1 dbname=gearman'\n--mysql-password \"a b\\\"c\"\n", &[]).unwrap();
    assert_eq!(f.libpq_conninfo, "host=127.0.0.1 dbname=gearman");
    assert_eq!(f.mysql_password, "a b\"c");
    let err = with_config("--port 4731\n--mysql-password 'unfinished\n", &[]).unwrap_err();
    assert!(err.contains("config file") && err.contains("quote"), "{err}");
}

#[test]
fn the_command_line_wins_over_the_config_file() {
    let f = with_config("--port 4731\n--verbose WARNING\n-q builtin\n", &["--port", "4732", "--verbose=INFO"]).unwrap();
    assert_eq!((f.port, f.verbose.as_deref(), f.queue_type.as_deref()), (4732, Some("INFO"), Some("builtin")));
    // The same flag twice on the command line: the last one counts.
    let f = parse(&["--port", "4731", "--port", "4733"]).unwrap();
    assert_eq!(f.port, 4733);
}

#[test]
fn every_flag_has_a_description() {
    use clap::CommandFactory;
    let cmd = Flags::command();
    let missing: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_help().is_none_or(|h| h.to_string().trim().is_empty()))
        .map(|a| a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| a.get_id().to_string()))
        .collect();
    assert!(missing.is_empty(), "flags without a description in --help: {missing:?}");
}

#[test]
fn handle_prefixes_that_make_handles_too_long_are_refused() {
    let ok = "P".repeat(MAX_HANDLE_PREFIX);
    assert!(parse(&["--job-handle-prefix", &ok]).unwrap().validate().is_ok());
    let long = "P".repeat(MAX_HANDLE_PREFIX + 1);
    let err = parse(&["--job-handle-prefix", &long]).unwrap().validate().unwrap_err();
    assert!(err.contains("--job-handle-prefix") && err.contains("64"), "{err}");
    // A long hostname is cut for the default prefix instead.
    let f = parse(&[]).unwrap();
    let prefix = f.handle_prefix(&"h".repeat(70));
    assert_eq!(prefix.len(), MAX_HANDLE_PREFIX);
    assert!(prefix.starts_with("H:hhh"));
    assert_eq!(f.handle_prefix("colo"), "H:colo");
}

#[test]
fn numeric_limits_are_explicit() {
    for args in [
        &["--max-packet-size", "4294967295"][..],
        &["--store-timeout", "18446744073709551"],
        &["--keepalive-count", "300"],
        &["--keepalive-idle", "40000"],
    ] {
        let err = parse(args).unwrap_err();
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
    assert_eq!(parse(&[]).unwrap().timeout_action, "retry", "gearmand requeues on CAN_DO_TIMEOUT");
}

#[test]
fn bad_verbose_level_is_rejected() {
    assert!(parse(&["--verbose", "LOUD"]).unwrap().validate().is_err());
}

#[test]
fn tls_flags_that_cannot_work_together_are_refused() {
    assert!(parse(&["--ssl"]).unwrap().validate().is_ok());
    let err = parse(&["--port", "4731", "--ssl-port", "4731"]).unwrap().validate().unwrap_err();
    assert!(err.contains("--ssl-port"), "{err}");
    let err = parse(&["--ssl-verify-clients"]).unwrap().validate().unwrap_err();
    assert!(err.contains("--ssl-verify-clients"), "{err}");
    assert!(parse(&["--ssl-port", "4731", "--ssl-verify-clients"]).unwrap().validate().is_ok());
    assert!(parse(&["--ssl-handshake-timeout", "0"]).is_err());
}

#[test]
fn an_acl_file_requires_client_certificates_on_tls_ports() {
    let flags = parse(&["-q", "builtin", "--ssl-port", "4731", "--acl-file", "/etc/gearman/acl.ini"]).unwrap();
    assert!(flags.validate().is_ok());
    let config = crate::ServerConfig::from_flags(&flags).expect("config");
    assert_eq!(config.acl_file.as_deref(), Some(std::path::Path::new("/etc/gearman/acl.ini")));
    assert!(config.tls.expect("TLS settings").verify_clients, "--acl-file must imply --ssl-verify-clients");
    // Without TLS the ACL goes by source networks alone.
    let flags = parse(&["-q", "builtin", "--acl-file", "acl.ini"]).unwrap();
    assert!(flags.validate().is_ok());
    assert!(crate::ServerConfig::from_flags(&flags).expect("config").tls.is_none());
}
