use super::*;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
/// A day boundary, so window arithmetic is easy to follow.
const T0: u64 = 20_000 * DAY;

fn completed(history: &mut History, now: u64, wait: u64, run: u64) {
    history.record_end(b"resize", RecordState::Complete, Some(wait), Some(run), now);
}

fn totals(history: &History, now: u64) -> [u64; 4] {
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
    assert_eq!(
        (view.minute.counts, view.hour.counts, view.day.counts, view.week.counts),
        (expected, expected, expected, expected)
    );
    assert_eq!(view.minute.queue_wait_ms, Percentiles::default());
    assert!(history.query(b"other", T0).is_none());
}

#[test]
fn windows_slide_across_minute_hour_day_and_week_boundaries() {
    let mut history = History::new();
    completed(&mut history, T0 + 1_000, 1, 1);
    assert_eq!(totals(&history, T0 + 1_000), [1, 1, 1, 1]);
    // Still in the minute at 59.999 s into it (its slot started at T0).
    assert_eq!(totals(&history, T0 + MINUTE - 1), [1, 1, 1, 1]);
    // The minute window drops the slot once the ring has lapped it.
    assert_eq!(totals(&history, T0 + MINUTE), [0, 1, 1, 1]);
    completed(&mut history, T0 + 30 * MINUTE, 1, 1);
    assert_eq!(totals(&history, T0 + 30 * MINUTE), [1, 2, 2, 2]);
    assert_eq!(totals(&history, T0 + HOUR - 1), [0, 2, 2, 2]);
    assert_eq!(totals(&history, T0 + HOUR), [0, 1, 2, 2]);
    assert_eq!(totals(&history, T0 + 90 * MINUTE), [0, 0, 2, 2]);
    assert_eq!(totals(&history, T0 + DAY - 1), [0, 0, 2, 2]);
    assert_eq!(totals(&history, T0 + DAY), [0, 0, 0, 2]);
    assert_eq!(totals(&history, T0 + WEEK - 1), [0, 0, 0, 2]);
    assert_eq!(totals(&history, T0 + WEEK), [0, 0, 0, 0]);
    // Recording a week later reuses the ring's slots from scratch.
    completed(&mut history, T0 + WEEK + 2_000, 1, 1);
    assert_eq!(totals(&history, T0 + WEEK + 2_000), [1, 1, 1, 1]);
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
    assert_eq!(totals(&history, T0 + 10_000 - 5 * MINUTE), [1, 1, 1, 1]);
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
    // hour, day and week windows are kept.
    let later = now + 40 * MINUTE;
    let restored = History::restore(back.clone(), later).unwrap();
    assert_eq!(totals(&restored, later), [0, 10, 10, 10]);
    assert_eq!(restored.query(b"\xffbin", later).unwrap().day.counts.failed, 1);

    // After two days down only the week is left.
    let restored = History::restore(back.clone(), now + 2 * DAY).unwrap();
    assert_eq!(totals(&restored, now + 2 * DAY), [0, 0, 0, 10]);

    // After a week down nothing is left, and the functions are gone.
    let restored = History::restore(back, now + WEEK).unwrap();
    assert!(restored.query_all(now + WEEK).is_empty());
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
    assert_eq!(totals(&History::restore(snapshot, T0).unwrap(), T0), [0, 1, 1, 1]);
}

/// A snapshot written by the version whose hour was 12 slots of 5 minutes
/// and which had no week: its hour is dropped (the slot width changed),
/// its minute and day come back, and the week starts empty.
#[test]
fn a_snapshot_from_the_version_with_five_minute_hour_slots_keeps_its_other_windows() {
    let old = serde_json::json!({
        "version": 1,
        "taken_at": T0 + 10_000,
        "functions": [{
            "function": "resize",
            "windows": [
                {"window": "minute", "slot_ms": 5_000,
                 "slots": [{"start": T0 + 10_000, "counts": {"completed": 2, "failed": 0, "exceptions": 0,
                   "timeouts": 0, "cancelled": 0, "dropped": 0}, "wait": [], "run": []}]},
                {"window": "hour", "slot_ms": 300_000,
                 "slots": [{"start": T0, "counts": {"completed": 2, "failed": 0, "exceptions": 0,
                   "timeouts": 0, "cancelled": 0, "dropped": 0}, "wait": [], "run": []}]},
                {"window": "day", "slot_ms": 3_600_000,
                 "slots": [{"start": T0, "counts": {"completed": 2, "failed": 1, "exceptions": 0,
                   "timeouts": 0, "cancelled": 0, "dropped": 0}, "wait": [], "run": []}]}
            ]
        }]
    });
    let snapshot: HistorySnapshot = serde_json::from_value(old).unwrap();
    let restored = History::restore(snapshot, T0 + 20_000).unwrap();
    assert_eq!(totals(&restored, T0 + 20_000), [2, 0, 3, 0]);
    // Written again, it has all four windows with this version's widths.
    let again = serde_json::to_value(restored.snapshot(T0 + 20_000)).unwrap();
    let widths: Vec<u64> =
        again["functions"][0]["windows"].as_array().unwrap().iter().map(|w| w["slot_ms"].as_u64().unwrap()).collect();
    assert_eq!(widths, [5_000, 60_000, 3_600_000, 14_400_000]);
}

#[test]
fn series_has_every_slot_oldest_first_with_zeros_where_nothing_ended() {
    let mut history = History::new();
    let now = T0 + 3 * HOUR + 30 * MINUTE;
    completed(&mut history, now - 2 * MINUTE, 5, 7);
    completed(&mut history, now - 2 * MINUTE, 5, 7);
    // Oldest first: a ring restarts a slot it is given an older time for
    // (a clock that stepped back).
    history.record_end(b"thumbs", RecordState::Dead, None, None, now - 25 * HOUR);
    history.record_end(b"thumbs", RecordState::Failed, Some(1), Some(2), now);
    history.record_retry(b"thumbs", now);

    let hour = history.series(None, Window::Hour, now);
    assert_eq!((hour.window, hour.slot_ms, hour.slots.len()), (Window::Hour, MINUTE, 60));
    assert_eq!(hour.slots[59].start, now - now % MINUTE);
    assert!(hour.slots.windows(2).all(|pair| pair[1].start == pair[0].start + MINUTE));
    assert_eq!(hour.slots[57].counts.completed, 2);
    assert_eq!(hour.slots[57].queue_wait_ms.samples, 2);
    assert_eq!(hour.slots[57].run_time_ms.p50, Some(7));
    assert_eq!((hour.slots[59].counts.failed, hour.slots[59].counts.retried), (1, 1));
    let total: u64 = hour.slots.iter().map(|slot| slot.counts.total()).sum();
    assert_eq!(total, 3);
    assert_eq!(hour.slots[0].counts, Counts::default());
    assert_eq!(hour.slots[0].queue_wait_ms, Percentiles::default());

    // One function only.
    let resize = history.series(Some(b"resize"), Window::Hour, now);
    assert_eq!(resize.slots.iter().map(|slot| slot.counts.total()).sum::<u64>(), 2);
    assert_eq!(resize.slots[59].counts, Counts::default());

    // The day does not reach 25 hours back; the week does.
    let day = history.series(Some(b"thumbs"), Window::Day, now);
    assert_eq!((day.slot_ms, day.slots.len()), (HOUR, 24));
    assert_eq!(day.slots.iter().map(|slot| slot.counts.dead).sum::<u64>(), 0);
    let week = history.series(Some(b"thumbs"), Window::Week, now);
    assert_eq!((week.slot_ms, week.slots.len()), (4 * HOUR, 42));
    assert_eq!(week.slots.iter().map(|slot| slot.counts.dead).sum::<u64>(), 1);
    assert_eq!(week.slots[41].counts.failed, 1);

    // A function never seen: every slot, all zeros.
    let none = history.series(Some(b"nobody"), Window::Week, now);
    assert_eq!(none.slots.len(), 42);
    assert!(none.slots.iter().all(|slot| slot.counts == Counts::default()));
    // A slot that the ring has lapped is not reported as a later one.
    let later = history.series(Some(b"resize"), Window::Hour, now + HOUR);
    assert!(later.slots.iter().all(|slot| slot.counts == Counts::default()));
}

#[test]
fn window_names() {
    for window in Window::ALL {
        assert_eq!(Window::parse(window.as_str()), Some(window));
    }
    assert_eq!(Window::parse("month"), None);
    assert_eq!(Window::parse("Hour"), None);
}

#[test]
fn prune_forgets_idle_functions() {
    let mut history = History::new();
    completed(&mut history, T0, 1, 1);
    history.record_end(b"later", RecordState::Complete, None, None, T0 + 12 * HOUR);
    history.prune(T0 + DAY);
    assert!(history.query(b"resize", T0 + DAY).is_some(), "still in its week");
    history.prune(T0 + WEEK);
    assert!(history.query(b"resize", T0 + WEEK).is_none());
    assert!(history.query(b"later", T0 + WEEK).is_some());
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
    assert_eq!(slots, 12 + 60 + 24 + 42);
    for ring in &history.rings {
        for slot in ring.slots.iter().flatten() {
            assert!(slot.stats.wait.is_empty() || slot.stats.wait.validate().is_ok());
        }
    }
}
