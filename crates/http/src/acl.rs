//! The web port under the server's access control list (`--acl-file`):
//! who a request comes from and what that identity may do. The list
//! itself lives in the server; the web port reaches it through the
//! [`WebAcl`] trait, asked once per request, so a reload or an `acl grant`
//! holds for the next request. Without an ACL none of this runs and the
//! web port behaves as with `--web-token` alone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::api::ApiError;

/// What a request presents, for the list to name its identity.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The name in the verified client certificate (`--web-tls`).
    pub certificate: Option<&'a str>,
    /// The secret sent as a Bearer token or a Basic password, when it is
    /// not the operator's `--web-token`.
    pub token: Option<&'a str>,
    /// The peer's address.
    pub peer: IpAddr,
    /// The connection is TLS (`net:` sections are for plaintext peers).
    pub tls: bool,
}

/// How a request's identity was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The operator's `--web-token`.
    OperatorToken,
    /// A verified client certificate's name.
    Certificate,
    /// A section's `web_token`.
    Token,
    /// The `net:` section the peer's address falls in.
    Network,
}

/// Whether a function name matches a section's `invoke` pattern.
pub type FunctionTest = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// A section's `invoke` pattern: its text (to show) and its test.
#[derive(Clone)]
pub struct Invoke {
    /// The pattern as the list writes it.
    pub pattern: String,
    /// Whether a function name matches it.
    pub matches: FunctionTest,
}

/// An identity and its rights, as the list stands when the request came.
#[derive(Clone)]
pub struct WebGrant {
    /// The identity: a certificate's name or a section's name.
    pub name: String,
    /// How it was found.
    pub via: Via,
    /// The list has a section for it (a certificate may name someone the
    /// list does not know: identified, but allowed nothing).
    pub known: bool,
    /// `admin = read` or `write`: the dashboard and the API's reads.
    pub read: bool,
    /// `admin = write`: the operator's actions.
    pub write: bool,
    /// The functions it may submit jobs to.
    pub invoke: Option<Invoke>,
}

/// Something that ends when dropped (see [`WebAcl::vouch`]).
pub struct Vouch(pub Option<Box<dyn Send + Sync>>);

/// The server's list, as the web port asks it.
pub trait WebAcl: Send + Sync {
    /// The identity a request presents, or `None` when it presents none
    /// the list knows (no certificate, an unknown token, no `net:`
    /// section for a plaintext peer).
    fn identify(&self, credentials: &Credentials<'_>) -> Option<WebGrant>;

    /// Tells the server's Gearman port that the connection coming from
    /// `local` (the web port's own, to submit or requeue on a web client's
    /// behalf) acts as the section `section`, or with every right for
    /// `None` (the operator's token), for as long as the returned value
    /// lives.
    fn vouch(&self, local: SocketAddr, section: Option<&str>) -> Vouch;
}

/// A shared [`WebAcl`].
#[derive(Clone)]
pub struct WebAclHandle(pub Arc<dyn WebAcl>);

impl std::fmt::Debug for WebAclHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebAclHandle")
    }
}

/// Who sent a request, as the handlers see it.
#[derive(Clone)]
pub(crate) enum Caller {
    /// No ACL: the web port's rules without one (everything, past the
    /// `--web-token` when there is one).
    Open,
    /// The operator's `--web-token` under an ACL: everything.
    Operator,
    /// An identity of the list.
    Listed(WebGrant),
}

impl Caller {
    pub(crate) fn may_read(&self) -> bool {
        match self {
            Caller::Open | Caller::Operator => true,
            Caller::Listed(grant) => grant.read,
        }
    }

    pub(crate) fn may_write(&self) -> bool {
        match self {
            Caller::Open | Caller::Operator => true,
            Caller::Listed(grant) => grant.write,
        }
    }

    pub(crate) fn may_invoke(&self, function: &[u8]) -> bool {
        match self {
            Caller::Open | Caller::Operator => true,
            Caller::Listed(grant) => grant.invoke.as_ref().is_some_and(|i| (i.matches)(function)),
        }
    }

    /// May invoke some function (so may cancel the jobs of those).
    pub(crate) fn invokes_any(&self) -> bool {
        match self {
            Caller::Open | Caller::Operator => true,
            Caller::Listed(grant) => grant.invoke.is_some(),
        }
    }

    /// The name refusals give.
    pub(crate) fn name(&self) -> &str {
        match self {
            Caller::Open => "anyone",
            Caller::Operator => "the operator (--web-token)",
            Caller::Listed(grant) => &grant.name,
        }
    }

    /// The 403 for a caller that lacks `what`.
    pub(crate) fn forbidden(&self, what: &str) -> ApiError {
        let lacks = match self {
            Caller::Listed(grant) if !grant.known => format!("{what} (the ACL has no section for it)"),
            _ => what.to_string(),
        };
        tracing::info!(identity = %self.name(), lacks = %lacks, "web port: ACL refused a request");
        ApiError::new(StatusCode::FORBIDDEN, format!("identity {:?} may not do this: it needs {lacks}", self.name()))
    }
}

/// Handlers that decide themselves what a caller needs take it as an
/// argument; every request carries one (the access check puts it there).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "request without its caller"))
    }
}

/// A connection to the server's own Gearman port made on a caller's
/// behalf (a submit, a requeue). Under an ACL the Gearman port would take
/// it for a plaintext peer on loopback, with that `net:` section's rights;
/// instead the web port binds the socket first and vouches for its
/// address as the caller's identity, so the caller's own rights decide
/// there too. Nothing goes on the wire, and the claim lives in the
/// server's memory only for as long as the returned [`Vouch`].
pub(crate) async fn connect_on_behalf(
    addr: SocketAddr,
    acl: Option<&WebAclHandle>,
    caller: &Caller,
) -> std::io::Result<(tokio::net::TcpStream, Vouch)> {
    let section = match (acl, caller) {
        (Some(acl), Caller::Operator) => Some((acl, None)),
        (Some(acl), Caller::Listed(grant)) => Some((acl, Some(grant.name.as_str()))),
        _ => None,
    };
    let Some((acl, section)) = section else {
        return Ok((tokio::net::TcpStream::connect(addr).await?, Vouch(None)));
    };
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // The Gearman port's own address is one of this host's, so the
    // connection can come from it (and so from an address known before
    // it is made).
    socket.bind(SocketAddr::new(addr.ip(), 0))?;
    let vouch = acl.0.vouch(socket.local_addr()?, section);
    Ok((socket.connect(addr).await?, vouch))
}

/// What a request needs before its handler runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Only to be someone (`/api/v1/whoami`).
    Identity,
    /// `admin = read` or `write`.
    Read,
    /// `admin = write`.
    Write,
    /// The handler decides (a submit needs `invoke` of its function; a
    /// cancel `admin = write` or `invoke` of its job's function; reading
    /// one job `admin = read` or `invoke` of its function, as GET_STATUS
    /// on the Gearman port).
    Handler,
}

/// Reads need `admin = read`, everything else `admin = write`, except the
/// requests whose right depends on a function. A route added later is
/// then guarded too: a new write needs `write` until decided otherwise.
pub(crate) fn need(method: &Method, path: &str) -> Need {
    let job = path.strip_prefix("/api/v1/jobs/");
    if method == Method::GET || method == Method::HEAD {
        let one_job = job.is_some_and(|handle| !handle.is_empty() && !handle.contains('/'));
        return match path {
            "/api/v1/whoami" => Need::Identity,
            _ if one_job => Need::Handler,
            _ => Need::Read,
        };
    }
    let submit = path == "/api/v1/jobs" || path == "/api/v1/jobs/";
    let cancel = job.is_some_and(|rest| {
        rest.strip_suffix("/cancel").is_some_and(|handle| !handle.is_empty() && !handle.contains('/'))
    });
    if method == Method::POST && (submit || cancel) {
        Need::Handler
    } else {
        Need::Write
    }
}

/// The 401 for a request with no identity the list knows.
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut answer = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sprocketd\""));
    answer
}

/// `GET /api/v1/whoami`: who the server takes the caller for and what it
/// may do, so the dashboard can offer only the actions that will work.
#[derive(Serialize)]
pub(crate) struct WhoAmI {
    /// Whether an ACL decides (false: everyone past the token may do
    /// everything).
    acl: bool,
    /// The identity; absent without an ACL.
    identity: Option<String>,
    /// How it was found; absent without an ACL.
    via: Option<Via>,
    read: bool,
    write: bool,
    /// The functions it may submit to: a pattern matching whole names,
    /// `.*` for all, absent for none.
    invoke: Option<String>,
}

pub(crate) async fn whoami(caller: Caller) -> Json<WhoAmI> {
    let all = Some(".*".to_string());
    Json(match &caller {
        Caller::Open => WhoAmI { acl: false, identity: None, via: None, read: true, write: true, invoke: all },
        Caller::Operator => WhoAmI {
            acl: true,
            identity: Some(caller.name().to_string()),
            via: Some(Via::OperatorToken),
            read: true,
            write: true,
            invoke: all,
        },
        Caller::Listed(grant) => WhoAmI {
            acl: true,
            identity: Some(grant.name.clone()),
            via: Some(grant.via),
            read: grant.read,
            write: grant.write,
            invoke: grant.invoke.as_ref().map(|i| i.pattern.clone()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_the_requests_handlers_decide() {
        assert_eq!(need(&Method::GET, "/"), Need::Read);
        assert_eq!(need(&Method::GET, "/metrics"), Need::Read);
        assert_eq!(need(&Method::HEAD, "/api/v1/functions"), Need::Read);
        assert_eq!(need(&Method::GET, "/api/v1/whoami"), Need::Identity);
        assert_eq!(need(&Method::GET, "/api/v1/jobs/H:x:1"), Need::Handler);
        assert_eq!(need(&Method::GET, "/api/v1/jobs/"), Need::Read);
        assert_eq!(need(&Method::GET, "/api/v1/jobs"), Need::Read);
        assert_eq!(need(&Method::POST, "/api/v1/jobs"), Need::Handler);
        assert_eq!(need(&Method::POST, "/api/v1/jobs/H:x:1/cancel"), Need::Handler);
        assert_eq!(need(&Method::POST, "/api/v1/jobs//cancel"), Need::Write);
        assert_eq!(need(&Method::POST, "/api/v1/jobs/a/b/cancel"), Need::Write);
        assert_eq!(need(&Method::POST, "/api/v1/functions/f/pause"), Need::Write);
        assert_eq!(need(&Method::DELETE, "/api/v1/dead"), Need::Write);
        assert_eq!(need(&Method::PUT, "/api/v1/whoami"), Need::Write);
        assert_eq!(need(&Method::POST, "/api/v1/dead/requeue"), Need::Write);
    }

    #[test]
    fn rights_of_each_kind_of_caller() {
        let build = Invoke { pattern: "build:.*".into(), matches: Arc::new(|f: &[u8]| f.starts_with(b"build:")) };
        let grant =
            WebGrant { name: "ci".into(), via: Via::Token, known: true, read: true, write: false, invoke: Some(build) };
        let ci = Caller::Listed(grant.clone());
        assert!(ci.may_read() && !ci.may_write() && ci.invokes_any());
        assert!(ci.may_invoke(b"build:x") && !ci.may_invoke(b"deploy"));
        let stranger = Caller::Listed(WebGrant { known: false, read: false, invoke: None, ..grant });
        assert!(!stranger.may_read() && !stranger.invokes_any());
        assert!(format!("{:?}", stranger.forbidden("admin = read")).contains("no section"));
        for all in [Caller::Open, Caller::Operator] {
            assert!(all.may_read() && all.may_write() && all.may_invoke(b"anything"));
        }
    }
}
