//! Operators' policies at run time: listing, setting and clearing them
//! (admin `policy`, `policy set PATTERN JSON`, `policy clear PATTERN`),
//! kept in the store's settings so they outlive a restart, and given back
//! at start-up.

use bytes::Bytes;

use crate::engine::Engine;
use crate::policy::{PolicyError, PolicySpec};
use crate::types::*;

/// Longest pattern accepted (a function name is at most a packet long,
/// but a pattern is typed by an operator and kept in the store's settings).
pub const MAX_PATTERN: usize = 512;

fn check_pattern(pattern: &str) -> Result<(), PolicyError> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN || pattern.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(PolicyError(format!(
            "a pattern is a function name or glob of 1 to {MAX_PATTERN} bytes without spaces"
        )));
    }
    Ok(())
}

impl Engine {
    /// Gives back an operator's policy the store kept, at start-up.
    pub fn restore_policy(&mut self, pattern: &str, value: &str) -> Result<(), PolicyError> {
        check_pattern(pattern)?;
        let policy = PolicySpec::from_json(value.as_bytes())?.to_policy()?;
        self.policies.set_runtime(pattern.to_owned(), policy);
        Ok(())
    }

    /// Sets an operator's policy for `pattern` at once, over the policy
    /// file's for the same pattern. Returns the id of the store write that
    /// keeps it (`None` when settings are not kept in the store).
    pub fn set_policy(&mut self, pattern: &str, spec: &PolicySpec) -> Result<Option<u64>, PolicyError> {
        check_pattern(pattern)?;
        let policy = spec.to_policy()?;
        let value = PolicySpec::of(&policy).to_json();
        self.policies.set_runtime(pattern.to_owned(), policy);
        tracing::info!(pattern, policy = %value, "policy set by an operator");
        Ok(self.write_policy_setting(pattern, Some(value)))
    }

    /// Removes an operator's policy for `pattern` (the policy file's for
    /// the same pattern, if any, applies again).
    pub fn clear_policy(&mut self, pattern: &str) -> Result<Option<u64>, PolicyError> {
        if !self.policies.clear_runtime(pattern) {
            return Err(PolicyError(format!("no policy was set at run time for {pattern:?}")));
        }
        tracing::info!(pattern, "policy cleared by an operator");
        Ok(self.write_policy_setting(pattern, None))
    }

    fn write_policy_setting(&mut self, pattern: &str, value: Option<String>) -> Option<u64> {
        if !self.config.settings_durable {
            return None;
        }
        let id = self.pending_reads.number();
        self.out.setting_writes.push(SettingWrite {
            id,
            kind: POLICY_SETTING,
            name: Bytes::copy_from_slice(pattern.as_bytes()),
            value,
        });
        Some(id)
    }

    /// Admin `policy`: one line per policy in force, `pattern TAB source
    /// TAB policy-JSON` (every field written out), then `.`.
    pub(crate) fn admin_policy_list(&mut self, conn: ConnId) {
        let mut out = String::new();
        for entry in self.policies.entries() {
            let json = PolicySpec::of(&entry.policy).to_json();
            out.push_str(&format!("{}\t{}\t{json}\n", entry.pattern, entry.source.as_str()));
        }
        out.push_str(".\n");
        self.send(conn, Out::Text(Bytes::from(out)));
    }

    /// Admin `policy set PATTERN JSON` and `policy clear PATTERN`: `OK`
    /// once the change is durable.
    pub(crate) fn admin_policy_change(&mut self, conn: ConnId, pattern: &[u8], json: Option<&[u8]>) {
        let result = match std::str::from_utf8(pattern) {
            Err(_) => Err(PolicyError("a pattern must be UTF-8 text".into())),
            Ok(pattern) => match json {
                Some(json) => PolicySpec::from_json(json).and_then(|spec| self.set_policy(pattern, &spec)),
                None => self.clear_policy(pattern),
            },
        };
        let change = if json.is_some() { "policy set" } else { "policy cleared" };
        match result {
            Ok(Some(id)) => self.answer_when_saved(conn, id, change),
            Ok(None) => self.send(conn, Out::Text(Bytes::from_static(sprocket_proto::admin::OK))),
            Err(e) => {
                let code = if json.is_some() { "BAD_POLICY" } else { "NO_SUCH_POLICY" };
                let line = format!("ERR {code} {}\r\n", e.0.replace([' ', '\r', '\n'], "+"));
                self.send(conn, Out::Text(Bytes::from(line)));
            }
        }
    }
}
