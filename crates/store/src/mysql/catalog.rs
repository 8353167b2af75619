//! The MySQL side of the store's versioned migrations: running a step and
//! reading and recording the schema version in `sprocket_meta`.

use super::*;

/// The migration runner's view of a MySQL connection. MySQL commits each
/// `CREATE` or `ALTER` at once, so only the version's row is transactional.
pub(super) struct MysqlCatalog<'a> {
    pub(super) conn: &'a mut Conn,
    pub(super) table: &'a str,
}

fn meta_error(table: &str) -> impl Fn(mysql_async::Error) -> StoreError + '_ {
    move |e| classify(&format!("preparing table {table}: meta"), e)
}

#[async_trait::async_trait]
impl schema::Catalog for MysqlCatalog<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Mysql
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.conn.query_drop(sql).await.map_err(meta_error(self.table))
    }

    async fn recorded_version(&mut self) -> Result<i64> {
        let table = self.table;
        let insert = "INSERT IGNORE INTO sprocket_meta (queue_table, schema_version) VALUES (?, 0)";
        self.conn.exec_drop(insert, (table,)).await.map_err(meta_error(table))?;
        let select = "SELECT schema_version FROM sprocket_meta WHERE queue_table = ? FOR UPDATE";
        let found: Option<i64> = self.conn.exec_first(select, (table,)).await.map_err(meta_error(table))?;
        Ok(found.unwrap_or(0))
    }

    async fn record_version(&mut self, version: i64) -> Result<()> {
        let table = self.table;
        let update = "UPDATE sprocket_meta SET schema_version = ? WHERE queue_table = ?";
        self.conn.exec_drop(update, (version, table)).await.map_err(meta_error(table))
    }
}
