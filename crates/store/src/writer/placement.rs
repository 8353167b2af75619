//! Where the writer runs: as a task on the server's runtime, or, for a
//! store whose work is blocking calls, on a thread of its own.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::warn;

use super::Writer;

/// Starts `writer` where its store wants it (see
/// [`Store::blocks`](crate::Store::blocks)).
pub(super) fn start(writer: Writer, blocks: bool) -> JoinHandle<()> {
    if blocks {
        spawn_on_own_thread(writer)
    } else {
        tokio::spawn(writer.run())
    }
}

/// Runs the writer of a blocking store on a thread of its own (with a
/// single-threaded runtime for its channels and timers): a commit then
/// runs right there, and the next one starts as soon as it ends, without
/// waking the server's thread in between. The returned handle finishes
/// when the thread does. If the thread or its runtime cannot be made, the
/// writer runs as a task here instead (commits then go through the
/// blocking pool), so operations are never left unanswered.
fn spawn_on_own_thread(writer: Writer) -> JoinHandle<()> {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            warn!("cannot start the store writer's runtime, writing from the server's: {e}");
            return tokio::spawn(writer.run());
        }
    };
    // Shared so that the writer can be taken back if the thread never starts.
    let slot = Arc::new(std::sync::Mutex::new(Some(writer)));
    let theirs = slot.clone();
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel::<()>();
    let started = std::thread::Builder::new().name("sprocket-store".into()).spawn(move || {
        let writer = theirs.lock().ok().and_then(|mut w| w.take());
        if let Some(mut writer) = writer {
            for store in &mut writer.idle {
                store.run_inline();
            }
            rt.block_on(writer.run());
        }
        let _ = finished_tx.send(());
    });
    if let Err(e) = started {
        warn!("cannot start the store writer's thread, writing from the server's: {e}");
        if let Some(writer) = slot.lock().ok().and_then(|mut w| w.take()) {
            return tokio::spawn(writer.run());
        }
    }
    tokio::spawn(async move {
        let _ = finished_rx.await;
    })
}
