//! Packet numbers, magic and body layout (how many NUL-terminated fields,
//! and whether an opaque data blob follows).

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the fixed packet header: magic, type and body size.
pub const HEADER_LEN: usize = 12;

/// The four magic bytes that open a binary packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `\0REQ`: sent by clients and workers.
    Req,
    /// `\0RES`: sent by the server.
    Res,
}

impl Magic {
    /// The magic of requests.
    pub const REQ_BYTES: [u8; 4] = *b"\0REQ";
    /// The magic of responses.
    pub const RES_BYTES: [u8; 4] = *b"\0RES";

    /// The magic these four bytes spell, if any.
    pub fn from_bytes(b: &[u8]) -> Option<Magic> {
        match b {
            b"\0REQ" => Some(Magic::Req),
            b"\0RES" => Some(Magic::Res),
            _ => None,
        }
    }

    /// The four bytes of this magic.
    pub fn bytes(self) -> &'static [u8; 4] {
        match self {
            Magic::Req => &Self::REQ_BYTES,
            Magic::Res => &Self::RES_BYTES,
        }
    }
}

/// Job priority. Within one function, high jobs are handed out before
/// normal ones and normal before low (gearmand 1.1.x semantics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// SUBMIT_JOB_HIGH and its background variant.
    High = 0,
    /// SUBMIT_JOB and its background variant.
    #[default]
    Normal = 1,
    /// SUBMIT_JOB_LOW and its background variant.
    Low = 2,
}

impl Priority {
    /// Every priority, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The code used by gearmand's persistent queues (0, 1, 2).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Decodes a stored priority code; anything unknown is treated as normal.
    pub fn from_code(code: i64) -> Priority {
        match code {
            0 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Normal,
        }
    }

    /// 0 for high, 1 for normal, 2 for low: an index into per-priority
    /// arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

macro_rules! packet_types {
    ($( $name:ident = $code:literal, $text:literal, $argc:literal, $data:literal; )*) => {
        /// Every packet type of the Gearman binary protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum PacketType {
            $( #[doc = $text] $name = $code, )*
        }

        impl PacketType {
            /// Looks a type number up; `None` for 0, 5 (unused) and anything above 42.
            pub fn from_code(code: u32) -> Option<PacketType> {
                match code {
                    $( $code => Some(PacketType::$name), )*
                    _ => None,
                }
            }

            /// The protocol name, e.g. `WORK_COMPLETE`.
            pub fn name(self) -> &'static str {
                match self {
                    $( PacketType::$name => $text, )*
                }
            }

            /// Number of leading NUL-separated fields.
            pub fn argc(self) -> usize {
                match self {
                    $( PacketType::$name => $argc, )*
                }
            }

            /// Whether an opaque data blob follows the fields.
            pub fn has_data(self) -> bool {
                match self {
                    $( PacketType::$name => $data, )*
                }
            }
        }
    };
}

packet_types! {
    CanDo = 1, "CAN_DO", 1, false;
    CantDo = 2, "CANT_DO", 1, false;
    ResetAbilities = 3, "RESET_ABILITIES", 0, false;
    PreSleep = 4, "PRE_SLEEP", 0, false;
    Noop = 6, "NOOP", 0, false;
    SubmitJob = 7, "SUBMIT_JOB", 2, true;
    JobCreated = 8, "JOB_CREATED", 1, false;
    GrabJob = 9, "GRAB_JOB", 0, false;
    NoJob = 10, "NO_JOB", 0, false;
    JobAssign = 11, "JOB_ASSIGN", 2, true;
    WorkStatus = 12, "WORK_STATUS", 3, false;
    WorkComplete = 13, "WORK_COMPLETE", 1, true;
    WorkFail = 14, "WORK_FAIL", 1, false;
    GetStatus = 15, "GET_STATUS", 1, false;
    EchoReq = 16, "ECHO_REQ", 0, true;
    EchoRes = 17, "ECHO_RES", 0, true;
    SubmitJobBg = 18, "SUBMIT_JOB_BG", 2, true;
    Error = 19, "ERROR", 2, false;
    StatusRes = 20, "STATUS_RES", 5, false;
    SubmitJobHigh = 21, "SUBMIT_JOB_HIGH", 2, true;
    SetClientId = 22, "SET_CLIENT_ID", 1, false;
    CanDoTimeout = 23, "CAN_DO_TIMEOUT", 2, false;
    AllYours = 24, "ALL_YOURS", 0, false;
    WorkException = 25, "WORK_EXCEPTION", 1, true;
    OptionReq = 26, "OPTION_REQ", 1, false;
    OptionRes = 27, "OPTION_RES", 1, false;
    WorkData = 28, "WORK_DATA", 1, true;
    WorkWarning = 29, "WORK_WARNING", 1, true;
    GrabJobUniq = 30, "GRAB_JOB_UNIQ", 0, false;
    JobAssignUniq = 31, "JOB_ASSIGN_UNIQ", 3, true;
    SubmitJobHighBg = 32, "SUBMIT_JOB_HIGH_BG", 2, true;
    SubmitJobLow = 33, "SUBMIT_JOB_LOW", 2, true;
    SubmitJobLowBg = 34, "SUBMIT_JOB_LOW_BG", 2, true;
    SubmitJobSched = 35, "SUBMIT_JOB_SCHED", 7, true;
    SubmitJobEpoch = 36, "SUBMIT_JOB_EPOCH", 3, true;
    SubmitReduceJob = 37, "SUBMIT_REDUCE_JOB", 4, true;
    SubmitReduceJobBackground = 38, "SUBMIT_REDUCE_JOB_BACKGROUND", 4, true;
    GrabJobAll = 39, "GRAB_JOB_ALL", 0, false;
    JobAssignAll = 40, "JOB_ASSIGN_ALL", 4, true;
    GetStatusUnique = 41, "GET_STATUS_UNIQUE", 1, false;
    StatusResUnique = 42, "STATUS_RES_UNIQUE", 6, false;
}

impl PacketType {
    /// The type's number on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Why a body could not be split into the fields its type requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSeparator;

/// Most leading fields any packet type has (SUBMIT_JOB_SCHED has seven).
pub const MAX_FIELDS: usize = 7;

/// The leading fields of a body, held inline so splitting never allocates.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    items: [Bytes; MAX_FIELDS],
    len: usize,
    next: usize,
}

impl Fields {
    fn push(&mut self, b: Bytes) {
        if self.len < MAX_FIELDS {
            self.items[self.len] = b;
            self.len += 1;
        }
    }

    /// How many fields were split off.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No field was split off.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the next field in order; an empty value once all are taken.
    pub fn take(&mut self) -> Bytes {
        if self.next < self.len {
            self.next += 1;
            std::mem::take(&mut self.items[self.next - 1])
        } else {
            Bytes::new()
        }
    }

    /// The fields split off, in order.
    pub fn as_slice(&self) -> &[Bytes] {
        &self.items[..self.len]
    }
}

/// Splits a body into its fields by the type's layout, without copying.
///
/// With data: each of the `argc` fields must end in NUL; everything after
/// is the data (may contain NULs). Without data: the first `argc - 1`
/// fields end in NUL and the last field is the rest of the body.
///
/// `lenient_last` accepts a data packet whose final field is missing its
/// NUL (the whole remainder then is that field and the data is empty).
/// Perl's Gearman::Worker sends `WORK_COMPLETE handle` that way for a
/// false result.
pub fn split_body(kind: PacketType, body: &Bytes, lenient_last: bool) -> Result<(Fields, Bytes), MissingSeparator> {
    let argc = kind.argc();
    let mut fields = Fields::default();
    let mut rest = body.clone();
    let terminated = if kind.has_data() { argc } else { argc.saturating_sub(1) };
    for i in 0..terminated {
        match rest.iter().position(|&b| b == 0) {
            Some(pos) => {
                let field = rest.split_to(pos);
                let _ = rest.split_to(1);
                fields.push(field);
            }
            None if lenient_last && kind.has_data() && i + 1 == terminated => {
                fields.push(std::mem::take(&mut rest));
                return Ok((fields, Bytes::new()));
            }
            None => return Err(MissingSeparator),
        }
    }
    if kind.has_data() {
        Ok((fields, rest))
    } else {
        if argc > 0 {
            fields.push(rest);
        }
        Ok((fields, Bytes::new()))
    }
}

/// Writes one packet: header, then the fields joined by NUL, then the data.
/// For types without data the last field is written unterminated.
pub fn write_packet(buf: &mut BytesMut, magic: Magic, kind: PacketType, fields: &[&[u8]], data: &[u8]) {
    let mut size = data.len();
    for f in fields {
        size += f.len();
    }
    let separators = if kind.has_data() { fields.len() } else { fields.len().saturating_sub(1) };
    size += separators;
    buf.reserve(HEADER_LEN + size);
    buf.put_slice(magic.bytes());
    buf.put_u32(kind.code());
    // Sizes beyond u32 cannot be framed; callers bound payloads well below.
    buf.put_u32(u32::try_from(size).unwrap_or(u32::MAX));
    for (i, f) in fields.iter().enumerate() {
        buf.put_slice(f);
        if i < separators {
            buf.put_u8(0);
        }
    }
    buf.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_gaps_are_unknown() {
        for code in 0..=50u32 {
            match PacketType::from_code(code) {
                Some(t) => assert_eq!(t.code(), code),
                None => assert!(code == 0 || code == 5 || code > 42, "code {code}"),
            }
        }
    }

    #[test]
    fn split_without_data_keeps_trailing_nul_in_last_field() {
        let body = Bytes::from_static(b"fn\0");
        let (fields, _) = split_body(PacketType::CanDo, &body, false).unwrap();
        assert_eq!(fields.as_slice(), &[Bytes::from_static(b"fn\0")]);
    }

    #[test]
    fn split_with_data_allows_nuls_in_data() {
        let body = Bytes::from_static(b"f\0u\0a\0b");
        let (fields, data) = split_body(PacketType::SubmitJob, &body, false).unwrap();
        assert_eq!(fields.as_slice(), &[Bytes::from_static(b"f"), Bytes::from_static(b"u")]);
        assert_eq!(data, Bytes::from_static(b"a\0b"));
    }

    #[test]
    fn split_reports_missing_separator() {
        let body = Bytes::from_static(b"f-no-nul");
        assert!(split_body(PacketType::SubmitJob, &body, false).is_err());
    }

    #[test]
    fn lenient_split_takes_handle_alone() {
        let body = Bytes::from_static(b"H:x:1");
        let (fields, data) = split_body(PacketType::WorkComplete, &body, true).unwrap();
        assert_eq!(fields.as_slice(), &[Bytes::from_static(b"H:x:1")]);
        assert!(data.is_empty());
    }
}
