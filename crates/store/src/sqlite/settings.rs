//! Operator settings in the SQLite store (see [`crate::Store::load_settings`]).

use super::*;
use crate::Setting;

fn load_setting_rows(conn: &mut Connection, sql: &Sql, kind: &str) -> Result<Vec<Setting>> {
    let map = |e| unavailable_or_rejected("sqlite settings read", e);
    let mut st = conn
        .prepare_cached("SELECT name, value FROM sprocket_settings WHERE namespace = ?1 AND kind = ?2")
        .map_err(map)?;
    let rows = st
        .query_map([sql.table.as_str(), kind], |r| Ok((Bytes::from(r.get::<_, Vec<u8>>(0)?), r.get::<_, String>(1)?)))
        .map_err(map)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map)
}

impl SqliteStore {
    pub(super) async fn read_settings(&mut self, kind: &str) -> Result<Vec<Setting>> {
        let kind = kind.to_owned();
        self.with_conn(move |conn, sql| load_setting_rows(conn, sql, &kind)).await
    }

    /// Writes (`value` Some) or deletes one setting in a transaction of
    /// its own, committed with the connection's `synchronous` setting.
    pub(super) async fn write_setting(&mut self, kind: &str, name: &[u8], value: Option<&str>) -> Result<()> {
        let (kind, name, value) = (kind.to_owned(), name.to_vec(), value.map(str::to_owned));
        self.with_conn(move |conn, sql| {
            let map = |e| unavailable_or_rejected("sqlite settings write", e);
            match value {
                Some(value) => conn.execute(
                    "INSERT OR REPLACE INTO sprocket_settings (namespace, kind, name, value) VALUES (?1, ?2, ?3, ?4)",
                    params![sql.table, kind, name, value],
                ),
                None => conn.execute(
                    "DELETE FROM sprocket_settings WHERE namespace = ?1 AND kind = ?2 AND name = ?3",
                    params![sql.table, kind, name],
                ),
            }
            .map(drop)
            .map_err(map)
        })
        .await
    }
}
