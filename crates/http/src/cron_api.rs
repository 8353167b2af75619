//! `/api/v1/cron`: recurring jobs through the web port, the same as the
//! admin `cron` commands: list the entries, add and remove run-time ones
//! (answered once the store keeps the change), and start one run now.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use sprocket_engine::cron::{iso_time, CronError, CronSpec, CronView};

use crate::api::{ApiError, ApiResult, AppState, NoArguments, SameSite};
use crate::backend::CronChangeError;

/// One entry as the API shows it.
#[derive(Serialize)]
pub(crate) struct CronEntryOut {
    name: String,
    schedule: String,
    timezone: String,
    function: String,
    payload: String,
    priority: &'static str,
    catch_up: &'static str,
    /// `file` or `runtime`.
    source: &'static str,
    /// The next run, Unix seconds.
    next: Option<i64>,
    /// The next run, ISO 8601 in the entry's time zone.
    next_time: Option<String>,
    /// The last run submitted, Unix seconds.
    last: Option<i64>,
}

impl From<CronView> for CronEntryOut {
    fn from(v: CronView) -> CronEntryOut {
        let s = v.spec;
        let next_time = v.next.and_then(|at| iso_time(at, s.timezone.tz()));
        CronEntryOut {
            name: s.name.as_str().to_owned(),
            schedule: s.schedule.as_str().to_owned(),
            timezone: s.timezone.name().to_owned(),
            function: s.function.as_str().to_owned(),
            payload: s.payload,
            priority: s.priority.as_str(),
            catch_up: s.catch_up.as_str(),
            source: v.source.as_str(),
            next: v.next,
            next_time,
            last: v.last,
        }
    }
}

fn cron_error(e: CronError) -> ApiError {
    let status = match e {
        CronError::UnknownEntry => StatusCode::NOT_FOUND,
        CronError::NameTaken { .. } | CronError::FromFile | CronError::NotSubmitted(_) => StatusCode::CONFLICT,
        CronError::BadSpec(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.to_string())
}

fn change_error(e: CronChangeError) -> ApiError {
    match e {
        CronChangeError::Refused(e) => cron_error(e),
        CronChangeError::NotSaved(why) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("in force until the server restarts, but the store could not save it: {why}"),
        ),
    }
}

/// `GET /api/v1/cron`: every entry, by name.
pub(crate) async fn list(State(s): State<AppState>) -> ApiResult<Vec<CronEntryOut>> {
    Ok(Json(s.backend.cron_entries().await?.into_iter().map(CronEntryOut::from).collect()))
}

/// `POST /api/v1/cron`: a run-time entry, answered 201 with the entry once
/// it is stored.
pub(crate) async fn add(
    _: SameSite,
    State(s): State<AppState>,
    body: Result<Json<CronSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<CronEntryOut>), ApiError> {
    let Json(spec) = body?;
    let name = spec.name.as_str().to_owned();
    s.backend.cron_add(spec).await?.map_err(change_error)?;
    let entry = s.backend.cron_entries().await?.into_iter().find(|e| e.spec.name.as_str() == name);
    match entry {
        Some(entry) => Ok((StatusCode::CREATED, Json(entry.into()))),
        // Removed again by someone else between the two requests.
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "the entry was removed meanwhile")),
    }
}

/// `DELETE /api/v1/cron/{name}`: a run-time entry goes.
pub(crate) async fn remove(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<serde_json::Value> {
    s.backend.cron_remove(name.clone()).await?.map_err(change_error)?;
    Ok(Json(serde_json::json!({ "removed": name })))
}

/// `POST /api/v1/cron/{name}/run`: one job for the entry now; its handle.
pub(crate) async fn run(
    _: SameSite,
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<NoArguments>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(NoArguments {}) = body?;
    let handle = s.backend.cron_run(name).await?.map_err(cron_error)?;
    Ok(Json(serde_json::json!({ "handle": String::from_utf8_lossy(&handle) })))
}
