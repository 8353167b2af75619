//! Job records with real clients and the real `sprocketd`: a background
//! job's data, status and result read back through `sprocket.result` by
//! php-gearman, Perl's Gearman::Client, pygearman and Debian's `gearman`
//! (seed 004); records across `kill -9`, on every store backend and through
//! a PostgreSQL restart; retention, size limits and binary payloads; the
//! reserved `sprocket.*` names; `--records` modes; the in-memory records of
//! `-q builtin`; and the admin `record` / `records` commands.
//!
//! Every test starts its server with explicit queue flags, so the suite
//! means the same whatever `SPROCKET_TEST_QUEUE` says.

#[path = "../common/mod.rs"]
mod common;
#[path = "../store_support/mod.rs"]
mod store_support;

mod admin;
mod backends;
mod clients;
mod crash;
mod dead;
mod endings;
mod limits;
mod modes;
mod pg_restart;
mod php;
mod reserved;
mod support;
