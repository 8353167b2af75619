//! Job records in the MySQL/MariaDB store: one record by handle, searches,
//! batched expiry, the handles of queued jobs and durable handle blocks.

use super::*;
use crate::ExpiryCutoffs;

/// Reserves a block of handle numbers for the queue table `table` in one
/// transaction; the row lock of `FOR UPDATE` makes two servers'
/// reservations take turns.
pub(super) async fn reserve_block(conn: &mut Conn, table: &str, block: i64) -> Result<i64> {
    let ctx = |e| classify("mysql handle reservation", e);
    let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(ctx)?;
    tx.exec_drop("INSERT IGNORE INTO sprocket_handles (namespace, next_handle) VALUES (?, 1)", (table,))
        .await
        .map_err(ctx)?;
    let next: Option<i64> = tx
        .exec_first("SELECT next_handle FROM sprocket_handles WHERE namespace = ? FOR UPDATE", (table,))
        .await
        .map_err(ctx)?;
    let first = next.unwrap_or(1).max(1);
    let Some(after) = first.checked_add(block) else {
        let _ = tx.rollback().await;
        return Err(StoreError::Rejected(format!("handle numbers of {table} are used up")));
    };
    tx.exec_drop("UPDATE sprocket_handles SET next_handle = ? WHERE namespace = ?", (after, table))
        .await
        .map_err(ctx)?;
    tx.commit().await.map_err(ctx)?;
    Ok(first)
}

impl MysqlStore {
    pub(super) async fn read_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        // Handles are ASCII text (the column's character set); no other
        // bytes can name a record.
        let Some(handle) = std::str::from_utf8(handle).ok().filter(|h| h.is_ascii()) else { return Ok(None) };
        let table = self.settings.table.clone();
        let body: Option<Vec<u8>> = self
            .conn()?
            .exec_first("SELECT body FROM sprocket_records WHERE namespace = ? AND handle = ?", (table, handle))
            .await
            .map_err(|e| classify("mysql record read", e))?;
        body.as_deref().map(decode_body).transpose()
    }

    /// The records of several handles in one statement (one round trip).
    pub(super) async fn read_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        let texts: Vec<&str> =
            handles.iter().filter_map(|h| std::str::from_utf8(h).ok().filter(|h| h.is_ascii())).collect();
        if texts.is_empty() {
            return Ok(vec![None; handles.len()]);
        }
        let marks = vec!["?"; texts.len()].join(", ");
        let mut params: Vec<mysql_async::Value> = Vec::with_capacity(texts.len() + 1);
        params.push(self.settings.table.clone().into());
        params.extend(texts.iter().map(|t| mysql_async::Value::from(*t)));
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self
            .conn()?
            .exec(
                format!("SELECT handle, body FROM sprocket_records WHERE namespace = ? AND handle IN ({marks})"),
                mysql_async::Params::Positional(params),
            )
            .await
            .map_err(|e| classify("mysql record read", e))?;
        let by_handle: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows.into_iter().collect();
        handles.iter().map(|h| by_handle.get(&h[..]).map(|body| decode_body(body)).transpose()).collect()
    }

    /// The parameters of a statement over ended records that `filter`
    /// selects, at most `limit` of them: the namespace, then each condition
    /// twice (`? IS NULL OR column = ?`), then the limit.
    fn filter_params(&self, filter: &RecordFilter, limit: usize) -> Params {
        let function = filter.function.as_deref().map(<[u8]>::to_vec);
        let state = filter.state.map(|s| s.as_str());
        let (since, until) = (filter.since.map(ms), filter.until.map(ms));
        Params::Positional(vec![
            Value::from(self.settings.table.clone()),
            Value::from(function.clone()),
            Value::from(function),
            Value::from(state),
            Value::from(state),
            Value::from(since),
            Value::from(since),
            Value::from(until),
            Value::from(until),
            Value::from(u64::try_from(limit).unwrap_or(u64::MAX)),
        ])
    }

    pub(super) async fn find_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        let params = self.filter_params(filter, filter.limit);
        let bodies: Vec<Vec<u8>> = self
            .conn()?
            .exec(
                "SELECT body FROM sprocket_records WHERE namespace = ? AND finished IS NOT NULL \
                 AND (? IS NULL OR function = ?) AND (? IS NULL OR state = ?) \
                 AND (? IS NULL OR finished >= ?) AND (? IS NULL OR finished < ?) \
                 ORDER BY finished DESC, handle DESC LIMIT ?",
                params,
            )
            .await
            .map_err(|e| classify("mysql record search", e))?;
        bodies.iter().map(|b| decode_body(b)).collect()
    }

    /// Each final state's records past its cutoff, oldest first, one
    /// statement per state (the by-state key gives them in order).
    pub(super) async fn expire_ended_records(&mut self, cutoffs: ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        let table = self.settings.table.clone();
        let conn = self.conn()?;
        let mut done = 0usize;
        for state in crate::final_states() {
            let Some(before) = cutoffs.of(state) else { continue };
            let room = batch_limit.saturating_sub(done);
            if room == 0 {
                break;
            }
            conn.exec_drop(
                "DELETE FROM sprocket_records WHERE namespace = ? AND state = ? AND finished IS NOT NULL \
                 AND finished < ? ORDER BY finished LIMIT ?",
                (table.as_str(), state.as_str(), ms(before), u64::try_from(room).unwrap_or(u64::MAX)),
            )
            .await
            .map_err(|e| classify("mysql record expiry", e))?;
            done = done.saturating_add(usize::try_from(conn.affected_rows()).unwrap_or(usize::MAX));
        }
        Ok(done)
    }

    pub(super) async fn purge_ended_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        let params = self.filter_params(filter, batch_limit);
        let conn = self.conn()?;
        conn.exec_drop(
            "DELETE FROM sprocket_records WHERE namespace = ? AND finished IS NOT NULL \
             AND (? IS NULL OR function = ?) AND (? IS NULL OR state = ?) \
             AND (? IS NULL OR finished >= ?) AND (? IS NULL OR finished < ?) LIMIT ?",
            params,
        )
        .await
        .map_err(|e| classify("mysql record purge", e))?;
        Ok(usize::try_from(conn.affected_rows()).unwrap_or(usize::MAX))
    }

    pub(super) async fn queued_record_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        let table = self.settings.table.clone();
        // function, row_unique, handle, body
        type QueuedRow = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
        let rows: Vec<QueuedRow> = self
            .conn()?
            .exec(
                "SELECT function, row_unique, handle, body FROM sprocket_records \
                 WHERE namespace = ? AND finished IS NULL AND row_unique <> ''",
                (table,),
            )
            .await
            .map_err(|e| classify("mysql record replay", e))?;
        Ok(rows
            .into_iter()
            .map(|(function, unique, handle, body)| QueuedHandle {
                key: JobKey { function: Bytes::from(function), unique: Bytes::from(unique) },
                record: crate::record_row::queued_record(&handle, &body),
                handle: Bytes::from(handle),
            })
            .collect())
    }

    pub(super) async fn reserve_handle_numbers(&mut self, block: u64) -> Result<u64> {
        let block = i64::try_from(block.max(1))
            .map_err(|_| StoreError::Rejected(format!("a block of {block} handles is too large")))?;
        let table = self.settings.table.clone();
        let first = reserve_block(self.conn()?, &table, block).await?;
        u64::try_from(first).map_err(|_| StoreError::Corrupt(format!("negative handle number {first}")))
    }
}
