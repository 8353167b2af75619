//! A job record as the store writes it: the record's stored form
//! (`sprocket_records::stored`) with the columns the store searches by,
//! taken out once when the operation is made.

use bytes::Bytes;
use sprocket_records::{Record, RecordState};

/// One job record to upsert, keyed by its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The job handle (`H:<host>:<n>`), ASCII so that operators can type
    /// it in SQL and every backend's text column holds it.
    pub handle: Bytes,
    /// The job's function.
    pub function: Bytes,
    /// The unique of the job's queue row as stored (generated for a job
    /// without a unique of its own); empty for a job that has no queue row
    /// (a foreground job). Replay finds a queued job's handle by
    /// (function, this).
    pub row_unique: Bytes,
    /// The record's state.
    pub state: RecordState,
    /// When the job was submitted (Unix milliseconds).
    pub submitted: u64,
    /// When the job ended (Unix milliseconds), once it has.
    pub finished: Option<u64>,
    /// `sprocket_records::stored::encode` of the record.
    pub body: Bytes,
}

/// Why a record cannot be made into a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordRowError {
    /// The handle is not ASCII (handles are `H:<host>:<n>` text).
    #[error("job handle {0:?} is not ASCII text")]
    HandleNotAscii(Bytes),
    /// A field too long for the stored form.
    #[error(transparent)]
    TooLong(#[from] sprocket_records::record::FieldTooLong),
}

impl RecordRow {
    /// The row of `record`, whose queue row (if any) has the unique
    /// `row_unique`.
    pub fn new(record: &Record, row_unique: &[u8]) -> Result<RecordRow, RecordRowError> {
        let handle = Bytes::copy_from_slice(record.handle());
        if !handle.is_ascii() {
            return Err(RecordRowError::HandleNotAscii(handle));
        }
        let body = sprocket_records::stored::encode(record)?;
        Ok(RecordRow {
            handle,
            function: Bytes::copy_from_slice(record.function()),
            row_unique: Bytes::copy_from_slice(row_unique),
            state: record.state(),
            submitted: record.submitted(),
            finished: record.finished(),
            body: Bytes::from(body),
        })
    }

    /// The handle as text (checked to be ASCII by [`RecordRow::new`]; a
    /// row built otherwise gets bytes that are not UTF-8 replaced).
    pub fn handle_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.handle)
    }

    /// The record, decoded from [`RecordRow::body`].
    pub fn record(&self) -> Result<Record, sprocket_records::stored::StoredError> {
        sprocket_records::stored::decode(&self.body)
    }
}

pub use sprocket_records::RecordFilter;

/// A queued job's handle, for replay: the queue row's key and the handle
/// its record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedHandle {
    /// The queue row's key.
    pub key: crate::JobKey,
    /// The handle the job had before the restart.
    pub handle: Bytes,
    /// Its record as last written (attempts, the one the restart
    /// interrupted, data so far); `None` when the row cannot be decoded,
    /// which is logged and replays the job with a new record.
    pub record: Option<Record>,
}

/// A queued job's record body, decoded; a body that does not decode is
/// logged (the job still replays, with a new record).
pub(crate) fn queued_record(handle: &[u8], body: &[u8]) -> Option<Record> {
    match sprocket_records::stored::decode(body) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(handle = %String::from_utf8_lossy(handle), error = %e, "a queued job's record cannot be read; it starts a new one");
            None
        }
    }
}

/// A time in Unix ms as a signed 64-bit SQL column (times past the year
/// 292 million are held at the largest).
pub(crate) fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A record read back from its stored form; a body that does not decode is
/// a corrupt row.
pub(crate) fn decode_body(body: &[u8]) -> crate::Result<Record> {
    sprocket_records::stored::decode(body).map_err(|e| crate::StoreError::Corrupt(format!("job record: {e}")))
}
