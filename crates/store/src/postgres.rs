//! PostgreSQL backend (`-q postgres`, `-q Postgres`, `-q libpq`).
//!
//! The connection comes from `--libpq-conninfo` (key=value or URL) laid
//! over the PG* environment variables, as libpq does for gearmand;
//! tokio-postgres does not read the environment, so [`connection_config`]
//! does. A batch is ONE statement — a data-modifying CTE that deletes and
//! upserts from arrays — so 1000 inserts cost one round trip and commit
//! atomically.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls, Statement};
use tracing::{info, warn};

use crate::ident::{postgres_catalog_name, postgres_table, validate_table};
use crate::netops::dedupe_loaded;
use crate::record_row::{decode_body, ms};
use crate::rows::{loaded_job, EncodedBatch, KeyForm, NullKeys, Repairs};
use crate::schema::{self, Dialect};
use crate::{JobKey, QueuedHandle, Record, RecordFilter, Result, Store, StoreError, StoreOp, StoredJob};

mod records;
mod settings;

/// Connection timeout when neither the conninfo nor PGCONNECT_TIMEOUT sets one.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the connection settings: `conninfo` first, then for anything it
/// leaves unset the PG* variables read through `env`, then libpq's defaults
/// (local socket or localhost, port 5432, the login name as user).
pub fn connection_config(conninfo: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let bad = |m: String| StoreError::Config(format!("--libpq-conninfo: {m}"));
    let mut config = if conninfo.trim().is_empty() {
        Config::new()
    } else {
        conninfo.parse::<Config>().map_err(|e| bad(format!("{e}")))?
    };
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(h) => {
                for host in h.split(',') {
                    if host.starts_with('/') {
                        config.host_path(host);
                    } else {
                        config.host(host);
                    }
                }
            }
            None if Path::new("/var/run/postgresql/.s.PGSQL.5432").exists() && env("PGPORT").is_none() => {
                config.host_path("/var/run/postgresql");
            }
            None => {
                config.host("localhost");
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(p) = env("PGPORT") {
            config.port(p.parse().map_err(|_| StoreError::Config(format!("PGPORT is not a port number: {p:?}")))?);
        }
    }
    if config.get_user().is_none() {
        let user =
            env("PGUSER").or_else(|| env("USER")).or_else(|| env("LOGNAME")).unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(p);
        }
    }
    if config.get_dbname().is_none() {
        if let Some(d) = env("PGDATABASE") {
            config.dbname(&d);
        }
    }
    if config.get_connect_timeout().is_none() {
        let secs = env("PGCONNECT_TIMEOUT").and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 0);
        config.connect_timeout(secs.map(Duration::from_secs).unwrap_or(DEFAULT_CONNECT_TIMEOUT));
    }
    if !conninfo.contains("sslmode") {
        match env("PGSSLMODE").as_deref() {
            None | Some("disable") => {
                config.ssl_mode(SslMode::Disable);
            }
            Some("allow") | Some("prefer") => {
                config.ssl_mode(SslMode::Prefer);
            }
            Some(other) => {
                return Err(StoreError::Config(format!(
                    "PGSSLMODE={other}: sprocketd connects to PostgreSQL without TLS; use PGSSLMODE=disable"
                )))
            }
        }
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(bad("sslmode=require: TLS to PostgreSQL is not supported; use sslmode=disable".into()));
    }
    // The name in pg_stat_activity: the conninfo's, else PGAPPNAME, as
    // libpq takes it.
    if config.get_application_name().is_none() {
        config.application_name(env("PGAPPNAME").unwrap_or_else(|| "sprocketd".into()));
    }
    config.keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// Human-readable target for messages (never the password).
fn describe_config(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Connection failures, server shutdowns and resource exhaustion mean "try
/// again later"; anything else the server said is about the data.
fn classify(context: &str, e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // tokio-postgres puts the cause (refused, reset…) in the source.
        let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
        return StoreError::Unavailable(format!("{context}: {e}{cause}"));
    };
    let code = db.code().code();
    let msg = format!("{context}: {} ({code})", db.message());
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || code == "3D000"
        || code == "28P01"
        || code == "28000"
    {
        StoreError::Unavailable(msg)
    } else {
        StoreError::Rejected(msg)
    }
}

/// Statements prepared on one connection.
struct Prepared {
    client: Client,
    apply: Statement,
    /// `apply` with the batch's job records upserted in the same statement.
    apply_with_records: Statement,
    select: Statement,
}

/// How a batch's upserts replace existing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// `INSERT … ON CONFLICT (unique_key, function_name) DO UPDATE`: the
    /// table has a unique index on exactly those columns (gearmand's and
    /// ours do).
    OnConflict,
    /// `DELETE` of the keys, then `INSERT`, in one statement: a table made
    /// without that index, where `ON CONFLICT` fails (42P10). Correct
    /// because the writer never has one key in two commits in flight at
    /// once (its `busy_keys`), so no other commit can insert the key
    /// between the two; it also replaces the duplicates such a table may
    /// hold with one row.
    DeleteInsert,
}

/// A queue table in a PostgreSQL database.
pub struct PostgresStore {
    config: Config,
    table: String,
    target: String,
    conn: Option<Prepared>,
    /// The mode of the last connection, so that it is logged once.
    mode: Option<WriteMode>,
}

impl PostgresStore {
    /// Connects (PG* variables under `conninfo`) and creates the table if missing.
    pub async fn open(conninfo: &str, table: &str) -> Result<PostgresStore> {
        validate_table("--libpq-table", table)?;
        let config = connection_config(conninfo, &|k| std::env::var(k).ok())?;
        let target = describe_config(&config);
        let mut store = PostgresStore { config, table: table.to_string(), target, conn: None, mode: None };
        store.reconnect().await?;
        Ok(store)
    }

    /// Before a replay, gives every row with a NULL unique_key a generated
    /// key (`rows::NullKeys`), so that the job's delete matches it (`=`
    /// never matches NULL), and counts the rows without a function, which
    /// replay skips; logs both. One statement, so atomic. (A NUL byte, the
    /// other key no delete matches in SQLite and MySQL, cannot be stored
    /// in PostgreSQL text.)
    async fn repair_keys(&mut self) -> Result<()> {
        let q = postgres_table(&self.table);
        let describe = self.describe();
        let p = self.client()?;
        let ctx = |e| classify("postgres replay: repairing keys", e);
        // ctid picks each row, NULLs being distinct even under a unique
        // constraint; row_number makes each key its own.
        let null_keys = p
            .client
            .execute(
                &format!(
                    "WITH odd AS (SELECT ctid AS row_id, row_number() OVER () AS n FROM {q} \
                         WHERE unique_key IS NULL AND function_name IS NOT NULL) \
                     UPDATE {q} SET unique_key = $1::text || odd.n FROM odd WHERE {q}.ctid = odd.row_id"
                ),
                &[&NullKeys::new().prefix()],
            )
            .await
            .map_err(ctx)?;
        let skipped: i64 = p
            .client
            .query_one(&format!("SELECT COUNT(*) FROM {q} WHERE function_name IS NULL"), &[])
            .await
            .map_err(ctx)?
            .try_get(0)
            .unwrap_or(0);
        Repairs { null_keys, skipped: u64::try_from(skipped).unwrap_or(0), ..Repairs::default() }.log(&describe);
        Ok(())
    }

    fn client(&mut self) -> Result<&Prepared> {
        match &self.conn {
            Some(c) if !c.client.is_closed() => Ok(c),
            _ => Err(StoreError::Unavailable(format!("{}: not connected", self.target))),
        }
    }
}

/// Adopts the queue table (see [`crate::schema`]): creates it if missing
/// (gearmand's columns; see docs/persistence.md for the wider types) and
/// adds `when_to_run` to a table from a gearmand without it. Then brings
/// sprocketd's own tables up to date.
async fn prepare_schema(client: &Client, table: &str) -> Result<()> {
    let q = postgres_table(table);
    let mut catalog = PostgresCatalog { client, table, meta_key: postgres_catalog_name(table) };
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {q} (unique_key TEXT, function_name TEXT, priority INTEGER, data BYTEA, \
             when_to_run BIGINT, UNIQUE (unique_key, function_name))"
        ),
        format!("ALTER TABLE {q} ADD COLUMN IF NOT EXISTS when_to_run BIGINT"),
    ];
    for sql in &statements {
        schema::Catalog::execute(&mut catalog, sql).await?;
    }
    schema::migrate(&mut catalog, table, &q).await?;
    Ok(())
}

/// The migration runner's view of a PostgreSQL connection.
struct PostgresCatalog<'a> {
    client: &'a Client,
    /// The queue table as the operator named it, for messages.
    table: &'a str,
    /// Its row's key in `sprocket_meta`: the name in the catalogue.
    meta_key: String,
}

impl PostgresCatalog<'_> {
    fn error(&self, what: &str, e: tokio_postgres::Error) -> StoreError {
        classify(&format!("preparing table {}: {what}", self.table), e)
    }
}

#[async_trait::async_trait]
impl schema::Catalog for PostgresCatalog<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        // Two servers (or parallel tests) creating the same table at once
        // can collide in the catalogue; the second attempt sees the table.
        let mut attempt = 0;
        loop {
            match self.client.batch_execute(sql).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 && matches!(e.code().map(|c| c.code()), Some("23505" | "42P07")) => {
                    attempt += 1;
                }
                Err(e) => return Err(self.error("create", e)),
            }
        }
    }

    async fn recorded_version(&mut self) -> Result<i64> {
        self.client
            .execute(
                "INSERT INTO sprocket_meta (queue_table, schema_version) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&self.meta_key],
            )
            .await
            .map_err(|e| self.error("meta", e))?;
        let row = self
            .client
            .query_one("SELECT schema_version FROM sprocket_meta WHERE queue_table = $1 FOR UPDATE", &[&self.meta_key])
            .await
            .map_err(|e| self.error("meta", e))?;
        let version: i32 = row.try_get(0).map_err(|e| self.error("meta", e))?;
        Ok(i64::from(version))
    }

    async fn record_version(&mut self, version: i64) -> Result<()> {
        let version = i32::try_from(version)
            .map_err(|_| StoreError::Config(format!("schema version {version} does not fit sprocket_meta")))?;
        self.client
            .execute("UPDATE sprocket_meta SET schema_version = $2 WHERE queue_table = $1", &[&self.meta_key, &version])
            .await
            .map_err(|e| self.error("meta", e))?;
        Ok(())
    }
}

/// Whether the table has a unique index that `ON CONFLICT (unique_key,
/// function_name)` can use: unique, valid, not deferrable, not partial, on
/// exactly those two columns (in either order). Anything else, or a
/// catalogue we cannot read, means [`WriteMode::DeleteInsert`], which works
/// on every table.
async fn write_mode(client: &Client, table: &str) -> Result<WriteMode> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                 WHERE i.indrelid = to_regclass($1::text) AND i.indisunique AND i.indisvalid \
                 AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = 2 \
                 AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) \
                      FROM pg_catalog.pg_attribute a \
                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])) \
                     = ARRAY['function_name', 'unique_key'])",
            &[&postgres_table(table)],
        )
        .await
        .map_err(|e| classify(&format!("preparing table {table}: looking for its unique index"), e))?;
    let indexed: bool = row.try_get(0).unwrap_or(false);
    Ok(if indexed { WriteMode::OnConflict } else { WriteMode::DeleteInsert })
}

fn as_text(encoded: &[u8]) -> &str {
    // `KeyForm::Text` output is always valid UTF-8 without NUL.
    std::str::from_utf8(encoded).unwrap_or_default()
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn describe(&self) -> String {
        format!("{} table {}", self.target, self.table)
    }

    async fn load(&mut self) -> Result<Vec<StoredJob>> {
        self.repair_keys().await?;
        let p = self.client()?;
        let rows = p.client.query(&p.select, &[]).await.map_err(|e| classify("postgres replay", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let get_text = |i: usize| -> Result<Option<String>> {
                row.try_get(i).map_err(|e| StoreError::Corrupt(format!("postgres replay column {i}: {e}")))
            };
            let get_int = |i: usize| -> Result<Option<i64>> {
                row.try_get(i).map_err(|e| StoreError::Corrupt(format!("postgres replay column {i}: {e}")))
            };
            let unique = get_text(0)?;
            let function = get_text(1)?;
            let data: Option<Vec<u8>> =
                row.try_get(3).map_err(|e| StoreError::Corrupt(format!("postgres replay data: {e}")))?;
            out.extend(loaded_job(
                KeyForm::Text,
                unique.as_deref().map(str::as_bytes),
                function.as_deref().map(str::as_bytes),
                get_int(2)?,
                data.map(Bytes::from),
                get_int(4)?,
            ));
        }
        Ok(dedupe_loaded(out))
    }

    async fn apply(&mut self, ops: &[StoreOp]) -> Result<()> {
        let batch = EncodedBatch::new(ops, KeyForm::Text);
        if batch.is_empty() {
            return Ok(());
        }
        let table = self.table.clone();
        let p = self.client()?;
        let priorities: Vec<i32> = batch.upserts.iter().map(|r| r.priority).collect();
        let uniques: Vec<&str> = batch.upserts.iter().map(|r| as_text(&r.unique)).collect();
        let functions: Vec<&str> = batch.upserts.iter().map(|r| as_text(&r.function)).collect();
        let data: Vec<&[u8]> = batch.upserts.iter().map(|r| &r.data[..]).collect();
        let whens: Vec<i64> = batch.upserts.iter().map(|r| r.when).collect();
        let del_uniques: Vec<&str> = batch.deletes.iter().map(|k| as_text(&k.unique)).collect();
        let del_functions: Vec<&str> = batch.deletes.iter().map(|k| as_text(&k.function)).collect();
        let queue: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
            [&priorities, &uniques, &functions, &data, &whens, &del_uniques, &del_functions];
        if batch.records.is_empty() {
            p.client.execute(&p.apply, &queue).await.map_err(|e| classify("postgres write", e))?;
            return Ok(());
        }
        let r = &batch.records;
        let handles: Vec<String> = r.iter().map(|r| r.handle_text().into_owned()).collect();
        let rec_functions: Vec<&[u8]> = r.iter().map(|r| &r.function[..]).collect();
        let row_uniques: Vec<&[u8]> = r.iter().map(|r| &r.row_unique[..]).collect();
        let states: Vec<&str> = r.iter().map(|r| r.state.as_str()).collect();
        let submitted: Vec<i64> = r.iter().map(|r| ms(r.submitted)).collect();
        let finished: Vec<Option<i64>> = r.iter().map(|r| r.finished.map(ms)).collect();
        let bodies: Vec<&[u8]> = r.iter().map(|r| &r.body[..]).collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = queue.to_vec();
        let records: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
            [&table, &handles, &rec_functions, &row_uniques, &states, &submitted, &finished, &bodies];
        params.extend(records);
        p.client.execute(&p.apply_with_records, &params).await.map_err(|e| classify("postgres write", e))?;
        Ok(())
    }

    fn keeps_records(&self) -> bool {
        true
    }

    async fn load_records(&mut self, handles: &[Bytes]) -> Result<Vec<Option<Record>>> {
        self.read_records(handles).await
    }

    async fn load_record(&mut self, handle: &[u8]) -> Result<Option<Record>> {
        self.read_record(handle).await
    }

    async fn search_records(&mut self, filter: &RecordFilter) -> Result<Vec<Record>> {
        self.find_records(filter).await
    }

    async fn expire_records(&mut self, cutoffs: crate::ExpiryCutoffs, batch_limit: usize) -> Result<usize> {
        self.expire_ended_records(cutoffs, batch_limit).await
    }

    async fn purge_records(&mut self, filter: &RecordFilter, batch_limit: usize) -> Result<usize> {
        crate::check_purge_filter(filter)?;
        self.purge_ended_records(filter, batch_limit).await
    }

    async fn queued_handles(&mut self) -> Result<Vec<QueuedHandle>> {
        self.queued_record_handles().await
    }

    async fn reserve_handles(&mut self, block: u64) -> Result<u64> {
        self.reserve_handle_numbers(block).await
    }

    async fn load_settings(&mut self, kind: &str) -> Result<Vec<crate::Setting>> {
        self.read_settings(kind).await
    }

    async fn put_setting(&mut self, kind: &str, name: &[u8], value: &str) -> Result<()> {
        self.write_setting(kind, name, Some(value)).await
    }

    async fn delete_setting(&mut self, kind: &str, name: &[u8]) -> Result<()> {
        self.write_setting(kind, name, None).await
    }

    async fn open_another(&mut self) -> Result<Option<Box<dyn Store>>> {
        let (config, table, target, mode) = (self.config.clone(), self.table.clone(), self.target.clone(), self.mode);
        crate::netops::connected(PostgresStore { config, table, target, conn: None, mode }).await
    }

    async fn reconnect(&mut self) -> Result<()> {
        self.conn = None;
        let (client, connection) = self.config.connect(NoTls).await.map_err(|e| match classify("", e) {
            StoreError::Unavailable(m) | StoreError::Rejected(m) => {
                StoreError::Unavailable(format!("cannot connect to {}{m}", self.target))
            }
            other => other,
        })?;
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!("postgres connection to {target} ended: {e}");
            }
        });
        prepare_schema(&client, &self.table).await?;
        let q = postgres_table(&self.table);
        let mode = write_mode(&client, &self.table).await?;
        if self.mode != Some(mode) {
            match mode {
                WriteMode::OnConflict => info!(table = %self.table, "postgres: writing with INSERT … ON CONFLICT"),
                WriteMode::DeleteInsert => warn!(
                    table = %self.table,
                    "postgres: the table has no unique index on (unique_key, function_name); writing each job \
                     as a DELETE of its key and an INSERT (add the index to use INSERT … ON CONFLICT)"
                ),
            }
            self.mode = Some(mode);
        }
        // One statement: atomic on its own, one round trip. The batch was
        // reduced to its net effect, so deleted and upserted keys are
        // disjoint and no row is touched twice. All parts of the statement
        // see the same snapshot: the DELETE never sees the rows the INSERT
        // adds.
        let apply_sql = match mode {
            WriteMode::OnConflict => format!(
                "WITH gone AS (DELETE FROM {q} WHERE (unique_key, function_name) IN \
                     (SELECT * FROM UNNEST($6::text[], $7::text[])) RETURNING 1) \
                 INSERT INTO {q} (priority, unique_key, function_name, data, when_to_run) \
                     SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::bytea[], $5::int8[]) \
                 ON CONFLICT (unique_key, function_name) DO UPDATE SET \
                     priority = EXCLUDED.priority, data = EXCLUDED.data, when_to_run = EXCLUDED.when_to_run"
            ),
            WriteMode::DeleteInsert => format!(
                "WITH gone AS (DELETE FROM {q} WHERE (unique_key, function_name) IN \
                     (SELECT * FROM UNNEST($6::text[], $7::text[]) \
                      UNION ALL SELECT * FROM UNNEST($2::text[], $3::text[])) RETURNING 1) \
                 INSERT INTO {q} (priority, unique_key, function_name, data, when_to_run) \
                     SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::bytea[], $5::int8[])"
            ),
        };
        let select_sql =
            format!("SELECT unique_key::text, function_name::text, priority::int8, data, when_to_run::int8 FROM {q}");
        let prepare = |what, e| classify(&format!("preparing {what} for table {}", self.table), e);
        // Data-modifying parts of a WITH all run, in the one statement's
        // transaction: the records land with the queue rows or not at all.
        let with_records_sql = format!(
            "WITH recs AS (INSERT INTO sprocket_records \
                 (namespace, handle, function, row_unique, state, submitted, finished, body) \
                 SELECT $8::text, * FROM UNNEST($9::text[], $10::bytea[], $11::bytea[], $12::text[], \
                     $13::int8[], $14::int8[], $15::bytea[]) \
                 ON CONFLICT (namespace, handle) DO UPDATE SET function = EXCLUDED.function, \
                     row_unique = EXCLUDED.row_unique, state = EXCLUDED.state, submitted = EXCLUDED.submitted, \
                     finished = EXCLUDED.finished, body = EXCLUDED.body RETURNING 1), {}",
            apply_sql.trim_start_matches("WITH ")
        );
        let apply = client.prepare(&apply_sql).await.map_err(|e| prepare("write", e))?;
        let apply_with_records =
            client.prepare(&with_records_sql).await.map_err(|e| prepare("write with records", e))?;
        let select = client.prepare(&select_sql).await.map_err(|e| prepare("replay", e))?;
        self.conn = Some(Prepared { client, apply, apply_with_records, select });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(conninfo: &str, vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        connection_config(conninfo, &move |k| map.get(k).cloned())
    }

    #[test]
    fn environment_fills_what_conninfo_leaves_out() {
        let c = cfg(
            "dbname=override",
            &[
                ("PGHOST", "db.example"),
                ("PGPORT", "6543"),
                ("PGUSER", "gearman"),
                ("PGPASSWORD", "pw"),
                ("PGDATABASE", "gearman"),
            ],
        )
        .unwrap();
        assert_eq!(c.get_hosts(), &[Host::Tcp("db.example".into())]);
        assert_eq!(c.get_ports(), &[6543]);
        assert_eq!(c.get_user(), Some("gearman"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_dbname(), Some("override"));
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn url_conninfo_wins() {
        let c = cfg("postgresql://alice:secret@127.0.0.1:5433/q", &[("PGHOST", "other"), ("PGUSER", "bob")]).unwrap();
        assert_eq!(c.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_dbname(), Some("q"));
    }

    #[test]
    fn tls_and_garbage_are_clear_errors() {
        assert!(matches!(cfg("", &[("PGSSLMODE", "require")]), Err(StoreError::Config(_))));
        assert!(matches!(cfg("sslmode=require", &[]), Err(StoreError::Config(_))));
        assert!(matches!(cfg("host='unterminated", &[]), Err(StoreError::Config(_))));
        assert!(matches!(cfg("", &[("PGPORT", "abc")]), Err(StoreError::Config(_))));
    }
}
