//! Job records for the server's own control queries (its web port's API):
//! the same places `sprocket.record` and `sprocket.records` look (a live
//! job, the ended records the engine holds, the store), but with no
//! connection to hold replies for. A read the store must answer is handed
//! to the server like any other ([`crate::Outbox::record_reads`]); its
//! answer comes back through [`Engine::record_read_done`] and goes out in
//! [`crate::Outbox::control_reads`], so the engine itself does no I/O.

use sprocket_records::RecordFilter;

use crate::engine::Engine;
use crate::records::ReadWaiter;
use crate::types::{RecordLookup, RecordQuery};

impl Engine {
    /// The record of `handle`: a live job's, or an ended job's. A live job
    /// that keeps no record has none (its handle is not looked up in the
    /// store).
    pub fn lookup_record(&mut self, handle: &[u8]) -> RecordLookup {
        let found = self.live_record(handle).map(std::borrow::Cow::into_owned);
        if let Some(record) = found.or_else(|| self.ended_records.get(handle).cloned()) {
            return RecordLookup::Ready(vec![record]);
        }
        let live = self.job_by_handle(handle).is_some_and(|no| self.jobs.get(no).is_some_and(|j| !j.ended));
        if live || !self.ended_records.in_store() {
            return RecordLookup::Ready(Vec::new());
        }
        self.read_for_control(RecordQuery::Handle(bytes::Bytes::copy_from_slice(handle)))
    }

    /// Ended records matching `filter`, newest end first.
    pub fn search_records(&mut self, filter: RecordFilter) -> RecordLookup {
        if !self.ended_records.in_store() {
            return RecordLookup::Ready(self.ended_records.search(&filter));
        }
        self.read_for_control(RecordQuery::Search(filter))
    }

    fn read_for_control(&mut self, query: RecordQuery) -> RecordLookup {
        RecordLookup::Reading(self.start_read(ReadWaiter::Control, query))
    }
}
