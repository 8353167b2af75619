//! Raw Gearman framing over a blocking socket, written independently of
//! `sprocket-proto` so tests check the server against the reference
//! bytes rather than against our own codec.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// `\0REQ`
pub const REQ: [u8; 4] = *b"\0REQ";
/// `\0RES`
pub const RES: [u8; 4] = *b"\0RES";

/// Packet type numbers from the Gearman protocol (reference §1.3).
pub mod kind {
    pub const CAN_DO: u32 = 1;
    pub const CANT_DO: u32 = 2;
    pub const RESET_ABILITIES: u32 = 3;
    pub const PRE_SLEEP: u32 = 4;
    pub const NOOP: u32 = 6;
    pub const SUBMIT_JOB: u32 = 7;
    pub const JOB_CREATED: u32 = 8;
    pub const GRAB_JOB: u32 = 9;
    pub const NO_JOB: u32 = 10;
    pub const JOB_ASSIGN: u32 = 11;
    pub const WORK_STATUS: u32 = 12;
    pub const WORK_COMPLETE: u32 = 13;
    pub const WORK_FAIL: u32 = 14;
    pub const GET_STATUS: u32 = 15;
    pub const ECHO_REQ: u32 = 16;
    pub const ECHO_RES: u32 = 17;
    pub const SUBMIT_JOB_BG: u32 = 18;
    pub const ERROR: u32 = 19;
    pub const STATUS_RES: u32 = 20;
    pub const SUBMIT_JOB_HIGH: u32 = 21;
    pub const SET_CLIENT_ID: u32 = 22;
    pub const CAN_DO_TIMEOUT: u32 = 23;
    pub const ALL_YOURS: u32 = 24;
    pub const WORK_EXCEPTION: u32 = 25;
    pub const OPTION_REQ: u32 = 26;
    pub const OPTION_RES: u32 = 27;
    pub const WORK_DATA: u32 = 28;
    pub const WORK_WARNING: u32 = 29;
    pub const GRAB_JOB_UNIQ: u32 = 30;
    pub const JOB_ASSIGN_UNIQ: u32 = 31;
    pub const SUBMIT_JOB_HIGH_BG: u32 = 32;
    pub const SUBMIT_JOB_LOW: u32 = 33;
    pub const SUBMIT_JOB_LOW_BG: u32 = 34;
    pub const SUBMIT_JOB_SCHED: u32 = 35;
    pub const SUBMIT_JOB_EPOCH: u32 = 36;
    pub const SUBMIT_REDUCE_JOB: u32 = 37;
    pub const SUBMIT_REDUCE_JOB_BACKGROUND: u32 = 38;
    pub const GRAB_JOB_ALL: u32 = 39;
    pub const JOB_ASSIGN_ALL: u32 = 40;
    pub const GET_STATUS_UNIQUE: u32 = 41;
    pub const STATUS_RES_UNIQUE: u32 = 42;
}

/// Encodes a packet: the arguments are joined with NUL (the last one has no
/// terminator).
pub fn packet(magic: [u8; 4], kind: u32, args: &[&[u8]]) -> Vec<u8> {
    let body = args.join(&0u8);
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A request packet (`\0REQ`).
pub fn req(kind: u32, args: &[&[u8]]) -> Vec<u8> {
    packet(REQ, kind, args)
}

/// One decoded packet.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub magic: [u8; 4],
    pub kind: u32,
    pub body: Vec<u8>,
}

impl Packet {
    /// The body split on every NUL.
    pub fn fields(&self) -> Vec<Vec<u8>> {
        self.body.split(|b| *b == 0).map(|s| s.to_vec()).collect()
    }
    /// The body split into at most `n` fields (the last keeps its NULs).
    pub fn fields_n(&self, n: usize) -> Vec<Vec<u8>> {
        self.body.splitn(n, |b| *b == 0).map(|s| s.to_vec()).collect()
    }
    /// The first field as text (a handle, an error code…).
    pub fn first_text(&self) -> String {
        String::from_utf8_lossy(&self.fields_n(2)[0]).into_owned()
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packet({}, {}, {:?})", String::from_utf8_lossy(&self.magic[1..]), self.kind, escape(&self.body))
    }
}

/// Printable form of bytes: `\0` for NUL, `\r`, `\n`, `\xNN` for others.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            0 => s.push_str("\\0"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Why a read ended without a packet.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Nothing (or only part of a packet) arrived in time.
    Timeout,
    /// The server closed the connection (or reset it).
    Closed,
}

/// A blocking connection to a server with a buffer for partial reads.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `127.0.0.1:port` (panics if that fails: the server is
    /// expected to be up).
    pub fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to server under test");
        stream.set_nodelay(true).ok();
        Conn { stream, buf: Vec::new() }
    }

    /// Writes raw bytes. Errors (a closed peer) are returned, not panicked.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request packet; panics on a write error.
    pub fn send_req(&mut self, kind: u32, args: &[&[u8]]) {
        self.send(&req(kind, args)).expect("write request");
    }

    /// Reads more bytes into the buffer; Ok(false) on timeout.
    fn fill(&mut self, deadline: Instant) -> Result<bool, ReadEnd> {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        self.stream.set_read_timeout(Some(deadline - now)).ok();
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ReadEnd::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) => Err(ReadEnd::Closed),
        }
    }

    /// Reads one binary packet within `limit`.
    pub fn read_packet(&mut self, limit: Duration) -> Result<Packet, ReadEnd> {
        let deadline = Instant::now() + limit;
        loop {
            if self.buf.len() >= 12 {
                let size = u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]) as usize;
                if self.buf.len() >= 12 + size {
                    let magic = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
                    let kind = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
                    let body = self.buf[12..12 + size].to_vec();
                    self.buf.drain(..12 + size);
                    return Ok(Packet { magic, kind, body });
                }
            }
            if !self.fill(deadline)? {
                return Err(ReadEnd::Timeout);
            }
        }
    }

    /// Reads one packet, panicking with `what` if none arrives in 5 s.
    pub fn expect_packet(&mut self, what: &str) -> Packet {
        match self.read_packet(Duration::from_secs(5)) {
            Ok(p) => p,
            Err(e) => panic!("expected a packet ({what}), got {e:?}"),
        }
    }

    /// Reads packets until one of type `kind` arrives (others are returned
    /// too, in order, so a caller can inspect them).
    pub fn read_until(&mut self, kind: u32, limit: Duration) -> Result<Vec<Packet>, ReadEnd> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let p = self.read_packet(left)?;
            let done = p.kind == kind;
            out.push(p);
            if done {
                return Ok(out);
            }
        }
    }

    /// Expects that nothing arrives for `quiet`; returns what did arrive.
    pub fn nothing_for(&mut self, quiet: Duration) -> Result<Vec<u8>, ReadEnd> {
        let deadline = Instant::now() + quiet;
        while self.fill(deadline)? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads raw bytes until no more arrive within `quiet` (gearadmin's rule
    /// for admin replies), at most `limit` in all. Returns the bytes and
    /// whether the peer closed.
    pub fn read_quiet(&mut self, quiet: Duration, limit: Duration) -> (Vec<u8>, bool) {
        let end = Instant::now() + limit;
        let mut closed = false;
        // Wait for the first byte with the full limit, then for silence.
        let mut deadline = end;
        loop {
            match self.fill(deadline.min(end)) {
                Ok(true) => deadline = Instant::now() + quiet,
                Ok(false) => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
            if Instant::now() >= end {
                break;
            }
        }
        (std::mem::take(&mut self.buf), closed)
    }

    /// Reads raw text until `done(bytes so far)` holds, or `limit` passes.
    pub fn read_text_until(&mut self, limit: Duration, done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + limit;
        let mut closed = false;
        while !done(&self.buf) {
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        (std::mem::take(&mut self.buf), closed)
    }

    /// Sends one admin line (as given, ending included) and reads the reply:
    /// through a `.` line for listings, the first line otherwise.
    pub fn admin_raw(&mut self, line: &[u8]) -> Vec<u8> {
        self.send(line).expect("write admin line");
        let (bytes, _) = self.read_text_until(Duration::from_secs(5), admin_reply_complete);
        bytes
    }

    /// True if the server closes the connection within `limit` (bytes that
    /// arrive first are ignored).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.fill(deadline) {
                Ok(true) => self.buf.clear(),
                Ok(false) => return false,
                Err(_) => return true,
            }
        }
    }

    /// Half-closes the sending side.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Whether `bytes` hold a whole admin reply: a one-line `OK…`/`ERR…`, or a
/// listing ending in a `.` line.
pub fn admin_reply_complete(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"OK") || bytes.starts_with(b"ERR") {
        return bytes.contains(&b'\n');
    }
    bytes == b".\n" || bytes.ends_with(b"\n.\n")
}
