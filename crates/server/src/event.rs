//! Messages between connection tasks and the engine task.

use bytes::Bytes;
use sprocket_engine::{ConnId, Out};
use sprocket_proto::Request;
use tokio::sync::mpsc;

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
#[derive(Debug)]
pub enum Event {
    Connected { conn: ConnId, fd: i64, peer: String, tx: mpsc::UnboundedSender<ConnCmd> },
    Frames { conn: ConnId, frames: Vec<Inbound> },
    Closed { conn: ConnId },
}

/// Engine → connection writer.
#[derive(Debug)]
pub enum ConnCmd {
    Send(Vec<Out>),
    /// Flush what was sent, then close.
    Close,
}
