//! The policy file (`--policy-file`): per-function policies and recurring
//! jobs, in TOML. Read at start-up (an unusable file stops the server)
//! and again on SIGHUP (an unusable file is logged and the policies and
//! cron entries in force stay). Every error names the file, the line and
//! column, and what is wrong; unknown keys are errors, so a misspelt key
//! is never silently ignored.
//!
//! ```toml
//! [functions."resize_*"]
//! max_attempts = 5
//! backoff = { kind = "exponential", base = "2s", factor = 2, max = "1h", jitter = 0.2 }
//! retry_on = ["fail", "exception", "timeout", "worker_lost"]
//! timeout = "10m"
//! dead_letter = true
//! retry_foreground = false
//!
//! [[cron]]
//! name = "nightly-report"
//! schedule = "0 3 * * *"
//! timezone = "Europe/Berlin"
//! function = "report"
//! payload = "daily"
//! priority = "normal"
//! catch_up = "last"
//! ```
//!
//! A function's table is read as the engine's `PolicySpec` (the same as
//! admin `policy set` takes as JSON): a key left out takes the value of
//! `FunctionPolicy::default()` (and of the default backoff inside an
//! exponential one). Errors in a value's type or name point at the value;
//! errors in what the values mean (a bad duration, `max_attempts = 0`)
//! at the function's table.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sprocket_engine::cron::CronSpec;
use sprocket_engine::policy::{FunctionPolicy, PolicySpec};
use toml::Spanned;

/// What the file defines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyFile {
    /// Per-function policies, by pattern, in file order.
    pub functions: Vec<(String, FunctionPolicy)>,
    /// Recurring jobs, in file order.
    pub cron: Vec<CronSpec>,
}

/// Why the file cannot be used: the file, where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy file {}{}: {message}", path.display(), at.map(|(l, c)| format!(", line {l}, column {c}")).unwrap_or_default())]
pub struct PolicyFileError {
    /// The file.
    pub path: PathBuf,
    /// Line and column (from 1), when the error has a place.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

/// Reads and checks the file.
pub fn load(path: &Path) -> Result<PolicyFile, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyFileError {
        path: path.to_path_buf(),
        at: None,
        message: format!("cannot be read: {e}"),
    })?;
    parse(&text).map_err(|(span, message)| PolicyFileError {
        path: path.to_path_buf(),
        at: span.map(|start| line_and_column(&text, start)),
        message,
    })
}

/// Parses the file's text; an error carries the byte offset it is at.
pub fn parse(text: &str) -> Result<PolicyFile, (Option<usize>, String)> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| (e.span().map(|s| s.start), e.message().trim().to_owned()))?;
    let mut functions = Vec::with_capacity(doc.functions.0.len());
    for (pattern, policy) in doc.functions.0 {
        let start = policy.span().start;
        if pattern.is_empty() {
            return Err((Some(start), "a function pattern must not be empty".into()));
        }
        let policy =
            policy.into_inner().to_policy().map_err(|e| (Some(start), format!("[functions.{pattern:?}]: {e}")))?;
        functions.push((pattern, policy));
    }
    let mut cron: Vec<CronSpec> = Vec::with_capacity(doc.cron.len());
    for entry in doc.cron {
        let start = entry.span().start;
        let spec = entry.into_inner();
        if cron.iter().any(|c| c.name == spec.name) {
            return Err((Some(start), format!("a second [[cron]] entry named {:?}", spec.name.as_str())));
        }
        cron.push(spec);
    }
    Ok(PolicyFile { functions, cron })
}

/// Line and column (from 1; the column in characters) of byte `offset`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Rereads the policy file of a running server (SIGHUP) and hands what
/// it defines to the engine task; cheap to clone, does nothing without
/// `--policy-file`.
#[derive(Clone)]
pub struct PolicyReloader {
    path: Option<PathBuf>,
    link: crate::EngineLink,
}

impl PolicyReloader {
    pub(crate) fn new(path: Option<PathBuf>, link: crate::EngineLink) -> PolicyReloader {
        PolicyReloader { path, link }
    }

    /// Reads the file again. A file that cannot be used is logged with its
    /// line, and the policies and cron entries in force stay; a good one
    /// replaces the file's policies and cron entries (operators' run-time
    /// ones stay).
    pub fn reload(&self) {
        let Some(path) = &self.path else { return };
        match load(path) {
            Ok(file) => {
                let (functions, cron) = (file.functions.len(), file.cron.len());
                let link = self.link.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    if link.apply_policy_file(file).await.is_ok() {
                        tracing::info!(file = %path.display(), functions, cron, "policy file reloaded");
                    }
                });
            }
            Err(e) => tracing::error!("policy file not reloaded, the policies and cron entries in force stay: {e}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    functions: InOrder<Spanned<PolicySpec>>,
    #[serde(default)]
    cron: Vec<Spanned<CronSpec>>,
}

/// A table's entries in the order the file has them (the order decides
/// between equally specific globs).
struct InOrder<T>(Vec<(String, T)>);

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for InOrder<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<T> {
            type Value = InOrder<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of function patterns")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InOrder<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    entries.push((key, value));
                }
                Ok(InOrder(entries))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests;
