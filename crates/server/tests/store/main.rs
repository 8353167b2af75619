//! sprocketd with its durable stores (SQLite, PostgreSQL, MySQL/MariaDB,
//! Redis): every backend's replay and deletes, queues gearmand filled, the
//! seeds' configurations, database outages and restarts, shutdown dumps,
//! and nothing acknowledged lost to `kill -9`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../store_support/mod.rs"]
mod store_support;

mod backends;
mod db_restart;
mod durability;
mod gearmand_replay;
mod seeds;
mod shutdown;
