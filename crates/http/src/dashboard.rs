//! The dashboard: one page with its style sheet and script, built into
//! the binary, so it works with no internet and no build step. It reads
//! the JSON API and the live stream at `/api/v1/events` like any client.
//!
//! Every answer forbids framing and loading anything from elsewhere
//! (Content-Security-Policy), so another site can neither show the page
//! in a frame to trick a click on a write action, nor can the page pull
//! in code from outside.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("dashboard/index.html");
const STYLE: &str = include_str!("dashboard/dashboard.css");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const HISTORY_STYLE: &str = include_str!("dashboard/history.css");
const HISTORY_SCRIPT: &str = include_str!("dashboard/history.js");

/// Only this server's own files and API; no frames, no inline code.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes, for any router state.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { file("text/html; charset=utf-8", PAGE) }))
        .route("/dashboard.css", get(|| async { file("text/css; charset=utf-8", STYLE) }))
        .route("/dashboard.js", get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/history.css", get(|| async { file("text/css; charset=utf-8", HISTORY_STYLE) }))
        .route("/history.js", get(|| async { file("text/javascript; charset=utf-8", HISTORY_SCRIPT) }))
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            // A new binary may bring new files: always ask.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_name_nothing_outside_the_server() {
        for (name, text) in [
            ("index.html", PAGE),
            ("dashboard.css", STYLE),
            ("dashboard.js", SCRIPT),
            ("history.css", HISTORY_STYLE),
            ("history.js", HISTORY_SCRIPT),
        ] {
            // The SVG namespace is a name the script gives elements it
            // makes, not an address anything is loaded from.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            for scheme in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(scheme), "{name} names {scheme}");
            }
        }
        assert!(PAGE.contains("src=\"dashboard.js\"") && PAGE.contains("href=\"dashboard.css\""));
        assert!(PAGE.contains("src=\"history.js\"") && PAGE.contains("href=\"history.css\""));
    }
}
