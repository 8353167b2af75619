//! The JSON API under `/api/v1/`: the engine's views rendered as JSON and
//! its operator commands. Every error is a JSON object `{"error": "…"}`
//! with a status that says what kind of error it is.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sprocket_engine::{CommandError, FunctionView, JobFilter, JobStatus, JobView, WorkerView};
use sprocket_proto::Priority;

use crate::backend::{Backend, Unavailable};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub backend: Arc<dyn Backend>,
    pub started: Instant,
    /// The store, as the start-up line names it.
    pub store: String,
}

/// An error answer: its status and a message for a person.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

impl From<Unavailable> for ApiError {
    fn from(e: Unavailable) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::new(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

fn command_error(e: CommandError) -> ApiError {
    let status = match e {
        CommandError::UnknownJob | CommandError::FunctionNotFound => StatusCode::NOT_FOUND,
        CommandError::FunctionBusy => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.to_string())
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Taken by every write handler: refuses a request that a page of another
/// site sent (see [`crate::auth::cross_site`]). Write handlers also read a
/// JSON body, which needs `Content-Type: application/json`: a page of
/// another site can send a form without asking the server first, but not
/// that.
pub(crate) struct SameSite;

impl<S: Send + Sync> FromRequestParts<S> for SameSite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SameSite, ApiError> {
        match crate::auth::cross_site(&parts.headers) {
            Some(why) => Err(ApiError::new(StatusCode::FORBIDDEN, format!("cross-site request refused: {why}"))),
            None => Ok(SameSite),
        }
    }
}

/// The body of a command that takes no arguments: `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArguments {}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Three numbers by priority.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ByPriority<T> {
    high: T,
    normal: T,
    low: T,
}

impl<T: Copy> From<[T; 3]> for ByPriority<T> {
    fn from(a: [T; 3]) -> Self {
        ByPriority { high: a[0], normal: a[1], low: a[2] }
    }
}

#[derive(Serialize)]
pub(crate) struct ServerOut {
    version: String,
    pid: u32,
    uptime_seconds: f64,
    log_level: String,
    connections: usize,
    functions: usize,
    jobs: usize,
    /// Resident memory in bytes, when the system tells it.
    memory_rss_bytes: Option<u64>,
    store: StoreOut,
}

#[derive(Serialize)]
struct StoreOut {
    name: String,
    up: bool,
    unconfirmed_inserts: usize,
}

pub(crate) async fn server(State(s): State<AppState>) -> ApiResult<ServerOut> {
    let info = s.backend.server_info().await?;
    Ok(Json(ServerOut {
        version: info.version,
        pid: info.pid,
        uptime_seconds: s.started.elapsed().as_secs_f64(),
        log_level: info.verbose,
        connections: info.connections,
        functions: info.functions,
        jobs: info.jobs,
        memory_rss_bytes: resident_bytes(),
        store: StoreOut { name: s.store.clone(), up: !info.store_down, unconfirmed_inserts: info.unconfirmed_inserts },
    }))
}

/// VmRSS from /proc/self/status (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[derive(Serialize)]
pub(crate) struct FunctionOut {
    name: String,
    total: usize,
    running: usize,
    waiting: usize,
    queued: ByPriority<usize>,
    workers: usize,
    max_queue: ByPriority<u32>,
}

impl From<FunctionView> for FunctionOut {
    fn from(f: FunctionView) -> Self {
        FunctionOut {
            name: text(&f.name),
            total: f.total,
            running: f.running,
            waiting: f.total.saturating_sub(f.running),
            queued: f.queued.into(),
            workers: f.workers,
            max_queue: f.max_queue.into(),
        }
    }
}

pub(crate) async fn functions(State(s): State<AppState>) -> ApiResult<Vec<FunctionOut>> {
    Ok(Json(s.backend.functions().await?.into_iter().map(FunctionOut::from).collect()))
}

pub(crate) async fn function(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<FunctionOut> {
    let found = s.backend.functions().await?.into_iter().find(|f| f.name == name.as_bytes());
    found.map(|f| Json(f.into())).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no function has that name"))
}

pub(crate) async fn drop_function(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<serde_json::Value> {
    s.backend.drop_function(Bytes::from(name.clone())).await?.map_err(command_error)?;
    Ok(Json(serde_json::json!({ "dropped": name })))
}

pub(crate) async fn max_queue(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<ByPriority<u32>>, JsonRejection>,
) -> ApiResult<FunctionOut> {
    let Json(limits) = body?;
    let limits = [limits.high, limits.normal, limits.low];
    if !s.backend.max_queue(Bytes::from(name.clone()), limits).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no function has that name"));
    }
    function(State(s), Path(name)).await
}

#[derive(Serialize)]
pub(crate) struct WorkerOut {
    id: u64,
    fd: i64,
    address: String,
    client_id: Option<String>,
    functions: Vec<String>,
    running: Vec<String>,
    sleeping: bool,
}

impl From<WorkerView> for WorkerOut {
    fn from(w: WorkerView) -> Self {
        WorkerOut {
            id: w.conn,
            fd: w.fd,
            address: w.peer,
            client_id: (&w.client_id[..] != b"-").then(|| text(&w.client_id)),
            functions: w.functions.iter().map(|f| text(f)).collect(),
            running: w.running.iter().map(|h| text(h)).collect(),
            sleeping: w.sleeping,
        }
    }
}

pub(crate) async fn workers(State(s): State<AppState>) -> ApiResult<Vec<WorkerOut>> {
    Ok(Json(s.backend.workers().await?.into_iter().map(WorkerOut::from).collect()))
}

#[derive(Serialize)]
pub(crate) struct JobOut {
    handle: String,
    unique: String,
    function: String,
    priority: &'static str,
    background: bool,
    state: &'static str,
    worker: Option<u64>,
    /// Unix seconds before which it may not run; absent for at once.
    when: Option<i64>,
    attempts: u32,
    ignored: bool,
    clients: usize,
    progress: Progress,
    stored: bool,
}

#[derive(Serialize)]
struct Progress {
    numerator: u32,
    denominator: u32,
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

fn state_name(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Queued => "queued",
        JobStatus::Scheduled => "scheduled",
        JobStatus::Running { .. } => "running",
    }
}

impl From<JobView> for JobOut {
    fn from(j: JobView) -> Self {
        JobOut {
            handle: text(&j.handle),
            unique: text(&j.unique),
            function: text(&j.function),
            priority: priority_name(j.priority),
            background: j.background,
            state: state_name(j.status),
            worker: match j.status {
                JobStatus::Running { worker } => Some(worker),
                _ => None,
            },
            when: (j.when != 0).then_some(j.when),
            attempts: j.attempts,
            ignored: j.ignored,
            clients: j.clients,
            progress: Progress { numerator: j.progress.0, denominator: j.progress.1 },
            stored: j.stored,
        }
    }
}

/// Most jobs one page holds.
pub(crate) const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobsQuery {
    function: Option<String>,
    state: Option<StateFilter>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum StateFilter {
    Queued,
    Scheduled,
    Running,
}

impl StateFilter {
    fn selects(self, status: JobStatus) -> bool {
        matches!(
            (self, status),
            (StateFilter::Queued, JobStatus::Queued)
                | (StateFilter::Scheduled, JobStatus::Scheduled)
                | (StateFilter::Running, JobStatus::Running { .. })
        )
    }
}

#[derive(Serialize)]
pub(crate) struct JobsPage {
    jobs: Vec<JobOut>,
    offset: usize,
    limit: usize,
    /// The offset of the next page; absent on the last one.
    next_offset: Option<usize>,
}

pub(crate) async fn jobs(
    State(s): State<AppState>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> ApiResult<JobsPage> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit must be 1 to {MAX_PAGE}")));
    }
    // One job more than the page, to tell whether another page follows.
    let wanted = q.offset.checked_add(limit + 1);
    let filter = JobFilter {
        function: q.function.map(Bytes::from),
        // With a state filter the engine cannot count for us.
        limit: if q.state.is_some() { None } else { wanted },
    };
    let all = s.backend.jobs(filter).await?;
    let mut selected = all.into_iter().filter(|j| q.state.is_none_or(|st| st.selects(j.status))).skip(q.offset);
    let jobs: Vec<JobOut> = selected.by_ref().take(limit).map(JobOut::from).collect();
    let more = selected.next().is_some();
    Ok(Json(JobsPage { jobs, offset: q.offset, limit, next_offset: more.then_some(q.offset + limit) }))
}

pub(crate) async fn job(State(s): State<AppState>, Path(handle): Path<String>) -> ApiResult<JobOut> {
    match s.backend.job(Bytes::from(handle)).await? {
        Some(j) => Ok(Json(j.into())),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no job has that handle")),
    }
}

pub(crate) async fn cancel_job(
    _: SameSite,
    State(s): State<AppState>,
    Path(handle): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(NoArguments {}) = body?;
    s.backend.cancel(Bytes::from(handle.clone())).await?.map_err(command_error)?;
    Ok(Json(serde_json::json!({ "cancelled": handle })))
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let info = s.backend.server_info().await?;
    let functions = s.backend.functions().await?;
    let page = crate::metrics::render(&info, &functions, s.started.elapsed().as_secs_f64());
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page).into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::DOCUMENT).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such path: see /api/v1/openapi.json")
}
