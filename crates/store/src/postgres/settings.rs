//! Operator settings in the PostgreSQL store (see
//! [`crate::Store::load_settings`]). Each write is one statement,
//! committed (and, with PostgreSQL's default `synchronous_commit`, flushed)
//! before it returns.

use super::*;
use crate::Setting;

impl PostgresStore {
    pub(super) async fn read_settings(&mut self, kind: &str) -> Result<Vec<Setting>> {
        let table = self.table.clone();
        let ctx = |e| classify("postgres settings read", e);
        let rows = self
            .client()?
            .client
            .query("SELECT name, value FROM sprocket_settings WHERE namespace = $1 AND kind = $2", &[&table, &kind])
            .await
            .map_err(ctx)?;
        rows.into_iter()
            .map(|row| Ok((Bytes::from(row.try_get::<_, Vec<u8>>(0).map_err(ctx)?), row.try_get(1).map_err(ctx)?)))
            .collect()
    }

    pub(super) async fn write_setting(&mut self, kind: &str, name: &[u8], value: Option<&str>) -> Result<()> {
        let table = self.table.clone();
        let ctx = |e| classify("postgres settings write", e);
        let client = &self.client()?.client;
        match value {
            Some(value) => client
                .execute(
                    "INSERT INTO sprocket_settings (namespace, kind, name, value) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (namespace, kind, name) DO UPDATE SET value = EXCLUDED.value",
                    &[&table, &kind, &name, &value],
                )
                .await
                .map_err(ctx)?,
            None => client
                .execute(
                    "DELETE FROM sprocket_settings WHERE namespace = $1 AND kind = $2 AND name = $3",
                    &[&table, &kind, &name],
                )
                .await
                .map_err(ctx)?,
        };
        Ok(())
    }
}
