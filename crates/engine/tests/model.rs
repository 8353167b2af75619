//! Model-based tests: random interleavings of clients, workers,
//! disconnects and operators pausing, resuming and purging functions,
//! checked against the engine's invariants after every step.

mod support;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use proptest::prelude::*;
use sprocket_engine::{Config, ConnId};
use sprocket_proto::{Priority, Request, Response, SubmitMode};
use support::{b, Bed};

const FUNCS: [&str; 2] = ["f0", "f1"];
const UNIQUES: [&str; 3] = ["", "u1", "u2"];

#[derive(Debug, Clone)]
enum Op {
    Submit { client: usize, func: usize, unique: usize, background: bool, priority: u8 },
    Grab { worker: usize },
    Sleep { worker: usize },
    Status { worker: usize },
    Complete { worker: usize },
    Fail { worker: usize },
    DropClient { client: usize },
    DropWorker { worker: usize },
    Pause { func: usize },
    Resume { func: usize },
    Purge { func: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2usize, 0..3usize, any::<bool>(), 0..3u8).prop_map(|(client, func, unique, background, priority)| Op::Submit { client, func, unique, background, priority }),
        4 => (0..3usize).prop_map(|worker| Op::Grab { worker }),
        2 => (0..3usize).prop_map(|worker| Op::Sleep { worker }),
        1 => (0..3usize).prop_map(|worker| Op::Status { worker }),
        3 => (0..3usize).prop_map(|worker| Op::Complete { worker }),
        1 => (0..3usize).prop_map(|worker| Op::Fail { worker }),
        1 => (0..3usize).prop_map(|client| Op::DropClient { client }),
        1 => (0..3usize).prop_map(|worker| Op::DropWorker { worker }),
        1 => (0..2usize).prop_map(|func| Op::Pause { func }),
        1 => (0..2usize).prop_map(|func| Op::Resume { func }),
        1 => (0..2usize).prop_map(|func| Op::Purge { func }),
    ]
}

struct Model {
    t: Bed,
    clients: Vec<ConnId>,
    workers: Vec<ConnId>,
    /// handle -> worker holding it.
    assigned: HashMap<Bytes, ConnId>,
    /// worker -> handles it holds, in order.
    holding: HashMap<ConnId, Vec<Bytes>>,
    /// handle -> foreground submissions (by client) that must each hear its
    /// final packet: a client that submitted the same unique twice hears it twice.
    listeners: HashMap<Bytes, Vec<ConnId>>,
    /// workers that slept with nothing to do and have not grabbed since.
    asleep: HashSet<ConnId>,
    /// NOOPs each sleeping worker got since it slept.
    noops: HashMap<ConnId, usize>,
    /// Functions (by index) an operator paused.
    paused: HashSet<usize>,
}

impl Model {
    fn new() -> Model {
        let mut t = Bed::new(Config { handle_prefix: "H:m".into(), job_retries: 0, ..Config::default() });
        let clients = (0..3).map(|_| t.connect()).collect();
        let workers = (0..3)
            .map(|i| {
                // worker 0 does f0, worker 1 does f1, worker 2 both.
                let fs: &[&str] = match i {
                    0 => &["f0"],
                    1 => &["f1"],
                    _ => &["f0", "f1"],
                };
                t.worker(fs)
            })
            .collect();
        Model {
            t,
            clients,
            workers,
            assigned: HashMap::new(),
            holding: HashMap::new(),
            listeners: HashMap::new(),
            asleep: HashSet::new(),
            noops: HashMap::new(),
            paused: HashSet::new(),
        }
    }

    /// Reads what every connection received and checks it.
    fn collect(&mut self) {
        for &w in &self.workers.clone() {
            for p in self.t.packets(w) {
                match p {
                    Response::Noop => *self.noops.entry(w).or_default() += 1,
                    Response::JobAssignUniq { handle, function, .. } => {
                        let func = FUNCS.iter().position(|f| f.as_bytes() == function).expect("a known function");
                        assert!(!self.paused.contains(&func), "job {handle:?} of paused {function:?} handed out");
                        assert!(
                            !self.assigned.contains_key(&handle),
                            "job {handle:?} handed out while another worker holds it"
                        );
                        self.assigned.insert(handle.clone(), w);
                        self.holding.entry(w).or_default().push(handle);
                    }
                    Response::NoJob => {}
                    other => panic!("worker got unexpected {other:?}"),
                }
            }
        }
        for &c in &self.clients.clone() {
            for p in self.t.packets(c) {
                match p {
                    Response::JobCreated { .. } | Response::WorkStatus { .. } => {}
                    Response::WorkComplete { handle, .. } | Response::WorkFail { handle } => {
                        let waiting = self.listeners.get_mut(&handle).expect("final packet for a job it waits on");
                        let Some(i) = waiting.iter().position(|&x| x == c) else {
                            panic!("client {c} got more final packets for {handle:?} than it submitted");
                        };
                        waiting.swap_remove(i);
                    }
                    other => panic!("client got unexpected {other:?}"),
                }
            }
        }
        for (&w, &n) in &self.noops {
            assert!(n <= 1, "worker {w} got {n} NOOPs without grabbing");
        }
    }

    fn check_counts(&mut self) {
        let a = self.clients[0];
        let status = self.t.admin(a, "status");
        let mut total = 0;
        let mut running = 0;
        for line in status.lines().filter(|l| *l != ".") {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "status line {line:?}");
            total += cols[1].parse::<usize>().unwrap();
            running += cols[2].parse::<usize>().unwrap();
        }
        assert_eq!(total, self.t.engine.job_count(), "status totals match the job table");
        assert_eq!(running, self.assigned.len(), "running counts match assignments");
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Submit { client, func, unique, background, priority } => {
                let c = self.clients[client];
                let priority = [Priority::High, Priority::Normal, Priority::Low][priority as usize];
                self.t.send(
                    c,
                    Request::SubmitJob {
                        mode: SubmitMode { priority, background },
                        function: b(FUNCS[func]),
                        unique: b(UNIQUES[unique]),
                        data: b("x"),
                    },
                );
                let created = self.t.inbox.get(&c).and_then(|v| v.last()).cloned();
                let Some(sprocket_engine::Out::Packet(Response::JobCreated { handle })) = created else {
                    panic!("submit not answered with JOB_CREATED: {created:?}")
                };
                let is_new = !self.listeners.contains_key(&handle) && !self.assigned.contains_key(&handle);
                if !background {
                    self.listeners.entry(handle).or_default().push(c);
                } else {
                    self.listeners.entry(handle).or_default();
                }
                // Sleeping workers for that function must now have a NOOP.
                self.collect();
                for (i, &w) in self.workers.iter().enumerate() {
                    let can = i == 2 || i == func;
                    if is_new && can && self.asleep.contains(&w) && !self.paused.contains(&func) {
                        assert_eq!(self.noops.get(&w).copied().unwrap_or(0), 1, "sleeping worker {w} not woken");
                    }
                }
            }
            Op::Grab { worker } => {
                let w = self.workers[worker];
                self.asleep.remove(&w);
                self.noops.remove(&w);
                self.t.send(w, Request::GrabJobUniq);
            }
            Op::Sleep { worker } => {
                let w = self.workers[worker];
                // Each PRE_SLEEP starts a new wait: at most one NOOP ends it.
                self.noops.insert(w, 0);
                self.t.send(w, Request::PreSleep);
                let woke_now = self.t.inbox.get(&w).is_some_and(|v| !v.is_empty());
                if !woke_now && !self.asleep.contains(&w) {
                    self.asleep.insert(w);
                    self.noops.insert(w, 0);
                }
            }
            Op::Status { worker } => {
                let w = self.workers[worker];
                if let Some(h) = self.holding.get(&w).and_then(|v| v.first()).cloned() {
                    self.t.send(w, Request::WorkStatus { handle: h, numerator: b("1"), denominator: b("2") });
                }
            }
            Op::Complete { worker } | Op::Fail { worker } => {
                let w = self.workers[worker];
                let Some(h) = self.holding.get_mut(&w).and_then(|v| (!v.is_empty()).then(|| v.remove(0))) else {
                    return;
                };
                self.assigned.remove(&h);
                let req = if matches!(op, Op::Complete { .. }) {
                    Request::WorkComplete { handle: h.clone(), data: b("r") }
                } else {
                    Request::WorkFail { handle: h.clone() }
                };
                self.t.send(w, req);
                self.collect();
                let left = self.listeners.remove(&h).unwrap_or_default();
                let live: Vec<_> = left.into_iter().filter(|c| self.clients.contains(c)).collect();
                assert!(live.is_empty(), "clients {live:?} never heard that {h:?} ended");
            }
            Op::DropClient { client } => {
                let old = self.clients[client];
                self.t.disconnect(old);
                for waiting in self.listeners.values_mut() {
                    waiting.retain(|&x| x != old);
                }
                self.clients[client] = self.t.connect();
            }
            Op::DropWorker { worker } => {
                let old = self.workers[worker];
                self.t.disconnect(old);
                for h in self.holding.remove(&old).unwrap_or_default() {
                    self.assigned.remove(&h);
                }
                self.asleep.remove(&old);
                self.noops.remove(&old);
                let fs: &[&str] = match worker {
                    0 => &["f0"],
                    1 => &["f1"],
                    _ => &["f0", "f1"],
                };
                self.workers[worker] = self.t.worker(fs);
            }
            Op::Pause { func } => {
                assert_eq!(self.t.admin(self.clients[0], &format!("pause {}", FUNCS[func])), "OK\r\n");
                self.paused.insert(func);
            }
            Op::Resume { func } => {
                let reply = self.t.admin(self.clients[0], &format!("resume {}", FUNCS[func]));
                assert!(reply == "OK\r\n" || reply == "ERR function not found\r\n", "{reply}");
                self.paused.remove(&func);
                // Sleeping workers of a function with work waiting are woken.
                let waiting = self.queued_of(func);
                self.collect();
                for (i, &w) in self.workers.iter().enumerate() {
                    let can = i == 2 || i == func;
                    if waiting > 0 && can && self.asleep.contains(&w) {
                        assert_eq!(self.noops.get(&w).copied().unwrap_or(0), 1, "sleeping worker {w} not woken");
                    }
                }
            }
            Op::Purge { func } => {
                let waiting = self.queued_of(func);
                let reply = self.t.admin(self.clients[0], &format!("purge queued {}", FUNCS[func]));
                if reply != "ERR function not found\r\n" {
                    assert_eq!(reply, format!("OK {waiting}\n"), "every queued job is purged, no running one");
                }
                assert_eq!(self.queued_of(func), 0);
            }
        }
        self.collect();
        self.check_counts();
    }

    /// Jobs of function `func` that exist and no worker runs.
    fn queued_of(&self, func: usize) -> usize {
        let views = self.t.engine.functions_view();
        views.iter().find(|f| f.name == FUNCS[func].as_bytes()).map_or(0, |f| f.total - f.running)
    }

    /// Drains everything with the all-function worker: every job that
    /// still exists must be runnable (nothing lost, nothing stuck).
    fn drain(&mut self) {
        for func in std::mem::take(&mut self.paused) {
            let _ = self.t.admin(self.clients[0], &format!("resume {}", FUNCS[func]));
        }
        for w in self.workers.clone() {
            while let Some(h) = self.holding.get_mut(&w).and_then(|v| (!v.is_empty()).then(|| v.remove(0))) {
                self.assigned.remove(&h);
                self.t.send(w, Request::WorkComplete { handle: h, data: b("r") });
            }
        }
        let w = self.workers[2];
        for _ in 0..1000 {
            match self.t.grab(w) {
                Some((h, ..)) => self.t.send(w, Request::WorkComplete { handle: h, data: b("r") }),
                None => break,
            }
        }
        self.t.inbox.clear();
        assert_eq!(self.t.engine.job_count(), 0, "every job ran or was abandoned");
        let status = self.t.admin(self.clients[0], "status");
        assert!(status.lines().filter(|l| *l != ".").all(|l| l.contains("\t0\t0\t")), "{status}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn invariants_hold_under_random_interleavings(ops in proptest::collection::vec(op(), 1..80)) {
        let mut m = Model::new();
        for op in ops {
            m.apply(op);
        }
        m.drain();
    }
}
