//! sprocketd's web port: a dashboard at `/` (a page built into the
//! binary), a JSON API under `/api/v1/` (described by the OpenAPI document
//! at `/api/v1/openapi.json`) with a live stream of snapshots at
//! `/api/v1/events`, and Prometheus metrics at `/metrics`, served from the
//! same process as the Gearman port.
//!
//! The web port never touches the engine itself: every answer comes
//! through a [`Backend`], which the server implements with its typed
//! query and command channel, so a web request waits its turn like any
//! other request and never holds a lock the Gearman connections need.
//! [`spawn`] runs the port on a thread and runtime of its own, so slow web
//! clients or a large `/metrics` page do not share the engine's thread.
#![forbid(unsafe_code)]

mod acl;
mod api;
mod auth;
mod backend;
mod cron_api;
mod dashboard;
mod gearmand_http;
mod history_api;
mod listen;
mod live;
mod metrics;
mod openapi;
mod requeue;
mod serve;
mod submit;

pub use acl::{Credentials, Invoke, Via, Vouch, WebAcl, WebAclHandle, WebGrant};
pub use auth::{Token, TokenError};
pub use backend::{Backend, CronChangeError, HistoryOff, PauseError, Unavailable};
pub use gearmand_http::{GearmandHttpConfig, GearmandHttpListener};
pub use listen::{WebListen, WebListenError, DEFAULT_WEB_PORT};
pub use metrics::{FunctionTimings, Histogram, Telemetry};
pub use serve::{bind, spawn, BindError, WebConfig, WebListener, WebTls, WebTlsHandle};
