//! The typed channel into the engine task, for code in the same process
//! that is not a Gearman connection (an HTTP API, a metrics endpoint,
//! tests): queries answered with the engine's views, and operator commands
//! answered with typed results. Each request carries its own reply channel;
//! the engine task serves them between turns of event handling.

use bytes::Bytes;
use sprocket_engine::{
    CommandError, ControlRead, Engine, FastMap, FunctionView, JobFilter, JobView, Record, RecordFilter, RecordLookup,
    ServerInfo, ShutdownRequest, WorkerView,
};
use tokio::sync::{mpsc, oneshot};

use crate::telemetry::{JobTimings, SharedStats, TimingsCopy};

/// A question about the engine's state.
#[derive(Debug)]
pub enum Query {
    /// The server as a whole.
    ServerInfo(oneshot::Sender<ServerInfo>),
    /// Every function with its queue counts, sorted by name.
    Functions(oneshot::Sender<Vec<FunctionView>>),
    /// The retry policy of each function that has one.
    FunctionPolicies(oneshot::Sender<Vec<(Bytes, sprocket_engine::policy::PolicyEntry)>>),
    /// Every connection with its functions and running jobs, newest first.
    Workers(oneshot::Sender<Vec<WorkerView>>),
    /// The jobs the filter selects, oldest first.
    Jobs {
        /// Which jobs.
        filter: JobFilter,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<JobView>>,
    },
    /// One job by handle; `None` when no job has it.
    Job {
        /// The job's handle.
        handle: Bytes,
        /// Where the answer goes.
        reply: oneshot::Sender<Option<JobView>>,
    },
    /// The record of one job, live or ended (read from the store when the
    /// engine does not hold it); `Ok(None)` when there is none.
    Record {
        /// The job's handle.
        handle: Bytes,
        /// Where the answer goes: the record, or why the store could not
        /// be read.
        reply: oneshot::Sender<Result<Option<Record>, String>>,
    },
    /// Every cron entry with its next run, by name.
    Cron(oneshot::Sender<Vec<sprocket_engine::cron::CronView>>),
    /// A copy of each function's queue wait and run time counts (made
    /// into histograms on the web port's thread).
    JobTimings(oneshot::Sender<Vec<TimingsCopy>>),
    /// Every slot of a history window, for one function or (`None`)
    /// summed over all; answered from the history beside the engine.
    HistorySeries {
        /// Which function, or all.
        function: Option<Bytes>,
        /// Which window.
        window: sprocket_records::Window,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<sprocket_records::Series, sprocket_http::HistoryOff>>,
    },
    /// Every function's counts of ended jobs over one window, by name.
    HistoryCounts {
        /// Which window.
        window: sprocket_records::Window,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<(Bytes, sprocket_records::Counts)>, sprocket_http::HistoryOff>>,
    },
    /// One function's history windows; `None` when nothing of it ended
    /// within the last week.
    FunctionHistory {
        /// The function.
        name: Bytes,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Option<sprocket_records::HistoryView>, sprocket_http::HistoryOff>>,
    },
    /// Ended records matching a filter, newest end first.
    Records {
        /// Which records.
        filter: RecordFilter,
        /// Where the answer goes: the records, or why the store could not
        /// be read.
        reply: oneshot::Sender<Result<Vec<Record>, String>>,
    },
}

/// An operator command, as the admin text protocol offers them.
#[derive(Debug)]
pub enum Command {
    /// Cancels a job: its clients get WORK_FAIL; a running job finishes
    /// with nobody listening.
    Cancel {
        /// The job's handle.
        handle: Bytes,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Drops a function with its queued jobs, unless it has workers or
    /// running jobs (name matched case-insensitively, as gearmand does).
    DropFunction {
        /// The function's name.
        name: Bytes,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Sets a function's queue limits per priority (high, normal, low; 0 =
    /// none). Answers whether the function exists.
    MaxQueue {
        /// The function's name.
        function: Bytes,
        /// The limits.
        limits: [u32; 3],
        /// Where the result goes.
        reply: oneshot::Sender<bool>,
    },
    /// Pauses (`paused`) or resumes a function, exact name; answered once
    /// the change is durable where the store keeps settings.
    SetPaused {
        /// The function's name.
        name: Bytes,
        /// Pause (true) or resume (false).
        paused: bool,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), SettingError>>,
    },
    /// Ends a function's queued and scheduled jobs (exact name); answers
    /// how many.
    PurgeQueued {
        /// The function's name.
        name: Bytes,
        /// Where the result goes.
        reply: oneshot::Sender<Result<usize, CommandError>>,
    },
    /// Deletes dead jobs' records (of one function, or all); answers how
    /// many once the deletes are committed.
    PurgeDead {
        /// Only this function's, when given.
        function: Option<Bytes>,
        /// Where the count (or the store's error) goes.
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Adds a run-time cron entry; answered once it is durable where the
    /// store keeps settings.
    CronAdd {
        /// The entry.
        spec: sprocket_engine::cron::CronSpec,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), SettingError>>,
    },
    /// Removes a run-time cron entry; answered as [`Command::CronAdd`].
    CronRemove {
        /// The entry's name.
        name: String,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), SettingError>>,
    },
    /// Submits one job for a cron entry now; answers the job's handle.
    CronRun {
        /// The entry's name.
        name: String,
        /// Where the result goes.
        reply: oneshot::Sender<Result<Bytes, sprocket_engine::cron::CronError>>,
    },
    /// Replaces the policy file's policies and cron entries (a reload).
    ApplyPolicyFile {
        /// What the file defines.
        file: crate::policy_file::PolicyFile,
        /// Told once it is in force.
        reply: oneshot::Sender<()>,
    },
    /// Stops the server, at once or once no jobs are left.
    Shutdown {
        /// Stop accepting and wait for the queued jobs to finish.
        graceful: bool,
        /// Told when the request has been taken.
        reply: oneshot::Sender<()>,
    },
}

/// Why a pause or resume did not fully succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The engine refused it (an unknown or reserved function).
    #[error("{0}")]
    Refused(CommandError),
    /// It is in force, but the store could not save it: it lasts until
    /// the server restarts.
    #[error("in force until the server restarts, but not saved: {0}")]
    NotSaved(String),
    /// The engine refused a cron entry change (a name in use, an unknown
    /// entry, one from the policy file).
    #[error("{0}")]
    Cron(sprocket_engine::cron::CronError),
}

/// A pause or resume whose answer waits for the store: the setting write's
/// id and who waits for it.
pub(crate) type SettingWaiter = (u64, oneshot::Sender<Result<(), SettingError>>);

/// What travels on the channel.
#[derive(Debug)]
pub(crate) enum Control {
    Query(Query),
    Command(Command),
}

/// How many requests may wait for the engine task; senders wait beyond.
pub(crate) const CONTROL_QUEUE: usize = 64;

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server has stopped")]
pub struct Stopped;

/// The sending side of the channel: cheap to clone, one per user.
#[derive(Debug, Clone)]
pub struct EngineLink {
    tx: mpsc::Sender<Control>,
    /// Counters the connections and the store writer keep, read directly.
    stats: SharedStats,
}

impl EngineLink {
    pub(crate) fn new(tx: mpsc::Sender<Control>, stats: SharedStats) -> EngineLink {
        EngineLink { tx, stats }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Sends a query built by the caller; the answer comes on the reply
    /// sender it carries.
    pub async fn query(&self, query: Query) -> Result<(), Stopped> {
        self.tx.send(Control::Query(query)).await.map_err(|_| Stopped)
    }

    /// Sends a command built by the caller; the result comes on the reply
    /// sender it carries.
    pub async fn command(&self, command: Command) -> Result<(), Stopped> {
        self.tx.send(Control::Command(command)).await.map_err(|_| Stopped)
    }

    /// The server as a whole.
    pub async fn server_info(&self) -> Result<ServerInfo, Stopped> {
        self.ask(|r| Control::Query(Query::ServerInfo(r))).await
    }

    /// Every function with its queue counts, sorted by name.
    pub async fn functions(&self) -> Result<Vec<FunctionView>, Stopped> {
        self.ask(|r| Control::Query(Query::Functions(r))).await
    }

    /// The retry policy of each function that has one, by name.
    pub async fn function_policies(&self) -> Result<Vec<(Bytes, sprocket_engine::policy::PolicyEntry)>, Stopped> {
        self.ask(|r| Control::Query(Query::FunctionPolicies(r))).await
    }

    /// Every connection with its functions and running jobs, newest first.
    pub async fn workers(&self) -> Result<Vec<WorkerView>, Stopped> {
        self.ask(|r| Control::Query(Query::Workers(r))).await
    }

    /// The jobs `filter` selects, oldest first.
    pub async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobView>, Stopped> {
        self.ask(|reply| Control::Query(Query::Jobs { filter, reply })).await
    }

    /// The job with this handle, if any.
    pub async fn job(&self, handle: impl Into<Bytes>) -> Result<Option<JobView>, Stopped> {
        let handle = handle.into();
        self.ask(|reply| Control::Query(Query::Job { handle, reply })).await
    }

    /// The record of the job with this handle, live or ended.
    pub async fn record(&self, handle: impl Into<Bytes>) -> Result<Result<Option<Record>, String>, Stopped> {
        let handle = handle.into();
        self.ask(|reply| Control::Query(Query::Record { handle, reply })).await
    }

    /// Ended records matching `filter`, newest end first.
    pub async fn records(&self, filter: RecordFilter) -> Result<Result<Vec<Record>, String>, Stopped> {
        self.ask(|reply| Control::Query(Query::Records { filter, reply })).await
    }

    /// What `/metrics` shows besides the engine's views: the job duration
    /// histograms (from the engine task), store commits and traffic (read
    /// here, from atomic counters).
    pub async fn telemetry(&self) -> Result<sprocket_http::Telemetry, Stopped> {
        let timings = self.ask(|r| Control::Query(Query::JobTimings(r))).await?;
        Ok(self.stats.telemetry(timings))
    }

    /// Cancels the job with this handle.
    pub async fn cancel(&self, handle: impl Into<Bytes>) -> Result<Result<(), CommandError>, Stopped> {
        let handle = handle.into();
        self.ask(|reply| Control::Command(Command::Cancel { handle, reply })).await
    }

    /// Drops a function with its queued jobs.
    pub async fn drop_function(&self, name: impl Into<Bytes>) -> Result<Result<(), CommandError>, Stopped> {
        let name = name.into();
        self.ask(|reply| Control::Command(Command::DropFunction { name, reply })).await
    }

    /// Sets a function's queue limits; answers whether it exists.
    pub async fn max_queue(&self, function: impl Into<Bytes>, limits: [u32; 3]) -> Result<bool, Stopped> {
        let function = function.into();
        self.ask(|reply| Control::Command(Command::MaxQueue { function, limits, reply })).await
    }

    /// Pauses (`paused` true) or resumes a function; returns once the
    /// change is durable (where the store keeps settings).
    pub async fn set_paused(&self, name: impl Into<Bytes>, paused: bool) -> Result<Result<(), SettingError>, Stopped> {
        let name = name.into();
        self.ask(|reply| Control::Command(Command::SetPaused { name, paused, reply })).await
    }

    /// Ends a function's queued and scheduled jobs; answers how many.
    pub async fn purge_queued(&self, name: impl Into<Bytes>) -> Result<Result<usize, CommandError>, Stopped> {
        let name = name.into();
        self.ask(|reply| Control::Command(Command::PurgeQueued { name, reply })).await
    }

    /// Deletes dead jobs' records (of `function`, or all); answers how many
    /// once the deletes are committed.
    pub async fn purge_dead(&self, function: Option<Bytes>) -> Result<Result<u64, String>, Stopped> {
        self.ask(|reply| Control::Command(Command::PurgeDead { function, reply })).await
    }

    /// Puts what the policy file defines in force (replacing the file's
    /// earlier policies and cron entries); returns once it is.
    pub async fn apply_policy_file(&self, file: crate::policy_file::PolicyFile) -> Result<(), Stopped> {
        self.ask(|reply| Control::Command(Command::ApplyPolicyFile { file, reply })).await
    }

    /// Adds a run-time cron entry; returns once it is durable.
    pub async fn cron_add(&self, spec: sprocket_engine::cron::CronSpec) -> Result<Result<(), SettingError>, Stopped> {
        self.ask(|reply| Control::Command(Command::CronAdd { spec, reply })).await
    }

    /// Removes a run-time cron entry; returns once that is durable.
    pub async fn cron_remove(&self, name: String) -> Result<Result<(), SettingError>, Stopped> {
        self.ask(|reply| Control::Command(Command::CronRemove { name, reply })).await
    }

    /// Submits one job for a cron entry now; the job's handle.
    pub async fn cron_run(&self, name: String) -> Result<Result<Bytes, sprocket_engine::cron::CronError>, Stopped> {
        self.ask(|reply| Control::Command(Command::CronRun { name, reply })).await
    }

    /// Every slot of a history window (see [`Query::HistorySeries`]).
    pub async fn history_series(
        &self,
        function: Option<Bytes>,
        window: sprocket_records::Window,
    ) -> Result<Result<sprocket_records::Series, sprocket_http::HistoryOff>, Stopped> {
        self.ask(|reply| Control::Query(Query::HistorySeries { function, window, reply })).await
    }

    /// Every function's counts over one window (see [`Query::HistoryCounts`]).
    pub async fn history_counts(
        &self,
        window: sprocket_records::Window,
    ) -> Result<Result<Vec<(Bytes, sprocket_records::Counts)>, sprocket_http::HistoryOff>, Stopped> {
        self.ask(|reply| Control::Query(Query::HistoryCounts { window, reply })).await
    }

    /// One function's history windows (see [`Query::FunctionHistory`]).
    pub async fn function_history(
        &self,
        name: Bytes,
    ) -> Result<Result<Option<sprocket_records::HistoryView>, sprocket_http::HistoryOff>, Stopped> {
        self.ask(|reply| Control::Query(Query::FunctionHistory { name, reply })).await
    }

    /// Every cron entry with its next run, by name.
    pub async fn cron_entries(&self) -> Result<Vec<sprocket_engine::cron::CronView>, Stopped> {
        self.ask(|r| Control::Query(Query::Cron(r))).await
    }

    /// Asks the server to stop; returns once the engine task has taken the
    /// request (use [`crate::ServerHandle::wait`] to wait for the end).
    pub async fn shutdown(&self, graceful: bool) -> Result<(), Stopped> {
        self.ask(|reply| Control::Command(Command::Shutdown { graceful, reply })).await
    }
}

/// Where the answer to a record read from the store goes.
#[derive(Debug)]
enum RecordReply {
    One(oneshot::Sender<Result<Option<Record>, String>>),
    Many(oneshot::Sender<Result<Vec<Record>, String>>),
}

impl RecordReply {
    fn send(self, result: Result<Vec<Record>, String>) {
        match self {
            RecordReply::One(reply) => {
                let _ = reply.send(result.map(|found| found.into_iter().next()));
            }
            RecordReply::Many(reply) => {
                let _ = reply.send(result);
            }
        }
    }
}

/// Record queries waiting for the store, by the engine's read id. The
/// engine task owns it: the engine hands back each answer in its outbox
/// ([`sprocket_engine::Outbox::control_reads`]) and the task passes it on
/// with [`WaitingReads::answer`].
#[derive(Debug, Default)]
pub(crate) struct WaitingReads(FastMap<u64, RecordReply>);

impl WaitingReads {
    /// Passes a finished read on to its requester.
    pub(crate) fn answer(&mut self, read: ControlRead) {
        if let Some(reply) = self.0.remove(&read.id) {
            reply.send(read.result);
        }
    }

    fn wait_or_send(&mut self, lookup: RecordLookup, reply: RecordReply) {
        match lookup {
            RecordLookup::Ready(found) => reply.send(Ok(found)),
            RecordLookup::Reading(id) => {
                self.0.insert(id, reply);
            }
        }
    }
}

/// What the engine task keeps for control queries beside the engine.
#[derive(Debug, Default)]
pub(crate) struct TaskSide {
    /// Record queries waiting for the store.
    pub waiting: WaitingReads,
    /// Job durations per function, from the jobs the engine reports ended.
    pub timings: JobTimings,
    /// Purges waiting for the store, by the engine's purge id.
    pub purges: FastMap<u64, oneshot::Sender<Result<u64, String>>>,
}

impl TaskSide {
    /// Passes a finished purge on to its requester.
    pub(crate) fn purged(&mut self, purge: sprocket_engine::ControlPurge) {
        if let Some(reply) = self.purges.remove(&purge.id) {
            let _ = reply.send(purge.result);
        }
    }
}

/// Answers one request from the engine's state. A requester that gave up
/// waiting is no error: its answer is dropped. A pause or resume whose
/// answer waits for the store is handed back, to be answered when the
/// store reports its write.
pub(crate) fn serve(
    engine: &mut Engine,
    control: Control,
    side: &mut TaskSide,
    ended: &mut crate::ended_jobs::EndedJobs,
) -> Option<SettingWaiter> {
    match control {
        Control::Query(query) => {
            answer(engine, query, side, ended);
            None
        }
        Control::Command(Command::PurgeDead { function, reply }) => {
            match engine.purge_dead_records(function) {
                sprocket_engine::PurgeStart::Done(n) => {
                    let _ = reply.send(Ok(n));
                }
                sprocket_engine::PurgeStart::Purging(id) => {
                    side.purges.insert(id, reply);
                }
            }
            None
        }
        Control::Command(command) => obey(engine, command),
    }
}

fn answer(engine: &mut Engine, query: Query, side: &mut TaskSide, ended: &mut crate::ended_jobs::EndedJobs) {
    let waiting = &mut side.waiting;
    let now = crate::engine_task::now_ms();
    match query {
        Query::HistorySeries { function, window, reply } => {
            let _ = reply.send(ended.history_series(function.as_deref(), window, now));
        }
        Query::HistoryCounts { window, reply } => {
            let _ = reply.send(ended.history_counts(window, now));
        }
        Query::FunctionHistory { name, reply } => {
            let _ = reply.send(ended.function_history(&name, now));
        }
        Query::JobTimings(reply) => {
            let timings = &mut side.timings;
            if timings.outgrew(engine.server_info().functions) {
                let known: std::collections::HashSet<Bytes> =
                    engine.functions_view().into_iter().map(|f| f.name).collect();
                timings.keep_only(&known);
            }
            let _ = reply.send(timings.snapshot());
        }
        Query::Record { handle, reply } => {
            let lookup = engine.lookup_record(&handle);
            waiting.wait_or_send(lookup, RecordReply::One(reply));
        }
        Query::Records { filter, reply } => {
            let lookup = engine.search_records(filter);
            waiting.wait_or_send(lookup, RecordReply::Many(reply));
        }
        Query::Cron(reply) => {
            let _ = reply.send(engine.cron_entries());
        }
        Query::ServerInfo(reply) => {
            let _ = reply.send(engine.server_info());
        }
        Query::Functions(reply) => {
            let _ = reply.send(engine.functions_view());
        }
        Query::FunctionPolicies(reply) => {
            let _ = reply.send(engine.function_policies());
        }
        Query::Workers(reply) => {
            let _ = reply.send(engine.workers_view());
        }
        Query::Jobs { filter, reply } => {
            let _ = reply.send(engine.jobs_view(&filter));
        }
        Query::Job { handle, reply } => {
            let _ = reply.send(engine.job_view(&handle));
        }
    }
}

fn obey(engine: &mut Engine, command: Command) -> Option<SettingWaiter> {
    match command {
        Command::SetPaused { name, paused, reply } => {
            let result = if paused { engine.pause_function(&name) } else { engine.resume_function(&name) };
            match result {
                Ok(Some(id)) => return Some((id, reply)),
                Ok(None) => {
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(SettingError::Refused(e)));
                }
            }
        }
        Command::PurgeQueued { name, reply } => {
            let _ = reply.send(engine.purge_queued(&name));
        }
        Command::Cancel { handle, reply } => {
            let _ = reply.send(engine.cancel_job(&handle));
        }
        Command::DropFunction { name, reply } => {
            let _ = reply.send(engine.drop_function(&name));
        }
        Command::MaxQueue { function, limits, reply } => {
            let _ = reply.send(engine.set_max_queue(&function, limits));
        }
        // Answered by `serve`, which keeps the reply until the store is done.
        Command::PurgeDead { reply, .. } => {
            let _ = reply.send(Err("not handled".into()));
        }
        Command::CronAdd { spec, reply } => return settle(engine.add_cron(spec), reply),
        Command::CronRemove { name, reply } => return settle(engine.remove_cron(&name), reply),
        Command::CronRun { name, reply } => {
            let _ = reply.send(engine.run_cron(&name));
        }
        Command::ApplyPolicyFile { file, reply } => {
            engine.set_file_policies(file.functions);
            engine.set_file_cron(file.cron);
            let _ = reply.send(());
        }
        Command::Shutdown { graceful, reply } => {
            engine.request_shutdown(if graceful { ShutdownRequest::Graceful } else { ShutdownRequest::Immediate });
            {
                let _ = reply.send(());
            }
        }
    }
    None
}

/// Answers a cron entry change at once, or hands back its waiter when the
/// answer waits for the store.
fn settle(
    result: Result<Option<u64>, sprocket_engine::cron::CronError>,
    reply: oneshot::Sender<Result<(), SettingError>>,
) -> Option<SettingWaiter> {
    match result {
        Ok(Some(id)) => Some((id, reply)),
        Ok(None) => {
            let _ = reply.send(Ok(()));
            None
        }
        Err(e) => {
            let _ = reply.send(Err(SettingError::Cron(e)));
            None
        }
    }
}
