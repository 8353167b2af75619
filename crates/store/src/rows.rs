//! Encoded rows shared by the SQL backends: the net effect of a batch with
//! names already in their stored form, owned so it can move to a blocking
//! thread or into query parameters.

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::netops::reduce;
use crate::{textkey, StoreOp, StoredJob, GENERATED_UNIQUE_PREFIX};

/// How a backend stores function names and uniques.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// Text columns: [`textkey`] escaping for bytes text cannot hold.
    Text,
    /// Binary columns (`VARBINARY`): raw bytes.
    Binary,
}

impl KeyForm {
    pub fn encode(self, name: &[u8]) -> Vec<u8> {
        match self {
            KeyForm::Text => textkey::encode(name).into_bytes(),
            KeyForm::Binary => name.to_vec(),
        }
    }

    pub fn decode(self, stored: &[u8]) -> Vec<u8> {
        match self {
            // Rows gearmand wrote are plain; rows we escaped carry the marker.
            KeyForm::Text => textkey::decode(stored),
            KeyForm::Binary => stored.to_vec(),
        }
    }
}

/// A row to write.
#[derive(Debug, Clone)]
pub struct EncodedRow {
    pub unique: Vec<u8>,
    pub function: Vec<u8>,
    pub priority: i32,
    pub data: Bytes,
    pub when: i64,
}

/// A key to delete.
#[derive(Debug, Clone)]
pub struct EncodedKey {
    pub unique: Vec<u8>,
    pub function: Vec<u8>,
}

/// The net effect of a batch, encoded.
#[derive(Debug, Clone, Default)]
pub struct EncodedBatch {
    pub upserts: Vec<EncodedRow>,
    pub deletes: Vec<EncodedKey>,
    /// Records, last of each handle; written as they are (their columns
    /// are binary, not gearmand's).
    pub records: Vec<crate::RecordRow>,
}

impl EncodedBatch {
    pub fn new(ops: &[StoreOp], form: KeyForm) -> EncodedBatch {
        let net = reduce(ops);
        EncodedBatch {
            upserts: net
                .upserts
                .into_iter()
                .map(|j| EncodedRow {
                    unique: form.encode(&j.unique),
                    function: form.encode(&j.function),
                    priority: i32::from(j.priority.code()),
                    data: j.data.clone(),
                    when: j.when,
                })
                .collect(),
            deletes: net
                .deletes
                .into_iter()
                .map(|k| EncodedKey { unique: form.encode(&k.unique), function: form.encode(&k.function) })
                .collect(),
            records: net.records.into_iter().cloned().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.records.is_empty()
    }
}

/// Builds a job from loosely typed column values, the way every backend's
/// replay does: NULL data is empty (gearmand's sqlite bug), NULL or unknown
/// priority is normal, NULL epoch is "now". A row without a function
/// (NULL) is `None`: no worker can ask for it (gearmand refuses such rows),
/// so it is left in the table and not replayed. A stored unique is read up to
/// its first NUL byte where gearmand cut it (see [`cut_unique`]); the
/// backends rewrite such rows before they read them, so this only matters
/// for a row written while the replay ran.
pub fn loaded_job(
    form: KeyForm,
    unique: Option<&[u8]>,
    function: Option<&[u8]>,
    priority: Option<i64>,
    data: Option<Bytes>,
    when: Option<i64>,
) -> Option<StoredJob> {
    Some(StoredJob {
        function: Bytes::from(form.decode(function?)),
        unique: Bytes::from(form.decode(unique.map(|u| cut_unique(form, u).unwrap_or(u)).unwrap_or_default())),
        priority: priority.map(Priority::from_code).unwrap_or(Priority::Normal),
        data: data.unwrap_or_default(),
        when: when.unwrap_or(0).max(0),
    })
}

/// The unique gearmand meant by a stored key holding a NUL byte: the bytes
/// before the first NUL; `None` when the key is not such a row.
///
/// gearmand 1.1.20 cuts a unique of 64 bytes to 63 and stores the C
/// string's terminating NUL with it (`UUU…U\0`); it reads the key back as a
/// C string, so for it the job's unique ends there. In a text column
/// sprocketd never stores a raw NUL (the escaping writes `%00`), so any raw
/// NUL there is foreign and ends the unique. A binary column holds names as
/// they are, and a unique given to the store with a NUL in it is stored so
/// (the wire protocol cannot carry one, but the store takes any bytes):
/// there only gearmand's exact shape counts, 64 bytes whose only NUL is
/// the last.
pub fn cut_unique(form: KeyForm, stored: &[u8]) -> Option<&[u8]> {
    let at = stored.iter().position(|b| *b == 0)?;
    match form {
        KeyForm::Text => Some(&stored[..at]),
        KeyForm::Binary => (stored.len() == GEARMAND_UNIQUE_FIELD && at == stored.len() - 1).then(|| &stored[..at]),
    }
}

/// Bytes gearmand 1.1.20 writes for a unique it cut: 63 and the NUL.
const GEARMAND_UNIQUE_FIELD: usize = 64;

/// The key a row with a cut unique (see [`cut_unique`]) must hold so that
/// the delete sprocketd writes when the job finishes matches it: the
/// encoding of the unique the job is replayed with. `None` when the row
/// needs no change.
pub fn repaired_unique(form: KeyForm, stored: &[u8]) -> Option<Vec<u8>> {
    cut_unique(form, stored).map(|cut| form.encode(&form.decode(cut)))
}

/// What a replay changed in the table before reading it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repairs {
    /// Rows whose unique held a NUL, rewritten to the unique before it.
    pub cut: u64,
    /// Such rows whose rewritten key already had a row, deleted instead.
    pub merged: u64,
    /// Rows with a NULL unique_key, given a key of their own (see
    /// [`NullKeys`]).
    pub null_keys: u64,
    /// Rows with a NULL function_name, left in the table and not replayed.
    pub skipped: u64,
}

impl Repairs {
    /// Logs what was changed, if anything.
    pub fn log(&self, store: &str) {
        if self.cut + self.merged > 0 {
            tracing::warn!(
                store,
                rewritten = self.cut,
                removed_duplicates = self.merged,
                "rows whose unique_key held a NUL byte (gearmand cuts a unique of 64 bytes or more and stores \
                 the NUL) now hold the unique before the NUL; a row whose shortened key already existed for \
                 its function was removed, as gearmand would have coalesced the two jobs"
            );
        }
        if self.null_keys > 0 {
            tracing::warn!(
                store,
                rows = self.null_keys,
                "rows with a NULL unique_key were given a generated key ({}null-…), so that each job runs \
                 as a job without a unique and its row is deleted when it finishes",
                String::from_utf8_lossy(GENERATED_UNIQUE_PREFIX)
            );
        }
        if self.skipped > 0 {
            tracing::warn!(
                store,
                rows = self.skipped,
                "rows with a NULL function_name are not replayed (no worker can ask for them) and stay in \
                 the table"
            );
        }
    }
}

/// Keys for rows whose unique_key is NULL. Such a row is replayed as a job
/// without a unique, but its delete must match the row, and `= ''` never
/// matches NULL: so it gets a key first. The key starts with
/// [`GENERATED_UNIQUE_PREFIX`], which replay turns into an empty unique
/// (a keyless background job, never coalescing) and whose row it deletes
/// by exactly that key; the `null-` part can never be one the engine
/// generates (`<hex>:<number>`), and the time of the repair keeps keys of
/// different runs apart.
#[derive(Debug)]
pub struct NullKeys {
    stamp: u128,
    next: u64,
}

impl NullKeys {
    pub fn new() -> NullKeys {
        // A clock before 1970 only makes the keys of runs less distinct.
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        NullKeys { stamp, next: 0 }
    }

    /// The next key, in stored form (plain ASCII, under 64 bytes).
    pub fn next_key(&mut self) -> Vec<u8> {
        self.next += 1;
        let mut key = GENERATED_UNIQUE_PREFIX.to_vec();
        key.extend_from_slice(format!("null-{:x}-{}", self.stamp, self.next).as_bytes());
        key
    }

    /// The text before the number, for a statement that numbers rows itself.
    pub fn prefix(&self) -> String {
        format!("{}null-{:x}-", String::from_utf8_lossy(GENERATED_UNIQUE_PREFIX), self.stamp)
    }
}

/// Parses a number stored as text (MySQL text protocol, Redis fields,
/// hand-edited rows); anything unparsable is `None`.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gearmands_cut_uniques_end_at_the_nul() {
        let mut cut = vec![b'U'; 63];
        cut.push(0);
        assert_eq!(cut_unique(KeyForm::Text, &cut), Some(&[b'U'; 63][..]));
        assert_eq!(cut_unique(KeyForm::Binary, &cut), Some(&[b'U'; 63][..]));
        assert_eq!(repaired_unique(KeyForm::Text, &cut), Some(vec![b'U'; 63]));
        // Any raw NUL in a text column is foreign; in a binary column only
        // gearmand's shape is, as sprocketd stores names there as they are.
        assert_eq!(cut_unique(KeyForm::Text, b"ab\0c"), Some(&b"ab"[..]));
        assert_eq!(cut_unique(KeyForm::Binary, b"ab\0c"), None);
        assert_eq!(cut_unique(KeyForm::Text, b"%~a%00b"), None);
        assert_eq!(repaired_unique(KeyForm::Text, b"plain"), None);
        let job = loaded_job(KeyForm::Text, Some(&cut), Some(b"f"), None, None, None);
        assert_eq!(job.map(|j| j.unique), Some(Bytes::copy_from_slice(&[b'U'; 63])));
    }

    #[test]
    fn null_keys_are_generated_and_distinct() {
        let mut keys = NullKeys::new();
        let (a, b) = (keys.next_key(), keys.next_key());
        assert_ne!(a, b);
        assert!(a.starts_with(GENERATED_UNIQUE_PREFIX) && a.len() < 64, "{a:?}");
        assert!(a.starts_with(keys.prefix().as_bytes()));
        assert_eq!(KeyForm::Text.encode(&a), a, "stored as it is");
        assert!(loaded_job(KeyForm::Text, None, None, None, None, None).is_none(), "no function, no job");
    }
}
