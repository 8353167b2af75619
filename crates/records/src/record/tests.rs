use super::*;

pub(crate) fn worker(id: &str) -> Worker {
    Worker { client_id: Bytes::copy_from_slice(id.as_bytes()), peer: Arc::from("127.0.0.1:40000") }
}

pub(crate) fn queued(handle: &str) -> Record {
    Record::new(handle.as_bytes(), b"resize", b"img-1", Priority::Normal, true, 1_000).unwrap()
}

const LIMITS: Limits = Limits { max_bytes: 20 };

#[test]
fn ids_are_kept_apart() {
    let record = Record::new(b"H:h:1", b"", b"u\0", Priority::High, false, 5).unwrap();
    assert_eq!(record.handle(), b"H:h:1");
    assert_eq!(record.function(), b"");
    assert_eq!(record.unique(), b"u\0");
    assert_eq!(record.priority(), Priority::High);
    assert!(!record.is_background());
    assert_eq!(record.state(), RecordState::Queued);
    assert_eq!((record.attempts(), record.first_started(), record.finished()), (0, None, None));
}

#[test]
fn a_queued_record_is_small() {
    let size = std::mem::size_of::<Record>();
    assert!(size <= 48, "Record is {size} bytes");
    assert!(queued("H:h:1").run.is_none());
}

#[test]
fn a_job_that_completes() {
    let mut record = queued("H:h:1");
    record.started(worker("w1"), 1_500).unwrap();
    assert_eq!(record.state(), RecordState::Running);
    record.data(b"part", Limits::default()).unwrap();
    record.warning(b"careful", Limits::default()).unwrap();
    record.status(1, 2).unwrap();
    record.status(2, 2).unwrap();
    record.ended(Outcome::Complete(b"done"), 1_800, Limits::default()).unwrap();
    assert_eq!(record.state(), RecordState::Complete);
    assert_eq!(record.result(), Some(&b"done"[..]));
    assert_eq!(record.status_numbers(), Some(Status { numerator: 2, denominator: 2 }));
    let kinds: Vec<_> = record.chunks().iter().map(|c| (c.kind(), c.bytes().to_vec())).collect();
    assert_eq!(kinds, [(ChunkKind::Data, b"part".to_vec()), (ChunkKind::Warning, b"careful".to_vec())]);
    assert_eq!(record.attempt_log()[0].ended, Some((1_800, AttemptEnd::Completed)));
    assert_eq!((record.queue_wait(), record.run_time()), (Some(500), Some(300)));
    assert_eq!(record.truncation(), None);
    assert_eq!(record.payload_bytes(), 4 + 7 + 4);
    assert_eq!(record.data(b"late", Limits::default()), Err(RecordEnded(RecordState::Complete)));
    assert_eq!(record.started(worker("w2"), 2_000), Err(RecordEnded(RecordState::Complete)));
}

#[test]
fn lost_workers_then_dropped() {
    let mut record = queued("H:h:2");
    record.started(worker("w1"), 1_100).unwrap();
    record.attempt_ended(AttemptEnd::WorkerLost, 1_200).unwrap();
    assert_eq!(record.state(), RecordState::Queued);
    record.started(worker("w2"), 1_300).unwrap();
    record.attempt_ended(AttemptEnd::Timeout, 1_400).unwrap();
    record.ended(Outcome::Dropped, 1_400, Limits::default()).unwrap();
    assert_eq!(record.state(), RecordState::Dropped);
    assert_eq!(record.attempts(), 2);
    let ends: Vec<_> = record.attempt_log().iter().map(|a| a.ended).collect();
    assert_eq!(ends, [Some((1_200, AttemptEnd::WorkerLost)), Some((1_400, AttemptEnd::Timeout))]);
    assert_eq!(record.last_worker().unwrap().client_id, "w2");
    assert_eq!((record.queue_wait(), record.run_time()), (Some(100), Some(100)));
}

#[test]
fn a_new_start_closes_a_forgotten_attempt_and_the_log_is_bounded() {
    let mut record = queued("H:h:3");
    for n in 0..(MAX_KEPT_ATTEMPTS as u64 + 4) {
        record.started(worker(&format!("w{n}")), 2_000 + n).unwrap();
    }
    assert_eq!(record.attempts(), MAX_KEPT_ATTEMPTS as u32 + 4);
    let log = record.attempt_log();
    assert_eq!(log.len(), MAX_KEPT_ATTEMPTS);
    assert_eq!(log[0].worker.client_id, "w4");
    assert_eq!(log[0].ended, Some((2_005, AttemptEnd::Interrupted)));
    assert_eq!(log.last().unwrap().ended, None);
    assert_eq!(record.first_started(), Some(2_000));
}

#[test]
fn cancelled_while_queued() {
    let mut record = queued("H:h:4");
    record.ended(Outcome::Cancelled, 3_000, Limits::default()).unwrap();
    assert_eq!(record.state(), RecordState::Cancelled);
    assert_eq!((record.finished(), record.queue_wait(), record.run_time()), (Some(3_000), None, None));
}

#[test]
fn chunks_share_half_the_budget_and_the_crossing_chunk_is_cut() {
    let mut record = queued("H:h:5");
    record.started(worker("w"), 1).unwrap();
    record.data(b"abcd", LIMITS).unwrap(); // 4 of 10
    record.warning(b"efgh", LIMITS).unwrap(); // 8 of 10
    record.data(b"ijklmn", LIMITS).unwrap(); // cut to "ij"
    record.data(b"", LIMITS).unwrap(); // after a cut: counted, not kept
    record.warning(b"op", LIMITS).unwrap(); // not kept
    let kept: Vec<_> = record.chunks().iter().map(|c| (c.bytes().to_vec(), c.is_cut())).collect();
    assert_eq!(kept, [(b"abcd".to_vec(), false), (b"efgh".to_vec(), false), (b"ij".to_vec(), true)]);
    record.ended(Outcome::Complete(b"0123456789ABCDE"), 2, LIMITS).unwrap();
    // The result gets what the chunks left: 20 - 10.
    assert_eq!(record.result(), Some(&b"0123456789"[..]));
    assert_eq!(record.payload_bytes(), 20);
    assert_eq!(
        record.truncation(),
        Some(Truncation { chunks_received: 5, chunk_bytes_received: 16, result_bytes_received: Some(15) })
    );
}

#[test]
fn an_empty_chunk_fits_until_something_was_left_out() {
    let mut record = queued("H:h:6");
    record.data(b"0123456789", LIMITS).unwrap();
    record.data(b"", LIMITS).unwrap();
    assert_eq!(record.chunks().len(), 2);
    assert_eq!(record.truncation(), None, "nothing was cut yet");
    record.data(b"x", LIMITS).unwrap();
    record.data(b"", LIMITS).unwrap();
    assert_eq!(record.chunks().len(), 2);
    let cut = record.truncation().unwrap();
    assert_eq!((cut.chunks_received, cut.chunk_bytes_received, cut.result_bytes_received), (4, 11, None));
}

#[test]
fn without_chunks_the_result_gets_the_whole_budget() {
    let mut record = queued("H:h:7");
    record.ended(Outcome::Complete(&[7u8; 20]), 2, LIMITS).unwrap();
    assert_eq!(record.result().unwrap().len(), 20);
    assert_eq!(record.truncation(), None);
    let mut record = queued("H:h:8");
    record.ended(Outcome::Exception(&[b'e'; 21]), 2, LIMITS).unwrap();
    assert_eq!(record.error().unwrap().len(), 20);
    assert_eq!(record.result(), None);
    assert_eq!(record.truncation().unwrap().result_bytes_received, Some(21));
}

#[test]
fn a_zero_limit_keeps_no_payload_but_counts_it() {
    let zero = Limits { max_bytes: 0 };
    let mut record = queued("H:h:9");
    record.data(b"abc", zero).unwrap();
    record.ended(Outcome::Complete(b"r"), 2, zero).unwrap();
    assert!(record.chunks().is_empty());
    assert_eq!(record.result(), Some(&b""[..]));
    assert_eq!(
        record.truncation(),
        Some(Truncation { chunks_received: 1, chunk_bytes_received: 3, result_bytes_received: Some(1) })
    );
}

#[test]
fn a_clock_that_steps_back_gives_zero_durations() {
    let mut record = queued("H:h:10");
    record.started(worker("w"), 900).unwrap();
    record.ended(Outcome::Failed, 800, Limits::default()).unwrap();
    assert_eq!((record.queue_wait(), record.run_time()), (Some(0), Some(0)));
}

proptest::proptest! {
    /// Whatever arrives, the kept payload stays within the limit, the
    /// chunk part within half of it, kept chunks are prefixes of what
    /// arrived in the same order, and the counts add up.
    #[test]
    fn the_byte_limit_holds(
        max_bytes in 0u64..64,
        chunks in proptest::collection::vec((proptest::bool::ANY, proptest::collection::vec(0u8..=255, 0..20)), 0..10),
        result in proptest::collection::vec(0u8..=255, 0..80),
    ) {
        let limits = Limits { max_bytes };
        let mut record = queued("H:h:p");
        for (warning, bytes) in &chunks {
            if *warning { record.warning(bytes, limits).unwrap() } else { record.data(bytes, limits).unwrap() }
        }
        record.ended(Outcome::Complete(&result), 5, limits).unwrap();
        let kept: u64 = record.chunks().iter().map(|c| c.bytes().len() as u64).sum();
        proptest::prop_assert!(kept <= limits.chunk_budget());
        proptest::prop_assert!(record.payload_bytes() <= max_bytes);
        for (chunk, (warning, bytes)) in record.chunks().iter().zip(&chunks) {
            proptest::prop_assert_eq!(chunk.kind() == ChunkKind::Warning, *warning);
            proptest::prop_assert!(bytes.starts_with(chunk.bytes()));
            proptest::prop_assert_eq!(chunk.is_cut(), chunk.bytes().len() < bytes.len());
        }
        proptest::prop_assert!(result.starts_with(record.result().unwrap()));
        let received: u64 = chunks.iter().map(|(_, b)| b.len() as u64).sum();
        let whole = kept == received && record.chunks().len() == chunks.len()
            && record.result().unwrap().len() == result.len();
        match record.truncation() {
            None => proptest::prop_assert!(whole),
            Some(cut) => {
                proptest::prop_assert!(!whole);
                proptest::prop_assert_eq!(cut.chunks_received, chunks.len() as u64);
                proptest::prop_assert_eq!(cut.chunk_bytes_received, received);
            }
        }
    }
}
