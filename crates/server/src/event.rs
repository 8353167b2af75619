//! Messages between connection tasks and the engine task.

use bytes::Bytes;
use sprocket_engine::{ConnId, Out};
use sprocket_proto::Request;
use std::sync::Arc;

use crate::outlet::Outlet;

/// What a connection's reader produced.
#[derive(Debug)]
pub enum Inbound {
    Request(Request),
    Admin(Bytes),
    /// A protocol error to report to the peer (through the engine, so it
    /// stays in order with earlier replies), then maybe close.
    Error {
        reply: Out,
        close: bool,
    },
    /// A reply the connection made itself (an ACL refusal, an `acl`
    /// command's answer), sent through the engine to keep it in order.
    Answer(Out),
    /// GET_STATUS or GET_STATUS_UNIQUE from a connection under an ACL:
    /// answered only when its identity may invoke the job's function,
    /// which the engine task looks up.
    GuardedStatus {
        request: Request,
        guard: crate::acl::StatusGuard,
    },
    /// `cancel job HANDLE` from an identity without `admin = write`:
    /// carried out only when it may invoke the job's function (geard's
    /// rule), which the engine task looks up.
    GuardedCancel {
        handle: bytes::Bytes,
        guard: crate::acl::StatusGuard,
    },
}

/// The weight of one admin line (see [`Inbound::weight`]).
pub const ADMIN_WEIGHT: usize = 1024;

impl Inbound {
    /// What the frame counts against the connection's allowance of
    /// unhandled requests ([`crate::outlet::MAX_UNHANDLED`]). An admin line
    /// of a few bytes can ask for megabytes (`status` with many functions,
    /// `show jobs`) that take milliseconds to build, so it counts as 1024
    /// binary requests: at most four of a connection's admin lines are in a
    /// turn of the engine.
    pub fn weight(&self) -> usize {
        match self {
            Inbound::Admin(_) => ADMIN_WEIGHT,
            Inbound::Request(_)
            | Inbound::Error { .. }
            | Inbound::Answer(_)
            | Inbound::GuardedStatus { .. }
            | Inbound::GuardedCancel { .. } => 1,
        }
    }
}

/// Connection → engine.
pub enum Event {
    Connected {
        conn: ConnId,
        fd: i64,
        peer: String,
        outlet: Arc<Outlet>,
        /// What the connection may read through the server's record
        /// functions, with an ACL.
        read_guard: Option<sprocket_engine::ReadGuard>,
    },
    /// `weight` is the frames' total [`Inbound::weight`], handed back to the
    /// connection's outlet once they are handled.
    Frames {
        conn: ConnId,
        frames: Vec<Inbound>,
        weight: usize,
        /// When the latest socket read that fed these frames returned: the
        /// start of the submit-to-JOB_CREATED time of the submissions
        /// among them.
        read_at: std::time::Instant,
    },
    Closed {
        conn: ConnId,
    },
}
