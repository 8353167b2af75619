//! Binding the web port and serving it on a thread of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

use crate::acl::{Caller, Credentials, Need, WebAclHandle};
use crate::api::{self, ApiError, AppState};
use crate::auth::Token;
use crate::backend::Backend;
use crate::listen::WebListen;

/// A client must send its request head within this time, so one that
/// opens connections and sends nothing holds no resources for long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request (its body read and its answer made) must finish
/// within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most web connections at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;

/// TLS on the web port (`--web-tls`): the server's certificates, reloaded
/// on SIGHUP by whoever implements it, so every handshake gets the
/// configuration in force.
pub trait WebTls: Send + Sync {
    /// The acceptor for the next connection; `None` when the configuration
    /// cannot be read (the connection is then closed).
    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor>;
    /// How long a handshake may take.
    fn handshake_timeout(&self) -> Duration;
    /// The identity a client certificate (DER) names, for the log.
    fn identity(&self, certificate: &[u8]) -> Option<String>;
}

/// A shared [`WebTls`].
#[derive(Clone)]
pub struct WebTlsHandle(pub Arc<dyn WebTls>);

impl std::fmt::Debug for WebTlsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebTlsHandle")
    }
}

/// The web port's settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// TLS on the web port, or plain HTTP.
    pub tls: Option<WebTlsHandle>,
    /// Where to listen.
    pub listen: WebListen,
    /// The secret clients must present; `None` admits everyone.
    pub token: Option<Token>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The store, as reported by the server info.
    pub store: String,
    /// The server's own Gearman port, where jobs submitted over HTTP go
    /// (as from any client); `None` takes no jobs over the web port.
    pub gearman: Option<SocketAddr>,
    /// The Gearman port's `--max-packet-size`.
    pub max_packet_size: u32,
    /// The server's access control list (`--acl-file`): who may read and
    /// act; `None` leaves that to the token alone.
    pub acl: Option<WebAclHandle>,
}

/// A bound web port, not yet serving.
#[derive(Debug)]
pub struct WebListener {
    listener: std::net::TcpListener,
    config: WebConfig,
}

/// The web port could not be bound where the operator asked.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the web port (--web-listen): {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// Binds the web port. The default address, when taken (a second
/// sprocketd on the same host), is given up with a warning and the server
/// runs without a web port; an address given explicitly that cannot be
/// bound is an error.
pub fn bind(config: WebConfig) -> Result<Option<WebListener>, BindError> {
    let WebListen::At { addr, explicit } = config.listen else {
        return Ok(None);
    };
    match std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(listener) => Ok(Some(WebListener { listener, config })),
        Err(source) if !explicit => {
            tracing::warn!(%addr, "web port off: cannot listen on its default address ({source}); give another with --web-listen ADDR:PORT");
            Ok(None)
        }
        Err(source) => Err(BindError { addr, source }),
    }
}

impl WebListener {
    /// The bound address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Serves the web port on a thread with a runtime of its own; runs until
/// the process ends.
pub fn spawn(web: WebListener, backend: Arc<dyn Backend>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("sprocketd-web".into()).spawn(move || {
        runtime.block_on(accept_loop(web, backend));
    })?;
    Ok(())
}

async fn accept_loop(web: WebListener, backend: Arc<dyn Backend>) {
    let WebListener { listener, config } = web;
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("web port off: {e}");
            return;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, auth = config.token.is_some(), tls = config.tls.is_some(), "web port listening");
    }
    let started = Instant::now();
    let state = AppState {
        live: crate::live::LiveFeed::new(Arc::clone(&backend), started, config.store.clone()),
        backend,
        started,
        store: config.store.clone(),
        gearman: config.gearman,
        max_packet_size: config.max_packet_size,
        acl: config.acl.clone(),
    };
    let app = router(state, &config);
    serve_connections(listener, app, false, config.tls).await;
}

/// Serves HTTP/1 connections from `listener` with `app`, at most
/// [`MAX_CONNECTIONS`] at once, each with its request head due within
/// [`HEADER_TIMEOUT`]; runs until the process ends. `title_case` writes
/// header names as `X-Gearman-Job-Handle` rather than in lower case, for
/// clients that look for them spelled as gearmand spells them.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    title_case: bool,
    tls: Option<WebTlsHandle>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("HTTP port: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .title_case_headers(title_case)
                .clone();
            let served = match tls {
                None => {
                    let service = with_connection(app, Connection { peer: peer.ip(), tls: false, certificate: None });
                    http.serve_connection(TokioIo::new(stream), service).await
                }
                Some(WebTlsHandle(tls)) => {
                    // The handshake runs in the connection's own task under
                    // its time limit: a client that stalls in it holds one
                    // connection slot, never the accept loop.
                    let Some(acceptor) = tls.acceptor() else { return };
                    let limit = tls.handshake_timeout();
                    let stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::info!(%peer, %error, "web port: TLS handshake failed; connection closed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "web port: TLS handshake not finished in time; connection closed");
                            return;
                        }
                    };
                    let (_, session) = stream.get_ref();
                    let certificate: Option<Arc<str>> = session
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|c| tls.identity(c))
                        .map(Arc::from);
                    if let Some(identity) = &certificate {
                        tracing::debug!(%peer, %identity, "web port: TLS client certificate");
                    }
                    let service = with_connection(app, Connection { peer: peer.ip(), tls: true, certificate });
                    http.serve_connection(TokioIo::new(stream), service).await
                }
            };
            if let Err(e) = served {
                tracing::debug!("HTTP connection ended: {e}");
            }
            drop(permit);
        });
    }
}

/// What every request on a connection shares: where it comes from and
/// the name in its verified client certificate (read once, at the
/// handshake), for the access check.
#[derive(Clone, Debug)]
struct Connection {
    peer: std::net::IpAddr,
    tls: bool,
    certificate: Option<Arc<str>>,
}

/// `app` with each request of one connection carrying that connection's
/// [`Connection`].
fn with_connection(
    app: Router,
    connection: Connection,
) -> TowerToHyperService<
    impl tower::Service<
            Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone,
> {
    use tower::ServiceExt as _;
    TowerToHyperService::new(app.map_request(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(connection.clone());
        request
    }))
}

#[derive(Clone)]
struct Guard {
    token: Option<Token>,
    acl: Option<WebAclHandle>,
}

fn router(state: AppState, config: &WebConfig) -> Router {
    let guard = Guard { token: config.token.clone(), acl: config.acl.clone() };
    Router::new()
        .route("/metrics", get(api::metrics))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/server", get(api::server))
        .route("/api/v1/functions", get(api::functions))
        .route("/api/v1/functions/{name}", get(api::function).delete(api::drop_function))
        .route("/api/v1/functions/{name}/max-queue", post(api::max_queue))
        .route("/api/v1/functions/{name}/pause", post(api::pause))
        .route("/api/v1/functions/{name}/resume", post(api::resume))
        .route("/api/v1/functions/{name}/purge-queued", post(api::purge_queued))
        .route("/api/v1/functions/{name}/history", get(crate::history_api::function))
        .route("/api/v1/history", get(crate::history_api::series))
        .route("/api/v1/functions/{name}/jobs/{unique}", get(api::job_by_unique))
        .route("/api/v1/cron", get(crate::cron_api::list).post(crate::cron_api::add))
        .route("/api/v1/cron/{name}", axum::routing::delete(crate::cron_api::remove))
        .route("/api/v1/cron/{name}/run", post(crate::cron_api::run))
        .route("/api/v1/workers", get(api::workers))
        .route("/api/v1/jobs", get(api::jobs).post(api::submit_job))
        .route("/api/v1/jobs/{handle}", get(api::job))
        .route("/api/v1/jobs/{handle}/cancel", post(api::cancel_job))
        .route("/api/v1/records", get(api::records))
        .route("/api/v1/dead", get(api::dead).delete(api::purge_dead))
        .route("/api/v1/dead/requeue", post(api::requeue_dead_function))
        .route("/api/v1/dead/{handle}/requeue", post(api::requeue_dead))
        .route("/api/v1/events", get(crate::live::events))
        .route("/api/v1/whoami", get(crate::acl::whoami))
        // The dashboard's page and its files: not part of the API.
        .merge(crate::dashboard::routes())
        .fallback(api::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn_with_state(guard, check))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this path: see /api/v1/openapi.json")
}

/// Every request: who sends it and whether it may (the token alone
/// without an ACL), and the whole request within its time.
async fn check(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let caller = match &guard.acl {
        None => match &guard.token {
            Some(token) if !token.admits(request.headers()) => {
                return crate::acl::unauthorized("this server needs its --web-token (Bearer, or Basic password)")
            }
            _ => Caller::Open,
        },
        Some(acl) => match listed_caller(&guard, acl, &request) {
            Ok(caller) => caller,
            Err(answer) => return *answer,
        },
    };
    request.extensions_mut().insert(caller);
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(answer) => answer,
        Err(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response(),
    }
}

/// Under an ACL: the operator's `--web-token`, else the identity the list
/// finds (certificate, section token, network), checked against what the
/// request needs; the answer to give instead when it may not.
fn listed_caller(guard: &Guard, acl: &WebAclHandle, request: &Request) -> Result<Caller, Box<Response>> {
    let secret = crate::auth::presented(request.headers());
    let caller = if guard.token.as_ref().is_some_and(|t| secret.as_deref().is_some_and(|s| t.matches(s))) {
        Caller::Operator
    } else {
        let connection = request.extensions().get::<Connection>();
        let credentials = Credentials {
            certificate: connection.and_then(|c| c.certificate.as_deref()),
            token: secret.as_deref(),
            // A request without its connection's details (none is served
            // that way) counts as coming from nowhere the list names.
            peer: connection.map_or(std::net::Ipv6Addr::UNSPECIFIED.into(), |c| c.peer),
            tls: connection.is_none_or(|c| c.tls),
        };
        match acl.0.identify(&credentials) {
            Some(grant) => Caller::Listed(grant),
            None => {
                let why = if secret.is_some() && credentials.certificate.is_none() {
                    "the token sent is neither --web-token nor a web_token of the ACL"
                } else {
                    "the ACL knows no identity for this request: send a client certificate or a token (Bearer, or \
                     Basic password)"
                };
                tracing::info!(peer = %credentials.peer, "web port: request without a known identity refused");
                return Err(Box::new(crate::acl::unauthorized(why)));
            }
        }
    };
    let refused = match crate::acl::need(request.method(), request.uri().path()) {
        Need::Read if !caller.may_read() => Some("admin = read"),
        Need::Write if !caller.may_write() => Some("admin = write"),
        _ => None,
    };
    match refused {
        Some(lacks) => Err(Box::new(caller.forbidden(lacks).into_response())),
        None => Ok(caller),
    }
}
