//! What defines a recurring job: the fields of a `[[cron]]` table in the
//! policy file and of `cron add`'s JSON, each checked as it is read, so a
//! TOML or JSON reader reports a bad value with its position.

use std::fmt;

use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sprocket_proto::Priority;

use super::schedule::Schedule;

/// Longest entry name: the job's unique `cron:<name>:manual:<ms>` must
/// stay within Gearman's 64 bytes.
pub const MAX_NAME: usize = 32;

/// Longest function name an entry may submit to.
pub const MAX_FUNCTION: usize = 255;

/// One recurring job's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronSpec {
    /// Names the entry; part of each job's unique.
    pub name: CronName,
    /// When it runs.
    pub schedule: Schedule,
    /// The time zone its schedule is read in (default UTC).
    #[serde(default)]
    pub timezone: Zone,
    /// The function each run submits a background job to.
    pub function: FunctionName,
    /// The job's data.
    #[serde(default)]
    pub payload: String,
    /// The job's priority (default normal).
    #[serde(default)]
    pub priority: CronPriority,
    /// What happens to runs missed while the server was down (default
    /// none).
    #[serde(default)]
    pub catch_up: CatchUp,
}

impl CronSpec {
    /// The spec as one line of JSON (as `cron add` takes it and the store
    /// keeps it).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a spec from JSON; the error says what is wrong, and where.
    pub fn from_json(text: &str) -> Result<CronSpec, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// Implements Serialize as text and Deserialize through `parse`.
macro_rules! text_value {
    ($ty:ty, $parse:expr, $show:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$ty) -> &str = $show;
                s.serialize_str(show(self))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(d)?;
                #[allow(clippy::redundant_closure_call)]
                ($parse)(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_value!(Schedule, |t: &str| Schedule::parse(t).map_err(|e| format!("schedule {t:?}: {e}")), |s: &Schedule| s
    .as_str());
text_value!(CronName, CronName::new, |n: &CronName| n.as_str());
text_value!(Zone, Zone::new, |z: &Zone| z.name());
text_value!(FunctionName, FunctionName::new, |f: &FunctionName| f.as_str());

/// An entry's name: 1 to [`MAX_NAME`] letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CronName(String);

impl CronName {
    /// Checks a name.
    pub fn new(text: &str) -> Result<CronName, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if text.is_empty() || text.len() > MAX_NAME || !text.chars().all(ok_char) {
            return Err(format!(
                "name {text:?}: 1 to {MAX_NAME} letters, digits, '.', '_' or '-' (it becomes part of each job's unique)"
            ));
        }
        Ok(CronName(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CronName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function name an entry submits to: not empty, at most
/// [`MAX_FUNCTION`] bytes, no spaces or control characters (it is shown
/// on one admin line), and not one of the server's own `sprocket.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionName(String);

impl FunctionName {
    /// Checks a function name.
    pub fn new(text: &str) -> Result<FunctionName, String> {
        if text.is_empty() || text.len() > MAX_FUNCTION || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("function {text:?}: 1 to {MAX_FUNCTION} bytes without spaces or control characters"));
        }
        if text.starts_with("sprocket.") {
            return Err(format!("function {text:?}: sprocket.* functions are the server's own"));
        }
        Ok(FunctionName(text.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone (`Europe/Berlin`), from the system's time zone
/// database or, where it has none, the copy built into the binary.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Looks a zone up by its IANA name (`UTC` too).
    pub fn new(name: &str) -> Result<Zone, String> {
        let tz = if name == "UTC" {
            TimeZone::UTC
        } else {
            TimeZone::get(name).map_err(|e| format!("timezone {name:?} is not a known IANA time zone: {e}"))?
        };
        Ok(Zone { name: name.to_owned(), tz })
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's rules.
    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone { name: "UTC".into(), tz: TimeZone::UTC }
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

/// A run's job priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CronPriority {
    /// SUBMIT_JOB_HIGH_BG.
    High,
    /// SUBMIT_JOB_BG.
    #[default]
    Normal,
    /// SUBMIT_JOB_LOW_BG.
    Low,
}

impl CronPriority {
    /// The protocol's priority.
    pub fn priority(self) -> Priority {
        match self {
            CronPriority::High => Priority::High,
            CronPriority::Normal => Priority::Normal,
            CronPriority::Low => Priority::Low,
        }
    }

    /// `high`, `normal` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            CronPriority::High => "high",
            CronPriority::Normal => "normal",
            CronPriority::Low => "low",
        }
    }
}

/// What becomes of runs missed while the server was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Missed runs are skipped; the next is the next on the schedule.
    #[default]
    None,
    /// One run, for the most recent missed time.
    Last,
    /// One run per missed time, oldest first, at most
    /// [`super::MAX_CATCH_UP`] (the most recent ones).
    All,
}

impl CatchUp {
    /// `none`, `last` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::None => "none",
            CatchUp::Last => "last",
            CatchUp::All => "all",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_with_defaults() {
        let spec = CronSpec::from_json(r#"{"name":"n1","schedule":"@daily","function":"report"}"#).unwrap();
        assert_eq!(spec.timezone.name(), "UTC");
        assert_eq!(spec.priority, CronPriority::Normal);
        assert_eq!(spec.catch_up, CatchUp::None);
        assert_eq!(spec.payload, "");
        let back = CronSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bad_values_are_named() {
        for (json, says) in [
            (r#"{"name":"a b","schedule":"@daily","function":"f"}"#, "name"),
            (r#"{"name":"a","schedule":"61 * * * *","function":"f"}"#, "minute"),
            (r#"{"name":"a","schedule":"@daily","function":"f","timezone":"Mars/Olympus"}"#, "Mars/Olympus"),
            (r#"{"name":"a","schedule":"@daily","function":"f","priority":"urgent"}"#, "urgent"),
            (r#"{"name":"a","schedule":"@daily","function":"f","catch_up":"some"}"#, "some"),
            (r#"{"name":"a","schedule":"@daily","function":"f","color":"red"}"#, "color"),
            (r#"{"name":"a","schedule":"@daily"}"#, "function"),
            (r#"{"name":"a","schedule":"@daily","function":"sprocket.result"}"#, "server's own"),
        ] {
            let e = CronSpec::from_json(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }
}
