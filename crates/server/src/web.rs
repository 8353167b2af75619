//! The web port's glue: its settings from the flags, the engine reached
//! through the query and command channel, and the start-up line a person
//! running sprocketd in a terminal sees.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use sprocket_engine::policy::PolicyEntry;
use sprocket_engine::{CommandError, FunctionView, JobFilter, JobView, Record, RecordFilter, ServerInfo, WorkerView};
use sprocket_http::{Backend, PauseError, Token, Unavailable, WebConfig, WebListen};
use sprocket_store::StoreConfig;

use crate::control::{EngineLink, SettingError, Stopped};
use crate::flags::Flags;

/// Refuses flags that would serve the web port to other hosts with no
/// token (checked with the other flags, so `--check-args` catches it).
pub(crate) fn check_flags(flags: &Flags) -> Result<(), String> {
    let listen = WebListen::parse(flags.web_listen.as_deref()).map_err(|e| e.to_string())?;
    // An ACL guards the port as well: it lets in only the identities it
    // names.
    if !listen.is_loopback() && flags.web_token.is_none() && flags.acl_file.is_none() && !flags.web_insecure {
        return Err(format!(
            "--web-listen {} is reachable from other hosts: give --web-token TOKEN|/FILE (or --acl-file), or \
             --web-insecure to serve it without one",
            flags.web_listen.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The web port's settings; reads the token file.
pub(crate) fn config_from_flags(
    flags: &Flags,
    store: Option<&StoreConfig>,
    gearman: &[SocketAddr],
    tls: Option<sprocket_http::WebTlsHandle>,
) -> Result<WebConfig, String> {
    check_flags(flags)?;
    let listen = WebListen::parse(flags.web_listen.as_deref()).map_err(|e| e.to_string())?;
    let token = flags.web_token.as_deref().map(Token::load).transpose().map_err(|e| e.to_string())?;
    if flags.web_tls && tls.is_none() {
        return Err("--web-tls needs the server's certificate and key (--ssl-certificate, --ssl-key)".into());
    }
    Ok(WebConfig {
        tls,
        listen,
        token,
        body_limit: usize::try_from(flags.max_packet_size).unwrap_or(usize::MAX),
        store: describe_store(store),
        // Jobs submitted over the web port travel over the plain Gearman
        // port; with `--ssl` there is none, and submitting answers 503.
        gearman: if flags.ssl { None } else { gearman.first().map(|a| reachable(*a)) },
        max_packet_size: flags.max_packet_size,
        // Set by the caller, from the server's list (`Server::web_acl`).
        acl: None,
    })
}

/// An address to connect to for a listener bound to `addr`: a listener
/// on every interface is reached through loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// The store as people name it, without passwords.
pub(crate) fn describe_store(store: Option<&StoreConfig>) -> String {
    match store {
        None => "builtin (memory only)".into(),
        Some(StoreConfig::Memory) => "memory".into(),
        Some(StoreConfig::Sqlite { path, .. }) => format!("sqlite:{}", path.display()),
        Some(StoreConfig::Postgres { table, .. }) => format!("postgres table {table}"),
        Some(StoreConfig::Mysql { host, port, db, table, .. }) => format!("mysql://{host}:{port}/{db} table {table}"),
        Some(StoreConfig::Redis { host, port, prefix, .. }) => format!("redis://{host}:{port} prefix {prefix}"),
    }
}

/// One line on stderr when it is a terminal, so a person who started
/// sprocketd by hand sees that it runs, where, on which store, and where
/// its web port (and `-r http` port) is. Logs, pipes (tests) and detached servers get nothing.
pub(crate) fn announce(
    gearman: &[SocketAddr],
    store: &str,
    web: Option<SocketAddr>,
    http_protocol: Option<SocketAddr>,
) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let listening: Vec<String> = gearman.iter().map(ToString::to_string).collect();
    let web = match web {
        Some(addr) => format!("dashboard http://{addr}/ (API /api/v1/, metrics /metrics)"),
        None => "no web port".into(),
    };
    let web = match http_protocol {
        Some(addr) => format!("{web}, gearmand HTTP protocol (-r http) on {addr}"),
        None => web,
    };
    eprintln!(
        "sprocketd {} listening on {} (Gearman), store {store}, {web}",
        env!("CARGO_PKG_VERSION"),
        listening.join(", ")
    );
}

fn unavailable(_: Stopped) -> Unavailable {
    Unavailable
}

#[async_trait::async_trait]
impl Backend for EngineLink {
    async fn server_info(&self) -> Result<ServerInfo, Unavailable> {
        EngineLink::server_info(self).await.map_err(unavailable)
    }

    async fn functions(&self) -> Result<Vec<FunctionView>, Unavailable> {
        EngineLink::functions(self).await.map_err(unavailable)
    }

    async fn function_policies(&self) -> Result<Vec<(Bytes, PolicyEntry)>, Unavailable> {
        EngineLink::function_policies(self).await.map_err(unavailable)
    }

    async fn workers(&self) -> Result<Vec<WorkerView>, Unavailable> {
        EngineLink::workers(self).await.map_err(unavailable)
    }

    async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobView>, Unavailable> {
        EngineLink::jobs(self, filter).await.map_err(unavailable)
    }

    async fn job(&self, handle: Bytes) -> Result<Option<JobView>, Unavailable> {
        EngineLink::job(self, handle).await.map_err(unavailable)
    }

    async fn record(&self, handle: Bytes) -> Result<Result<Option<Record>, String>, Unavailable> {
        EngineLink::record(self, handle).await.map_err(unavailable)
    }

    async fn records(&self, filter: RecordFilter) -> Result<Result<Vec<Record>, String>, Unavailable> {
        EngineLink::records(self, filter).await.map_err(unavailable)
    }

    async fn telemetry(&self) -> Result<sprocket_http::Telemetry, Unavailable> {
        EngineLink::telemetry(self).await.map_err(unavailable)
    }

    async fn cancel(&self, handle: Bytes) -> Result<Result<(), CommandError>, Unavailable> {
        EngineLink::cancel(self, handle).await.map_err(unavailable)
    }

    async fn drop_function(&self, name: Bytes) -> Result<Result<(), CommandError>, Unavailable> {
        EngineLink::drop_function(self, name).await.map_err(unavailable)
    }

    async fn max_queue(&self, function: Bytes, limits: [u32; 3]) -> Result<bool, Unavailable> {
        EngineLink::max_queue(self, function, limits).await.map_err(unavailable)
    }

    async fn set_paused(&self, name: Bytes, paused: bool) -> Result<Result<(), PauseError>, Unavailable> {
        let result = EngineLink::set_paused(self, name, paused).await.map_err(unavailable)?;
        Ok(result.map_err(|e| match e {
            SettingError::Refused(e) => PauseError::Refused(e),
            SettingError::NotSaved(why) => PauseError::NotSaved(why),
            // Only a cron entry change is refused so; a pause never is.
            SettingError::Cron(e) => PauseError::NotSaved(e.to_string()),
        }))
    }

    async fn cron_entries(&self) -> Result<Vec<sprocket_engine::cron::CronView>, Unavailable> {
        EngineLink::cron_entries(self).await.map_err(unavailable)
    }

    async fn cron_add(
        &self,
        spec: sprocket_engine::cron::CronSpec,
    ) -> Result<Result<(), sprocket_http::CronChangeError>, Unavailable> {
        Ok(EngineLink::cron_add(self, spec).await.map_err(unavailable)?.map_err(cron_change_error))
    }

    async fn cron_remove(&self, name: String) -> Result<Result<(), sprocket_http::CronChangeError>, Unavailable> {
        Ok(EngineLink::cron_remove(self, name).await.map_err(unavailable)?.map_err(cron_change_error))
    }

    async fn cron_run(&self, name: String) -> Result<Result<Bytes, sprocket_engine::cron::CronError>, Unavailable> {
        EngineLink::cron_run(self, name).await.map_err(unavailable)
    }

    async fn purge_queued(&self, name: Bytes) -> Result<Result<usize, CommandError>, Unavailable> {
        EngineLink::purge_queued(self, name).await.map_err(unavailable)
    }

    async fn purge_dead(&self, function: Option<Bytes>) -> Result<Result<u64, String>, Unavailable> {
        EngineLink::purge_dead(self, function).await.map_err(unavailable)
    }

    async fn history_series(
        &self,
        function: Option<Bytes>,
        window: sprocket_records::Window,
    ) -> Result<Result<sprocket_records::Series, sprocket_http::HistoryOff>, Unavailable> {
        EngineLink::history_series(self, function, window).await.map_err(unavailable)
    }

    async fn history_counts(
        &self,
        window: sprocket_records::Window,
    ) -> Result<Result<Vec<(Bytes, sprocket_records::Counts)>, sprocket_http::HistoryOff>, Unavailable> {
        EngineLink::history_counts(self, window).await.map_err(unavailable)
    }

    async fn function_history(
        &self,
        name: Bytes,
    ) -> Result<Result<Option<sprocket_records::HistoryView>, sprocket_http::HistoryOff>, Unavailable> {
        EngineLink::function_history(self, name).await.map_err(unavailable)
    }
}

fn cron_change_error(e: SettingError) -> sprocket_http::CronChangeError {
    match e {
        SettingError::Cron(e) => sprocket_http::CronChangeError::Refused(e),
        SettingError::NotSaved(why) => sprocket_http::CronChangeError::NotSaved(why),
        // Only a pause or resume is refused so; a cron change never is.
        SettingError::Refused(e) => sprocket_http::CronChangeError::NotSaved(e.to_string()),
    }
}
