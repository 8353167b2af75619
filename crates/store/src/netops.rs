//! Reduction of a batch to its net effect per key.
//!
//! A backend applies a batch atomically, so only the last operation on each
//! key matters: insert-then-delete is a delete (the row may predate the
//! batch), delete-then-insert is an insert (replace). Reducing first lets
//! backends use multi-row statements without the same row appearing twice.

use std::collections::HashMap;

use crate::{JobKey, RecordRow, Result, Store, StoreOp, StoredJob};

/// The net effect of a batch: rows to upsert and keys to delete, disjoint,
/// each in the order of its last operation; and the last record of each
/// handle (only a record's last state needs writing).
#[derive(Debug, Default)]
pub struct NetOps<'a> {
    pub upserts: Vec<&'a StoredJob>,
    pub deletes: Vec<&'a JobKey>,
    pub records: Vec<&'a RecordRow>,
}

impl<'a> NetOps<'a> {
    /// Adds the row effect of one operation.
    fn push(&mut self, op: &'a StoreOp) {
        match op {
            StoreOp::Insert(job) => self.upserts.push(job),
            StoreOp::Delete(key) => self.deletes.push(key),
            StoreOp::Record(row) => self.records.push(row),
        }
    }
}

/// What an operation is reduced by: a queue row's key, or a record's
/// handle (a record and its job's queue row are both written).
#[derive(Debug, PartialEq, Eq, Hash)]
enum Target<'a> {
    Row(&'a [u8], &'a [u8]),
    Record(&'a [u8]),
}

fn target(op: &StoreOp) -> Target<'_> {
    match op.record_handle() {
        Some(handle) => Target::Record(handle),
        None => {
            let (function, unique) = op.key_parts();
            Target::Row(function, unique)
        }
    }
}

/// Reduces `ops` (in submission order) to their net effect.
pub fn reduce(ops: &[StoreOp]) -> NetOps<'_> {
    let mut net = NetOps::default();
    if ops.len() == 1 {
        // The common single-op case needs no map.
        net.push(&ops[0]);
        return net;
    }
    let mut last: HashMap<Target<'_>, usize> = HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        last.insert(target(op), i);
    }
    for (i, op) in ops.iter().enumerate() {
        if last.get(&target(op)) == Some(&i) {
            net.push(op);
        }
    }
    net
}

/// Removes repeated keys from a replay, keeping the last occurrence of each
/// (a table without gearmand's unique constraint, or a Redis SCAN that
/// returned a key twice).
pub fn dedupe_loaded(jobs: Vec<StoredJob>) -> Vec<StoredJob> {
    let mut last: HashMap<JobKey, usize> = HashMap::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        last.insert(job.key(), i);
    }
    if last.len() == jobs.len() {
        return jobs;
    }
    jobs.into_iter().enumerate().filter(|(i, job)| last.get(&job.key()) == Some(i)).map(|(_, j)| j).collect()
}

/// Connects a copy of a store made without a connection and boxes it: the
/// body of `Store::open_another` for the network backends.
pub(crate) async fn connected<S: Store + 'static>(mut copy: S) -> Result<Option<Box<dyn Store>>> {
    copy.reconnect().await?;
    Ok(Some(Box::new(copy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sprocket_proto::Priority;

    fn job(f: &str, u: &str, d: &str) -> StoredJob {
        StoredJob {
            function: Bytes::copy_from_slice(f.as_bytes()),
            unique: Bytes::copy_from_slice(u.as_bytes()),
            priority: Priority::Normal,
            data: Bytes::copy_from_slice(d.as_bytes()),
            when: 0,
        }
    }

    #[test]
    fn last_operation_per_key_wins() {
        let ops = vec![
            StoreOp::Insert(job("f", "a", "1")),
            StoreOp::Delete(job("f", "a", "").key()),
            StoreOp::Delete(job("f", "b", "").key()),
            StoreOp::Insert(job("f", "b", "2")),
            StoreOp::Insert(job("f", "c", "3")),
            StoreOp::Insert(job("f", "c", "4")),
        ];
        let net = reduce(&ops);
        assert_eq!(net.deletes.len(), 1);
        assert_eq!(&net.deletes[0].unique[..], b"a");
        let ups: Vec<&str> = net.upserts.iter().map(|j| std::str::from_utf8(&j.data).unwrap()).collect();
        assert_eq!(ups, vec!["2", "4"]);
    }

    fn record(handle: &str, f: &str, u: &str, body: &str) -> StoreOp {
        StoreOp::Record(crate::RecordRow {
            handle: Bytes::copy_from_slice(handle.as_bytes()),
            function: Bytes::copy_from_slice(f.as_bytes()),
            row_unique: Bytes::copy_from_slice(u.as_bytes()),
            state: crate::RecordState::Complete,
            submitted: 1,
            finished: Some(2),
            body: Bytes::copy_from_slice(body.as_bytes()),
        })
    }

    #[test]
    fn records_are_kept_beside_their_rows_and_the_last_of_a_handle_wins() {
        let ops = vec![
            record("H:h:1", "f", "a", "queued"),
            StoreOp::Insert(job("f", "a", "1")),
            record("H:h:2", "f", "b", "other"),
            StoreOp::Delete(job("f", "a", "").key()),
            record("H:h:1", "f", "a", "complete"),
        ];
        let net = reduce(&ops);
        assert_eq!(net.deletes.len(), 1, "the delete is not swallowed by the record of its key");
        assert!(net.upserts.is_empty());
        let bodies: Vec<&[u8]> = net.records.iter().map(|r| &r.body[..]).collect();
        assert_eq!(bodies, vec![&b"other"[..], &b"complete"[..]]);
    }

    #[test]
    fn dedupe_keeps_last() {
        let out = dedupe_loaded(vec![job("f", "a", "1"), job("f", "b", "2"), job("f", "a", "3")]);
        let data: Vec<&[u8]> = out.iter().map(|j| &j.data[..]).collect();
        assert_eq!(data, vec![&b"2"[..], &b"3"[..]]);
    }
}
