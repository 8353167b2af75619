//! Standard output the way gearman(1) produces it.
//!
//! gearman writes job payloads straight to the file descriptor but prints
//! its own lines (`Task created: …`, `N% Complete`) through stdio. On a
//! terminal stdio is line-buffered, so everything appears in arrival order;
//! in a pipe it is block-buffered, so those lines come out when the buffer
//! fills or at exit, after the payloads. Scripts capture that order, so we
//! reproduce it.

use std::io::{IsTerminal, Write};

/// glibc's buffer size for a pipe or file on Linux.
const STDIO_BUFFER: usize = 4096;

pub struct GearmanOut {
    tty: bool,
    buffered: Vec<u8>,
}

impl Default for GearmanOut {
    fn default() -> Self {
        GearmanOut::new()
    }
}

impl GearmanOut {
    pub fn new() -> GearmanOut {
        GearmanOut { tty: std::io::stdout().is_terminal(), buffered: Vec::new() }
    }

    /// A payload: written at once.
    pub fn raw(&mut self, data: &[u8]) {
        out_raw(data);
    }

    /// One of gearman's own lines, through the emulated stdio buffer.
    pub fn line(&mut self, text: &str) {
        self.line_bytes(text.as_bytes());
    }

    /// Bytes through the emulated stdio buffer.
    pub fn line_bytes(&mut self, data: &[u8]) {
        if self.tty {
            self.raw(data);
            return;
        }
        // As glibc's fully buffered stream: fill the buffer to exactly
        // 4096 bytes (cutting a line if need be) and write it out only when
        // more bytes need the room.
        let mut rest = data;
        while !rest.is_empty() {
            if self.buffered.len() >= STDIO_BUFFER {
                self.flush();
            }
            let take = (STDIO_BUFFER - self.buffered.len()).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.buffered.extend_from_slice(now);
            rest = later;
        }
    }

    /// Empties the emulated stdio buffer (at exit).
    pub fn flush(&mut self) {
        if !self.buffered.is_empty() {
            let data = std::mem::take(&mut self.buffered);
            self.raw(&data);
        }
    }
}

impl Drop for GearmanOut {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The exit status of a run ended by a closed standard output: what a
/// shell shows for a process killed by SIGPIPE (128 + 13).
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes to stdout at once. Never panics: when the reader has gone
/// (EPIPE) the process ends quietly with status 141, as SIGPIPE ends the
/// C tools; other errors (a full disk) are ignored, as they ignore them.
pub fn out_raw(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(data).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
    }
}

/// Writes to stderr, unbuffered.
pub fn err_raw(data: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(data);
    let _ = e.flush();
}
