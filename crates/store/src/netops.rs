//! Reduction of a batch to its net effect per key.
//!
//! A backend applies a batch atomically, so only the last operation on each
//! key matters: insert-then-delete is a delete (the row may predate the
//! batch), delete-then-insert is an insert (replace). Reducing first lets
//! backends use multi-row statements without the same row appearing twice.

use std::collections::HashMap;

use crate::{JobKey, Result, Store, StoreOp, StoredJob};

/// The net effect of a batch: rows to upsert and keys to delete, disjoint,
/// each in the order of its last operation.
#[derive(Debug, Default)]
pub struct NetOps<'a> {
    pub upserts: Vec<&'a StoredJob>,
    pub deletes: Vec<&'a JobKey>,
}

impl<'a> NetOps<'a> {
    /// Adds the row effect of one operation.
    fn push(&mut self, op: &'a StoreOp) {
        match op {
            StoreOp::Insert(job) => self.upserts.push(job),
            StoreOp::Delete(key) => self.deletes.push(key),
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
    let mut last: HashMap<(&[u8], &[u8]), usize> = HashMap::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        last.insert(op.key_parts(), i);
    }
    for (i, op) in ops.iter().enumerate() {
        if last.get(&op.key_parts()) == Some(&i) {
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

    #[test]
    fn dedupe_keeps_last() {
        let out = dedupe_loaded(vec![job("f", "a", "1"), job("f", "b", "2"), job("f", "a", "3")]);
        let data: Vec<&[u8]> = out.iter().map(|j| &j.data[..]).collect();
        assert_eq!(data, vec![&b"2"[..], &b"3"[..]]);
    }
}
