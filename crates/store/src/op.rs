//! The operations the engine hands to the store, and what each kind means
//! to the writer.
//!
//! The writer never matches on a kind of operation itself: it asks the
//! operation (its key, its size, whether a later operation cancels it,
//! whether a reply waits for it, whether it is kept while the database is
//! down). A new kind is one variant here plus how each backend writes it.

use crate::{JobKey, RecordRow, StoredJob};

/// A change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Write a job's row, replacing any row of its key.
    Insert(StoredJob),
    /// Remove the row of a key, if there is one.
    Delete(JobKey),
    /// Write a job's record, replacing the record of its handle. Kept in
    /// sprocketd's record table, beside the queue table; committed in the
    /// same transaction as the queue operations of its batch, so a job's
    /// delete and its final record land together.
    Record(RecordRow),
}

impl StoreOp {
    /// The row the operation changes.
    pub fn key(&self) -> JobKey {
        match self {
            StoreOp::Insert(job) => job.key(),
            StoreOp::Delete(key) => key.clone(),
            StoreOp::Record(row) => JobKey { function: row.function.clone(), unique: row.row_unique.clone() },
        }
    }

    /// The row's key as (function, unique), borrowed. A record's key is its
    /// job's queue row, so that with several streams a record waits for a
    /// commit of its job still in flight and lands after it.
    pub fn key_parts(&self) -> (&[u8], &[u8]) {
        match self {
            StoreOp::Insert(job) => (&job.function, &job.unique),
            StoreOp::Delete(key) => (&key.function, &key.unique),
            StoreOp::Record(row) => (&row.function, &row.row_unique),
        }
    }

    /// The operation's kind, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            StoreOp::Insert(_) => "insert",
            StoreOp::Delete(_) => "delete",
            StoreOp::Record(_) => "record",
        }
    }

    /// The bytes the operation carries to the database (job data, unique
    /// and function name), which the writer's per-commit byte limit counts.
    pub fn size(&self) -> usize {
        match self {
            StoreOp::Insert(job) => job.data.len() + job.unique.len() + job.function.len(),
            StoreOp::Delete(key) => key.unique.len() + key.function.len(),
            StoreOp::Record(row) => row.body.len() + row.row_unique.len() + row.function.len() + row.handle.len(),
        }
    }

    /// How the writer treats the operation's kind; every kind answers all
    /// of it here, in one place.
    fn rules(&self) -> &'static Rules {
        match self {
            StoreOp::Insert(_) => &Rules { cancellable: true, cancels: false, awaited: true, kept_while_down: false },
            StoreOp::Delete(_) => &Rules { cancellable: false, cancels: true, awaited: false, kept_while_down: true },
            // A record outlives its queue row: the delete of the row never
            // cancels it (the final record is what remains of the job). No
            // reply waits for it, so a JOB_CREATED is never held by one.
            // Kept while the database is down, within
            // `MAX_RECORDS_KEPT_WHILE_DOWN`, so the end of a job is still
            // recorded once the database is back.
            StoreOp::Record(_) => &Rules { cancellable: false, cancels: false, awaited: false, kept_while_down: true },
        }
    }

    /// Whether a later operation that [cancels](StoreOp::cancels) its key
    /// removes this one while both still wait for a commit, so that neither
    /// reaches the database. An insert is: its job finished before its row
    /// was needed (the engine inserts a key again only after the job that
    /// owned it was deleted).
    pub fn is_cancellable(&self) -> bool {
        self.rules().cancellable
    }

    /// Whether this operation, arriving while cancellable operations of its
    /// key wait for a commit, cancels them and is dropped with them: a
    /// delete of a row that was never written has nothing to do.
    pub fn cancels(&self) -> bool {
        self.rules().cancels
    }

    /// Whether a reply to a client waits for this operation (a submitter's
    /// JOB_CREATED waits for its insert), so that its failure must be
    /// reported in [`Completion::failed`](crate::Completion::failed); an
    /// operation no reply waits for is retried or logged instead.
    pub fn is_awaited(&self) -> bool {
        self.rules().awaited
    }

    /// Whether the writer keeps the operation while the database is
    /// unreachable and writes it after reconnecting (a delete: its job is
    /// done, and its row would otherwise be replayed), instead of failing
    /// it at once (an insert: its submitter gets an ERROR rather than a
    /// JOB_CREATED for a job that is not durable).
    pub fn is_kept_while_down(&self) -> bool {
        self.rules().kept_while_down
    }

    /// What undoes the operation if it may have reached the database although
    /// it was reported failed (a commit whose connection broke can still
    /// have been applied): an insert's row is deleted again, or a job whose
    /// submitter was told it failed would be replayed at the next start.
    pub fn undo(&self) -> Option<StoreOp> {
        match self {
            StoreOp::Insert(job) => Some(StoreOp::Delete(job.key())),
            // An upsert of a record is safe to have landed: it is
            // written again, whole, by the record's next operation.
            StoreOp::Delete(_) | StoreOp::Record(_) => None,
        }
    }

    /// The handle whose record the operation writes, for a record: within
    /// one commit only the last record of a handle is written.
    pub fn record_handle(&self) -> Option<&[u8]> {
        match self {
            StoreOp::Record(row) => Some(&row.handle),
            _ => None,
        }
    }
}

/// How many record operations the writer keeps while the database is
/// unreachable. Each holds its record's stored form (up to
/// `--record-max-bytes`), so an outage must not grow them without bound:
/// past this many, further records are dropped with a warning (their jobs'
/// queue deletes are still kept, so such a job ends unrecorded rather than
/// running again).
pub const MAX_RECORDS_KEPT_WHILE_DOWN: usize = 100_000;

/// How the writer treats one kind of operation (see the methods of
/// [`StoreOp`] that read it).
struct Rules {
    cancellable: bool,
    cancels: bool,
    awaited: bool,
    kept_while_down: bool,
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sprocket_proto::Priority;

    use super::*;

    fn insert() -> StoreOp {
        StoreOp::Insert(StoredJob {
            function: Bytes::from_static(b"resize"),
            unique: Bytes::from_static(b"u1"),
            priority: Priority::Normal,
            data: Bytes::from_static(b"12345"),
            when: 0,
        })
    }

    #[test]
    fn an_insert_is_awaited_failed_while_down_and_undone_by_its_delete() {
        let op = insert();
        assert!(op.is_cancellable() && !op.cancels());
        assert!(op.is_awaited() && !op.is_kept_while_down());
        assert_eq!(op.undo(), Some(StoreOp::Delete(op.key())));
        assert_eq!(op.size(), 5 + 2 + 6, "data, unique and function");
        assert_eq!(op.key_parts(), (&b"resize"[..], &b"u1"[..]));
    }

    fn record() -> StoreOp {
        let rec =
            sprocket_records::Record::new(b"H:h:7", b"resize", b"", Priority::Normal, true, 1_000).expect("record");
        StoreOp::Record(crate::RecordRow::new(&rec, b"u1").expect("row"))
    }

    #[test]
    fn a_record_outlives_its_row_waits_for_nothing_and_is_kept_while_down() {
        let op = record();
        assert!(!op.is_cancellable(), "a later delete of the queue row never cancels the record");
        assert!(!op.cancels(), "a record never cancels the job's insert");
        assert!(!op.is_awaited(), "no JOB_CREATED waits for a record");
        assert!(op.is_kept_while_down());
        assert_eq!(op.undo(), None);
        assert_eq!(op.key(), insert().key(), "keyed by its job's queue row, for ordering");
        assert_eq!(op.record_handle(), Some(&b"H:h:7"[..]));
        assert_eq!(insert().record_handle(), None);
        let StoreOp::Record(row) = &op else { unreachable!() };
        assert_eq!(op.size(), row.body.len() + 2 + 6 + 5);
        assert_eq!(op.name(), "record");
    }

    #[test]
    fn a_record_row_refuses_a_handle_that_is_not_text() {
        let rec = sprocket_records::Record::new(&[0xff, 0xfe], b"f", b"", Priority::Normal, true, 1).expect("record");
        assert!(matches!(crate::RecordRow::new(&rec, b""), Err(crate::RecordRowError::HandleNotAscii(_))));
    }

    #[test]
    fn a_delete_cancels_kept_while_down_and_needs_no_undo() {
        let op = StoreOp::Delete(insert().key());
        assert!(op.cancels() && !op.is_cancellable());
        assert!(!op.is_awaited() && op.is_kept_while_down());
        assert_eq!(op.undo(), None);
        assert_eq!(op.size(), 2 + 6);
        assert_eq!(op.key(), insert().key());
    }
}
