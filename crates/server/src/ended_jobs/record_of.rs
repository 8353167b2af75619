//! An ended job's report as a job record, so that the job log line and the
//! history come from the same code as the records the rest of the server
//! keeps.

use sprocket_engine::{EndedJob, Outcome};
use sprocket_records::{AttemptEnd, Limits, Outcome as RecordOutcome, Record, Worker};

/// The record of an ended job; `None` for a job whose fields are too long
/// for a record (which the protocol's limits make impossible).
///
/// Only what the job log and the history read is exact: the latest
/// attempt's worker and times, the first start, the end and the number of
/// attempts. Earlier attempts are entered with the latest worker, as the
/// engine keeps no more than that.
pub fn record_of(job: &EndedJob) -> Option<Record> {
    let mut record =
        Record::new(&job.handle, &job.function, &job.unique, job.priority, job.background, job.submitted).ok()?;
    if let (Some(first), Some(latest)) = (job.first_started, job.attempt_started) {
        let worker = match &job.worker {
            Some(w) => Worker { client_id: w.client_id.clone(), peer: w.peer.clone() },
            None => Worker { client_id: bytes::Bytes::from_static(b"-"), peer: "-".into() },
        };
        let attempts = job.attempts.max(1);
        for n in 0..attempts {
            let started = if n == 0 { first } else { latest };
            record.started(worker.clone(), started).ok()?;
            if n + 1 < attempts {
                record.attempt_ended(AttemptEnd::WorkerLost, latest).ok()?;
            }
        }
    }
    let outcome = match &job.outcome {
        Outcome::Completed { result } => RecordOutcome::Complete(result),
        Outcome::Failed => RecordOutcome::Failed,
        Outcome::Exception { text } => RecordOutcome::Exception(text),
        // Ended by an operator or because nobody wanted it any more.
        Outcome::Cancelled | Outcome::FunctionDropped | Outcome::Abandoned => RecordOutcome::Cancelled,
        Outcome::TimedOut => RecordOutcome::Timeout,
        // Given up on: attempts ran out, or it could not be stored.
        Outcome::Dropped { .. } | Outcome::NotStored => RecordOutcome::Dropped,
    };
    record.ended(outcome, job.ended, Limits { max_bytes: u64::MAX }).ok()?;
    Some(record)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use sprocket_engine::{AttemptWorker, EndedJob, Outcome};
    use sprocket_proto::Priority;
    use sprocket_records::RecordState;

    use super::record_of;

    fn ended(outcome: Outcome, attempts: u32) -> EndedJob {
        EndedJob {
            handle: Bytes::from_static(b"H:h:1"),
            function: Bytes::from_static(b"f"),
            unique: Bytes::from_static(b"u"),
            priority: Priority::Normal,
            background: true,
            outcome,
            attempts,
            submitted: 1_000,
            first_started: (attempts > 0).then_some(1_040),
            attempt_started: (attempts > 0).then_some(1_300),
            ended: 1_900,
            worker: (attempts > 0)
                .then(|| AttemptWorker { client_id: Bytes::from_static(b"w"), peer: Arc::from("10.0.0.8:1") }),
        }
    }

    #[test]
    fn times_attempts_and_states_carry_over() {
        let record = record_of(&ended(Outcome::Completed { result: Bytes::from_static(b"r") }, 2)).unwrap();
        assert_eq!(record.state(), RecordState::Complete);
        assert_eq!((record.attempts(), record.queue_wait(), record.run_time()), (2, Some(40), Some(600)));
        assert_eq!(record.last_worker().map(|w| &*w.peer), Some("10.0.0.8:1"));
        assert_eq!(record.result(), Some(&b"r"[..]));
        for (outcome, state) in [
            (Outcome::Failed, RecordState::Failed),
            (Outcome::Exception { text: Bytes::from_static(b"e") }, RecordState::Exception),
            (Outcome::Cancelled, RecordState::Cancelled),
            (Outcome::FunctionDropped, RecordState::Cancelled),
            (Outcome::Abandoned, RecordState::Cancelled),
            (Outcome::TimedOut, RecordState::Timeout),
            (Outcome::Dropped { attempts: 3 }, RecordState::Dropped),
            (Outcome::NotStored, RecordState::Dropped),
        ] {
            assert_eq!(record_of(&ended(outcome.clone(), 1)).unwrap().state(), state, "{outcome:?}");
        }
        let never_ran = record_of(&ended(Outcome::Cancelled, 0)).unwrap();
        assert_eq!((never_ran.attempts(), never_ran.queue_wait(), never_ran.last_worker()), (0, None, None));
    }
}
