//! The ledger of store operations, and the replies held back for them.
//!
//! Every store operation gets the next sequence number; the store reports
//! back that everything up to some number is durable, except the inserts
//! it lists as failed. The rules kept here:
//!
//! - A background job written to the store is acknowledged (JOB_CREATED)
//!   only once its insert is durable; if the insert fails, or is not
//!   confirmed within the store timeout, its submitter gets an ERROR
//!   instead.
//! - A connection's replies go out in request order: everything after a
//!   held JOB_CREATED waits behind it ([`HeldReplies`]).
//! - A job that ends before its insert is confirmed ("done early") has its
//!   JOB_CREATED released at the end of that turn, without waiting for the
//!   store: the job is done and nothing is left to lose; it is reported
//!   created even if its insert fails afterwards.
//! - While the store is known to be down, durable submits are refused.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use sprocket_proto::Response;

use crate::conn::ConnTable;
use crate::hash::FastSet;
use crate::types::{ConnId, JobNo, Out, PersistOp};

/// Store operations in flight and the acknowledgements that wait for them.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// The sequence number of the next store operation.
    next_seq: u64,
    /// Every operation up to this one is durable (or reported failed).
    committed: u64,
    /// Inserts not yet confirmed: seq -> job, ordered so a commit report
    /// takes exactly the range it covers.
    pending: BTreeMap<u64, JobNo>,
    /// Inserts whose jobs ended before the store confirmed them.
    done_early: FastSet<u64>,
    /// Connections with held replies.
    holding: FastSet<ConnId>,
    /// The store is known to be unreachable.
    store_down: bool,
    /// JOB_CREATED answers promised to submissions so far (sent at once or
    /// held): a caller that compares it before and after a request learns
    /// whether that request will be answered with one.
    promised: u64,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            next_seq: 1,
            committed: 0,
            pending: BTreeMap::new(),
            done_early: FastSet::default(),
            holding: FastSet::default(),
            store_down: false,
            promised: 0,
        }
    }
}

impl Ledger {
    /// Numbers a store operation and queues it for the writer.
    pub fn write(&mut self, op: PersistOp, persist: &mut Vec<(u64, PersistOp)>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        persist.push((seq, op));
        seq
    }

    /// Insert `seq` (just written) makes `job` durable; its JOB_CREATED
    /// waits for it.
    pub fn insert_written(&mut self, seq: u64, job: JobNo) {
        self.pending.insert(seq, job);
    }

    /// Whether insert `seq` (0: none) is still waiting for the store.
    pub fn unconfirmed(&self, seq: u64) -> bool {
        seq > self.committed
    }

    /// Whether insert `seq` is still waiting and not yet answered at all.
    pub fn is_pending(&self, seq: u64) -> bool {
        self.pending.contains_key(&seq)
    }

    /// The job insert `seq` was written for, while it is pending.
    pub fn pending_job(&self, seq: u64) -> Option<JobNo> {
        self.pending.get(&seq).copied()
    }

    /// The job of unconfirmed insert `seq` ended: its JOB_CREATED may go
    /// out now, whatever the store says later.
    pub fn ended_before_confirmed(&mut self, seq: u64) {
        self.pending.remove(&seq);
        self.done_early.insert(seq);
    }

    /// Insert `seq` failed (or timed out): the job it was written for, if
    /// that insert was still pending.
    pub fn take_failed(&mut self, seq: u64) -> Option<JobNo> {
        self.pending.remove(&seq)
    }

    /// The store made everything up to `through` durable.
    pub fn confirm_through(&mut self, through: u64) {
        if through > self.committed {
            self.committed = through;
        }
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > through {
                break;
            }
            entry.remove();
        }
        if !self.done_early.is_empty() {
            self.done_early.retain(|seq| *seq > through);
        }
    }

    /// Every operation up to this number is durable or answered.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Background inserts whose store write is not yet confirmed.
    pub fn unconfirmed_count(&self) -> usize {
        self.pending.len()
    }

    /// Whether the store is known to be unreachable.
    pub fn store_down(&self) -> bool {
        self.store_down
    }

    pub fn set_store_down(&mut self, down: bool) {
        self.store_down = down;
    }

    /// JOB_CREATED answers promised so far (see [`Ledger::job_created`]).
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Answers a submission on `conn` with JOB_CREATED for `handle`: at once
    /// if insert `seq` (0: none) is durable, otherwise held in `held` (the
    /// connection's) until it is. Each answer, when it goes out (or turns
    /// into an ERROR), is noted in `created` in the order it is sent.
    pub fn job_created(
        &mut self,
        conn: ConnId,
        held: &mut HeldReplies,
        seq: u64,
        handle: Bytes,
        sends: &mut Vec<(ConnId, Out)>,
        created: &mut Vec<(ConnId, bool)>,
    ) {
        self.promised += 1;
        if !self.unconfirmed(seq) {
            if held.queue.is_empty() {
                sends.push((conn, Out::Packet(Response::JobCreated { handle })));
                created.push((conn, true));
            } else {
                held.queue.push_back(Held::Created(handle));
            }
            return;
        }
        held.queue.push_back(Held::JobCreated { seq, handle });
        self.holding.insert(conn);
    }

    /// Holds every later reply to `conn` behind read `id` of job records
    /// from the store, until [`HeldReplies::answer_read`] puts its answer
    /// in its place.
    pub fn hold_read(&mut self, conn: ConnId, held: &mut HeldReplies, id: u64) {
        held.queue.push_back(Held::Read { id });
        self.holding.insert(conn);
    }

    /// The sequence number of the latest store operation written (0:
    /// none yet).
    pub fn last_written(&self) -> u64 {
        self.next_seq - 1
    }

    /// Answers `conn` with `out` once store operation `seq` is durable (at
    /// once if it is): for an operator command whose answer promises
    /// that what it changed is in the store.
    pub fn reply_after(
        &mut self,
        conn: ConnId,
        held: &mut HeldReplies,
        seq: u64,
        out: Out,
        sends: &mut Vec<(ConnId, Out)>,
    ) {
        if !self.unconfirmed(seq) {
            if let Some(out) = held.pass_or_hold(out) {
                sends.push((conn, out));
            }
            return;
        }
        held.queue.push_back(Held::AfterCommit { seq, out });
        self.holding.insert(conn);
    }

    /// Whether a turn's end must release replies of jobs done early.
    pub fn release_due(&self) -> bool {
        !self.done_early.is_empty() && !self.holding.is_empty()
    }

    /// Connection `conn` closed; what it held goes with it.
    pub fn forget(&mut self, conn: ConnId) {
        self.holding.remove(&conn);
    }

    /// Sends what each holding connection may now send: replies up to the
    /// first JOB_CREATED still waiting. A JOB_CREATED of an insert in
    /// `failed` becomes an ERROR, unless its job ran.
    pub fn release(
        &mut self,
        conns: &mut ConnTable,
        failed: &FastSet<u64>,
        sends: &mut Vec<(ConnId, Out)>,
        created: &mut Vec<(ConnId, bool)>,
    ) {
        // The set is taken while connections release what they hold; those
        // still holding something put themselves back, and the emptied set
        // (with its capacity) is reused for the next commit.
        let mut holding = std::mem::take(&mut self.holding);
        for conn in holding.drain() {
            let Some(c) = conns.get_mut(conn) else { continue };
            if !c.held.release(conn, self.committed, failed, &mut self.done_early, sends, created) {
                self.holding.insert(conn);
            }
        }
        holding.extend(self.holding.drain());
        self.holding = holding;
    }
}

/// One held reply.
#[derive(Debug, Clone)]
enum Held {
    /// JOB_CREATED released once store sequence `seq` commits, or turned
    /// into an ERROR if that insert failed.
    JobCreated { seq: u64, handle: Bytes },
    /// The answer to a read of job records from the store (or to a
    /// setting's write), not yet there.
    Read { id: u64 },
    /// A reply released once store sequence `seq` is handled.
    AfterCommit { seq: u64, out: Out },
    /// A JOB_CREATED whose insert is durable (or that needs none), queued
    /// behind a held reply.
    Created(Bytes),
    /// Any other reply, queued behind a held JOB_CREATED or read.
    Ready(Out),
}

/// A connection's replies held back so they stay in request order while a
/// background job's insert is not yet durable. Empty for every connection
/// that holds nothing (nearly all of them, nearly always).
#[derive(Debug, Default)]
pub(crate) struct HeldReplies {
    queue: VecDeque<Held>,
}

impl HeldReplies {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// `out` if nothing is held (send it), otherwise it joins the queue.
    pub fn pass_or_hold(&mut self, out: Out) -> Option<Out> {
        if self.queue.is_empty() {
            return Some(out);
        }
        self.queue.push_back(Held::Ready(out));
        None
    }

    /// Puts the answer to read `id` where the read waits, so that it goes
    /// out in order with the connection's other replies; false when no
    /// such read is held.
    pub fn answer_read(&mut self, id: u64, answer: Vec<Out>) -> bool {
        let Some(at) = self.queue.iter().position(|h| matches!(h, Held::Read { id: held } if *held == id)) else {
            return false;
        };
        self.queue.remove(at);
        for (i, out) in answer.into_iter().enumerate() {
            self.queue.insert(at + i, Held::Ready(out));
        }
        true
    }

    /// Puts `out` where read `id` waits, to go out once store operation
    /// `seq` is durable: the answer of a command that read the store and
    /// then wrote to it.
    pub fn answer_read_after(&mut self, id: u64, seq: u64, out: Out) -> bool {
        let Some(at) = self.queue.iter().position(|h| matches!(h, Held::Read { id: held } if *held == id)) else {
            return false;
        };
        self.queue[at] = Held::AfterCommit { seq, out };
        true
    }

    /// The answer to read `id` will come as read `next` (a command that
    /// reads the store in several steps), in the same place.
    pub fn rename_read(&mut self, id: u64, next: u64) -> bool {
        let Some(slot) = self.queue.iter_mut().find(|h| matches!(h, Held::Read { id: held } if *held == id)) else {
            return false;
        };
        *slot = Held::Read { id: next };
        true
    }

    /// Sends what may go; true when nothing is held any more.
    fn release(
        &mut self,
        conn: ConnId,
        committed: u64,
        failed: &FastSet<u64>,
        done_early: &mut FastSet<u64>,
        sends: &mut Vec<(ConnId, Out)>,
        created: &mut Vec<(ConnId, bool)>,
    ) -> bool {
        while let Some(front) = self.queue.front() {
            match front {
                Held::JobCreated { seq, .. } => {
                    if *seq > committed && !failed.contains(seq) && !done_early.contains(seq) {
                        break;
                    }
                }
                Held::Read { .. } => break,
                Held::AfterCommit { seq, .. } => {
                    if *seq > committed {
                        break;
                    }
                }
                Held::Ready(_) | Held::Created(_) => {}
            }
            let Some(item) = self.queue.pop_front() else { break };
            let out = match item {
                Held::JobCreated { seq, handle } => {
                    // A job that ran is reported created even if its
                    // insert failed afterwards: there is nothing to store.
                    let ran = done_early.remove(&seq);
                    let stored = !failed.contains(&seq) || ran;
                    created.push((conn, stored));
                    if stored {
                        Out::Packet(Response::JobCreated { handle })
                    } else {
                        Out::Packet(Response::error("QUEUE_ERROR", "Job could not be stored durably"))
                    }
                }
                Held::Created(handle) => {
                    created.push((conn, true));
                    Out::Packet(Response::JobCreated { handle })
                }
                Held::Ready(out) | Held::AfterCommit { out, .. } => out,
                Held::Read { .. } => continue,
            };
            sends.push((conn, out));
        }
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sprocket_proto::Response;

    use super::Ledger;
    use crate::conn::ConnTable;
    use crate::hash::FastSet;
    use crate::types::{ConnId, Out, PersistOp};

    fn insert(ledger: &mut Ledger, persist: &mut Vec<(u64, PersistOp)>, job: u64) -> u64 {
        let op = PersistOp::Delete { function: Bytes::from_static(b"f"), unique: Bytes::new() };
        let seq = ledger.write(op, persist);
        ledger.insert_written(seq, job);
        seq
    }

    fn held(conns: &mut ConnTable) -> &mut super::HeldReplies {
        &mut conns.get_mut(1).expect("open").held
    }

    fn created(handle: &'static [u8]) -> Out {
        Out::Packet(Response::JobCreated { handle: Bytes::from_static(handle) })
    }

    /// Replies behind a held JOB_CREATED keep their order; a failed insert's
    /// JOB_CREATED becomes an ERROR, unless its job ended before the failure
    /// came back (it ran: there was nothing left to store).
    #[test]
    fn held_replies_leave_in_order_as_their_inserts_are_answered() {
        let (mut ledger, mut persist, mut sends) = (Ledger::default(), Vec::new(), Vec::<(ConnId, Out)>::new());
        let mut acks = Vec::new();
        let mut conns = ConnTable::default();
        conns.open(1, 10, "peer".into(), false);
        let (a, b, c) = (
            insert(&mut ledger, &mut persist, 1),
            insert(&mut ledger, &mut persist, 2),
            insert(&mut ledger, &mut persist, 3),
        );
        assert_eq!(persist.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), vec![a, b, c]);
        ledger.job_created(1, held(&mut conns), a, Bytes::from_static(b"H:1"), &mut sends, &mut acks);
        let echo = Out::Packet(Response::EchoRes { data: Bytes::from_static(b"e") });
        assert!(held(&mut conns).pass_or_hold(echo.clone()).is_none(), "held behind the JOB_CREATED");
        ledger.job_created(1, held(&mut conns), b, Bytes::from_static(b"H:2"), &mut sends, &mut acks);
        ledger.job_created(1, held(&mut conns), c, Bytes::from_static(b"H:3"), &mut sends, &mut acks);
        assert!(sends.is_empty());

        // Job 3 ends before its insert is confirmed; insert b fails.
        ledger.ended_before_confirmed(c);
        assert_eq!(ledger.take_failed(b), Some(2));
        let failed: FastSet<u64> = [b, c].into_iter().collect();
        ledger.confirm_through(a);
        ledger.release(&mut conns, &failed, &mut sends, &mut acks);
        let error = Out::Packet(Response::error("QUEUE_ERROR", "Job could not be stored durably"));
        let outs: Vec<Out> = sends.drain(..).map(|(_, out)| out).collect();
        assert_eq!(outs, vec![created(b"H:1"), echo, error, created(b"H:3")]);
        assert_eq!(acks, vec![(1, true), (1, false), (1, true)], "each answer noted as it goes out");
        assert_eq!(ledger.promised(), 3);
        assert!(conns.get(1).expect("open").held.is_empty());
        assert!(!ledger.release_due(), "nothing is held any more");
    }
}
