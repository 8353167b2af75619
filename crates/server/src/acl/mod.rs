//! Access control by identity (`--acl-file`), in geard's file format: who
//! may register which functions, submit jobs to which, use which admin
//! commands, and change the list at run time. A connection's identity is
//! its client certificate's name, or for plaintext the `net:` section its
//! address falls in. Checks happen in the connection's reader, as requests
//! are parsed, so the engine never sees a refused request and a server
//! without an ACL runs no check at all.

mod access;
mod admin_class;
mod commands;
mod file;
mod rules;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub use access::{Access, StatusGuard};
pub use file::AclFileError;
use rules::Acl;
pub use rules::Identity;
pub use web::WebAccess;

/// The list in force, shared by every connection. Changes (`acl grant`,
/// a reload) build a new list and swap it in, then bump the generation,
/// which is how each connection notices that what it has cached is stale.
pub struct AclStore {
    path: PathBuf,
    current: RwLock<Arc<Acl>>,
    generation: AtomicU64,
    /// The web port's own connections to the Gearman port, by their
    /// source address, with the identity each acts for (see
    /// [`AclStore::vouched`]).
    vouched: Mutex<HashMap<SocketAddr, Vouched>>,
}

/// Who a connection the web port made acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vouched {
    /// The operator's `--web-token`: no check at all.
    Operator,
    /// An identity of the list, by its section's name.
    Section(String),
}

impl AclStore {
    /// Reads the file; an error names the file and line.
    pub fn load(path: &Path) -> Result<AclStore, AclFileError> {
        let acl = file::load(path)?;
        tracing::info!(file = %path.display(), sections = acl.entries().count(), "ACL loaded; whatever it does not grant is denied");
        Ok(AclStore::with(path.to_path_buf(), acl))
    }

    /// Reads the file again (SIGHUP). A file that cannot be used is
    /// logged with its line, and the list in force stays. A good file
    /// replaces the list whole, grants made at run time included.
    pub fn reload(&self) {
        match file::load(&self.path) {
            Ok(acl) => {
                let sections = acl.entries().count();
                self.replace(acl);
                tracing::info!(file = %self.path.display(), sections, "ACL reloaded (grants made with `acl grant` since the last load are gone)");
            }
            Err(e) => tracing::error!("ACL not reloaded, the previous rules stay in force: {e}"),
        }
    }

    fn replace(&self, acl: Acl) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(acl);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Applies a change to the list at run time; it holds for every
    /// connection from their next request on.
    fn change(&self, edit: impl FnOnce(&mut Acl) -> Result<(), String>) -> Result<(), String> {
        let mut current = self.current.write().map_err(|_| "the ACL lock is poisoned".to_string())?;
        let mut acl = Acl::clone(&current);
        edit(&mut acl)?;
        *current = Arc::new(acl);
        drop(current);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// A store holding the list `text` describes (no file behind it).
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> AclStore {
        let acl = file::parse(text).expect("a valid ACL");
        AclStore::with(PathBuf::new(), acl)
    }

    fn with(path: PathBuf, acl: Acl) -> AclStore {
        AclStore {
            path,
            current: RwLock::new(Arc::new(acl)),
            generation: AtomicU64::new(0),
            vouched: Mutex::new(HashMap::new()),
        }
    }

    /// Whom a plaintext connection from `peer` acts for, when it is the
    /// web port's own, made for a web client it identified. The web port
    /// records the address it will connect from before connecting and
    /// holds it until the exchange ends; no one else can connect from that
    /// address meanwhile, and nothing about it travels on the wire.
    pub fn vouched(&self, peer: SocketAddr) -> Option<Vouched> {
        let vouched = self.vouched.lock().ok()?;
        if vouched.is_empty() {
            return None;
        }
        vouched.get(&normalized(peer)).cloned()
    }

    fn snapshot(&self) -> Arc<Acl> {
        self.current.read().map(|acl| acl.clone()).unwrap_or_default()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What `identity` may read through `sprocket.result`, `sprocket.record`
    /// and `sprocket.records`: the jobs of the functions it may invoke, by
    /// the list in force when it reads (a reload or grant applies at once).
    pub fn read_guard(self: &Arc<Self>, identity: Identity) -> sprocket_engine::ReadGuard {
        let store = Arc::clone(self);
        sprocket_engine::ReadGuard(Arc::new(move |function: &[u8]| {
            store.snapshot().section_of(&identity).is_some_and(|(_, entry)| entry.may_invoke(function))
        }))
    }
}

/// An IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as plain IPv4,
/// so the web port's record and the Gearman port's peer compare equal.
fn normalized(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(rules::unmapped(addr.ip()), addr.port())
}

/// Rereads the ACL file of a running server (SIGHUP); cheap to clone, does
/// nothing without `--acl-file`.
#[derive(Clone, Default)]
pub struct AclReloader(pub(crate) Option<Arc<AclStore>>);

impl AclReloader {
    pub fn reload(&self) {
        if let Some(store) = &self.0 {
            store.reload();
        }
    }
}
