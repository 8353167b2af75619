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
}

/// Connection → engine.
pub enum Event {
    Connected { conn: ConnId, fd: i64, peer: String, outlet: Arc<Outlet> },
    Frames { conn: ConnId, frames: Vec<Inbound> },
    Closed { conn: ConnId },
}
