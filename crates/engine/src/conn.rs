//! Per-connection state. Any connection may submit jobs and do work.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::types::{FnId, JobNo, Out};

/// A registered ability: the function and an optional time limit per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ability {
    pub function: FnId,
    pub timeout_ms: Option<u64>,
}

/// Output held back so a connection's replies stay in request order while
/// a background job's insert is not yet durable.
#[derive(Debug, Clone)]
pub enum Held {
    /// JOB_CREATED for `job`, released once store sequence `seq` commits,
    /// or turned into an ERROR if that insert failed.
    JobCreated {
        seq: u64,
        handle: Bytes,
    },
    Ready(Out),
}

#[derive(Debug)]
pub struct Conn {
    /// Socket descriptor and peer address, shown by `workers`.
    pub fd: i64,
    pub peer: String,
    pub client_id: Bytes,
    /// Newest registration first, as gearmand walks them.
    pub abilities: Vec<Ability>,
    pub exceptions: bool,
    pub sleeping: bool,
    pub noop_sent: bool,
    /// Foreground jobs this connection waits on.
    pub waiting: Vec<JobNo>,
    /// Jobs assigned to this connection as a worker.
    pub running: Vec<JobNo>,
    pub held: VecDeque<Held>,
}

impl Conn {
    pub fn new(fd: i64, peer: String, exceptions: bool) -> Conn {
        Conn {
            fd,
            peer,
            client_id: Bytes::from_static(b"-"),
            abilities: Vec::new(),
            exceptions,
            sleeping: false,
            noop_sent: false,
            waiting: Vec::new(),
            running: Vec::new(),
            held: VecDeque::new(),
        }
    }

    pub fn can_do(&self, f: FnId) -> bool {
        self.abilities.iter().any(|a| a.function == f)
    }
}
