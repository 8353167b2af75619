//! WORK_* packets from workers: progress and data are forwarded to the
//! job's clients; a final result ends the job (see `lifecycle`).

use bytes::Bytes;
use sprocket_proto::response::parse_decimal;
use sprocket_proto::Response;

use crate::engine::Engine;
use crate::job::JobState;
use crate::outcome::{Failure, Outcome};
use crate::types::*;

impl Engine {
    /// The job this worker holds under `handle`, or an ERROR to the worker.
    fn held_job(&mut self, conn: ConnId, handle: &[u8], not_found_text: &'static str) -> Option<JobNo> {
        let found = self
            .job_by_handle(handle)
            .filter(|&no| self.jobs.get(no).is_some_and(|j| j.state() == JobState::Running(conn)));
        if found.is_none() {
            self.send_packet(conn, Response::error("JOB_NOT_FOUND", not_found_text));
        }
        found
    }

    /// Foreground clients that should hear about a job.
    fn listeners(&self, job_no: JobNo) -> Vec<ConnId> {
        match self.jobs.get(job_no) {
            Some(job) if !job.ignore => job.clients.clone(),
            _ => Vec::new(),
        }
    }

    pub(super) fn work_status(&mut self, conn: ConnId, handle: Bytes, numerator: Bytes, denominator: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        // The numbers are kept for GET_STATUS as 32-bit values, as gearmand
        // keeps them; larger ones are refused rather than stored wrong.
        let (Ok(num), Ok(den)) = (u32::try_from(parse_decimal(&numerator)), u32::try_from(parse_decimal(&denominator)))
        else {
            self.send_packet(
                conn,
                Response::error("ARGUMENT_TOO_LARGE", "WORK_STATUS numerator and denominator must be below 2^32"),
            );
            return;
        };
        if let Some(job) = self.jobs.get_mut(job_no) {
            job.numerator = num;
            job.denominator = den;
        }
        self.record_status(job_no, num, den);
        let handle = self.jobs.get(job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            let resp = Response::WorkStatus {
                handle: handle.clone(),
                numerator: numerator.clone(),
                denominator: denominator.clone(),
            };
            self.send_packet(client, resp);
        }
    }

    pub(super) fn work_forward(&mut self, conn: ConnId, handle: Bytes, data: Bytes, warning: bool) {
        let Some(job_no) = self.held_job(conn, &handle, "Job does not exist on server") else { return };
        self.record_chunk(job_no, &data, warning);
        let handle = self.jobs.get(job_no).map(|j| j.handle()).unwrap_or(handle);
        for client in self.listeners(job_no) {
            let (handle, data) = (handle.clone(), data.clone());
            let resp =
                if warning { Response::WorkWarning { handle, data } } else { Response::WorkData { handle, data } };
            self.send_packet(client, resp);
        }
    }

    pub(super) fn work_complete(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        self.finish_job(job_no, Outcome::Completed { result: data });
    }

    pub(super) fn work_fail(&mut self, conn: ConnId, handle: Bytes) {
        if handle.len() >= MAX_HANDLE {
            self.send_packet(
                conn,
                Response::error(
                    "ARGUMENT_TOO_LARGE",
                    "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf",
                ),
            );
            return;
        }
        let Some(job_no) = self.held_job(conn, &handle, "Job given in work result not found") else { return };
        if self.policy_decides(job_no, Failure::Fail) {
            return;
        }
        self.finish_job(job_no, Outcome::Failed);
    }

    pub(super) fn work_exception(&mut self, conn: ConnId, handle: Bytes, data: Bytes) {
        let Some(job_no) = self.held_job(conn, &handle, "An exception was received for a job that does not exist")
        else {
            return;
        };
        if self.policy_decides(job_no, Failure::Exception(data.clone())) {
            return;
        }
        self.finish_job(job_no, Outcome::Exception { text: data });
    }
}
