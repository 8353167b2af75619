//! A progress bar on stderr while a run goes, only when stderr is a
//! terminal (never in scripts or CI logs).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// Polls a shared counter every 100 ms; stopped with [`Progress::finish`]
/// or on drop.
pub struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Shows `label` and the counter against `total`; does nothing when
    /// `quiet` or stderr is not a terminal.
    pub fn start(label: &str, total: u64, counter: Arc<AtomicU64>, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None, ticker: None };
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        let b = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                b.set_position(counter.load(Ordering::Relaxed));
            }
        });
        Progress { bar: Some(bar), ticker: Some(ticker) }
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
