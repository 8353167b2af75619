//! Jobs by (function, unique), for coalescing and GET_STATUS_UNIQUE.
//!
//! Most background jobs carry a 36-byte UUID unique, so keying a map by
//! the bytes would cost ~60 bytes a job. Instead the map is keyed by a
//! keyed 64-bit hash (random per process, so peers cannot aim collisions)
//! and every hit is checked against the job itself; the rare true
//! collision goes to a small overflow map keyed by the bytes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use bytes::Bytes;

use crate::hash::FastMap;
use crate::job::Job;
use crate::types::{FnId, JobNo};

#[derive(Default)]
pub struct UniqueIndex {
    keys: RandomState,
    /// Tests make every key collide to exercise the overflow path.
    #[cfg(test)]
    collide_all: bool,
    main: FastMap<u64, JobNo>,
    overflow: HashMap<(FnId, Bytes), JobNo>,
}

fn matches(job: Option<&Job>, f: FnId, unique: &[u8]) -> bool {
    job.is_some_and(|j| j.function == f && j.unique_bytes() == unique)
}

impl UniqueIndex {
    fn key(&self, f: FnId, unique: &[u8]) -> u64 {
        #[cfg(test)]
        if self.collide_all {
            return 7;
        }
        let mut h = self.keys.build_hasher();
        f.hash(&mut h);
        unique.hash(&mut h);
        h.finish()
    }

    /// The job with this (function, unique), looked up in `jobs`.
    pub fn get<'a>(&self, f: FnId, unique: &[u8], job: impl Fn(JobNo) -> Option<&'a Job>) -> Option<JobNo> {
        if let Some(&no) = self.main.get(&self.key(f, unique)) {
            if matches(job(no), f, unique) {
                return Some(no);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(&(f, Bytes::copy_from_slice(unique))).copied()
    }

    pub fn insert<'a>(&mut self, f: FnId, unique: &Bytes, no: JobNo, job: impl Fn(JobNo) -> Option<&'a Job>) {
        let k = self.key(f, unique);
        match self.main.get(&k).copied() {
            Some(other) if other != no && job(other).is_some() && !matches(job(other), f, unique) => {
                self.overflow.insert((f, unique.clone()), no);
            }
            _ => {
                self.main.insert(k, no);
            }
        }
    }

    pub fn remove(&mut self, f: FnId, unique: &[u8], no: JobNo) {
        let k = self.key(f, unique);
        if self.main.get(&k) == Some(&no) {
            self.main.remove(&k);
        } else if !self.overflow.is_empty() {
            let key = (f, Bytes::copy_from_slice(unique));
            if self.overflow.get(&key) == Some(&no) {
                self.overflow.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprocket_proto::Priority;

    fn job(no: JobNo, f: FnId, unique: &str) -> Job {
        Job::new(no, "H:t", f, unique.as_bytes(), b"d", Priority::Normal, true, 0).expect("short test job")
    }

    #[test]
    fn colliding_keys_stay_distinct() {
        for collide_all in [false, true] {
            let mut idx = UniqueIndex { collide_all, ..UniqueIndex::default() };
            let jobs: Vec<Job> = vec![job(1, 0, "a"), job(2, 0, "b"), job(3, 1, "a")];
            let lookup = |no: JobNo| jobs.iter().find(|j| j.no == no);
            for j in &jobs {
                idx.insert(j.function, &j.unique(), j.no, lookup);
            }
            assert_eq!(idx.get(0, b"a", lookup), Some(1));
            assert_eq!(idx.get(0, b"b", lookup), Some(2));
            assert_eq!(idx.get(1, b"a", lookup), Some(3));
            assert_eq!(idx.get(1, b"b", lookup), None);
            idx.remove(0, b"a", 1);
            let rest: Vec<Job> = jobs.into_iter().filter(|j| j.no != 1).collect();
            let lookup = |no: JobNo| rest.iter().find(|j| j.no == no);
            assert_eq!(idx.get(0, b"a", lookup), None);
            assert_eq!(idx.get(0, b"b", lookup), Some(2));
            assert_eq!(idx.get(1, b"a", lookup), Some(3));
        }
    }
}
