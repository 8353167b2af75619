//! Differential testing: run one scenario against the server under test and
//! against the reference gearmand 1.1.20, record what the clients see, and
//! compare the two transcripts after normalising what legitimately differs.
//!
//! Normalisations (each applied to every recorded line):
//! 1. Job handles `H:<nodename>:<n>` become `H:HOST:<n>`: the host part is
//!    the machine's name (or a configured prefix), not behaviour. The
//!    counter `<n>` is kept: it must follow gearmand's numbering.
//! 2. `workers` lines: the leading file descriptor becomes `FD` (assigned by
//!    the OS), and the lines are sorted (gearmand lists per I/O thread).
//! 3. `status`, `prioritystatus`, `show jobs`, `show unique jobs`: lines are
//!    sorted (gearmand lists in hash-table order); the final `.` stays last.
//! 4. `getpid` replies become `OK PID` after checking the pid is the
//!    server's; `version` replies become `OK VERSION`.
//!
//! Everything else, line endings included, is compared byte for byte (the
//! transcript shows bytes with `\r`, `\n`, `\0` escaped).

use std::path::Path;
use std::time::Duration;

use crate::wire::{escape, kind, Conn, Packet, ReadEnd};
use crate::ServerProcess;

/// What one scenario recorded: one line per observation.
#[derive(Debug, Default)]
pub struct Recorder {
    pub lines: Vec<String>,
    /// The server's pid, for checking `getpid`.
    pub pid: u32,
}

impl Recorder {
    /// Records a free-form note (a step name).
    pub fn note(&mut self, text: &str) {
        self.lines.push(format!("# {text}"));
    }

    /// Records a packet (or why none came).
    pub fn packet(&mut self, who: &str, got: Result<Packet, ReadEnd>) -> Option<Packet> {
        match got {
            Ok(p) => {
                self.lines.push(format!("{who} <- {}", describe(&p)));
                Some(p)
            }
            Err(e) => {
                self.lines.push(format!("{who} <- {e:?}"));
                None
            }
        }
    }

    /// Reads and records one packet (5 s limit).
    pub fn read(&mut self, who: &str, conn: &mut Conn) -> Option<Packet> {
        let got = conn.read_packet(Duration::from_secs(5));
        self.packet(who, got)
    }

    /// Sends ECHO_REQ as a barrier and records every packet that arrives
    /// before its ECHO_RES (packets the server sent in reply to earlier
    /// requests on this connection; nothing, for requests with no reply).
    pub fn sync(&mut self, who: &str, conn: &mut Conn) {
        conn.send_req(kind::ECHO_REQ, &[b"sync"]);
        loop {
            match conn.read_packet(Duration::from_secs(5)) {
                Ok(p) if p.kind == kind::ECHO_RES && p.body == b"sync" => return,
                Ok(p) => self.lines.push(format!("{who} <- {}", describe(&p))),
                Err(e) => {
                    self.lines.push(format!("{who} <- {e:?} (waiting for sync)"));
                    return;
                }
            }
        }
    }

    /// Sends an admin line and records its reply; listings are sorted.
    pub fn admin(&mut self, conn: &mut Conn, line: &str) {
        let reply = conn.admin_raw(line.as_bytes());
        let text = self.normalise_admin(line, &reply);
        self.lines.push(format!("admin {:?} -> {text}", line));
    }

    /// Normalises one admin reply (rules 2–4 above).
    pub fn normalise_admin(&self, line: &str, reply: &[u8]) -> String {
        let cmd = line.trim_end_matches(['\r', '\n']).trim().to_ascii_lowercase();
        let is_listing = reply.ends_with(b"\n.\n") || reply == b".\n";
        if cmd.starts_with("getpid") && reply.starts_with(b"OK ") {
            let pid = String::from_utf8_lossy(&reply[3..]).trim().to_string();
            let ok = pid == self.pid.to_string();
            return format!("OK PID{} {}", if ok { "" } else { "(WRONG PID)" }, escape(&reply[reply.len() - 1..]));
        }
        if cmd.starts_with("version") && reply.starts_with(b"OK ") {
            return "OK VERSION".to_string();
        }
        if !is_listing {
            return escape(reply);
        }
        let text = String::from_utf8_lossy(reply);
        let mut lines: Vec<String> =
            text.split_inclusive('\n').filter(|l| *l != ".\n").map(|l| l.to_string()).collect();
        if cmd.starts_with("workers") {
            lines = lines
                .into_iter()
                .map(|l| match l.split_once(' ') {
                    Some((fd, rest)) if fd.chars().all(|c| c.is_ascii_digit()) => format!("FD {rest}"),
                    _ => l,
                })
                .collect();
        }
        lines.sort();
        let mut out: String = lines.iter().map(|l| escape(l.as_bytes())).collect::<Vec<_>>().join("|");
        out.push_str("|.\\n");
        out
    }
}

/// One packet as text: magic, type number, escaped body.
pub fn describe(p: &Packet) -> String {
    let magic = String::from_utf8_lossy(&p.magic[1..]).into_owned();
    format!("{magic} {} {}", p.kind, escape(&p.body))
}

/// Replaces the host part of `H:<host>:<n>` handles with `HOST` (rule 1).
pub fn normalise_handles(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("H:") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let tail = &after[2..];
        match tail.find(':') {
            Some(j)
                if j > 0
                    && tail[..j].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_') =>
            {
                out.push_str("H:HOST:");
                rest = &tail[j + 1..];
            }
            _ => {
                out.push_str("H:");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs `scenario` against `server`, returning its normalised transcript.
pub fn transcript(server: &ServerProcess, scenario: &dyn Fn(u16, &mut Recorder)) -> Vec<String> {
    let mut rec = Recorder { lines: Vec::new(), pid: server.child.id() };
    scenario(server.port, &mut rec);
    rec.lines.iter().map(|l| normalise_handles(l)).collect()
}

/// Runs `scenario` on the server under test (see [`ServerProcess::under_test`])
/// and on gearmand, each freshly started with `extra` flags, and asserts the
/// transcripts are equal. Returns the reference transcript so the caller can
/// also check specific lines.
pub fn compare(sprocketd_bin: &Path, extra: &[&str], scenario: &dyn Fn(u16, &mut Recorder)) -> Option<Vec<String>> {
    let reference = {
        let server = ServerProcess::gearmand(extra)?;
        transcript(&server, scenario)
    };
    let tested = {
        let server = ServerProcess::under_test(sprocketd_bin, extra)?;
        transcript(&server, scenario)
    };
    // Shown with --nocapture, to read what the reference does.
    println!("--- gearmand transcript ---\n{}", reference.join("\n"));
    if tested != reference {
        let mut report = String::new();
        let n = tested.len().max(reference.len());
        for i in 0..n {
            let a = tested.get(i).map(String::as_str).unwrap_or("<missing>");
            let b = reference.get(i).map(String::as_str).unwrap_or("<missing>");
            let mark = if a == b { "  " } else { "!!" };
            report.push_str(&format!("{mark} {i:3} tested:    {a}\n"));
            if a != b {
                report.push_str(&format!("{mark} {i:3} gearmand:  {b}\n"));
            }
        }
        panic!("{} and gearmand differ:\n{report}", crate::server_under_test_name());
    }
    Some(reference)
}

/// Asserts that `transcript` contains `line` exactly.
pub fn assert_has(transcript: &[String], line: &str) {
    assert!(
        transcript.iter().any(|l| l == line),
        "expected line not in transcript:\n  {line}\ntranscript:\n{}",
        transcript.join("\n")
    );
}
