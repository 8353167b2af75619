//! GET_STATUS and GET_STATUS_UNIQUE.

use bytes::Bytes;
use sprocket_proto::Response;

use crate::engine::Engine;
use crate::job::Job;
use crate::types::*;

impl Engine {
    /// GET_STATUS: what is known of the job with this handle.
    pub(super) fn get_status(&mut self, conn: ConnId, handle: Bytes) {
        if handle.len() >= MAX_HANDLE {
            // gearmand sends nothing here; every request deserves an answer.
            self.send_packet(conn, Response::error("ARGUMENT_TOO_LARGE", "Job handle too large"));
            return;
        }
        let job = self.job_by_handle(&handle).and_then(|no| self.jobs.get(no));
        let resp = match job {
            Some(j) => Response::StatusRes {
                handle,
                known: true,
                running: j.is_running(),
                numerator: j.numerator.into(),
                denominator: j.denominator.into(),
            },
            None => Response::StatusRes { handle, known: false, running: false, numerator: 0, denominator: 0 },
        };
        self.send_packet(conn, resp);
    }

    /// GET_STATUS_UNIQUE: what is known of the oldest job with this unique.
    pub(super) fn get_status_unique(&mut self, conn: ConnId, unique: Bytes) {
        if unique.len() >= MAX_UNIQUE {
            self.send_packet(conn, Response::error("ARGUMENT_TOO_LARGE", "Unique value too large"));
            return;
        }
        let job = self.job_by_unique_any(&unique);
        let resp = match job {
            Some(j) => Response::StatusResUnique {
                unique,
                known: true,
                running: j.is_running(),
                numerator: j.numerator.into(),
                denominator: j.denominator.into(),
                clients: j.clients.len() as u64,
            },
            None => Response::StatusResUnique {
                unique,
                known: false,
                running: false,
                numerator: 0,
                denominator: 0,
                clients: 0,
            },
        };
        self.send_packet(conn, resp);
    }

    /// The oldest job with this unique in any function.
    /// The function of the job GET_STATUS_UNIQUE would report on (the
    /// oldest with this unique), if any: the server's access control
    /// checks it before the request is answered.
    pub fn function_of_unique(&self, unique: &Bytes) -> Option<Bytes> {
        let job = self.job_by_unique_any(unique)?;
        self.function(job.function).map(|f| f.name().clone())
    }

    /// The live job of function `f` that coalesces on `unique`, from the
    /// unique index (never one keyed by its data: the `-` unique).
    pub(crate) fn job_no_by_unique(&self, f: FnId, unique: &[u8]) -> Option<JobNo> {
        self.coalesce.by_unique(f, unique, &self.jobs)
    }

    fn job_by_unique_any(&self, unique: &Bytes) -> Option<&Job> {
        if unique.is_empty() {
            return None;
        }
        self.functions
            .ids()
            .filter_map(|f| self.coalesce.by_unique(f, unique, &self.jobs))
            .filter_map(|no| self.jobs.get(no))
            .min_by_key(|j| j.no)
    }
}
