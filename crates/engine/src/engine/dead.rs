//! Dead letters for operators: admin `dead` lists dead jobs' records (as
//! `records` does, with the state dead) and `purge dead [FUNCTION]`
//! deletes them; `records {JSON}` takes the JSON filter of
//! `sprocket.records`, error text and all.
//!
//! A purge is the store's work when records are durable: it is handed to
//! the server ([`crate::Outbox::record_purges`]), which deletes in small
//! batches on its reader connection and reports the count through
//! [`Engine::record_purge_done`]. It waits first for the store to confirm
//! every matching record the engine has sent it, or such a record would be
//! written after the deletes and outlive the purge. Without a durable
//! store the engine's own records are purged at once.

use bytes::Bytes;
use sprocket_records::{RecordFilter, RecordState};

use crate::engine::Engine;
use crate::hash::FastSet;
use crate::records::{ReadPurpose, ReadWaiter};
use crate::types::*;

/// What a control command's purge gets at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStart {
    /// Done already (records kept in memory): this many went.
    Done(u64),
    /// Under way in the store: the count comes in
    /// [`Outbox::control_purges`] under this id.
    Purging(u64),
}

/// The filter of the records `purge dead [FUNCTION]` deletes.
pub fn dead_filter(function: Option<Bytes>) -> RecordFilter {
    RecordFilter { function, state: Some(RecordState::Dead), limit: usize::MAX, ..RecordFilter::default() }
}

/// Forces a filter to dead records: a filter naming another state is a
/// mistake worth saying, not a silent override.
pub fn dead_only(mut filter: RecordFilter) -> Result<RecordFilter, String> {
    match filter.state {
        None | Some(RecordState::Dead) => {
            filter.state = Some(RecordState::Dead);
            Ok(filter)
        }
        Some(other) => Err(format!("dead lists dead jobs only; the filter asks for state {other}")),
    }
}

/// `ERR INVALID_ARGUMENTS text` with spaces as `+`, as the other
/// sprocketd admin errors.
fn invalid(text: &str) -> Bytes {
    Bytes::from(format!("ERR INVALID_ARGUMENTS {}\r\n", text.replace([' ', '\r', '\n'], "+")))
}

impl Engine {
    /// Admin `records {JSON}` (`dead` false) and `dead [{JSON}]`.
    pub(crate) fn admin_records_json(&mut self, conn: ConnId, json: Option<Bytes>, dead: bool) {
        let filter = RecordFilter::from_json(json.as_deref().unwrap_or(b"")).map_err(|e| e.to_string());
        let filter = if dead { filter.and_then(dead_only) } else { filter };
        match filter {
            Ok(filter) => self.admin_search(conn, filter),
            Err(e) => self.send(conn, Out::Text(invalid(&e))),
        }
    }

    /// Admin `purge dead [FUNCTION]`: `OK <n>` once the deletes are
    /// committed.
    pub(crate) fn admin_purge_dead(&mut self, conn: ConnId, function: Option<Bytes>) {
        let filter = dead_filter(function);
        if !self.ended_records.in_store() {
            let n = self.ended_records.purge_in_memory(&filter);
            self.log_purge(&filter, n as u64);
            self.send(conn, Out::Text(sprocket_proto::admin::ok_value(&n.to_string())));
            return;
        }
        if !self.conns.contains(conn) {
            return;
        }
        let id = self.start_purge(ReadWaiter::Conn(conn, ReadPurpose::AdminPurge), filter);
        let Some(c) = self.conns.get_mut(conn) else { return };
        self.ledger.hold_read(conn, &mut c.held, id);
    }

    /// Deletes the records of dead jobs (of `function`, or all), for the
    /// server's own control commands (its web port).
    pub fn purge_dead_records(&mut self, function: Option<Bytes>) -> PurgeStart {
        let filter = dead_filter(function);
        if !self.ended_records.in_store() {
            let n = self.ended_records.purge_in_memory(&filter) as u64;
            self.log_purge(&filter, n);
            return PurgeStart::Done(n);
        }
        PurgeStart::Purging(self.start_purge(ReadWaiter::Control, filter))
    }

    fn start_purge(&mut self, waiter: ReadWaiter, filter: RecordFilter) -> u64 {
        let id = self.pending_reads.number();
        let after = self.ended_records.newest_unconfirmed_matching(&filter);
        self.pending_purges.add(RecordPurge { id, filter }, after, waiter, &mut self.out.record_purges);
        id
    }

    /// Hands out the purges that waited for the store to confirm records.
    pub(super) fn release_purges(&mut self) {
        self.pending_purges.release(&self.ended_records, &mut self.out.record_purges);
    }

    /// The server did (or failed) the purge `id` that
    /// [`Outbox::record_purges`] asked for: `result` is how many records
    /// went. Whoever waits hears, in order with its other replies.
    pub fn record_purge_done(&mut self, id: u64, result: Result<u64, String>, now: Millis) {
        self.tick(now);
        match &result {
            Ok(n) => tracing::info!(records = n, "dead job records purged by an operator"),
            Err(e) => tracing::warn!(error = %e, "a purge of dead job records failed"),
        }
        match self.pending_purges.finish(id) {
            Some(ReadWaiter::Control) => self.out.control_purges.push(ControlPurge { id, result }),
            Some(ReadWaiter::Conn(conn, _)) => {
                let answer = match &result {
                    Ok(n) => sprocket_proto::admin::ok_value(&n.to_string()),
                    Err(e) => Bytes::from(format!("ERR RECORDS_UNAVAILABLE {}\r\n", e.replace([' ', '\r', '\n'], "+"))),
                };
                let Some(c) = self.conns.get_mut(conn) else { return };
                c.held.answer_read(id, vec![Out::Text(answer)]);
                self.release_held(&FastSet::default());
            }
            None => {}
        }
    }

    fn log_purge(&self, filter: &RecordFilter, n: u64) {
        let function = filter.function.as_deref().map(String::from_utf8_lossy);
        tracing::info!(
            records = n,
            function = function.as_deref().unwrap_or("*"),
            "dead job records purged by an operator"
        );
    }
}
