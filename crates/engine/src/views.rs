//! Typed views of the engine's state: functions with their queue counts,
//! workers with their functions and jobs, jobs, and the server itself.
//!
//! Views are computed here and rendered elsewhere: the admin text protocol
//! (`admin.rs`) writes gearmand's exact bytes from them, and the server's
//! query channel hands them to whoever asked (an HTTP API rendering JSON,
//! a metrics endpoint rendering Prometheus text). Each view is a snapshot:
//! it owns its data and stays valid after the engine moves on.

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::engine::Engine;
use crate::function::FunctionCounters;
use crate::job::{Job, JobState};
use crate::policy::PolicyEntry;
use crate::types::{ConnId, JobNo, Millis};

/// One function: its queues, counts and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionView {
    /// The function's name as workers registered it.
    pub name: Bytes,
    /// Jobs of this function that exist: queued, scheduled and running.
    pub total: usize,
    /// Jobs of this function a worker is running.
    pub running: usize,
    /// Jobs waiting (runnable or scheduled) per priority: high, normal, low.
    pub queued: [usize; 3],
    /// Jobs waiting out a retry's backoff before their next attempt (also
    /// counted in `queued`, as gearmand's `status` has no column for them).
    pub retrying: usize,
    /// Worker registrations (a connection that registered twice counts
    /// twice, as in gearmand).
    pub workers: usize,
    /// Queue limits per priority (high, normal, low); 0 means none.
    pub max_queue: [u32; 3],
    /// Jobs submitted and ended since the server started.
    pub counters: FunctionCounters,
    /// An operator paused it: its jobs queue but are not handed out.
    pub paused: bool,
}

impl FunctionView {
    /// Jobs waiting at `priority`.
    pub fn queued_at(&self, priority: Priority) -> usize {
        self.queued[priority.index()]
    }
}

/// One connection, as gearmand's `workers` lists them: every connection
/// appears, with the functions it registered (none for a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    /// The server's number for the connection.
    pub conn: ConnId,
    /// The socket descriptor, shown by `workers`.
    pub fd: i64,
    /// The peer's address (IPv4 clients of a dual-stack listener as
    /// `a.b.c.d`).
    pub peer: String,
    /// The id the peer set with SET_CLIENT_ID, `-` when it set none.
    pub client_id: Bytes,
    /// Registered functions, newest registration first; a function
    /// registered twice appears twice.
    pub functions: Vec<Bytes>,
    /// Handles of the jobs this connection runs as a worker.
    pub running: Vec<Bytes>,
    /// The connection told the server it sleeps (PRE_SLEEP) and has not
    /// been woken since.
    pub sleeping: bool,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting in its function's queue.
    Queued,
    /// Not runnable before its time (an epoch or scheduled job).
    Scheduled,
    /// Waiting out its backoff before another attempt (its function's
    /// policy retries it); `when` says until when, in Unix seconds.
    Retrying,
    /// A worker runs it.
    Running {
        /// The worker's connection.
        worker: ConnId,
    },
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    /// The job's number (the `n` of its handle).
    pub no: JobNo,
    /// Its handle, `<prefix>:<n>`.
    pub handle: Bytes,
    /// Its unique id as submitted (may be empty).
    pub unique: Bytes,
    /// Its function's name.
    pub function: Bytes,
    /// Its priority.
    pub priority: Priority,
    /// Submitted in the background (nobody waits for its result).
    pub background: bool,
    /// Queued, scheduled or running.
    pub status: JobStatus,
    /// Unix seconds before which it may not run; 0 for at once.
    pub when: i64,
    /// Attempts that ended without a result (worker lost, time limit).
    pub attempts: u32,
    /// Nobody will get its result: its clients left, or it was cancelled
    /// while running.
    pub ignored: bool,
    /// Clients waiting for its result.
    pub clients: usize,
    /// The last WORK_STATUS progress: numerator and denominator.
    pub progress: (u32, u32),
    /// Its row is in (or on its way to) the store.
    pub stored: bool,
}

impl JobView {
    /// The "persisted" column of `show jobs`: gearmand shows every
    /// background job that was not cancelled as persisted, queue store or
    /// not, and clients have only ever seen that.
    pub fn shown_as_persisted(&self) -> bool {
        self.background && !self.ignored
    }
}

/// Which jobs [`Engine::jobs_view`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs of this function (exact name); all when `None`.
    pub function: Option<Bytes>,
    /// Only jobs submitted with exactly this unique id (with a function,
    /// a job that coalesces on it is found through the engine's unique
    /// index, without a walk over the jobs).
    pub unique: Option<Bytes>,
    /// At most this many (the oldest first); all when `None`.
    pub limit: Option<usize>,
}

/// The server as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// What `version` reports.
    pub version: String,
    /// What `getpid` reports.
    pub pid: u32,
    /// The log level `verbose` reports (FATAL … DEBUG).
    pub verbose: String,
    /// Jobs that exist (queued, scheduled or running).
    pub jobs: usize,
    /// Open connections.
    pub connections: usize,
    /// Functions known (registered, submitted to or created).
    pub functions: usize,
    /// Background submits whose store insert is not yet confirmed.
    pub unconfirmed_inserts: usize,
    /// The store is known to be unreachable.
    pub store_down: bool,
    /// The engine's clock: the time of the latest event, Unix ms.
    pub now: Millis,
}

impl Engine {
    /// Every function, sorted by name.
    pub fn functions_view(&self) -> Vec<FunctionView> {
        let mut views: Vec<FunctionView> = self
            .function_table()
            .iter()
            .map(|f| FunctionView {
                name: f.name().clone(),
                total: f.total(),
                running: f.running(),
                queued: f.queued(),
                retrying: f.retrying(),
                workers: f.workers(),
                max_queue: f.max_queue(),
                counters: f.counters(),
                paused: f.is_paused(),
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// The retry policy in force for each function that has one, by
    /// function name. Kept out of [`Engine::functions_view`], which admin
    /// `status`, `/metrics` and the live stream call often and do not need
    /// the patterns matched for.
    pub fn function_policies(&self) -> Vec<(Bytes, PolicyEntry)> {
        self.function_table().iter().filter_map(|f| Some((f.name().clone(), self.policy_for(f.name())?))).collect()
    }

    /// Every connection, newest first (the order of gearmand's `workers`).
    pub fn workers_view(&self) -> Vec<WorkerView> {
        self.conn_table()
            .in_arrival_order()
            .rev()
            .map(|(id, c)| WorkerView {
                conn: id,
                fd: c.fd,
                peer: c.peer.to_string(),
                client_id: c.client_id.clone(),
                functions: c
                    .abilities
                    .iter()
                    .filter_map(|a| self.function(a.function).map(|f| f.name().clone()))
                    .collect(),
                running: c.running.iter().filter_map(|no| self.job_table().get(*no).map(|j| j.handle())).collect(),
                sleeping: c.is_asleep(),
            })
            .collect()
    }

    /// The jobs `filter` selects, oldest (lowest number) first.
    pub fn jobs_view(&self, filter: &JobFilter) -> Vec<JobView> {
        self.job_views(filter).collect()
    }

    /// The jobs `filter` selects, oldest first, each view made as it is
    /// taken: a listing of a million jobs is written out one view at a
    /// time instead of holding every view at once.
    pub fn job_views<'a>(&'a self, filter: &JobFilter) -> impl Iterator<Item = JobView> + 'a {
        let wanted = filter.function.as_ref().map(|name| self.function_table().id_of(name));
        let unique = filter.unique.as_deref();
        let indexed = |f| unique.filter(|u| !u.is_empty() && *u != b"-").map(|u| self.job_no_by_unique(f, u));
        let mut jobs: Vec<&Job> = match wanted {
            // A function nobody knows has no jobs.
            Some(None) => Vec::new(),
            Some(Some(f)) => match indexed(f) {
                Some(found) => found.and_then(|no| self.job_table().get(no)).into_iter().collect(),
                None => self.job_table().iter().filter(|j| j.function == f).collect(),
            },
            None => self.job_table().iter().collect(),
        };
        if let Some(u) = unique {
            jobs.retain(|j| j.unique_bytes() == u);
        }
        jobs.sort_unstable_by_key(|j| j.no);
        jobs.truncate(filter.limit.unwrap_or(usize::MAX));
        jobs.into_iter().map(move |j| self.job_view_of(j))
    }

    /// The job with this handle, if it exists.
    pub fn job_view(&self, handle: &[u8]) -> Option<JobView> {
        let no = self.job_by_handle(handle)?;
        self.job_table().get(no).map(|j| self.job_view_of(j))
    }

    /// The server as a whole.
    pub fn server_info(&self) -> ServerInfo {
        ServerInfo {
            version: self.config().version.clone(),
            pid: self.config().pid,
            verbose: self.config().verbose.clone(),
            jobs: self.job_table().len(),
            connections: self.conn_table().len(),
            functions: self.function_table().iter().count(),
            unconfirmed_inserts: self.ledger_view().unconfirmed_count(),
            store_down: self.ledger_view().store_down(),
            now: self.now(),
        }
    }

    fn job_view_of(&self, j: &Job) -> JobView {
        JobView {
            no: j.no,
            handle: j.handle(),
            unique: j.unique(),
            function: self.function(j.function).map(|f| f.name().clone()).unwrap_or_default(),
            priority: j.priority,
            background: j.background,
            status: match j.state() {
                JobState::Queued => JobStatus::Queued,
                JobState::Scheduled => JobStatus::Scheduled,
                JobState::Retrying => JobStatus::Retrying,
                JobState::Running(worker) => JobStatus::Running { worker },
            },
            when: j.when,
            attempts: j.attempts,
            ignored: j.ignore,
            clients: j.clients.len(),
            progress: (j.numerator, j.denominator),
            stored: j.persisted,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sprocket_proto::{Priority, Request, SubmitMode};

    use super::*;
    use crate::types::Config;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn submit(engine: &mut Engine, conn: ConnId, function: &str, unique: &str, priority: Priority) {
        let mode = SubmitMode { priority, background: true };
        engine.request(conn, Request::SubmitJob { mode, function: b(function), unique: b(unique), data: b("d") }, 1);
    }

    #[test]
    fn views_follow_submits_registrations_and_assignments() {
        let mut engine = Engine::new(Config { handle_prefix: "H:t".into(), ..Config::default() });
        engine.connected(1, 11, "10.0.0.1".into());
        engine.connected(2, 12, "10.0.0.2".into());
        engine.request(1, Request::SetClientId { id: b("w1") }, 1);
        engine.request(1, Request::CanDo { function: b("resize") }, 1);
        submit(&mut engine, 2, "resize", "a", Priority::High);
        submit(&mut engine, 2, "resize", "b", Priority::Low);
        submit(&mut engine, 2, "thumb", "c", Priority::Normal);

        let functions = engine.functions_view();
        let names: Vec<&[u8]> = functions.iter().map(|f| &f.name[..]).collect();
        assert_eq!(names, [&b"resize"[..], b"thumb"], "sorted by name");
        assert_eq!((functions[0].total, functions[0].queued, functions[0].workers), (2, [1, 0, 1], 1));
        assert_eq!(functions[0].queued_at(Priority::Low), 1);
        assert_eq!((functions[1].total, functions[1].workers), (1, 0));

        let workers = engine.workers_view();
        assert_eq!(workers.iter().map(|w| w.conn).collect::<Vec<_>>(), [2, 1], "newest first");
        assert_eq!((&workers[1].client_id[..], &workers[1].functions[..]), (&b"w1"[..], &[b("resize")][..]));

        let jobs = engine.jobs_view(&JobFilter::default());
        assert_eq!(jobs.iter().map(|j| &j.unique[..]).collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
        let only = JobFilter { function: Some(b("resize")), limit: Some(1), unique: None };
        assert_eq!(engine.jobs_view(&only).len(), 1);
        assert!(engine.jobs_view(&JobFilter { function: Some(b("none")), ..JobFilter::default() }).is_empty());
        let by_unique = |f: &str, u: &str| JobFilter { function: Some(b(f)), unique: Some(b(u)), limit: None };
        let found = engine.jobs_view(&by_unique("resize", "b"));
        assert_eq!(found.iter().map(|j| &j.handle[..]).collect::<Vec<_>>(), [&b"H:t:2"[..]], "through the index");
        assert!(engine.jobs_view(&by_unique("thumb", "b")).is_empty(), "another function's unique");
        assert!(engine.jobs_view(&by_unique("resize", "x")).is_empty());
        let any_function = JobFilter { unique: Some(b("c")), ..JobFilter::default() };
        assert_eq!(engine.jobs_view(&any_function).len(), 1, "without a function, by a walk");

        engine.request(1, Request::GrabJob, 2);
        let a = engine.job_view(b"H:t:1").expect("job 1 exists");
        assert_eq!((a.status, a.priority, a.background), (JobStatus::Running { worker: 1 }, Priority::High, true));
        assert_eq!(engine.workers_view()[1].running, [b("H:t:1")]);
        assert_eq!(engine.functions_view()[0].running, 1);
        let info = engine.server_info();
        assert_eq!((info.jobs, info.connections, info.functions, info.now), (3, 2, 2, 2));
        assert_eq!(engine.job_view(b"H:t:99"), None);
    }

    #[test]
    fn counters_follow_submits_and_job_ends() {
        let mut engine = Engine::new(Config { handle_prefix: "H:t".into(), ..Config::default() });
        engine.connected(1, 11, "10.0.0.1".into());
        engine.connected(2, 12, "10.0.0.2".into());
        engine.request(1, Request::CanDo { function: b("resize") }, 1);
        for unique in ["a", "b", "c", "d"] {
            submit(&mut engine, 2, "resize", unique, Priority::Normal);
        }
        // Joins job "a": not a new job.
        submit(&mut engine, 2, "resize", "a", Priority::Normal);
        let ends = [
            Request::WorkComplete { handle: b("H:t:1"), data: b("r") },
            Request::WorkFail { handle: b("H:t:2") },
            Request::WorkException { handle: b("H:t:3"), data: b("boom") },
        ];
        for (i, end) in ends.into_iter().enumerate() {
            engine.request(1, Request::GrabJob, 2 + i as Millis);
            engine.request(1, end, 2 + i as Millis);
        }
        // Cancelled: no verdict on the job, not counted.
        engine.cancel_job(b"H:t:4").expect("job 4 exists");
        let counters = engine.functions_view()[0].counters;
        assert_eq!(
            counters,
            FunctionCounters { submitted: 4, completed: 1, failed: 1, exceptions: 1, retried: 0, dead: 0 }
        );
    }
}
