//! The per-function history of ended jobs (on unless `--no-history`), kept across
//! restarts in a JSON snapshot file: restored at start, written every
//! minute while jobs end and at shutdown. The file is written to a
//! temporary name beside it and renamed over it, so a crash while writing
//! leaves the previous snapshot whole.

use std::path::{Path, PathBuf};

use sprocket_records::{History, HistorySnapshot, Record};

/// How often the snapshot is written while jobs end (milliseconds).
pub const SAVE_EVERY_MS: u64 = 60_000;

/// The history and where its snapshot lives.
pub struct HistoryKeeper {
    history: History,
    file: Option<PathBuf>,
    saved_at: u64,
    changed: bool,
}

impl HistoryKeeper {
    /// The history restored from `file` at `now`. A missing file starts
    /// empty; one that cannot be read or restored is reported and replaced
    /// at the next save (the history is statistics: losing it must not stop
    /// the server).
    pub fn open(file: Option<PathBuf>, now: u64) -> HistoryKeeper {
        let history = match &file {
            Some(path) => restore(path, now),
            None => History::new(),
        };
        HistoryKeeper { history, file, saved_at: now, changed: false }
    }

    /// Counts an ended job.
    pub fn record(&mut self, record: &Record) {
        self.history.record(record);
        self.changed = true;
    }

    /// Counts failed attempts that policies retried.
    pub fn record_retry(&mut self, functions: &[bytes::Bytes], now: u64) {
        for function in functions {
            self.history.record_retry(function, now);
        }
        self.changed = true;
    }

    /// The admin `history` reply.
    pub fn admin_text(&mut self, now: u64) -> String {
        self.history.prune(now);
        self.history.admin_text(now)
    }

    /// Every slot of a window (see [`History::series`]).
    pub fn series(
        &self,
        function: Option<&[u8]>,
        window: sprocket_records::Window,
        now: u64,
    ) -> sprocket_records::Series {
        self.history.series(function, window, now)
    }

    /// Every function's counts over one window (see [`History::counts`]).
    pub fn counts(&self, window: sprocket_records::Window, now: u64) -> Vec<(bytes::Bytes, sprocket_records::Counts)> {
        self.history
            .counts(window, now)
            .into_iter()
            .map(|(function, counts)| (bytes::Bytes::copy_from_slice(function), counts))
            .collect()
    }

    /// One function's windows (see [`History::query`]).
    pub fn query(&self, name: &[u8], now: u64) -> Option<sprocket_records::HistoryView> {
        self.history.query(name, now)
    }

    /// Writes the snapshot when jobs ended since the last write and a
    /// minute has passed.
    pub fn save_if_due(&mut self, now: u64) {
        if self.changed && now.saturating_sub(self.saved_at) >= SAVE_EVERY_MS {
            self.save(now);
        }
    }

    /// Writes the snapshot now (when there is a file to write).
    pub fn save(&mut self, now: u64) {
        self.saved_at = now;
        self.changed = false;
        let Some(path) = &self.file else { return };
        self.history.prune(now);
        if let Err(e) = write_snapshot(path, &self.history.snapshot(now)) {
            tracing::error!("cannot write the history snapshot {}: {e}", path.display());
        }
    }
}

fn restore(path: &Path, now: u64) -> History {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return History::new(),
        Err(e) => {
            tracing::error!("cannot read the history snapshot {}: {e}; starting with an empty history", path.display());
            return History::new();
        }
    };
    let restored = serde_json::from_slice::<HistorySnapshot>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|snapshot| History::restore(snapshot, now).map_err(|e| e.to_string()));
    match restored {
        Ok(history) => history,
        Err(e) => {
            tracing::error!(
                "cannot restore the history snapshot {}: {e}; starting with an empty history",
                path.display()
            );
            History::new()
        }
    }
}

fn write_snapshot(path: &Path, snapshot: &HistorySnapshot) -> std::io::Result<()> {
    let json = serde_json::to_vec(snapshot).map_err(std::io::Error::other)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use sprocket_proto::Priority;
    use sprocket_records::{Limits, Outcome, Record};

    use super::HistoryKeeper;

    #[test]
    fn a_saved_history_comes_back_and_a_bad_file_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.json");
        let now = 1_800_000_000_000;
        let mut keeper = HistoryKeeper::open(Some(file.clone()), now);
        let mut record = Record::new(b"H:h:1", b"resize", b"", Priority::Normal, true, now).unwrap();
        record.ended(Outcome::Failed, now + 5, Limits::default()).unwrap();
        keeper.record(&record);
        keeper.save(now + 10);
        let text = HistoryKeeper::open(Some(file.clone()), now + 20).admin_text(now + 20);
        assert!(text.starts_with("resize\tminute\t0\t1\t"), "{text}");
        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(HistoryKeeper::open(Some(file), now).admin_text(now), ".\n");
    }
}
