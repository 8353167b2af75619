//! A function: its queues by priority and its registered workers.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::types::{ConnId, JobNo};

#[derive(Debug, Default)]
pub struct Function {
    pub name: Bytes,
    /// Runnable jobs by priority (high, normal, low), FIFO. Entries of jobs
    /// that were removed meanwhile are skipped when met.
    pub queues: [VecDeque<JobNo>; 3],
    /// Queued jobs per priority (runnable or scheduled), excluding running.
    pub queued: [usize; 3],
    /// Jobs of this function that exist: queued, scheduled and running.
    pub total: usize,
    pub running: usize,
    /// Registrations (a connection registered twice counts twice).
    pub workers: usize,
    /// Sleeping workers not yet woken, oldest first. Entries may be stale
    /// (the worker woke or left); they are checked when popped.
    pub sleepers: VecDeque<ConnId>,
    /// Queue limits per priority; 0 means none.
    pub max_queue: [u32; 3],
}

impl Function {
    pub fn new(name: Bytes, default_max_queue: u32) -> Function {
        Function { name, max_queue: [default_max_queue; 3], ..Default::default() }
    }
}
