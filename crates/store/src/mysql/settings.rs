//! Operator settings in the MySQL/MariaDB store (see
//! [`crate::Store::load_settings`]). Each write is one autocommitted
//! statement on InnoDB, durable before it returns.

use super::*;
use crate::Setting;

impl MysqlStore {
    pub(super) async fn read_settings(&mut self, kind: &str) -> Result<Vec<Setting>> {
        let table = self.settings.table.clone();
        let rows: Vec<(Vec<u8>, String)> = self
            .conn()?
            .exec("SELECT name, value FROM sprocket_settings WHERE namespace = ? AND kind = ?", (table, kind))
            .await
            .map_err(|e| classify("mysql settings read", e))?;
        Ok(rows.into_iter().map(|(name, value)| (Bytes::from(name), value)).collect())
    }

    pub(super) async fn write_setting(&mut self, kind: &str, name: &[u8], value: Option<&str>) -> Result<()> {
        let table = self.settings.table.clone();
        let conn = self.conn()?;
        match value {
            Some(value) => {
                conn.exec_drop(
                    "INSERT INTO sprocket_settings (namespace, kind, name, value) VALUES (?, ?, ?, ?) \
                     ON DUPLICATE KEY UPDATE value = VALUES(value)",
                    (table, kind, name, value),
                )
                .await
            }
            None => {
                conn.exec_drop(
                    "DELETE FROM sprocket_settings WHERE namespace = ? AND kind = ? AND name = ?",
                    (table, kind, name),
                )
                .await
            }
        }
        .map_err(|e| classify("mysql settings write", e))
    }
}
