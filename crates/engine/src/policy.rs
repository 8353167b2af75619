//! Per-function policies: how many attempts a job gets, how long it waits
//! between them, which endings are retried, a server-side run limit, and
//! whether a job out of attempts is kept as a dead letter.
//!
//! Policies are pure data the engine consults when an attempt ends. They
//! come from two places: the policy file (`--policy-file`, replaced whole
//! on each reload) and operators at run time (admin `policy set`, kept in
//! the store). A run-time policy for a pattern takes precedence over the
//! file's for the same pattern, so a reload never undoes an operator's
//! change; `policy clear` gives the file's back.
//!
//! A pattern is an exact function name or a glob (`*` any run of bytes,
//! `?` one byte). For a function the exact name wins; otherwise the
//! matching glob with the most literal bytes (the most specific), and
//! among equally specific ones the first in order. A function no pattern
//! matches has no policy and behaves exactly as under gearmand 1.1.20.

use std::time::Duration;

use bytes::Bytes;

use crate::hash::FastMap;
use crate::types::Millis;

/// How an attempt ended, as a policy's `retry_on` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryReason {
    /// WORK_FAIL.
    Fail,
    /// WORK_EXCEPTION.
    Exception,
    /// The run limit (the policy's `timeout` or CAN_DO_TIMEOUT) expired.
    Timeout,
    /// The worker disconnected (or said CANT_DO / RESET_ABILITIES) while
    /// it held the job.
    WorkerLost,
}

impl RetryReason {
    /// Every reason, in the order the policy file lists them.
    pub const ALL: [RetryReason; 4] =
        [RetryReason::Fail, RetryReason::Exception, RetryReason::Timeout, RetryReason::WorkerLost];

    /// The name used in the policy file, JSON and admin text.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Fail => "fail",
            RetryReason::Exception => "exception",
            RetryReason::Timeout => "timeout",
            RetryReason::WorkerLost => "worker_lost",
        }
    }

    /// Reads a name written by [`RetryReason::as_str`].
    pub fn parse(name: &str) -> Option<RetryReason> {
        RetryReason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`RetryReason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetryOn(u8);

impl RetryOn {
    /// Every reason: the default when a policy does not say.
    pub fn all() -> RetryOn {
        RetryOn::from_iter(RetryReason::ALL)
    }

    /// Whether `reason` is in the set.
    pub fn contains(self, reason: RetryReason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// The reasons in the set, in [`RetryReason::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = RetryReason> {
        RetryReason::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<RetryReason> for RetryOn {
    fn from_iter<I: IntoIterator<Item = RetryReason>>(reasons: I) -> RetryOn {
        RetryOn(reasons.into_iter().fold(0, |bits, r| bits | r.bit()))
    }
}

/// How long a job waits before its next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed {
        /// The delay.
        delay: Duration,
    },
    /// `base · factor^(n-1)` before the n-th retry, at most `max`, then
    /// moved by up to ±`jitter` of itself (0 to 1) so that jobs that
    /// failed together do not all come back in the same instant.
    Exponential {
        /// The first delay.
        base: Duration,
        /// What each delay is multiplied by for the next (at least 1).
        factor: f64,
        /// The longest delay.
        max: Duration,
        /// The fraction by which a delay is moved at random (0 to 1).
        jitter: f64,
    },
}

impl Default for Backoff {
    /// 1 s, doubling, at most an hour, ±20 %.
    fn default() -> Backoff {
        Backoff::Exponential { base: Duration::from_secs(1), factor: 2.0, max: Duration::from_secs(3600), jitter: 0.2 }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (1 for the wait after the
    /// first attempt). `spread` is a number in [0, 1) that places the
    /// jitter; the engine derives it from the job and attempt, so that the
    /// same job and attempt always wait the same (and tests are exact).
    pub fn delay(&self, retry: u32, spread: f64) -> Duration {
        match *self {
            Backoff::Fixed { delay } => delay,
            Backoff::Exponential { base, factor, max, jitter } => {
                let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
                let raw = base.as_secs_f64() * factor.powi(exponent);
                let capped = if raw.is_finite() { raw.min(max.as_secs_f64()) } else { max.as_secs_f64() };
                let moved = capped * (1.0 + jitter * (2.0 * spread - 1.0));
                Duration::try_from_secs_f64(moved.max(0.0)).unwrap_or(max)
            }
        }
    }

    /// Checks the numbers an operator gave.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Backoff::Exponential { factor, jitter, base, max } = *self {
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(PolicyError(format!("backoff factor must be a number of at least 1, not {factor}")));
            }
            if !(0.0..=1.0).contains(&jitter) {
                return Err(PolicyError(format!("backoff jitter must be between 0 and 1, not {jitter}")));
            }
            if max < base {
                return Err(PolicyError("backoff max must not be shorter than its base".into()));
            }
        }
        Ok(())
    }
}

/// What one function's jobs get.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionPolicy {
    /// Attempts a job gets, counting the first (1: no retries).
    pub max_attempts: u32,
    /// The wait before each retry.
    pub backoff: Backoff,
    /// Which endings of an attempt are retried.
    pub retry_on: RetryOn,
    /// A server-side run limit per attempt, also for workers that never
    /// send CAN_DO_TIMEOUT (the shorter of the two applies).
    pub timeout: Option<Duration>,
    /// A background job out of attempts is kept as a dead letter (its
    /// payload, attempts and errors) instead of ending failed.
    pub dead_letter: bool,
    /// Foreground jobs are retried too; their clients hear only the final
    /// outcome. Off, a foreground job ends at its first failure as under
    /// gearmand (its client is waiting and may retry itself).
    pub retry_foreground: bool,
}

impl Default for FunctionPolicy {
    /// What a policy that says nothing means: one attempt, every ending
    /// retried when more are allowed, the default backoff, no run limit,
    /// no dead letters.
    fn default() -> FunctionPolicy {
        FunctionPolicy {
            max_attempts: 1,
            backoff: Backoff::default(),
            retry_on: RetryOn::all(),
            timeout: None,
            dead_letter: false,
            retry_foreground: false,
        }
    }
}

impl FunctionPolicy {
    /// Checks the numbers an operator gave.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError("max_attempts counts the first attempt and must be at least 1".into()));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(PolicyError("timeout must be longer than 0".into()));
        }
        self.backoff.validate()
    }

    /// Whether an attempt that ended for `reason` as attempt number
    /// `attempt` (1 for the first) is tried again.
    pub fn retries(&self, reason: RetryReason, attempt: u32) -> bool {
        self.retry_on.contains(reason) && attempt < self.max_attempts
    }

    /// The run limit in milliseconds, if any.
    pub fn timeout_ms(&self) -> Option<Millis> {
        self.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A policy that cannot be used; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Where a policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// The policy file.
    File,
    /// An operator at run time (kept in the store).
    Runtime,
}

impl PolicySource {
    /// `file` or `runtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::File => "file",
            PolicySource::Runtime => "runtime",
        }
    }
}

/// One pattern and its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEntry {
    /// An exact function name or a glob.
    pub pattern: String,
    /// What matching functions' jobs get.
    pub policy: FunctionPolicy,
    /// Where it came from.
    pub source: PolicySource,
}

/// The policies in force, and which function has which.
#[derive(Debug, Default)]
pub(crate) struct PolicyTable {
    /// The policy file's entries, in file order.
    file: Vec<PolicyEntry>,
    /// Operators' entries, in the order they were set.
    runtime: Vec<PolicyEntry>,
    /// The entry index each function name resolved to (`None`: no
    /// policy), so that an attempt's end does not match globs again.
    /// Emptied whenever the entries change.
    resolved: FastMap<Bytes, Option<usize>>,
}

impl PolicyTable {
    /// Replaces the policy file's entries.
    pub fn set_file(&mut self, entries: Vec<(String, FunctionPolicy)>) {
        self.file = entries
            .into_iter()
            .map(|(pattern, policy)| PolicyEntry { pattern, policy, source: PolicySource::File })
            .collect();
        self.resolved.clear();
    }

    /// Sets an operator's policy for `pattern` (replacing an earlier one).
    pub fn set_runtime(&mut self, pattern: String, policy: FunctionPolicy) {
        self.runtime.retain(|e| e.pattern != pattern);
        self.runtime.push(PolicyEntry { pattern, policy, source: PolicySource::Runtime });
        self.resolved.clear();
    }

    /// Removes an operator's policy for `pattern`; whether there was one.
    pub fn clear_runtime(&mut self, pattern: &str) -> bool {
        let before = self.runtime.len();
        self.runtime.retain(|e| e.pattern != pattern);
        self.resolved.clear();
        self.runtime.len() != before
    }

    /// Every entry in force: operators' first, then the file's whose
    /// pattern no operator's entry overrides.
    pub fn entries(&self) -> impl Iterator<Item = &PolicyEntry> {
        self.runtime.iter().chain(self.file.iter().filter(|f| !self.runtime.iter().any(|r| r.pattern == f.pattern)))
    }

    /// Whether any policy exists (when none does, nothing is looked up).
    pub fn is_empty(&self) -> bool {
        self.file.is_empty() && self.runtime.is_empty()
    }

    /// The policy of function `name`, if any.
    pub fn for_function(&mut self, name: &Bytes) -> Option<&FunctionPolicy> {
        if self.is_empty() {
            return None;
        }
        let index = match self.resolved.get(name) {
            Some(index) => *index,
            None => {
                let index = self.resolve(name);
                self.resolved.insert(name.clone(), index);
                index
            }
        };
        index.and_then(|i| self.entries().nth(i)).map(|e| &e.policy)
    }

    /// The policy of function `name` without caching (for views).
    pub fn lookup(&self, name: &[u8]) -> Option<&PolicyEntry> {
        self.resolve(name).and_then(|i| self.entries().nth(i))
    }

    /// The index in [`PolicyTable::entries`] of the entry for `name`.
    fn resolve(&self, name: &[u8]) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, entry) in self.entries().enumerate() {
            let pattern = entry.pattern.as_bytes();
            if !is_glob(pattern) {
                if pattern == name {
                    return Some(i);
                }
                continue;
            }
            if glob_matches(pattern, name) {
                let literal = pattern.iter().filter(|b| !matches!(b, b'*' | b'?')).count();
                if best.is_none_or(|(_, l)| literal > l) {
                    best = Some((i, literal));
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

/// Whether a pattern has wildcards.
pub fn is_glob(pattern: &[u8]) -> bool {
    pattern.iter().any(|b| matches!(b, b'*' | b'?'))
}

/// Whether `name` matches `pattern` whole (`*` any run of bytes, `?` one
/// byte, anything else itself).
pub fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative matching with one backtrack point: linear in practice and
    // never exponential, whatever the pattern.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches(b"resize_*", b"resize_"));
        assert!(glob_matches(b"resize_*", b"resize_png"));
        assert!(!glob_matches(b"resize_*", b"xresize_png"));
        assert!(glob_matches(b"*_png", b"resize_png"));
        assert!(glob_matches(b"a?c", b"abc"));
        assert!(!glob_matches(b"a?c", b"ac"));
        assert!(glob_matches(b"*", b""));
        assert!(glob_matches(b"a*b*c", b"aXXbYYbc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYY"));
        assert!(glob_matches(b"exact", b"exact"));
        assert!(!glob_matches(b"exact", b"exactly"));
    }

    #[test]
    fn exact_names_win_then_the_most_specific_glob_then_operators_over_the_file() {
        let mut t = PolicyTable::default();
        let p = |n| FunctionPolicy { max_attempts: n, ..Default::default() };
        t.set_file(vec![("*".into(), p(2)), ("resize_*".into(), p(3)), ("resize_png".into(), p(4))]);
        assert_eq!(t.for_function(&Bytes::from_static(b"resize_png")).map(|p| p.max_attempts), Some(4));
        assert_eq!(t.for_function(&Bytes::from_static(b"resize_jpg")).map(|p| p.max_attempts), Some(3));
        assert_eq!(t.for_function(&Bytes::from_static(b"mail")).map(|p| p.max_attempts), Some(2));
        t.set_runtime("resize_*".into(), p(9));
        assert_eq!(t.for_function(&Bytes::from_static(b"resize_jpg")).map(|p| p.max_attempts), Some(9));
        assert_eq!(t.entries().count(), 3);
        assert!(t.clear_runtime("resize_*"));
        assert_eq!(t.for_function(&Bytes::from_static(b"resize_jpg")).map(|p| p.max_attempts), Some(3));
        t.set_file(Vec::new());
        assert!(t.for_function(&Bytes::from_static(b"resize_jpg")).is_none());
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_its_fraction() {
        let b = Backoff::Exponential {
            base: Duration::from_secs(2),
            factor: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.2,
        };
        assert_eq!(b.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(8));
        assert_eq!(b.delay(30, 0.5), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(60));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(1600));
        assert!(b.delay(1, 0.999) < Duration::from_millis(2400));
        let fixed = Backoff::Fixed { delay: Duration::from_secs(30) };
        assert_eq!(fixed.delay(7, 0.9), Duration::from_secs(30));
    }

    #[test]
    fn bad_numbers_are_refused_with_a_reason() {
        let bad = FunctionPolicy { max_attempts: 0, ..Default::default() };
        assert!(bad.validate().unwrap_err().0.contains("max_attempts"));
        let bad = FunctionPolicy {
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                factor: 0.5,
                max: Duration::from_secs(2),
                jitter: 0.0,
            },
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().0.contains("factor"));
        assert!(FunctionPolicy::default().validate().is_ok());
    }
}
