//! Job records in the PostgreSQL store: one record by handle, searches,
//! batched expiry, the handles of queued jobs and durable handle blocks.

use super::*;
use crate::ExpiryCutoffs;

impl PostgresStore {
    pub(super) async fn read_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        let Ok(handle) = std::str::from_utf8(handle) else { return Ok(None) };
        let table = self.table.clone();
        let p = self.client()?;
        let row = p
            .client
            .query_opt("SELECT body FROM sprocket_records WHERE namespace = $1 AND handle = $2", &[&table, &handle])
            .await
            .map_err(|e| classify("postgres record read", e))?;
        row.map(|row| decode_body(row.try_get(0).map_err(|e| classify("postgres record read", e))?)).transpose()
    }

    /// The records of several handles in one statement (one round trip).
    pub(super) async fn read_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        let texts: Vec<&str> = handles.iter().filter_map(|h| std::str::from_utf8(h).ok()).collect();
        let table = self.table.clone();
        let p = self.client()?;
        let ctx = |e| classify("postgres record read", e);
        let rows = p
            .client
            .query(
                "SELECT handle, body FROM sprocket_records WHERE namespace = $1 AND handle = ANY($2)",
                &[&table, &texts],
            )
            .await
            .map_err(ctx)?;
        let mut by_handle = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let handle: String = row.try_get(0).map_err(ctx)?;
            let body: Vec<u8> = row.try_get(1).map_err(ctx)?;
            by_handle.insert(handle.into_bytes(), body);
        }
        handles.iter().map(|h| by_handle.get(&h[..]).map(|body| decode_body(body)).transpose()).collect()
    }

    pub(super) async fn find_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        let table = self.table.clone();
        let function: Option<&[u8]> = filter.function.as_deref();
        let state: Option<&str> = filter.state.map(|s| s.as_str());
        let since: Option<i64> = filter.since.map(ms);
        let until: Option<i64> = filter.until.map(ms);
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let p = self.client()?;
        let rows = p
            .client
            .query(
                "SELECT body FROM sprocket_records WHERE namespace = $1 AND finished IS NOT NULL \
                 AND ($2::bytea IS NULL OR function = $2) AND ($3::text IS NULL OR state = $3) \
                 AND ($4::int8 IS NULL OR finished >= $4) AND ($5::int8 IS NULL OR finished < $5) \
                 ORDER BY finished DESC, handle DESC LIMIT $6",
                &[&table, &function, &state, &since, &until, &limit],
            )
            .await
            .map_err(|e| classify("postgres record search", e))?;
        rows.iter().map(|row| decode_body(row.try_get(0).map_err(|e| classify("postgres record search", e))?)).collect()
    }

    /// Each final state's records past its cutoff, oldest first, one
    /// statement per state (the by-state index gives them in order).
    pub(super) async fn expire_ended_records(&mut self, cutoffs: ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        let table = self.table.clone();
        let limit = i64::try_from(batch_limit).unwrap_or(i64::MAX);
        let p = self.client()?;
        let mut done: i64 = 0;
        for state in crate::final_states() {
            let Some(before) = cutoffs.of(state) else { continue };
            let room = limit.saturating_sub(done);
            if room <= 0 {
                break;
            }
            let n = p
                .client
                .execute(
                    "DELETE FROM sprocket_records WHERE ctid IN (SELECT ctid FROM sprocket_records \
                     WHERE namespace = $1 AND state = $2 AND finished IS NOT NULL AND finished < $3 \
                     ORDER BY finished LIMIT $4)",
                    &[&table, &state.as_str(), &ms(before), &room],
                )
                .await
                .map_err(|e| classify("postgres record expiry", e))?;
            done = done.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(usize::try_from(done).unwrap_or(usize::MAX))
    }

    pub(super) async fn purge_ended_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        let table = self.table.clone();
        let function: Option<&[u8]> = filter.function.as_deref();
        let state: Option<&str> = filter.state.map(|s| s.as_str());
        let since: Option<i64> = filter.since.map(ms);
        let until: Option<i64> = filter.until.map(ms);
        let limit = i64::try_from(batch_limit).unwrap_or(i64::MAX);
        let p = self.client()?;
        let n = p
            .client
            .execute(
                "DELETE FROM sprocket_records WHERE ctid IN (SELECT ctid FROM sprocket_records \
                 WHERE namespace = $1 AND finished IS NOT NULL \
                 AND ($2::bytea IS NULL OR function = $2) AND ($3::text IS NULL OR state = $3) \
                 AND ($4::int8 IS NULL OR finished >= $4) AND ($5::int8 IS NULL OR finished < $5) LIMIT $6)",
                &[&table, &function, &state, &since, &until, &limit],
            )
            .await
            .map_err(|e| classify("postgres record purge", e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(super) async fn queued_record_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        let table = self.table.clone();
        let p = self.client()?;
        let ctx = |e| classify("postgres record replay", e);
        let rows = p
            .client
            .query(
                "SELECT function, row_unique, handle, body FROM sprocket_records \
                 WHERE namespace = $1 AND finished IS NULL AND row_unique <> ''::bytea",
                &[&table],
            )
            .await
            .map_err(ctx)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let function: Vec<u8> = row.try_get(0).map_err(ctx)?;
            let unique: Vec<u8> = row.try_get(1).map_err(ctx)?;
            let handle: String = row.try_get(2).map_err(ctx)?;
            let body: Vec<u8> = row.try_get(3).map_err(ctx)?;
            out.push(QueuedHandle {
                key: JobKey { function: Bytes::from(function), unique: Bytes::from(unique) },
                record: crate::record_row::queued_record(handle.as_bytes(), &body),
                handle: Bytes::from(handle.into_bytes()),
            });
        }
        Ok(out)
    }

    pub(super) async fn reserve_handle_numbers(&mut self, block: u64) -> Result<u64> {
        let block = i64::try_from(block.max(1))
            .map_err(|_| StoreError::Rejected(format!("a block of {block} handles is too large")))?;
        let table = self.table.clone();
        let p = self.client()?;
        // One statement, so two servers reserving at once get disjoint blocks.
        let first: i64 = p
            .client
            .query_one(
                "INSERT INTO sprocket_handles (namespace, next_handle) VALUES ($1, 1 + $2::int8) \
                 ON CONFLICT (namespace) DO UPDATE SET next_handle = sprocket_handles.next_handle + $2::int8 \
                 RETURNING next_handle - $2::int8",
                &[&table, &block],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| classify("postgres handle reservation", e))?;
        u64::try_from(first).map_err(|_| StoreError::Corrupt(format!("negative handle number {first}")))
    }
}
