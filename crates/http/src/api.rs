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
use sprocket_engine::policy::{PolicyEntry, PolicySpec};
use sprocket_engine::{
    CommandError, FunctionCounters, FunctionView, JobFilter, JobStatus, JobView, Record, RecordFilter, RecordState,
    WorkerView,
};
use sprocket_proto::Priority;
use sprocket_records::filter::{DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT};
use sprocket_records::Window;

use crate::acl::Caller;
use crate::backend::{Backend, PauseError, Unavailable};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub backend: Arc<dyn Backend>,
    pub started: Instant,
    /// The store, as the start-up line names it.
    pub store: String,
    /// The server's own Gearman port, where submitted jobs go.
    pub gearman: Option<std::net::SocketAddr>,
    /// The Gearman port's `--max-packet-size`.
    pub max_packet_size: u32,
    /// The poller behind `/api/v1/events`, shared by every stream.
    pub live: Arc<crate::live::LiveFeed>,
    /// The server's access control list, when it has one.
    pub acl: Option<crate::acl::WebAclHandle>,
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
        CommandError::ReservedFunction => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

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

/// The body of a command that takes no arguments: `{}`. Read as a map, so
/// that anything but an empty object is refused (serde would read an
/// empty struct from `[]` too).
pub(crate) struct NoArguments {}

impl<'de> Deserialize<'de> for NoArguments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        match map.keys().next() {
            Some(key) => Err(serde::de::Error::custom(format!("unknown field `{key}`: the body must be {{}}"))),
            None => Ok(NoArguments {}),
        }
    }
}

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
    /// Jobs waiting out a retry's backoff (also in `waiting` and `queued`).
    retrying: usize,
    workers: usize,
    max_queue: ByPriority<u32>,
    counters: CountersOut,
    paused: bool,
    /// The retry policy in force for the function; `None` (null) when no
    /// pattern matches it, and its jobs end as gearmand's do.
    policy: Option<PolicyOut>,
    /// Jobs ended per second over the last minute, from the history;
    /// `None` (null) when the server keeps none (`--no-history`).
    rates: Option<RatesOut>,
}

/// A function's retry policy: the pattern it matched, where that came
/// from, and every setting written out.
#[derive(Serialize)]
pub(crate) struct PolicyOut {
    pattern: String,
    source: &'static str,
    spec: PolicySpec,
}

impl From<PolicyEntry> for PolicyOut {
    fn from(e: PolicyEntry) -> Self {
        PolicyOut { source: e.source.as_str(), spec: PolicySpec::of(&e.policy), pattern: e.pattern }
    }
}

/// A function's jobs counted since the server started.
#[derive(Serialize)]
pub(crate) struct CountersOut {
    submitted: u64,
    completed: u64,
    failed: u64,
    exceptions: u64,
    retried: u64,
    dead: u64,
}

impl From<FunctionCounters> for CountersOut {
    fn from(c: FunctionCounters) -> Self {
        CountersOut {
            submitted: c.submitted,
            completed: c.completed,
            failed: c.failed,
            exceptions: c.exceptions,
            retried: c.retried,
            dead: c.dead,
        }
    }
}

impl From<FunctionView> for FunctionOut {
    fn from(f: FunctionView) -> Self {
        FunctionOut {
            name: text(&f.name),
            total: f.total,
            running: f.running,
            waiting: f.total.saturating_sub(f.running),
            queued: f.queued.into(),
            retrying: f.retrying,
            workers: f.workers,
            max_queue: f.max_queue.into(),
            counters: f.counters.into(),
            paused: f.paused,
            policy: None,
            rates: None,
        }
    }
}

pub(crate) async fn functions(State(s): State<AppState>) -> ApiResult<Vec<FunctionOut>> {
    let functions = s.backend.functions().await?;
    let mut extras = FunctionExtras::read(&s).await?;
    Ok(Json(functions.into_iter().map(|f| extras.join(f)).collect()))
}

pub(crate) async fn function(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<FunctionOut> {
    let found = s.backend.functions().await?.into_iter().find(|f| f.name == name.as_bytes());
    let found = found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no function has that name"))?;
    let mut extras = FunctionExtras::read(&s).await?;
    Ok(Json(extras.join(found)))
}

/// A function's jobs ended per second over the history's last minute.
#[derive(Serialize, Clone, Copy, Default)]
pub(crate) struct RatesOut {
    /// How many seconds the rates average over.
    window_seconds: u64,
    completed: f64,
    /// Jobs that ended failed (`WORK_FAIL`), not attempts a policy retried.
    failed: f64,
    exceptions: f64,
    timeouts: f64,
    dead: f64,
    /// Failed attempts a retry policy retried.
    retried: f64,
}

/// What a function's answer adds to its view, read once per listing (not
/// once per function): its rates from the history (`None` when the server
/// keeps no history, so that every function's `rates` is then null) and
/// its retry policy (only functions that have one are listed).
struct FunctionExtras {
    rates: Option<std::collections::HashMap<Bytes, RatesOut>>,
    policies: std::collections::HashMap<Bytes, PolicyEntry>,
}

impl FunctionExtras {
    const WINDOW: Window = Window::Minute;

    fn window_seconds() -> u64 {
        let (slot_ms, slots) = Self::WINDOW.slots();
        slot_ms * slots as u64 / 1000
    }

    async fn read(s: &AppState) -> Result<FunctionExtras, ApiError> {
        let seconds = Self::window_seconds();
        let per_second = |n: u64| n as f64 / seconds as f64;
        let rates = s.backend.history_counts(Self::WINDOW).await?.ok().map(|all| {
            all.into_iter()
                .map(|(name, c)| {
                    let rates = RatesOut {
                        window_seconds: seconds,
                        completed: per_second(c.completed),
                        failed: per_second(c.failed),
                        exceptions: per_second(c.exceptions),
                        timeouts: per_second(c.timeouts),
                        dead: per_second(c.dead),
                        retried: per_second(c.retried),
                    };
                    (name, rates)
                })
                .collect()
        });
        let policies = s.backend.function_policies().await?.into_iter().collect();
        Ok(FunctionExtras { rates, policies })
    }

    /// `f` with its policy and its rates: zeros for a function nothing of
    /// which ended in the window, null without a history.
    fn join(&mut self, f: FunctionView) -> FunctionOut {
        let policy = self.policies.remove(&f.name).map(PolicyOut::from);
        let rates = self.rates.as_ref().map(|all| {
            all.get(&f.name)
                .copied()
                .unwrap_or(RatesOut { window_seconds: Self::window_seconds(), ..RatesOut::default() })
        });
        FunctionOut { policy, rates, ..FunctionOut::from(f) }
    }
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

/// `POST /api/v1/functions/{name}/pause` and `/resume`: the function
/// afterwards.
async fn set_paused(s: AppState, name: String, paused: bool) -> ApiResult<FunctionOut> {
    match s.backend.set_paused(Bytes::from(name.clone()), paused).await? {
        Ok(()) => function(State(s), Path(name)).await,
        Err(PauseError::Refused(e)) => Err(command_error(e)),
        Err(PauseError::NotSaved(why)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("in force until the server restarts, but the store could not save it: {why}"),
        )),
    }
}

pub(crate) async fn pause(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<FunctionOut> {
    let Json(NoArguments {}) = body?;
    set_paused(s, name, true).await
}

pub(crate) async fn resume(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<FunctionOut> {
    let Json(NoArguments {}) = body?;
    set_paused(s, name, false).await
}

pub(crate) async fn purge_queued(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(NoArguments {}) = body?;
    let purged = s.backend.purge_queued(Bytes::from(name)).await?.map_err(command_error)?;
    Ok(Json(serde_json::json!({ "purged": purged })))
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
        JobStatus::Retrying => "retrying",
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
    Retrying,
    Running,
}

impl StateFilter {
    fn selects(self, status: JobStatus) -> bool {
        matches!(
            (self, status),
            (StateFilter::Queued, JobStatus::Queued)
                | (StateFilter::Scheduled, JobStatus::Scheduled)
                | (StateFilter::Retrying, JobStatus::Retrying)
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
        unique: None,
        function: q.function.map(Bytes::from),
        // With a state filter the engine cannot count for us.
        limit: if q.state.is_some() { None } else { wanted },
    };
    let all = s.backend.jobs(filter).await?;
    let mut selected = all.into_iter().filter(|j| q.state.is_none_or(|st| st.selects(j.status))).skip(q.offset);
    let jobs: Vec<JobOut> = selected.by_ref().take(limit).map(JobOut::from).collect();
    let more = selected.next().is_some();
    Ok(Json(JobsPage { jobs, offset: q.offset, limit, next_offset: more.then(|| q.offset.saturating_add(limit)) }))
}

/// A live job with its record so far (`null` for a job that carries none;
/// while the web port is on, every job carries one as long as it lives).
#[derive(Serialize)]
pub(crate) struct LiveJobOut {
    /// Always true: tells this answer from an ended job's record.
    live: bool,
    #[serde(flatten)]
    job: JobOut,
    record: Option<Record>,
}

/// An ended job's record, with `live: false` in front.
#[derive(Serialize)]
pub(crate) struct EndedJobOut {
    live: bool,
    #[serde(flatten)]
    record: Record,
}

/// The store could not be read for records.
fn records_unavailable(e: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("job records unavailable: {e}"))
}

/// One job: the live job with its record so far, or, once it has ended,
/// its record (from the engine or the store), so that polling a handle
/// follows a job from queued to its result.
///
/// Under an ACL an identity without `admin = read` may still follow the
/// jobs of the functions it may invoke (as GET_STATUS on the Gearman port).
pub(crate) async fn job(
    caller: Caller,
    State(s): State<AppState>,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    if !caller.may_read() && !caller.invokes_any() {
        return Err(caller.forbidden("admin = read, or invoke of the job's function"));
    }
    let handle = Bytes::from(handle);
    let live = s.backend.job(handle.clone()).await?;
    // A live job's record is the engine's own, so this costs no store read.
    let record = s.backend.record(handle).await?;
    if !caller.may_read() {
        let function = match (&live, &record) {
            (Some(job), _) => Some(job.function.as_ref()),
            (None, Ok(Some(record))) => Some(record.function()),
            _ => None,
        };
        if let Some(function) = function.filter(|f| !caller.may_invoke(f)) {
            return Err(caller.forbidden(&format!("admin = read, or invoke of {:?}", text(function))));
        }
    }
    if let Some(job) = live {
        let record = record.ok().flatten().filter(|r| !r.state().is_final());
        return Ok(Json(LiveJobOut { live: true, job: job.into(), record }).into_response());
    }
    match record.map_err(records_unavailable)? {
        Some(record) => Ok(Json(EndedJobOut { live: false, record }).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no job or job record has that handle")),
    }
}

/// One job by its function and unique id: the live job (with its record
/// so far) while one is queued, retrying or running, otherwise the record
/// of the newest ended job of the function with that unique.
pub(crate) async fn job_by_unique(
    State(s): State<AppState>,
    Path((function, unique)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (function, unique) = (Bytes::from(function), Bytes::from(unique));
    let filter = JobFilter { function: Some(function.clone()), unique: Some(unique.clone()), limit: Some(1) };
    if let Some(job) = s.backend.jobs(filter).await?.into_iter().next() {
        let record = s.backend.record(job.handle.clone()).await?.ok().flatten().filter(|r| !r.state().is_final());
        return Ok(Json(LiveJobOut { live: true, job: job.into(), record }).into_response());
    }
    let filter = RecordFilter { function: Some(function), unique: Some(unique), limit: 1, ..RecordFilter::default() };
    match s.backend.records(filter).await?.map_err(records_unavailable)?.into_iter().next() {
        Some(record) => Ok(Json(EndedJobOut { live: false, record }).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no job or job record of that function has that unique")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsQuery {
    function: Option<String>,
    state: Option<String>,
    /// Unix milliseconds: records of jobs that ended at or after it.
    since: Option<u64>,
    /// Unix milliseconds: records of jobs that ended before it.
    until: Option<u64>,
    /// Only records whose error text contains this, case aside.
    error: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(crate) struct RecordsOut {
    records: Vec<Record>,
}

/// Ended jobs' records, newest end first.
pub(crate) async fn records(
    State(s): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> ApiResult<RecordsOut> {
    let Query(q) = query?;
    let filter = records_filter(q)?;
    let records = s.backend.records(filter).await?.map_err(records_unavailable)?;
    Ok(Json(RecordsOut { records }))
}

/// Dead jobs' records (dead letters), newest end first: `records` with
/// the state dead.
pub(crate) async fn dead(
    State(s): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> ApiResult<RecordsOut> {
    let Query(q) = query?;
    let filter =
        sprocket_engine::dead_only(records_filter(q)?).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let records = s.backend.records(filter).await?.map_err(records_unavailable)?;
    Ok(Json(RecordsOut { records }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurgeDeadQuery {
    function: Option<String>,
}

/// Deletes dead jobs' records (of one function, or all); answered once
/// the deletes are committed, with how many.
pub(crate) async fn purge_dead(
    _: SameSite,
    State(s): State<AppState>,
    query: Result<Query<PurgeDeadQuery>, QueryRejection>,
) -> ApiResult<serde_json::Value> {
    let Query(q) = query?;
    let purged = s.backend.purge_dead(q.function.map(Bytes::from)).await?.map_err(records_unavailable)?;
    Ok(Json(serde_json::json!({ "purged": purged })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequeueQuery {
    function: String,
}

/// Makes a dead job live again, queued for a fresh series of attempts;
/// answered once it is durable.
pub(crate) async fn requeue_dead(
    _: SameSite,
    caller: Caller,
    State(s): State<AppState>,
    Path(handle): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(NoArguments {}) = body?;
    if !crate::requeue::sendable(&handle) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no job has that handle"));
    }
    let requeued = ask_requeue(&s, &caller, format!("requeue {handle}")).await?;
    Ok(Json(serde_json::json!({ "requeued": requeued, "handle": handle })))
}

/// Requeues every dead job of a function; answered with how many once
/// they are durable.
pub(crate) async fn requeue_dead_function(
    _: SameSite,
    caller: Caller,
    State(s): State<AppState>,
    query: Result<Query<RequeueQuery>, QueryRejection>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Query(q) = query?;
    let Json(NoArguments {}) = body?;
    if !crate::requeue::sendable(&q.function) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "function must be a name without spaces or control characters",
        ));
    }
    let requeued = ask_requeue(&s, &caller, format!("requeue function {}", q.function)).await?;
    Ok(Json(serde_json::json!({ "requeued": requeued })))
}

/// Has the engine run an admin `requeue` line; its refusals become 404
/// (no such job) or 409 (the job is not dead, or cannot be made again).
/// The line goes over the server's own Gearman port, as the caller (see
/// [`crate::acl::connect_on_behalf`]).
async fn ask_requeue(s: &AppState, caller: &Caller, line: String) -> Result<u64, ApiError> {
    use crate::requeue::{Answer, RequeueError};
    let Some(gearman) = s.gearman else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server cannot requeue over its web port (with --ssl its Gearman port speaks TLS only)",
        ));
    };
    let answer =
        crate::requeue::requeue(gearman, line.as_bytes(), (s.acl.as_ref(), caller)).await.map_err(|e| match e {
            RequeueError::Unreachable { .. } => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
            RequeueError::NoAnswer | RequeueError::Garbled(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        })?;
    match answer {
        Answer::Requeued(n) => Ok(n),
        Answer::Refused { code, .. } if code == "UNKNOWN_JOB" => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "no job has that handle"))
        }
        Answer::Refused { code, text } if code == "RECORDS_UNAVAILABLE" => Err(records_unavailable(text)),
        Answer::Refused { code, text } => {
            let text = if text.is_empty() { code } else { text };
            Err(ApiError::new(StatusCode::CONFLICT, text))
        }
    }
}

/// The filter of `/records` and `/dead` from their query parameters.
fn records_filter(q: RecordsQuery) -> Result<RecordFilter, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let state = match q.state.as_deref() {
        None => None,
        Some(name) => match name.parse::<RecordState>() {
            Ok(state) if state.is_final() => Some(state),
            _ => {
                let ended: Vec<&str> = RecordState::ALL.iter().filter(|s| s.is_final()).map(|s| s.as_str()).collect();
                return Err(bad(format!("state must be one of {} (records of ended jobs)", ended.join(", "))));
            }
        },
    };
    let limit = q.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(bad(format!("limit must be 1 to {MAX_SEARCH_LIMIT}")));
    }
    if q.error.as_deref() == Some("") {
        return Err(bad("error must not be empty (leave it out to match any record)".into()));
    }
    Ok(RecordFilter {
        function: q.function.map(Bytes::from),
        state,
        since: q.since,
        until: q.until,
        error: q.error,
        unique: None,
        limit,
    })
}

pub(crate) async fn cancel_job(
    _: SameSite,
    caller: Caller,
    State(s): State<AppState>,
    Path(handle): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(NoArguments {}) = body?;
    may_cancel(&s, &caller, &handle).await?;
    s.backend.cancel(Bytes::from(handle.clone())).await?.map_err(command_error)?;
    Ok(Json(serde_json::json!({ "cancelled": handle })))
}

/// Under an ACL a cancel needs `admin = write`, or the right to invoke
/// the job's function (as `cancel job` on the Gearman port): only then is
/// the job looked up, to learn its function.
async fn may_cancel(s: &AppState, caller: &Caller, handle: &str) -> Result<(), ApiError> {
    if caller.may_write() {
        return Ok(());
    }
    if !caller.invokes_any() {
        return Err(caller.forbidden("admin = write, or invoke of the job's function"));
    }
    let Some(job) = s.backend.job(Bytes::from(handle.to_owned())).await? else {
        return Err(command_error(CommandError::UnknownJob));
    };
    if caller.may_invoke(&job.function) {
        Ok(())
    } else {
        Err(caller.forbidden(&format!("admin = write, or invoke of {:?}", text(&job.function))))
    }
}

pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let info = s.backend.server_info().await?;
    let functions = s.backend.functions().await?;
    let telemetry = s.backend.telemetry().await?;
    let page = crate::metrics::render(&info, &functions, &telemetry, s.started.elapsed().as_secs_f64());
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page).into_response())
}

pub(crate) async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::DOCUMENT).into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such path: see /api/v1/openapi.json")
}

/// Longest a foreground submit may wait for its result, in seconds: the
/// web port answers every request within 30 s.
pub(crate) const MAX_WAIT_SECONDS: u64 = 25;
const DEFAULT_WAIT_SECONDS: u64 = 10;
/// Longest a submit waits for JOB_CREATED (the store's commit included).
const ACKNOWLEDGE_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitIn {
    function: String,
    /// The job's data as text.
    #[serde(default, deserialize_with = "present")]
    data: Option<String>,
    /// The job's data as base64, for bytes that are not text.
    #[serde(default, deserialize_with = "present")]
    data_base64: Option<String>,
    #[serde(default)]
    unique: String,
    #[serde(default = "normal")]
    priority: PriorityIn,
    #[serde(default = "yes")]
    background: bool,
    #[serde(default, deserialize_with = "present")]
    wait_seconds: Option<u64>,
}

/// An optional field that, when given, holds a value: `null` is refused
/// rather than read as absent, so the OpenAPI document's rules about which
/// fields go together mean the same to every client.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

fn normal() -> PriorityIn {
    PriorityIn::Normal
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PriorityIn {
    High,
    Normal,
    Low,
}

#[derive(Serialize)]
pub(crate) struct SubmitOut {
    handle: String,
    /// `queued` (background), `completed`, `failed`, `exception`, or
    /// `waiting` (the wait limit passed; the job goes on).
    outcome: &'static str,
    /// The result (or exception) as text, when it is valid UTF-8.
    result: Option<String>,
    /// The result (or exception) as base64.
    result_base64: Option<String>,
}

pub(crate) async fn submit_job(
    _: SameSite,
    caller: Caller,
    State(s): State<AppState>,
    body: Result<Json<SubmitIn>, JsonRejection>,
) -> Result<(StatusCode, Json<SubmitOut>), ApiError> {
    use crate::submit::{Outcome, Submission, SubmitError};
    use base64::Engine as _;
    let Json(job) = body?;
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, m);
    if job.function.is_empty() {
        return Err(bad("function must not be empty"));
    }
    let data = match (job.data, job.data_base64) {
        (Some(_), Some(_)) => return Err(bad("give data or data_base64, not both")),
        (Some(text), None) => Bytes::from(text),
        (None, Some(b64)) => Bytes::from(
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| bad(&format!("data_base64: {e}")))?,
        ),
        (None, None) => Bytes::new(),
    };
    let wait = job.wait_seconds.unwrap_or(DEFAULT_WAIT_SECONDS);
    if job.background && job.wait_seconds.is_some() {
        return Err(bad("wait_seconds is for foreground jobs (background: false)"));
    }
    if wait == 0 || wait > MAX_WAIT_SECONDS {
        return Err(bad(&format!("wait_seconds must be 1 to {MAX_WAIT_SECONDS}")));
    }
    if !caller.may_invoke(job.function.as_bytes()) {
        return Err(caller.forbidden(&format!("invoke of {:?}", job.function)));
    }
    let Some(gearman) = s.gearman else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server takes no jobs over its web port (with --ssl its Gearman port speaks TLS only)",
        ));
    };
    let submission = Submission {
        function: Bytes::from(job.function),
        unique: Bytes::from(job.unique),
        data,
        priority: match job.priority {
            PriorityIn::High => Priority::High,
            PriorityIn::Normal => Priority::Normal,
            PriorityIn::Low => Priority::Low,
        },
        background: job.background,
        // As before: an exception is reported as a failure.
        exceptions: false,
    };
    let outcome = crate::submit::submit(
        gearman,
        s.max_packet_size,
        submission,
        ACKNOWLEDGE_WITHIN,
        std::time::Duration::from_secs(wait),
        (s.acl.as_ref(), &caller),
    )
    .await
    .map_err(|e| match e {
        SubmitError::Unreachable { .. } => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
        SubmitError::Refused { .. } | SubmitError::NotAcknowledged(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    })?;
    let out = |handle: &Bytes, outcome: &'static str, result: Option<&Bytes>| SubmitOut {
        handle: text(handle),
        outcome,
        result: result.and_then(|r| std::str::from_utf8(r).ok().map(str::to_owned)),
        result_base64: result.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
    };
    Ok(match &outcome {
        Outcome::Queued { handle } => (StatusCode::ACCEPTED, Json(out(handle, "queued", None))),
        Outcome::StillRunning { handle } => (StatusCode::ACCEPTED, Json(out(handle, "waiting", None))),
        Outcome::Completed { handle, result } => (StatusCode::OK, Json(out(handle, "completed", Some(result)))),
        Outcome::Failed { handle } => (StatusCode::OK, Json(out(handle, "failed", None))),
        Outcome::Exception { handle, exception } => (StatusCode::OK, Json(out(handle, "exception", Some(exception)))),
    })
}
