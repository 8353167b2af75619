//! gearmand's HTTP protocol (`-r http --http-port PORT`): a port of its
//! own where the request path names a function, the body is the workload
//! and `X-Gearman-*` headers choose the unique key, background and
//! priority. The answer is the job's result (or, for a background job,
//! its handle) with `X-Gearman-Job-Handle` and `X-Gearman-Command`
//! headers, as gearmand's plugin answers.
//!
//! Jobs go to the server's own Gearman port as from any client (see
//! [`crate::submit`]), so coalescing, queue limits and the store apply to
//! them exactly as to jobs submitted there. Where gearmand's plugin loses
//! or garbles a result or hangs, this one answers correctly instead; the
//! differences are listed in docs/http.md.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use sprocket_proto::Priority;

use crate::submit::{Outcome, Submission, SubmitError};

/// gearmand's unique key for a request without `X-Gearman-Unique`: one
/// shared key, so identical concurrent requests coalesce into one job.
const DEFAULT_UNIQUE: &[u8] = b"-";
/// Longest a submission waits for JOB_CREATED (the store's commit
/// included) before the request is answered 504.
const ACKNOWLEDGE_WITHIN: Duration = Duration::from_secs(20);
/// Longest a client may take to send its request body, so a slow one
/// does not hold a connection slot for long.
const BODY_WITHIN: Duration = Duration::from_secs(30);

/// The HTTP protocol port's settings.
#[derive(Debug, Clone)]
pub struct GearmandHttpConfig {
    /// The server's own Gearman port, where the jobs go.
    pub gearman: SocketAddr,
    /// The Gearman port's `--max-packet-size`; also the largest request
    /// body accepted.
    pub max_packet_size: u32,
    /// Longest a foreground request waits for its job's result; the job
    /// goes on when it passes, and the request is answered 504.
    pub wait: Duration,
}

/// A bound HTTP protocol port, not yet serving.
#[derive(Debug)]
pub struct GearmandHttpListener {
    listener: std::net::TcpListener,
    config: GearmandHttpConfig,
}

impl GearmandHttpListener {
    /// Binds `addr` (port 0 lets the system choose).
    pub fn bind(addr: SocketAddr, config: GearmandHttpConfig) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(GearmandHttpListener { listener, config })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves the port on a thread with a runtime of its own, so slow HTTP
    /// clients never share the engine's thread; runs until the process
    /// ends.
    pub fn spawn(self) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("sprocketd-http-protocol".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(self.listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("HTTP protocol port (-r http) off: {e}");
                        return;
                    }
                };
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(%addr, "HTTP protocol port (-r http) listening");
                }
                crate::serve::serve_connections(listener, router(self.config), true, None).await;
            });
        })?;
        Ok(())
    }
}

fn router(config: GearmandHttpConfig) -> Router {
    Router::new().fallback(answer).with_state(config)
}

/// How the request asks its job to run, from its `X-Gearman-*` headers.
struct JobHeaders {
    unique: Bytes,
    background: bool,
    priority: Priority,
}

impl JobHeaders {
    /// Reads the headers as gearmand does: values compared without
    /// regard to case, anything unrecognised meaning the default.
    fn read(headers: &HeaderMap) -> Self {
        let value = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
        JobHeaders {
            unique: value("x-gearman-unique").map_or(Bytes::from_static(DEFAULT_UNIQUE), Bytes::copy_from_slice),
            background: value("x-gearman-background").is_some_and(|v| v.eq_ignore_ascii_case(b"true")),
            priority: match value("x-gearman-priority") {
                Some(v) if v.eq_ignore_ascii_case(b"high") => Priority::High,
                Some(v) if v.eq_ignore_ascii_case(b"low") => Priority::Low,
                _ => Priority::Normal,
            },
        }
    }
}

async fn answer(State(config): State<GearmandHttpConfig>, request: Request) -> Response {
    let method = request.method().clone();
    if method == Method::TRACE {
        return trace(&request);
    }
    if ![Method::GET, Method::PUT, Method::POST, Method::HEAD].contains(&method) {
        let mut answer = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} is not part of gearmand's HTTP protocol: use POST, PUT, GET or HEAD"),
        );
        answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST, PUT, TRACE"));
        return answer;
    }
    // gearmand takes the function name from the raw request target: the
    // leading slashes go, nothing is URL-decoded and a query stays part
    // of the name.
    let target = request.uri().path_and_query().map_or("", |p| p.as_str());
    let function = Bytes::copy_from_slice(target.trim_start_matches('/').as_bytes());
    if function.is_empty() {
        // gearmand's ping: HEAD on the root answers 200 with no job.
        if method == Method::HEAD {
            return with_server(StatusCode::OK.into_response());
        }
        return error(StatusCode::NOT_FOUND, "no function name: give it as the path, as in POST /reverse");
    }
    let job = JobHeaders::read(request.headers());
    let limit = usize::try_from(config.max_packet_size).unwrap_or(usize::MAX);
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the server's --max-packet-size of {limit} bytes"),
        )
    };
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body = match tokio::time::timeout(BODY_WITHIN, axum::body::to_bytes(request.into_body(), limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            let message = format!("cannot read the request body: {e}");
            return if is_length_limit(e) { too_large() } else { error(StatusCode::BAD_REQUEST, &message) };
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                &format!("the request body did not arrive within {} s", BODY_WITHIN.as_secs()),
            )
        }
    };
    // gearmand reads a body for POST and PUT only; GET and HEAD submit
    // an empty workload.
    let data = if method == Method::POST || method == Method::PUT { body } else { Bytes::new() };
    let submission = Submission {
        function,
        unique: job.unique,
        data,
        priority: job.priority,
        background: job.background,
        exceptions: true,
    };
    // `-r http` runs without an ACL (the flags refuse both together).
    let anyone = (None, &crate::acl::Caller::Open);
    let outcome = crate::submit::submit(
        config.gearman,
        config.max_packet_size,
        submission,
        ACKNOWLEDGE_WITHIN,
        config.wait,
        anyone,
    )
    .await;
    let head_only = method == Method::HEAD;
    match outcome {
        Ok(outcome) => job_answer(outcome, head_only, config.wait),
        // A full queue or a store that is down passes; anything else the
        // Gearman port refuses (a unique key over 64 bytes, a reserved
        // function) is the request's fault.
        Err(e @ SubmitError::Refused { .. }) => {
            let status = match &e {
                SubmitError::Refused { code, .. } if code == "QUEUE_ERROR" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, &e.to_string())
        }
        Err(e @ SubmitError::Unreachable { .. }) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
        Err(e @ SubmitError::NotAcknowledged(_)) => error(StatusCode::GATEWAY_TIMEOUT, &e.to_string()),
    }
}

/// The answer for how the job went.
fn job_answer(outcome: Outcome, head_only: bool, wait: Duration) -> Response {
    let (status, handle, command, body) = match outcome {
        Outcome::Queued { handle } => (StatusCode::OK, handle, "JOB_CREATED", Bytes::new()),
        Outcome::Completed { handle, result } => (StatusCode::OK, handle, "WORK_COMPLETE", result),
        Outcome::Failed { handle } => {
            (StatusCode::INTERNAL_SERVER_ERROR, handle, "WORK_FAIL", Bytes::from_static(b"the job failed\n"))
        }
        Outcome::Exception { handle, exception } => {
            (StatusCode::INTERNAL_SERVER_ERROR, handle, "WORK_EXCEPTION", exception)
        }
        Outcome::StillRunning { handle } => (
            StatusCode::GATEWAY_TIMEOUT,
            handle,
            "JOB_CREATED",
            Bytes::from(format!(
                "the job did not finish within {} s (--http-wait); it goes on with nobody waiting for its result\n",
                wait.as_secs()
            )),
        ),
    };
    let length = body.len();
    let mut answer = Response::new(Body::from(body));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    if let Ok(value) = HeaderValue::from_bytes(&handle) {
        headers.insert("x-gearman-job-handle", value);
    }
    // gearmand leaves the command out of its answer to HEAD.
    if !head_only {
        headers.insert("x-gearman-command", HeaderValue::from_static(command));
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    with_server(answer)
}

/// TRACE echoes the request's head back, as HTTP defines it (gearmand's
/// plugin means to, but never answers).
fn trace(request: &Request) -> Response {
    let mut echo = format!("{} {} {:?}\r\n", request.method(), request.uri(), request.version()).into_bytes();
    for (name, value) in request.headers() {
        echo.extend_from_slice(name.as_str().as_bytes());
        echo.extend_from_slice(b": ");
        echo.extend_from_slice(value.as_bytes());
        echo.extend_from_slice(b"\r\n");
    }
    let mut answer = Response::new(Body::from(echo));
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("message/http"));
    with_server(answer)
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut answer = Response::new(Body::from(format!("{message}\n")));
    *answer.status_mut() = status;
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    with_server(answer)
}

fn with_server(mut answer: Response) -> Response {
    answer
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static(concat!("sprocketd/", env!("CARGO_PKG_VERSION"))));
    answer
}

/// Whether reading the body stopped at its size limit.
fn is_length_limit(e: axum::Error) -> bool {
    let inner = e.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
