//! The per-function history in the JSON API: every slot of a window as a
//! series for charts (`/api/v1/history`), and one function's totals and
//! percentiles per window (`/api/v1/functions/{name}/history`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sprocket_records::{HistoryView, Series, Window};

use crate::api::{ApiError, ApiResult, AppState};
use crate::backend::HistoryOff;

/// The query of `/api/v1/history`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesQuery {
    /// `minute`, `hour`, `day` or `week`; `hour` when absent.
    window: Option<String>,
    /// One function; every function summed when absent.
    function: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct SeriesOut {
    /// The function, or `null` for the sum over every function.
    function: Option<String>,
    #[serde(flatten)]
    series: Series,
}

#[derive(Serialize)]
pub(crate) struct FunctionHistoryOut {
    function: String,
    #[serde(flatten)]
    windows: HistoryView,
}

/// The answer when the server keeps no history: 503, as for another part
/// of the server that is not running, with how to turn it on.
fn history_off(e: HistoryOff) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn window(name: Option<&str>) -> Result<Window, ApiError> {
    let name = name.unwrap_or("hour");
    Window::parse(name).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("unknown window {name:?}: give minute, hour, day or week"))
    })
}

pub(crate) async fn series(
    State(s): State<AppState>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> ApiResult<SeriesOut> {
    let Query(q) = query?;
    let window = window(q.window.as_deref())?;
    let series = s.backend.history_series(q.function.clone().map(Bytes::from), window).await?.map_err(history_off)?;
    Ok(Json(SeriesOut { function: q.function, series }))
}

/// A function with nothing ended in the last week (or never seen) has
/// zero counts: the history cannot tell an idle function from an unknown
/// one, and a chart of either is empty.
pub(crate) async fn function(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<FunctionHistoryOut> {
    let windows = s.backend.function_history(Bytes::from(name.clone())).await?.map_err(history_off)?;
    Ok(Json(FunctionHistoryOut { function: name, windows: windows.unwrap_or_default() }))
}

#[cfg(test)]
mod tests {
    use super::window;
    use sprocket_records::Window;

    #[test]
    fn windows_by_name() {
        assert_eq!(window(None).unwrap(), Window::Hour);
        assert_eq!(window(Some("week")).unwrap(), Window::Week);
        let err = window(Some("month")).unwrap_err();
        assert!(format!("{err:?}").contains("minute, hour, day or week"), "{err:?}");
    }
}
