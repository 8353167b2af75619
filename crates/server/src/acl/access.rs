//! One connection's view of the list: its identity, the entry that
//! applies to it, and the verdicts already reached for function names, so
//! that a worker or client repeating the same few functions costs a map
//! lookup per request and allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use sprocket_engine::Out;
use sprocket_proto::{Request, Response};

use super::admin_class::{classify, AdminNeed};
use super::rules::{AdminLevel, Entry, Identity};
use super::AclStore;
use crate::event::Inbound;

/// Most function names whose verdicts a connection remembers; past that
/// the memory starts over, so a peer cycling through names cannot grow it.
const MAX_REMEMBERED: usize = 256;

/// What a function name was found to allow, worked out when first asked.
#[derive(Default, Clone, Copy)]
struct Verdicts {
    register: Option<bool>,
    invoke: Option<bool>,
}

#[derive(Clone, Copy)]
enum Right {
    Register,
    Invoke,
}

/// The access checks of one connection.
pub struct Access {
    store: Arc<AclStore>,
    identity: Identity,
    /// The list's generation that `section` and `verdicts` were worked out for.
    seen: Option<u64>,
    /// The section that applies (its name, its rights), if any.
    section: Option<(Arc<str>, Arc<Entry>)>,
    verdicts: HashMap<Bytes, Verdicts>,
}

impl Access {
    pub fn new(store: Arc<AclStore>, identity: Identity) -> Access {
        Access { store, identity, seen: None, section: None, verdicts: HashMap::new() }
    }

    /// The store this connection checks against.
    pub(super) fn store(&self) -> &Arc<AclStore> {
        &self.store
    }

    /// Catches up with a changed list.
    fn refresh(&mut self) {
        let generation = self.store.generation();
        if self.seen == Some(generation) {
            return;
        }
        let acl = self.store.snapshot();
        self.section = acl.section_of(&self.identity).map(|(name, entry)| (Arc::from(name), entry.clone()));
        self.verdicts.clear();
        self.seen = Some(generation);
    }

    /// The entry in force and the name of its section.
    pub(super) fn section(&mut self) -> Option<(Arc<str>, Arc<Entry>)> {
        self.refresh();
        self.section.clone()
    }

    /// How the connection is named in refusals and logs: its section, else
    /// the certificate's name or the peer's address.
    pub(super) fn label(&self) -> String {
        match (&self.section, &self.identity) {
            (Some((name, _)), _) => name.to_string(),
            (None, Identity::Certificate(name)) => name.clone(),
            (None, Identity::Address(ip)) => super::rules::unmapped(*ip).to_string(),
            (None, Identity::Nobody) => "(a certificate without a name)".into(),
            (None, Identity::Section(name)) => name.clone(),
        }
    }

    /// Lets `frame` through, or replaces it with the refusal the peer gets
    /// in its place.
    pub fn check(&mut self, frame: Inbound) -> Inbound {
        if let Inbound::Request(request @ (Request::GetStatus { .. } | Request::GetStatusUnique { .. })) = frame {
            return self.guard_status(request);
        }
        match &frame {
            Inbound::Request(request) => match self.refusal(request) {
                Some(reply) => Inbound::Answer(reply),
                None => frame,
            },
            Inbound::Admin(line) => match classify(line) {
                AdminNeed::AclCommand => Inbound::Answer(Out::Text(super::commands::run(self, line))),
                AdminNeed::Level(needed) => {
                    self.refresh();
                    let level = self.section.as_ref().and_then(|(_, entry)| entry.admin);
                    if level.is_some_and(|level| level >= needed) {
                        frame
                    } else if let Some(guarded) = self.guard_cancel(line) {
                        guarded
                    } else {
                        Inbound::Answer(Out::Text(self.admin_refusal(line, needed)))
                    }
                }
            },
            Inbound::Error { .. }
            | Inbound::Answer(_)
            | Inbound::GuardedStatus { .. }
            | Inbound::GuardedCancel { .. } => frame,
        }
    }

    fn refusal(&mut self, request: &Request) -> Option<Out> {
        match request {
            Request::CanDo { function } | Request::CanDoTimeout { function, .. } => {
                self.refuse_unless(Right::Register, function)
            }
            // The server's own reads: the engine checks each job read
            // against the functions the identity may invoke (its read
            // guard), so here only an identity that may invoke nothing is
            // refused.
            Request::SubmitJob { function, .. } if is_reserved_read(function) => self.refuse_unless_any_invoke(),
            Request::SubmitJob { function, .. }
            | Request::SubmitJobSched { function, .. }
            | Request::SubmitJobEpoch { function, .. } => self.refuse_unless(Right::Invoke, function),
            Request::SubmitReduceJob { function, reducer, .. } => {
                // The reducer runs as a job of its own function too.
                self.refuse_unless(Right::Invoke, function).or_else(|| {
                    if reducer.is_empty() {
                        None
                    } else {
                        self.refuse_unless(Right::Invoke, reducer)
                    }
                })
            }
            _ => None,
        }
    }

    /// GET_STATUS and GET_STATUS_UNIQUE name a job, not a function:
    /// refused here without any right to invoke; else handed on with what
    /// the engine task needs to check the job's function.
    fn guard_status(&mut self, request: Request) -> Inbound {
        match self.section() {
            Some((identity, entry)) if entry.invoke.is_some() => {
                Inbound::GuardedStatus { request, guard: StatusGuard { identity, entry } }
            }
            _ => {
                tracing::info!(identity = %self.label(), "ACL: status request refused");
                let text =
                    format!("identity {:?} may not ask for job status (it may invoke no function)", self.label());
                Inbound::Answer(error_packet(text))
            }
        }
    }

    /// `cancel job HANDLE` from an identity that may invoke some functions
    /// but lacks `admin = write`: handed on to be checked against the job's
    /// function (geard lets an identity cancel the jobs it may submit).
    fn guard_cancel(&mut self, line: &[u8]) -> Option<Inbound> {
        let words: Vec<&[u8]> = line.trim_ascii().split(|b| *b == b' ').filter(|w| !w.is_empty()).collect();
        let [cancel, job, handle] = words[..] else { return None };
        if !cancel.eq_ignore_ascii_case(b"cancel") || !job.eq_ignore_ascii_case(b"job") {
            return None;
        }
        match self.section() {
            Some((identity, entry)) if entry.invoke.is_some() => Some(Inbound::GuardedCancel {
                handle: Bytes::copy_from_slice(handle),
                guard: StatusGuard { identity, entry },
            }),
            _ => None,
        }
    }

    fn refuse_unless_any_invoke(&mut self) -> Option<Out> {
        match self.section() {
            Some((_, entry)) if entry.invoke.is_some() => None,
            _ => Some(error_packet(format!(
                "identity {:?} may not read job records (it may invoke no function)",
                self.label()
            ))),
        }
    }

    fn refuse_unless(&mut self, right: Right, function: &Bytes) -> Option<Out> {
        if self.allows(right, function) {
            return None;
        }
        let verb = match right {
            Right::Register => "register",
            Right::Invoke => "submit",
        };
        let name = String::from_utf8_lossy(function);
        Some(error_packet(format!("identity {:?} may not {verb} {:?}", self.label(), name)))
    }

    /// The verdict for `function`, from memory when the list has not
    /// changed since it was reached.
    fn allows(&mut self, right: Right, function: &Bytes) -> bool {
        self.refresh();
        let remembered = self.verdicts.get(function.as_ref()).and_then(|v| match right {
            Right::Register => v.register,
            Right::Invoke => v.invoke,
        });
        if let Some(verdict) = remembered {
            return verdict;
        }
        let verdict = self.section.as_ref().is_some_and(|(_, entry)| match right {
            Right::Register => entry.may_register(function),
            Right::Invoke => entry.may_invoke(function),
        });
        if !verdict {
            // Logged once per connection and function (the verdict is
            // remembered), so a peer retrying in a loop does not flood the log.
            let what = match right {
                Right::Register => "register",
                Right::Invoke => "submit",
            };
            tracing::info!(identity = %self.label(), function = %String::from_utf8_lossy(function), "ACL: may not {what}");
        }
        if self.verdicts.len() >= MAX_REMEMBERED && !self.verdicts.contains_key(function.as_ref()) {
            self.verdicts.clear();
        }
        // A copy, not a slice of the read buffer, which it would keep alive.
        let slot = self.verdicts.entry(Bytes::copy_from_slice(function)).or_default();
        match right {
            Right::Register => slot.register = Some(verdict),
            Right::Invoke => slot.invoke = Some(verdict),
        }
        verdict
    }

    fn admin_refusal(&self, line: &[u8], needed: AdminLevel) -> Bytes {
        let command = String::from_utf8_lossy(line.trim_ascii());
        tracing::info!(identity = %self.label(), %command, "ACL: admin command refused");
        permission_denied(&format!("identity {:?} needs admin = {} for this command", self.label(), needed.name()))
    }
}

/// The server's own functions that read job records.
fn is_reserved_read(function: &[u8]) -> bool {
    matches!(function, b"sprocket.result" | b"sprocket.record" | b"sprocket.records")
}

/// The rights a GET_STATUS is checked against once its job's function is
/// known (in the engine task).
#[derive(Debug)]
pub struct StatusGuard {
    identity: Arc<str>,
    entry: Arc<Entry>,
}

impl StatusGuard {
    /// The ERROR to answer when the identity may not invoke `function`.
    pub fn refusal(&self, function: &[u8]) -> Option<Out> {
        if self.entry.may_invoke(function) {
            return None;
        }
        let function = String::from_utf8_lossy(function);
        tracing::info!(identity = %self.identity, %function, "ACL: status of another function's job refused");
        Some(error_packet(format!("identity {:?} may not ask for the status of a {function:?} job", self.identity)))
    }
}

impl StatusGuard {
    /// The admin error to answer when the identity may not cancel a job of
    /// `function`.
    pub fn cancel_refusal(&self, function: &[u8]) -> Option<Bytes> {
        if self.entry.may_invoke(function) {
            return None;
        }
        let function = String::from_utf8_lossy(function);
        tracing::info!(identity = %self.identity, %function, "ACL: cancel of another function's job refused");
        Some(permission_denied(&format!(
            "identity {:?} may not cancel a {function:?} job (it needs admin = write, or invoke of the function)",
            self.identity
        )))
    }
}

/// An ERROR packet with code PERMISSION_DENIED.
fn error_packet(text: String) -> Out {
    Out::Packet(Response::Error { code: Bytes::from_static(b"PERMISSION_DENIED"), text: Bytes::from(text) })
}

/// `ERR PERMISSION_DENIED <text>` with the text's spaces written as `+`,
/// as gearmand writes the text of its admin errors (one word after the code).
pub(super) fn permission_denied(text: &str) -> Bytes {
    admin_error("PERMISSION_DENIED", text)
}

pub(super) fn admin_error(code: &str, text: &str) -> Bytes {
    let text: String = text.chars().map(|c| if c == ' ' || c.is_control() { '+' } else { c }).collect();
    Bytes::from(format!("ERR {code} {text}\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::rules::Pattern;

    fn can_do(name: &str) -> Inbound {
        Inbound::Request(Request::CanDo { function: Bytes::copy_from_slice(name.as_bytes()) })
    }

    fn refused(frame: &Inbound) -> bool {
        matches!(frame, Inbound::Answer(Out::Packet(Response::Error { .. })))
    }

    #[test]
    fn a_change_to_the_list_reaches_a_connection_that_remembered_verdicts() {
        let store = Arc::new(AclStore::from_text("[w]\nregister = a\n"));
        let mut access = Access::new(store.clone(), Identity::Certificate("w".into()));
        assert!(!refused(&access.check(can_do("a"))));
        assert!(refused(&access.check(can_do("b"))));
        assert!(refused(&access.check(can_do("b"))), "the remembered verdict differs");
        store
            .change(|acl| {
                let entry = Entry { register: Some(Pattern::new("a|b").unwrap()), ..Entry::default() };
                acl.insert("w", entry)
            })
            .unwrap();
        assert!(!refused(&access.check(can_do("b"))), "a stale verdict was used after the change");
    }

    #[test]
    fn remembered_verdicts_stay_bounded() {
        let store = Arc::new(AclStore::from_text("[w]\nregister = f.*\n"));
        let mut access = Access::new(store, Identity::Certificate("w".into()));
        for n in 0..(MAX_REMEMBERED * 4) {
            assert!(!refused(&access.check(can_do(&format!("f{n}")))));
            assert!(access.verdicts.len() <= MAX_REMEMBERED);
        }
    }

    #[test]
    fn requests_that_need_no_right_pass_untouched() {
        let store = Arc::new(AclStore::from_text(""));
        let mut access = Access::new(store, Identity::Nobody);
        for request in [Request::GrabJob, Request::PreSleep, Request::EchoReq { data: Bytes::from_static(b"x") }] {
            assert!(matches!(access.check(Inbound::Request(request)), Inbound::Request(_)));
        }
        assert!(refused(&access.check(can_do("anything"))));
    }
}
