//! Streaming frame decoder for a connection that mixes binary packets and
//! admin text lines (decided per frame by the first byte, as gearmand does).

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use crate::packet::{Magic, PacketType, HEADER_LEN};

/// Default largest body accepted: 64 MiB. gearmand has no cap on the data
/// part; we keep one so a bad size field cannot make us allocate gigabytes.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 64 * 1024 * 1024;

/// Packets that carry a job's data along with the job handle the server
/// added (a worker's results, a job's assignment) may be this much larger
/// than the packet limit: a job whose submission was just within the limit
/// must still be assignable and its same-sized result returnable, or a
/// worker echoing it would be cut off and the job handed out for ever.
pub const HANDLE_ALLOWANCE: u32 = 1024;

/// Whether `kind` is a packet whose limit gets [`HANDLE_ALLOWANCE`].
fn carries_handle_and_data(kind: PacketType) -> bool {
    matches!(
        kind,
        PacketType::WorkComplete
            | PacketType::WorkData
            | PacketType::WorkWarning
            | PacketType::WorkException
            | PacketType::JobAssign
            | PacketType::JobAssignUniq
            | PacketType::JobAssignAll
    )
}

/// Longest admin text line (gearmand's receive buffer is 8 KiB).
pub const MAX_TEXT_LINE: usize = 8192;

/// One complete unit read from a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A binary packet with a known type.
    Packet {
        /// `\0REQ` or `\0RES`.
        magic: Magic,
        /// The packet's type.
        kind: PacketType,
        /// The body after the 12-byte header.
        body: Bytes,
    },
    /// An admin text line, without its LF and without one CR before it.
    Text(Bytes),
}

/// What went wrong while framing. `recoverable()` says whether the stream
/// is still in sync (the offending bytes were consumed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The first four bytes are neither `\0REQ` nor `\0RES`.
    #[error("bad magic {0:02x?}: expected \\0REQ or \\0RES")]
    BadMagic([u8; 4]),
    /// The type number names no packet type.
    #[error("unknown packet type {0}")]
    UnknownType(u32),
    /// The body is larger than the decoder accepts.
    #[error("packet body of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The size the header announced.
        size: u32,
        /// The decoder's limit.
        max: u32,
    },
    /// An admin line runs past the longest accepted without a line end.
    #[error("admin text line longer than {0} bytes")]
    LineTooLong(usize),
}

impl DecodeError {
    /// True when the decoder skipped exactly the bad frame and can go on.
    pub fn recoverable(&self) -> bool {
        matches!(self, DecodeError::UnknownType(_))
    }
}

/// Incremental decoder. Feed bytes into a `BytesMut` and call
/// [`Decoder::decode`] until it returns `Ok(None)` (needs more bytes).
#[derive(Debug, Clone)]
pub struct Decoder {
    max_packet_size: u32,
    /// Remaining body bytes of an unknown-type packet still to be skipped.
    skipping: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_PACKET_SIZE)
    }
}

impl Decoder {
    /// A decoder that refuses bodies over `max_packet_size` bytes.
    pub fn new(max_packet_size: u32) -> Decoder {
        Decoder { max_packet_size, skipping: 0 }
    }

    /// The largest body accepted, in bytes.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Takes one frame off the front of `buf`, or returns `Ok(None)` when
    /// more bytes are needed. Never panics, whatever the input.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.skipping > 0 {
            let n = self.skipping.min(buf.len());
            buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first != 0 {
            return self.decode_text(buf);
        }
        if buf.len() < HEADER_LEN {
            // Reject a bad magic as soon as its bytes are here, so garbage
            // that starts with NUL cannot stall the connection.
            let have = buf.len().min(4);
            if buf[..have] != Magic::REQ_BYTES[..have] && buf[..have] != Magic::RES_BYTES[..have] {
                let mut m = [0u8; 4];
                m[..have].copy_from_slice(&buf[..have]);
                return Err(DecodeError::BadMagic(m));
            }
            return Ok(None);
        }
        let magic_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
        let Some(magic) = Magic::from_bytes(&magic_bytes) else {
            return Err(DecodeError::BadMagic(magic_bytes));
        };
        let code = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let size = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let kind = PacketType::from_code(code);
        let limit = match kind {
            Some(kind) if carries_handle_and_data(kind) => self.max_packet_size.saturating_add(HANDLE_ALLOWANCE),
            _ => self.max_packet_size,
        };
        if size > limit {
            return Err(DecodeError::TooLarge { size, max: limit });
        }
        let Some(kind) = kind else {
            buf.advance(HEADER_LEN);
            let skip = size as usize;
            let n = skip.min(buf.len());
            buf.advance(n);
            self.skipping = skip - n;
            return Err(DecodeError::UnknownType(code));
        };
        let total = HEADER_LEN + size as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let body = buf.split_to(size as usize).freeze();
        Ok(Some(Frame::Packet { magic, kind, body }))
    }

    fn decode_text(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        match buf.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                if pos > MAX_TEXT_LINE {
                    return Err(DecodeError::LineTooLong(MAX_TEXT_LINE));
                }
                let mut line = buf.split_to(pos + 1);
                line.truncate(pos);
                if line.last() == Some(&b'\r') {
                    line.truncate(pos - 1);
                }
                Ok(Some(Frame::Text(line.freeze())))
            }
            None if buf.len() > MAX_TEXT_LINE => Err(DecodeError::LineTooLong(MAX_TEXT_LINE)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(code: u32, body: &[u8]) -> Vec<u8> {
        let mut v = b"\0REQ".to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn decodes_a_packet_split_across_reads() {
        let bytes = packet(16, b"hello");
        let mut dec = Decoder::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = dec.decode(&mut buf).unwrap();
            if i + 1 < bytes.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(
                    got,
                    Some(Frame::Packet {
                        magic: Magic::Req,
                        kind: PacketType::EchoReq,
                        body: Bytes::from_static(b"hello")
                    })
                );
            }
        }
    }

    #[test]
    fn text_and_binary_interleave() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"status\r\n");
        buf.extend_from_slice(&packet(16, b""));
        buf.extend_from_slice(b"workers\n");
        let mut dec = Decoder::default();
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Frame::Text(Bytes::from_static(b"status"))));
        assert!(matches!(dec.decode(&mut buf).unwrap(), Some(Frame::Packet { kind: PacketType::EchoReq, .. })));
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Frame::Text(Bytes::from_static(b"workers"))));
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn rejects_bad_magic_early() {
        let mut buf = BytesMut::from(&b"\0XY"[..]);
        assert!(matches!(Decoder::default().decode(&mut buf), Err(DecodeError::BadMagic(_))));
    }

    #[test]
    fn rejects_huge_size_without_allocating() {
        let mut v = b"\0REQ".to_vec();
        v.extend_from_slice(&7u32.to_be_bytes());
        v.extend_from_slice(&0x8000_0000u32.to_be_bytes());
        let mut buf = BytesMut::from(&v[..]);
        let err = Decoder::new(1024).decode(&mut buf).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { size: 0x8000_0000, max: 1024 });
        assert!(!err.recoverable());
    }

    #[test]
    fn results_and_assignments_may_exceed_the_limit_by_a_handle() {
        let header = |code: u32, size: u32| {
            let mut v = b"\0REQ".to_vec();
            v.extend_from_slice(&code.to_be_bytes());
            v.extend_from_slice(&size.to_be_bytes());
            BytesMut::from(&v[..])
        };
        // WORK_COMPLETE (13) with a body just over the limit waits for its body.
        let mut buf = header(13, 1024 + HANDLE_ALLOWANCE);
        assert!(matches!(Decoder::new(1024).decode(&mut buf), Ok(None)));
        let mut buf = header(13, 1024 + HANDLE_ALLOWANCE + 1);
        assert!(matches!(Decoder::new(1024).decode(&mut buf), Err(DecodeError::TooLarge { .. })));
        // A submission (SUBMIT_JOB, 7) gets no allowance.
        let mut buf = header(7, 1025);
        assert!(matches!(Decoder::new(1024).decode(&mut buf), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn unknown_type_is_skipped_and_stream_stays_in_sync() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&packet(99, b"junkjunk"));
        buf.extend_from_slice(&packet(16, b"ok"));
        let mut dec = Decoder::default();
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(err, DecodeError::UnknownType(99));
        assert!(err.recoverable());
        assert!(matches!(dec.decode(&mut buf).unwrap(), Some(Frame::Packet { kind: PacketType::EchoReq, .. })));
    }

    #[test]
    fn unknown_type_body_split_across_reads_is_skipped() {
        let bytes = packet(77, &[1u8; 40]);
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&bytes[..20]);
        assert!(dec.decode(&mut buf).is_err());
        buf.extend_from_slice(&bytes[20..]);
        buf.extend_from_slice(&packet(9, b""));
        assert!(matches!(dec.decode(&mut buf).unwrap(), Some(Frame::Packet { kind: PacketType::GrabJob, .. })));
    }

    #[test]
    fn overlong_text_line_is_an_error() {
        let mut buf = BytesMut::from(&vec![b'a'; MAX_TEXT_LINE + 10][..]);
        assert_eq!(Decoder::default().decode(&mut buf), Err(DecodeError::LineTooLong(MAX_TEXT_LINE)));
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut dec = Decoder::new(4096);
            let mut buf = BytesMut::new();
            for c in chunks {
                buf.extend_from_slice(&c);
                loop {
                    match dec.decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) if e.recoverable() => continue,
                        Err(_) => { buf.clear(); break; }
                    }
                }
            }
        }

        #[test]
        fn any_known_packet_round_trips_through_the_decoder(code in 1u32..=42, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assume!(code != 5);
            let bytes = packet(code, &body);
            let mut buf = BytesMut::from(&bytes[..]);
            let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
            match frame {
                Frame::Packet { magic, kind, body: got } => {
                    prop_assert_eq!(magic, Magic::Req);
                    prop_assert_eq!(kind.code(), code);
                    prop_assert_eq!(&got[..], &body[..]);
                }
                Frame::Text(_) => prop_assert!(false, "binary packet decoded as text"),
            }
            prop_assert!(buf.is_empty());
        }
    }
}
