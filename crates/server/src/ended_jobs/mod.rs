//! What the server does with the records of the jobs the engine reports
//! ended: one JSON line each in the job log
//! (`--job-log`, [`job_log`]) and a count in the per-function history
//! (on unless `--no-history`, [`history_keeper`]), which a snapshot file
//! keeps across restarts. The engine builds those reports only when one of
//! the two is on.

pub mod history_keeper;
pub mod job_log;

use std::path::PathBuf;

use bytes::Bytes;
use sprocket_engine::Record;

pub use history_keeper::HistoryKeeper;
pub use job_log::{JobLog, JobLogTarget, Reopener};

/// The job log and history settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndedJobsConfig {
    /// `--job-log`: where to write one line per ended job.
    pub job_log: Option<JobLogTarget>,
    /// `--job-log-results`: add completed jobs' results to their lines.
    pub job_log_results: bool,
    /// Keep per-function history (on unless `--no-history`).
    pub history: bool,
    /// Where the history snapshot is kept (`None`: in memory only).
    pub history_file: Option<PathBuf>,
}

impl EndedJobsConfig {
    /// Whether the engine must report ended jobs.
    pub fn wants_reports(&self) -> bool {
        self.job_log.is_some() || self.history
    }
}

/// The owner of the job log writer and the history, beside the engine task.
#[derive(Default)]
pub struct EndedJobs {
    log: Option<JobLog>,
    history: Option<HistoryKeeper>,
}

impl EndedJobs {
    /// Opens the job log (an error when the file cannot be opened: the
    /// operator asked for it) and restores the history snapshot, at `now`
    /// (Unix milliseconds).
    pub fn open(config: &EndedJobsConfig, now: u64) -> std::io::Result<EndedJobs> {
        let log = config.job_log.as_ref().map(|target| JobLog::open(target, config.job_log_results)).transpose()?;
        let history = config.history.then(|| HistoryKeeper::open(config.history_file.clone(), now));
        Ok(EndedJobs { log, history })
    }

    /// What SIGHUP uses to reopen the job log file.
    pub fn reopener(&self) -> Option<Reopener> {
        self.log.as_ref().map(JobLog::reopener)
    }

    /// Logs and counts the jobs the engine reported ended; saves the
    /// history snapshot when a minute has passed since the last save.
    pub fn take(&mut self, ended: Vec<Record>, now: u64) {
        for record in ended {
            if let Some(history) = &mut self.history {
                history.record(&record);
            }
            if let Some(log) = &self.log {
                log.write(record);
            }
        }
        if let Some(history) = &mut self.history {
            history.save_if_due(now);
        }
    }

    /// Counts failed attempts that policies retried, one function name per
    /// attempt, in the history.
    pub fn retried(&mut self, functions: &[bytes::Bytes], now: u64) {
        if let Some(history) = &mut self.history {
            history.record_retry(functions, now);
        }
    }

    /// The reply to admin `history`: the history's text, or an error line
    /// when the server keeps no history.
    pub fn admin_history(&mut self, now: u64) -> Bytes {
        match &mut self.history {
            Some(history) => Bytes::from(history.admin_text(now)),
            None => Bytes::from_static(b"ERR HISTORY_OFF start+sprocketd+without+--no-history\r\n"),
        }
    }

    /// Every slot of a history window, for one function or (`None`) summed
    /// over all; refused when the server keeps no history.
    pub fn history_series(
        &mut self,
        function: Option<&[u8]>,
        window: sprocket_records::Window,
        now: u64,
    ) -> Result<sprocket_records::Series, sprocket_http::HistoryOff> {
        let history = self.history.as_mut().ok_or(sprocket_http::HistoryOff)?;
        Ok(history.series(function, window, now))
    }

    /// Every function's counts of ended jobs over one window, by name;
    /// refused when the server keeps no history.
    pub fn history_counts(
        &self,
        window: sprocket_records::Window,
        now: u64,
    ) -> Result<Vec<(Bytes, sprocket_records::Counts)>, sprocket_http::HistoryOff> {
        let history = self.history.as_ref().ok_or(sprocket_http::HistoryOff)?;
        Ok(history.counts(window, now))
    }

    /// One function's history windows; `None` when nothing of it ended in
    /// the last week; refused when the server keeps no history.
    pub fn function_history(
        &mut self,
        name: &[u8],
        now: u64,
    ) -> Result<Option<sprocket_records::HistoryView>, sprocket_http::HistoryOff> {
        let history = self.history.as_mut().ok_or(sprocket_http::HistoryOff)?;
        Ok(history.query(name, now))
    }

    /// At shutdown: saves the history and writes out and closes the job log.
    pub fn close(&mut self, now: u64) {
        if let Some(history) = &mut self.history {
            history.save(now);
        }
        if let Some(log) = self.log.take() {
            log.close();
        }
    }
}

/// Whether an admin line is the `history` command (which the server, not
/// the engine, answers).
pub fn is_history_command(line: &[u8]) -> bool {
    line.trim_ascii().eq_ignore_ascii_case(b"history")
}
