//! The table of jobs that exist, by number.

use crate::hash::FastMap;
use crate::job::Job;
use crate::types::JobNo;

/// Jobs by number. Numbers are never reused within one process: every
/// number [`JobTable::next_no`] offers is above that of every job ever
/// inserted, so a handle held by a peer can only ever name its own job.
#[derive(Debug)]
pub(crate) struct JobTable {
    /// Boxed so the table moves 8-byte pointers when it grows.
    by_no: FastMap<JobNo, Box<Job>>,
    next_no: JobNo,
}

impl Default for JobTable {
    fn default() -> Self {
        JobTable { by_no: FastMap::default(), next_no: 1 }
    }
}

impl JobTable {
    /// The number the next new job gets.
    pub fn next_no(&self) -> JobNo {
        self.next_no
    }

    /// Numbers from here on start at `no` (a new block of handle numbers,
    /// or a number given out without a job); never goes back.
    pub fn jump_to(&mut self, no: JobNo) {
        self.next_no = self.next_no.max(no);
    }

    /// Adds a job (made with a number from [`JobTable::next_no`]).
    pub fn insert(&mut self, job: Job) {
        self.next_no = self.next_no.max(job.no.saturating_add(1));
        self.by_no.insert(job.no, Box::new(job));
    }

    pub fn remove(&mut self, no: JobNo) -> Option<Box<Job>> {
        self.by_no.remove(&no)
    }

    pub fn get(&self, no: JobNo) -> Option<&Job> {
        self.by_no.get(&no).map(|j| &**j)
    }

    pub fn get_mut(&mut self, no: JobNo) -> Option<&mut Job> {
        self.by_no.get_mut(&no).map(|j| &mut **j)
    }

    pub fn contains(&self, no: JobNo) -> bool {
        self.by_no.contains_key(&no)
    }

    pub fn len(&self) -> usize {
        self.by_no.len()
    }

    /// Every job, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.by_no.values().map(|j| &**j)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Job> {
        self.by_no.values_mut().map(|j| &mut **j)
    }
}
