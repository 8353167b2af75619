//! The operations the engine hands to the store, and what each kind means
//! to the writer.
//!
//! The writer never matches on a kind of operation itself: it asks the
//! operation (its key, its size, whether a later operation cancels it,
//! whether a reply waits for it, whether it is kept while the database is
//! down). A new kind is one variant here plus how each backend writes it.

use crate::{JobKey, StoredJob};

/// A change to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Write a job's row, replacing any row of its key.
    Insert(StoredJob),
    /// Remove the row of a key, if there is one.
    Delete(JobKey),
}

impl StoreOp {
    /// The row the operation changes.
    pub fn key(&self) -> JobKey {
        match self {
            StoreOp::Insert(job) => job.key(),
            StoreOp::Delete(key) => key.clone(),
        }
    }

    /// The row's key as (function, unique), borrowed.
    pub fn key_parts(&self) -> (&[u8], &[u8]) {
        match self {
            StoreOp::Insert(job) => (&job.function, &job.unique),
            StoreOp::Delete(key) => (&key.function, &key.unique),
        }
    }

    /// The operation's kind, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            StoreOp::Insert(_) => "insert",
            StoreOp::Delete(_) => "delete",
        }
    }

    /// The bytes the operation carries to the database (job data, unique
    /// and function name), which the writer's per-commit byte limit counts.
    pub fn size(&self) -> usize {
        match self {
            StoreOp::Insert(job) => job.data.len() + job.unique.len() + job.function.len(),
            StoreOp::Delete(key) => key.unique.len() + key.function.len(),
        }
    }

    /// How the writer treats the operation's kind; every kind answers all
    /// of it here, in one place.
    fn rules(&self) -> &'static Rules {
        match self {
            StoreOp::Insert(_) => &Rules { cancellable: true, cancels: false, awaited: true, kept_while_down: false },
            StoreOp::Delete(_) => &Rules { cancellable: false, cancels: true, awaited: false, kept_while_down: true },
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
            StoreOp::Delete(_) => None,
        }
    }
}

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
