//! A job record. Kept compact: one allocation holds handle, unique and
//! data; rarely used fields live behind a box.

use bytes::{Bytes, BytesMut};
use sprocket_proto::Priority;

use crate::types::{ConnId, FnId, JobNo, GENERATED_UNIQUE_PREFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting in its function's queue.
    Queued,
    /// Not runnable before `when` (epoch or cron job).
    Scheduled,
    /// Assigned to a worker connection.
    Running(ConnId),
}

/// Fields most jobs never use.
#[derive(Debug, Clone, Default)]
pub struct JobExtra {
    /// Map/reduce reducer name.
    pub reducer: Bytes,
    /// The unique of a replayed row that neither is the job's own unique
    /// nor has the shape of a [`GeneratedKey`] (a gearmand row keyed `-`).
    pub store_unique: Option<Bytes>,
}

/// The store key of a job without a coalescing unique of its own:
/// `~sprocket:<instance hex>:<number>`. Kept as two numbers rather than as
/// text, because every durable job without a unique has one and the text
/// would cost an allocation per queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The server run that made the key.
    pub instance: u64,
    /// The job number in that run.
    pub no: u64,
}

impl GeneratedKey {
    pub fn to_bytes(self) -> Bytes {
        let mut key = BytesMut::with_capacity(GENERATED_UNIQUE_PREFIX.len() + 40);
        key.extend_from_slice(GENERATED_UNIQUE_PREFIX);
        key.extend_from_slice(format!("{:x}:{}", self.instance, self.no).as_bytes());
        key.freeze()
    }

    /// Reads a stored key back; `None` unless writing the result out gives
    /// exactly the same bytes (so the row's delete always matches it).
    pub fn parse(stored: &[u8]) -> Option<GeneratedKey> {
        let rest = std::str::from_utf8(stored.strip_prefix(GENERATED_UNIQUE_PREFIX)?).ok()?;
        let (instance, no) = rest.split_once(':')?;
        let key = GeneratedKey { instance: u64::from_str_radix(instance, 16).ok()?, no: no.parse().ok()? };
        (key.to_bytes().as_ref() == stored).then_some(key)
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub no: JobNo,
    /// Handle, unique and data back to back in one allocation.
    buf: Bytes,
    handle_len: u8,
    unique_len: u8,
    pub function: FnId,
    pub priority: Priority,
    pub background: bool,
    pub state: JobState,
    /// Unix seconds before which the job may not run; 0 = now.
    pub when: i64,
    /// Foreground connections attached to this job.
    pub clients: Vec<ConnId>,
    /// Attempts that ended without a result (worker lost, timeout).
    pub attempts: u32,
    pub numerator: u32,
    pub denominator: u32,
    /// Its row is in (or on its way to) the store and must be deleted
    /// when the job ends.
    pub persisted: bool,
    /// Sequence number of the store insert not yet durable; 0 when none.
    pub pending_seq: u64,
    /// Results go nowhere (all clients gone, or cancelled).
    pub ignore: bool,
    /// Increments per assignment, so a stale timeout is recognised.
    pub assignment: u32,
    /// Its store row is keyed by a generated key, not by its unique.
    pub generated_key: Option<GeneratedKey>,
    pub extra: Option<Box<JobExtra>>,
}

impl Job {
    /// Builds a job, copying handle, unique and data into one allocation so
    /// a long-lived job does not pin a connection's whole read buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        no: JobNo,
        prefix: &str,
        function: FnId,
        unique: &[u8],
        data: &[u8],
        priority: Priority,
        background: bool,
        when: i64,
    ) -> Job {
        let no_text = no.to_string();
        let handle_len = prefix.len() + 1 + no_text.len();
        let mut buf = BytesMut::with_capacity(handle_len + unique.len() + data.len());
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(b":");
        buf.extend_from_slice(no_text.as_bytes());
        buf.extend_from_slice(unique);
        buf.extend_from_slice(data);
        Job {
            no,
            buf: buf.freeze(),
            // Bounded by MAX_UNIQUE and a u64 handle number; checked by callers.
            handle_len: u8::try_from(handle_len).unwrap_or(u8::MAX),
            unique_len: u8::try_from(unique.len()).unwrap_or(u8::MAX),
            function,
            priority,
            background,
            state: JobState::Queued,
            when,
            clients: Vec::new(),
            attempts: 0,
            numerator: 0,
            denominator: 0,
            persisted: false,
            pending_seq: 0,
            ignore: false,
            assignment: 0,
            generated_key: None,
            extra: None,
        }
    }

    pub fn handle(&self) -> Bytes {
        self.buf.slice(..usize::from(self.handle_len))
    }

    pub fn unique(&self) -> Bytes {
        let start = usize::from(self.handle_len);
        self.buf.slice(start..start + usize::from(self.unique_len))
    }

    pub fn data(&self) -> Bytes {
        self.buf.slice(usize::from(self.handle_len) + usize::from(self.unique_len)..)
    }

    pub fn handle_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.handle_len)]
    }

    pub fn unique_bytes(&self) -> &[u8] {
        let start = usize::from(self.handle_len);
        &self.buf[start..start + usize::from(self.unique_len)]
    }

    pub fn data_bytes(&self) -> &[u8] {
        &self.buf[usize::from(self.handle_len) + usize::from(self.unique_len)..]
    }

    pub fn reducer(&self) -> &[u8] {
        self.extra.as_ref().map(|e| &e.reducer[..]).unwrap_or(b"")
    }

    /// The unique under which the job's row is stored.
    pub fn store_unique(&self) -> Bytes {
        if let Some(key) = self.generated_key {
            return key.to_bytes();
        }
        match self.extra.as_ref().and_then(|e| e.store_unique.clone()) {
            Some(u) => u,
            None => self.unique(),
        }
    }

    pub fn extra_mut(&mut self) -> &mut JobExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running(_))
    }
}

#[cfg(test)]
mod tests {
    use super::GeneratedKey;

    #[test]
    fn generated_keys_read_back_only_when_they_write_out_the_same() {
        let key = GeneratedKey { instance: 0x1a2b, no: 907 };
        assert_eq!(&key.to_bytes()[..], b"~sprocket:1a2b:907");
        assert_eq!(GeneratedKey::parse(b"~sprocket:1a2b:907"), Some(key));
        assert_eq!(GeneratedKey::parse(b"~sprocket:0:1"), Some(GeneratedKey { instance: 0, no: 1 }));
        for odd in [
            &b"~sprocket:01a2b:907"[..],
            b"~sprocket:1A2B:907",
            b"~sprocket:1a2b:0907",
            b"~sprocket:1a2b:+907",
            b"~sprocket:1a2b",
            b"~sprocket::907",
            b"~sprocket:1a2b:907:1",
            b"~sprocket:\xff:1",
            b"other:1a2b:907",
            b"~sprocket:ffffffffffffffffff:1",
        ] {
            assert_eq!(GeneratedKey::parse(odd), None, "{:?}", String::from_utf8_lossy(odd));
        }
    }
}
