//! Job records in the SQLite store: one record by handle, searches,
//! batched expiry, the handles of queued jobs and durable handle blocks.

use super::*;
use crate::ExpiryCutoffs;

pub(super) fn load_record_row(conn: &mut Connection, sql: &Sql, handle: &str) -> Result<Option<Record>> {
    let map = |e| unavailable_or_rejected("sqlite record read", e);
    let mut st =
        conn.prepare_cached("SELECT body FROM sprocket_records WHERE namespace = ?1 AND handle = ?2").map_err(map)?;
    let body: Option<Vec<u8>> = st.query_row([&sql.table, handle], |r| r.get(0)).optional().map_err(map)?;
    body.as_deref().map(decode_body).transpose()
}

pub(super) fn search_record_rows(conn: &mut Connection, sql: &Sql, filter: &RecordFilter) -> Result<Vec<Record>> {
    let map = |e| unavailable_or_rejected("sqlite record search", e);
    let mut st = conn
        .prepare_cached(
            "SELECT body FROM sprocket_records WHERE namespace = ?1 AND finished IS NOT NULL \
             AND (?2 IS NULL OR function = ?2) AND (?3 IS NULL OR state = ?3) \
             AND (?4 IS NULL OR finished >= ?4) AND (?5 IS NULL OR finished < ?5) \
             ORDER BY finished DESC, handle DESC LIMIT ?6",
        )
        .map_err(map)?;
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let rows = st
        .query_map(
            params![
                sql.table,
                filter.function.as_deref(),
                filter.state.map(|s| s.as_str()),
                filter.since.map(ms),
                filter.until.map(ms),
                limit
            ],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .map_err(map)?;
    let mut out = Vec::new();
    for body in rows {
        out.push(decode_body(&body.map_err(map)?)?);
    }
    Ok(out)
}

/// Deletes up to `limit` records in `state` that ended before `before`,
/// oldest first (the by-state index gives them in order).
pub(super) fn expire_record_rows(
    conn: &mut Connection,
    sql: &Sql,
    state: &str,
    before: i64,
    limit: i64,
) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM sprocket_records WHERE rowid IN (SELECT rowid FROM sprocket_records \
         WHERE namespace = ?1 AND state = ?2 AND finished IS NOT NULL AND finished < ?3 ORDER BY finished LIMIT ?4)",
    )
    .and_then(|mut st| st.execute(params![sql.table, state, before, limit]))
    .map_err(|e| unavailable_or_rejected("sqlite record expiry", e))
}

/// Deletes up to `limit` ended records matching the filter's function,
/// state and end time.
pub(super) fn purge_record_rows(conn: &mut Connection, sql: &Sql, filter: &RecordFilter, limit: i64) -> Result<usize> {
    conn.prepare_cached(
        "DELETE FROM sprocket_records WHERE rowid IN (SELECT rowid FROM sprocket_records \
         WHERE namespace = ?1 AND finished IS NOT NULL \
         AND (?2 IS NULL OR function = ?2) AND (?3 IS NULL OR state = ?3) \
         AND (?4 IS NULL OR finished >= ?4) AND (?5 IS NULL OR finished < ?5) LIMIT ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            sql.table,
            filter.function.as_deref(),
            filter.state.map(|s| s.as_str()),
            filter.since.map(ms),
            filter.until.map(ms),
            limit
        ])
    })
    .map_err(|e| unavailable_or_rejected("sqlite record purge", e))
}

pub(super) fn queued_handle_rows(conn: &mut Connection, sql: &Sql) -> Result<Vec<QueuedHandle>> {
    let map = |e| unavailable_or_rejected("sqlite record replay", e);
    let mut st = conn
        .prepare_cached(
            "SELECT function, row_unique, handle, body FROM sprocket_records \
             WHERE namespace = ?1 AND finished IS NULL AND row_unique <> x''",
        )
        .map_err(map)?;
    let rows = st
        .query_map([&sql.table], |r| {
            let handle = Bytes::from(r.get::<_, String>(2)?.into_bytes());
            let body: Vec<u8> = r.get(3)?;
            Ok(QueuedHandle {
                key: JobKey {
                    function: Bytes::from(r.get::<_, Vec<u8>>(0)?),
                    unique: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                },
                record: crate::record_row::queued_record(&handle, &body),
                handle,
            })
        })
        .map_err(map)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
}

pub(super) fn reserve_handle_block(conn: &mut Connection, sql: &Sql, block: i64) -> Result<u64> {
    let map = |e| unavailable_or_rejected("sqlite handle reservation", e);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map)?;
    let next: Option<i64> = tx
        .query_row("SELECT next_handle FROM sprocket_handles WHERE namespace = ?1", [&sql.table], |r| r.get(0))
        .optional()
        .map_err(map)?;
    let first = next.unwrap_or(1).max(1);
    let after = first
        .checked_add(block)
        .ok_or_else(|| StoreError::Rejected(format!("handle numbers of {} are used up", sql.table)))?;
    tx.execute(
        "INSERT OR REPLACE INTO sprocket_handles (namespace, next_handle) VALUES (?1, ?2)",
        params![sql.table, after],
    )
    .map_err(map)?;
    tx.commit().map_err(map)?;
    u64::try_from(first).map_err(|_| StoreError::Corrupt(format!("negative handle number {first}")))
}

impl SqliteStore {
    pub(super) async fn read_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        let Ok(handle) = std::str::from_utf8(handle).map(str::to_owned) else { return Ok(None) };
        self.with_conn(move |conn, sql| load_record_row(conn, sql, &handle)).await
    }

    pub(super) async fn read_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        let handles = handles.to_vec();
        self.with_conn(move |conn, sql| {
            handles
                .iter()
                .map(|h| match std::str::from_utf8(h) {
                    Ok(handle) => load_record_row(conn, sql, handle),
                    Err(_) => Ok(None),
                })
                .collect()
        })
        .await
    }

    pub(super) async fn find_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        let filter = filter.clone();
        self.with_conn(move |conn, sql| search_record_rows(conn, sql, &filter)).await
    }

    pub(super) async fn expire_ended_records(&mut self, cutoffs: ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        let limit = i64::try_from(batch_limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn, sql| {
            let mut done = 0usize;
            for state in crate::final_states() {
                let Some(before) = cutoffs.of(state) else { continue };
                let room = limit.saturating_sub(i64::try_from(done).unwrap_or(i64::MAX));
                if room <= 0 {
                    break;
                }
                done += expire_record_rows(conn, sql, state.as_str(), ms(before), room)?;
            }
            Ok(done)
        })
        .await
    }

    pub(super) async fn purge_ended_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        let (filter, limit) = (filter.clone(), i64::try_from(batch_limit).unwrap_or(i64::MAX));
        self.with_conn(move |conn, sql| purge_record_rows(conn, sql, &filter, limit)).await
    }

    pub(super) async fn queued_record_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        self.with_conn(queued_handle_rows).await
    }

    pub(super) async fn reserve_handle_numbers(&mut self, block: u64) -> Result<u64> {
        let block = i64::try_from(block.max(1))
            .map_err(|_| StoreError::Rejected(format!("a block of {block} handles is too large")))?;
        self.with_conn(move |conn, sql| reserve_handle_block(conn, sql, block)).await
    }
}
