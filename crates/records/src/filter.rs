//! Which ended records a search wants: the filter of admin `records`,
//! `sprocket.records`, `sprocket records` and the stores' searches.

use bytes::Bytes;
use serde::Deserialize;

use crate::state::RecordState;

/// Records a search returns when it names no limit.
pub const DEFAULT_SEARCH_LIMIT: usize = 100;
/// Most records one search returns.
pub const MAX_SEARCH_LIMIT: usize = 10_000;

/// What a search of ended records looks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Only records of this function.
    pub function: Option<Bytes>,
    /// Only records in this state.
    pub state: Option<RecordState>,
    /// Only records that ended at or after this time (Unix ms).
    pub since: Option<u64>,
    /// Only records that ended before this time (Unix ms).
    pub until: Option<u64>,
    /// At most this many records, newest end first.
    pub limit: usize,
}

impl RecordFilter {
    /// Whether an ended record matches (the in-memory searches, and a
    /// check for the others).
    pub fn matches(&self, function: &[u8], state: RecordState, finished: Option<u64>) -> bool {
        let Some(end) = finished else { return false };
        self.function.as_deref().is_none_or(|f| f == function)
            && self.state.is_none_or(|s| s == state)
            && self.since.is_none_or(|s| end >= s)
            && self.until.is_none_or(|u| end < u)
    }

    /// Reads the JSON form `sprocket.records` takes:
    /// `{"function": "...", "state": "failed", "since_ms": 0, "until_ms": 0,
    /// "limit": 100}`, every field optional; an empty payload is `{}`.
    /// Unknown fields are refused, so a misspelt filter is not silently
    /// ignored.
    pub fn from_json(payload: &[u8]) -> Result<RecordFilter, FilterError> {
        let payload = payload.trim_ascii();
        let wire: WireFilter = if payload.is_empty() {
            WireFilter::default()
        } else {
            serde_json::from_slice(payload).map_err(|e| FilterError(e.to_string()))?
        };
        let state = wire.state.as_deref().map(str::parse).transpose().map_err(|e| FilterError(format!("{e}")))?;
        let limit = match wire.limit {
            None => DEFAULT_SEARCH_LIMIT,
            Some(n) if n == 0 || n > MAX_SEARCH_LIMIT as u64 => {
                return Err(FilterError(format!("limit must be between 1 and {MAX_SEARCH_LIMIT}, not {n}")))
            }
            Some(n) => n as usize,
        };
        Ok(RecordFilter {
            function: wire.function.map(Bytes::from),
            state,
            since: wire.since_ms,
            until: wire.until_ms,
            limit,
        })
    }
}

/// A search filter that cannot be used; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad record filter: {0}")]
pub struct FilterError(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFilter {
    function: Option<String>,
    state: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    limit: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_filters_are_read_with_defaults_and_checked() {
        assert_eq!(RecordFilter::from_json(b"").unwrap(), RecordFilter { limit: 100, ..Default::default() });
        let f = RecordFilter::from_json(br#"{"function":"resize","state":"failed","since_ms":5,"limit":3}"#).unwrap();
        assert_eq!(f.function.as_deref(), Some(&b"resize"[..]));
        assert_eq!((f.state, f.since, f.until, f.limit), (Some(RecordState::Failed), Some(5), None, 3));
        for bad in [&br#"{"state":"lost"}"#[..], br#"{"limit":0}"#, br#"{"limit":10001}"#, br#"{"fn":"x"}"#, b"[1]"] {
            assert!(RecordFilter::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn matching_needs_an_end_in_the_window() {
        let f = RecordFilter {
            function: Some(Bytes::from_static(b"f")),
            since: Some(10),
            until: Some(20),
            ..Default::default()
        };
        assert!(f.matches(b"f", RecordState::Complete, Some(10)));
        assert!(!f.matches(b"f", RecordState::Complete, Some(20)));
        assert!(!f.matches(b"g", RecordState::Complete, Some(15)));
        assert!(!f.matches(b"f", RecordState::Complete, None));
    }
}
