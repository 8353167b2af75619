//! Measures what records cost in memory: the size of a queued record and
//! the heap each kept record takes in the in-memory store. Allocations are
//! counted by a wrapping global allocator (bytes requested; the system
//! allocator adds its own few bytes per allocation on top, reported as
//! allocations per record). Run with `--nocapture` to see the numbers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sprocket_proto::Priority;
use sprocket_records::memory::{MemoryRecords, Retention};
use sprocket_records::stored;
use sprocket_records::{Limits, Outcome, Record, Worker};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> (isize, isize) {
    (BYTES.load(Ordering::Relaxed), BLOCKS.load(Ordering::Relaxed))
}

const N: usize = 20_000;

fn queued(n: usize) -> Record {
    // A handle as sprocketd makes them, a 36-byte unique (a UUID).
    let handle = format!("H:build-host:{}", 1_000_000 + n);
    let unique = format!("{:08x}-0000-4000-8000-{:012x}", n, n);
    Record::new(handle.as_bytes(), b"resize", unique.as_bytes(), Priority::Normal, true, 1_765_000_000_000).unwrap()
}

/// One test so the counters see one thing at a time.
#[test]
fn memory_per_record() {
    let size = std::mem::size_of::<Record>();
    println!("size_of::<Record>() = {size} bytes");
    assert!(size <= 48, "a queued record's inline size grew to {size} bytes");

    // Queued records: the inline part plus one allocation for the ids.
    let before = heap();
    let records: Vec<Record> = (0..N).map(queued).collect();
    let after = heap();
    let per_queued = (after.0 - before.0) as f64 / N as f64;
    let blocks_queued = (after.1 - before.1) as f64 / N as f64;
    println!("queued record: {per_queued:.1} heap bytes in {blocks_queued:.2} allocations (incl. its {size} inline bytes in the Vec)");
    assert!(per_queued <= (size + 64) as f64, "{per_queued}");

    drop(records);

    // Ended records with one attempt and a 100-byte result, kept in the
    // in-memory store: everything the store holds, divided by the records.
    // The worker's id and address are shared with its connection, as the
    // engine holds them, so they cost no allocation per record.
    let worker = Worker { client_id: Bytes::from_static(b"worker-1"), peer: Arc::from("10.0.0.7:51234") };
    let result = [b'r'; 100];
    let before = heap();
    let mut store = MemoryRecords::new(Retention { max_count: N, ..Retention::default() });
    for n in 0..N {
        let mut record = queued(n);
        let start = 1_765_000_000_000 + n as u64;
        record.started(worker.clone(), start).unwrap();
        record.ended(Outcome::Complete(&result), start + 5, Limits::default()).unwrap();
        store.insert(record).unwrap();
    }
    let after = heap();
    let per_kept = (after.0 - before.0) as f64 / N as f64;
    let blocks_kept = (after.1 - before.1) as f64 / N as f64;
    println!(
        "kept record with a 100-byte result in MemoryRecords: {per_kept:.0} heap bytes in {blocks_kept:.1} allocations \
         (record, run details, attempt, result, handle index entry and end-time index)"
    );
    assert!(per_kept < 1_024.0, "a kept record costs {per_kept} bytes");

    // The same record in its storage form (one database column).
    let stored_len = stored::encode(store.get(b"H:build-host:1000000").unwrap()).unwrap().len();
    println!("the same record stored: {stored_len} bytes");
    assert_eq!(stored_len, 295, "docs/records.md states this size");
    assert_eq!(store.len(), N);
}
