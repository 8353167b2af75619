//! Per-connection state. Any connection may submit jobs and do work.

use std::sync::Arc;

use bytes::Bytes;

use crate::hash::FastMap;
use crate::ledger::HeldReplies;
use crate::types::{ConnId, FnId, JobNo};

/// A registered ability: the function and an optional time limit per job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ability {
    pub function: FnId,
    /// CAN_DO_TIMEOUT's limit for each job of the function, if one was set.
    pub timeout_ms: Option<u64>,
}

/// One connection, as client and as worker.
#[derive(Debug)]
pub(crate) struct Conn {
    /// Socket descriptor and peer address, shown by `workers`; the address
    /// shared, as every job record of an attempt on this connection names
    /// it.
    pub fd: i64,
    pub peer: Arc<str>,
    /// What SET_CLIENT_ID set (`-` when nothing).
    pub client_id: Bytes,
    /// Newest registration first, as gearmand walks them.
    pub abilities: Vec<Ability>,
    /// WORK_EXCEPTION is forwarded to it (OPTION_REQ exceptions).
    pub exceptions: bool,
    /// Where it is between PRE_SLEEP, NOOP and GRAB_JOB.
    sleep: Sleep,
    /// Foreground jobs this connection waits on, one entry per submission.
    pub waiting: Vec<JobNo>,
    /// Jobs assigned to this connection as a worker.
    pub running: Vec<JobNo>,
    /// Replies held back behind a JOB_CREATED that waits for the store.
    pub held: HeldReplies,
    /// Which functions' jobs it may read through `sprocket.result`,
    /// `sprocket.record` and `sprocket.records` (set by an access list);
    /// `None` reads every job.
    pub read_guard: Option<ReadGuard>,
}

/// Says whether a connection may read the records and results of a
/// function's jobs (an access list's `invoke` rule, which the engine does
/// not know itself).
#[derive(Clone)]
pub struct ReadGuard(pub Arc<FunctionCheck>);

/// A check of a function name.
pub type FunctionCheck = dyn Fn(&[u8]) -> bool + Send + Sync;

impl ReadGuard {
    /// Whether jobs of `function` may be read.
    pub fn allows(&self, function: &[u8]) -> bool {
        (self.0)(function)
    }
}

impl std::fmt::Debug for ReadGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadGuard")
    }
}

impl Conn {
    fn new(fd: i64, peer: String, exceptions: bool) -> Conn {
        Conn {
            fd,
            peer: peer.into(),
            client_id: Bytes::from_static(b"-"),
            abilities: Vec::new(),
            exceptions,
            sleep: Sleep::Awake,
            waiting: Vec::new(),
            running: Vec::new(),
            held: HeldReplies::default(),
            read_guard: None,
        }
    }

    /// Whether it registered function `f`.
    pub fn can_do(&self, f: FnId) -> bool {
        self.abilities.iter().any(|a| a.function == f)
    }

    /// Asleep and not yet woken: a NOOP for work it can do is due to it.
    pub fn is_asleep(&self) -> bool {
        self.sleep == Sleep::Asleep
    }

    /// Asleep and able to do `f`: work of `f` wakes it.
    pub fn wakeable_for(&self, f: FnId) -> bool {
        self.is_asleep() && self.can_do(f)
    }

    /// It asked for a job (GRAB_JOB*): awake, owed nothing.
    pub fn grabbing(&mut self) {
        self.sleep = Sleep::Awake;
    }

    /// It sent PRE_SLEEP and there is nothing for it.
    pub fn fall_asleep(&mut self) {
        self.sleep = Sleep::Asleep;
    }

    /// It is being sent a NOOP: it will grab, and needs no other until
    /// it sleeps again.
    pub fn noop_sent(&mut self) {
        self.sleep = Sleep::Woken;
    }
}

/// A worker's sleep, as the protocol has it: it sends PRE_SLEEP, is sent
/// one NOOP when there is work, and then grabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sleep {
    /// Working or grabbing.
    Awake,
    /// Sent PRE_SLEEP, not yet woken.
    Asleep,
    /// Sent a NOOP since it last slept or grabbed.
    Woken,
}

/// The open connections, by id and in arrival order. A connection is in
/// both or in neither.
#[derive(Debug, Default)]
pub(crate) struct ConnTable {
    by_id: FastMap<ConnId, Conn>,
    /// Oldest first, for `workers` (which lists newest first).
    arrival: Vec<ConnId>,
}

impl ConnTable {
    /// A connection opened.
    pub fn open(&mut self, id: ConnId, fd: i64, peer: String, exceptions: bool) {
        if self.by_id.insert(id, Conn::new(fd, peer, exceptions)).is_none() {
            self.arrival.push(id);
        }
    }

    /// A connection closed: its state, if it was open.
    pub fn close(&mut self, id: ConnId) -> Option<Conn> {
        let conn = self.by_id.remove(&id)?;
        self.arrival.retain(|&c| c != id);
        Some(conn)
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.by_id.get_mut(&id)
    }

    pub fn contains(&self, id: ConnId) -> bool {
        self.by_id.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every connection, oldest first.
    pub fn in_arrival_order(&self) -> impl DoubleEndedIterator<Item = (ConnId, &Conn)> {
        self.arrival.iter().filter_map(|&id| self.by_id.get(&id).map(|c| (id, c)))
    }

    /// Job `job` is no longer held by worker `worker`.
    pub fn stop_running(&mut self, worker: ConnId, job: JobNo) {
        if let Some(c) = self.by_id.get_mut(&worker) {
            c.running.retain(|&j| j != job);
        }
    }

    /// Client `client` no longer waits on job `job` (any of its submissions).
    pub fn stop_waiting(&mut self, client: ConnId, job: JobNo) {
        if let Some(c) = self.by_id.get_mut(&client) {
            c.waiting.retain(|&j| j != job);
        }
    }
}
