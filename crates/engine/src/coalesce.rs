//! Which existing job a new submission joins.
//!
//! The rules, all here:
//! - a submission without a unique never joins anything;
//! - the unique `-` joins a job of the same function with equal data (and
//!   with empty data joins nothing);
//! - any other unique joins the job of the same function and unique;
//! - a job is found from the moment it is submitted (or replayed) until it
//!   ends or is cancelled. A running job whose clients all left is still
//!   found (a new submitter gets its result instead of the work being done
//!   twice, as with gearmand); a cancelled one is not.

use std::collections::HashMap;

use bytes::Bytes;

use crate::job::Job;
use crate::jobs::JobTable;
use crate::types::{FnId, JobNo};
use crate::unique_index::UniqueIndex;

/// The two indexes behind coalescing: (function, unique) and, for the
/// `-` unique, (function, data).
#[derive(Default)]
pub(crate) struct CoalesceIndex {
    by_unique: UniqueIndex,
    by_data: HashMap<(FnId, Bytes), JobNo>,
}

/// Whether a job with this unique and data is indexed by its data.
fn keyed_by_data(unique: &[u8], data: &[u8]) -> bool {
    unique == b"-" && !data.is_empty()
}

impl CoalesceIndex {
    /// The existing job a submission of (`f`, `unique`, `data`) joins.
    pub fn target(&self, f: FnId, unique: &Bytes, data: &Bytes, jobs: &JobTable) -> Option<JobNo> {
        if unique.is_empty() {
            return None;
        }
        if unique.as_ref() == b"-" {
            if data.is_empty() {
                return None;
            }
            self.by_data.get(&(f, data.clone())).copied()
        } else {
            self.by_unique(f, unique, jobs)
        }
    }

    /// The job of function `f` with exactly this unique (the `-` unique
    /// included, which is never indexed this way).
    pub fn by_unique(&self, f: FnId, unique: &[u8], jobs: &JobTable) -> Option<JobNo> {
        self.by_unique.get(f, unique, |no| jobs.get(no))
    }

    /// Makes `job` (not yet in `jobs`) found by later submissions.
    pub fn insert(&mut self, job: &Job, jobs: &JobTable) {
        let (f, unique, data) = (job.function, job.unique_bytes(), job.data_bytes());
        if keyed_by_data(unique, data) {
            self.by_data.insert((f, job.data()), job.no);
        } else if !unique.is_empty() && unique != b"-" {
            self.by_unique.insert(f, &job.unique(), job.no, |no| jobs.get(no));
        }
    }

    /// Takes job `no` of function `f` (with this unique and data) out of
    /// the index, so that no new submission joins it. Another job indexed
    /// under the same key is left alone.
    pub fn remove(&mut self, f: FnId, no: JobNo, unique: &[u8], data: Bytes) {
        if keyed_by_data(unique, &data) {
            let key = (f, data);
            if self.by_data.get(&key) == Some(&no) {
                self.by_data.remove(&key);
            }
        } else if !unique.is_empty() {
            self.by_unique.remove(f, unique, no);
        }
    }
}
