//! Encoded rows shared by the SQL backends: the net effect of a batch with
//! names already in their stored form, owned so it can move to a blocking
//! thread or into query parameters.

use bytes::Bytes;
use sprocket_proto::Priority;

use crate::netops::reduce;
use crate::{textkey, StoreOp, StoredJob};

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
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// Builds a job from loosely typed column values, the way every backend's
/// replay does: NULL data is empty (gearmand's sqlite bug), NULL or unknown
/// priority is normal, NULL epoch is "now".
pub fn loaded_job(
    form: KeyForm,
    unique: Option<&[u8]>,
    function: Option<&[u8]>,
    priority: Option<i64>,
    data: Option<Bytes>,
    when: Option<i64>,
) -> StoredJob {
    StoredJob {
        function: Bytes::from(form.decode(function.unwrap_or_default())),
        unique: Bytes::from(form.decode(unique.unwrap_or_default())),
        priority: priority.map(Priority::from_code).unwrap_or(Priority::Normal),
        data: data.unwrap_or_default(),
        when: when.unwrap_or(0).max(0),
    }
}

/// Parses a number stored as text (MySQL text protocol, Redis fields,
/// hand-edited rows); anything unparsable is `None`.
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}
