use super::*;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// A day boundary, so window arithmetic is easy to follow.
const T0: u64 = 20_000 * DAY;

fn completed(history: &mut History, now: u64, wait: u64, run: u64) {
    history.record_end(b"resize", RecordState::Complete, Some(wait), Some(run), now);
}

fn totals(history: &History, now: u64) -> [u64; 3] {
    let view = history.query(b"resize", now).unwrap();
    Window::ALL.map(|w| view.window(w).counts.total())
}

#[test]
fn counts_by_outcome() {
    let mut history = History::new();
    for (state, n) in [
        (RecordState::Complete, 5),
        (RecordState::Failed, 4),
        (RecordState::Exception, 3),
        (RecordState::Timeout, 2),
        (RecordState::Cancelled, 1),
        (RecordState::Dropped, 6),
        (RecordState::Running, 9),
    ] {
        for _ in 0..n {
            history.record_end(b"f", state, None, None, T0);
        }
    }
    let view = history.query(b"f", T0).unwrap();
    let expected =
        Counts { completed: 5, failed: 4, exceptions: 3, timeouts: 2, cancelled: 1, dropped: 6, dead: 0, retried: 0 };
    assert_eq!((view.minute.counts, view.hour.counts, view.day.counts), (expected, expected, expected));
    assert_eq!(view.minute.queue_wait_ms, Percentiles::default());
    assert!(history.query(b"other", T0).is_none());
}

#[test]
fn windows_slide_across_minute_hour_and_day_boundaries() {
    let mut history = History::new();
    completed(&mut history, T0 + 1_000, 1, 1);
    assert_eq!(totals(&history, T0 + 1_000), [1, 1, 1]);
    // Still in the minute at 59.999 s into it (its slot started at T0).
    assert_eq!(totals(&history, T0 + MINUTE - 1), [1, 1, 1]);
    // The minute window drops the slot once the ring has lapped it.
    assert_eq!(totals(&history, T0 + MINUTE), [0, 1, 1]);
    completed(&mut history, T0 + 30 * MINUTE, 1, 1);
    assert_eq!(totals(&history, T0 + 30 * MINUTE), [1, 2, 2]);
    assert_eq!(totals(&history, T0 + HOUR - 1), [0, 2, 2]);
    assert_eq!(totals(&history, T0 + HOUR), [0, 1, 2]);
    assert_eq!(totals(&history, T0 + 90 * MINUTE), [0, 0, 2]);
    assert_eq!(totals(&history, T0 + DAY - 1), [0, 0, 2]);
    assert_eq!(totals(&history, T0 + DAY), [0, 0, 0]);
    // Recording a day later reuses the ring's slots from scratch.
    completed(&mut history, T0 + DAY + 2_000, 1, 1);
    assert_eq!(totals(&history, T0 + DAY + 2_000), [1, 1, 1]);
}

#[test]
fn percentiles_per_window() {
    let mut history = History::new();
    // An hour ago: slow jobs. Now: fast ones.
    for n in 0..100 {
        completed(&mut history, T0, 10_000 + n, 50_000);
    }
    for n in 1..=100 {
        completed(&mut history, T0 + HOUR, n, 20);
    }
    let view = history.query(b"resize", T0 + HOUR).unwrap();
    let minute = view.minute.queue_wait_ms;
    assert_eq!(minute.samples, 100);
    let (p50, p99) = (minute.p50.unwrap(), minute.p99.unwrap());
    assert!(p50.abs_diff(50) * 8 <= 50 && p99.abs_diff(99) * 8 <= 99, "{minute:?}");
    assert_eq!(view.hour.queue_wait_ms.samples, 100, "the slow slot is an hour old");
    let day = view.day.queue_wait_ms;
    assert_eq!(day.samples, 200);
    assert!(day.p90.unwrap() >= 8_750, "{day:?}");
    assert!(view.day.run_time_ms.p50.unwrap().abs_diff(20) <= 2);
}

#[test]
fn a_clock_that_steps_back_restarts_the_slot() {
    let mut history = History::new();
    completed(&mut history, T0 + 10_000, 1, 1);
    completed(&mut history, T0 + 10_000 - 5 * MINUTE, 1, 1);
    assert_eq!(totals(&history, T0 + 10_000 - 5 * MINUTE), [1, 1, 1]);
}

#[test]
fn snapshot_restores_and_drops_what_a_gap_aged_out() {
    let mut history = History::new();
    history.record_end(b"\xffbin", RecordState::Failed, None, Some(3), T0);
    for n in 0..10 {
        completed(&mut history, T0 + 2 * HOUR + n, 5, 7);
    }
    let now = T0 + 2 * HOUR + 30_000;
    let snapshot = history.snapshot(now);
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: HistorySnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    assert_eq!(back.taken_at(), now);

    // Restored at once: the same answers.
    let same = History::restore(back.clone(), now).unwrap();
    assert_eq!(same.query_all(now), history.query_all(now));

    // Restored after 40 minutes down: the minute window is empty, the
    // hour and day windows are kept.
    let later = now + 40 * MINUTE;
    let restored = History::restore(back.clone(), later).unwrap();
    assert_eq!(totals(&restored, later), [0, 10, 10]);
    assert_eq!(restored.query(b"\xffbin", later).unwrap().day.counts.failed, 1);

    // After a day down nothing is left, and the functions are gone.
    let restored = History::restore(back, now + DAY).unwrap();
    assert!(restored.query_all(now + DAY).is_empty());
}

#[test]
fn bad_snapshots_are_refused() {
    let mut history = History::new();
    completed(&mut history, T0, 5, 7);
    let good = serde_json::to_value(history.snapshot(T0)).unwrap();

    let mut other_version = good.clone();
    other_version["version"] = 2.into();
    let snapshot = serde_json::from_value(other_version).unwrap();
    assert_eq!(History::restore(snapshot, T0), Err(SnapshotError::Version(2)));

    let mut misaligned = good.clone();
    misaligned["functions"][0]["windows"][0]["slots"][0]["start"] = (T0 + 1).into();
    let snapshot = serde_json::from_value(misaligned).unwrap();
    assert_eq!(History::restore(snapshot, T0), Err(SnapshotError::Slot(T0 + 1)));

    let mut doubled = good.clone();
    let slot = doubled["functions"][0]["windows"][0]["slots"][0].clone();
    doubled["functions"][0]["windows"][0]["slots"].as_array_mut().unwrap().push(slot);
    let snapshot = serde_json::from_value(doubled).unwrap();
    assert_eq!(History::restore(snapshot, T0), Err(SnapshotError::Slot(T0)));

    let mut bad_histogram = good.clone();
    bad_histogram["functions"][0]["windows"][0]["slots"][0]["wait"] = serde_json::json!([[9, 1], [3, 1]]);
    let snapshot = serde_json::from_value(bad_histogram).unwrap();
    assert!(matches!(History::restore(snapshot, T0), Err(SnapshotError::Histogram(_))));

    // Another slot width (a server with other window sizes): dropped.
    let mut resized = good;
    resized["functions"][0]["windows"][0]["slot_ms"] = 1_000.into();
    let snapshot = serde_json::from_value(resized).unwrap();
    assert_eq!(totals(&History::restore(snapshot, T0).unwrap(), T0), [0, 1, 1]);
}

#[test]
fn prune_forgets_idle_functions() {
    let mut history = History::new();
    completed(&mut history, T0, 1, 1);
    history.record_end(b"later", RecordState::Complete, None, None, T0 + 12 * HOUR);
    history.prune(T0 + DAY);
    assert!(history.query(b"resize", T0 + DAY).is_none());
    assert!(history.query(b"later", T0 + DAY).is_some());
}

#[test]
fn admin_text_lines() {
    let mut history = History::new();
    completed(&mut history, T0, 5, 7);
    history.record_end(b"a\tb", RecordState::Timeout, Some(1), None, T0);
    history.record_retry(b"resize", T0);
    history.record_retry(b"resize", T0);
    assert_eq!(
        history.admin_text(T0),
        "a\\tb\tminute\t0\t0\t0\t1\t0\t0\t0\t1\t1\t1\t-\t-\t-\t0\n\
         a\\tb\thour\t0\t0\t0\t1\t0\t0\t0\t1\t1\t1\t-\t-\t-\t0\n\
         a\\tb\tday\t0\t0\t0\t1\t0\t0\t0\t1\t1\t1\t-\t-\t-\t0\n\
         resize\tminute\t1\t0\t0\t0\t0\t0\t0\t5\t5\t5\t7\t7\t7\t2\n\
         resize\thour\t1\t0\t0\t0\t0\t0\t0\t5\t5\t5\t7\t7\t7\t2\n\
         resize\tday\t1\t0\t0\t0\t0\t0\t0\t5\t5\t5\t7\t7\t7\t2\n.\n"
    );
    assert_eq!(History::new().admin_text(T0), ".\n");
}

#[test]
fn memory_per_function_is_bounded() {
    let mut history = History::new();
    // A week of one job every 10 seconds with widely spread durations.
    let mut now = T0;
    while now < T0 + 7 * DAY {
        let spread = (now / 10_000) % 40;
        completed(&mut history, now, 1 << spread, (1 << spread) + 1);
        now += 10_000;
    }
    let history = &history.functions[&b"resize"[..]];
    let slots: usize = history.rings.iter().map(|ring| ring.slots.len()).sum();
    assert_eq!(slots, 12 + 12 + 24);
    for ring in &history.rings {
        for slot in ring.slots.iter().flatten() {
            assert!(slot.stats.wait.is_empty() || slot.stats.wait.validate().is_ok());
        }
    }
}
