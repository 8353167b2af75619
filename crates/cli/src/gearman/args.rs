//! gearman(1) 1.1.20 command line: getopt string `bc:f:h:HILnNp:Pst:u:vwi:dS`,
//! plus `-e` (epoch) as a Sprocket extension.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::getopt::{getopt, GetoptError};

/// The getopt string: gearman's own letters plus `e:`.
pub const OPTSTRING: &str = "bc:f:h:HILnNp:Pst:u:vwi:dSe:";

/// Everything gearman(1) understands.
#[derive(Debug, Clone, Default)]
pub struct GearmanArgs {
    /// Function names as given (bytes: C passes them through unchanged).
    pub functions: Vec<Vec<u8>>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub help: bool,
    pub verbose: bool,
    pub timeout_ms: Option<u64>,
    pub pidfile: Option<PathBuf>,
    pub ssl: bool,
    pub daemon: bool,
    pub background: bool,
    pub high: bool,
    pub low: bool,
    pub per_line: bool,
    pub strip_newline: bool,
    pub prefix: bool,
    pub no_stdin: bool,
    pub unique: Option<Vec<u8>>,
    pub worker: bool,
    pub count: u64,
    pub epoch: Option<u64>,
    /// Client mode: workloads. Worker mode: the command and its arguments.
    pub operands: Vec<OsString>,
}

/// A usage problem: the message that goes into "Error in usage(…)".
#[derive(Debug, Clone)]
pub struct UsageError(pub String);

/// Parses the arguments after `argv[0]`.
pub fn parse(args: &[OsString]) -> Result<GearmanArgs, UsageError> {
    let (opts, operands) = getopt(args, OPTSTRING).map_err(|e| {
        crate::output::err_raw(format!("gearman: {e}\n").as_bytes());
        UsageError(match e {
            GetoptError::Unknown(_) | GetoptError::MissingArgument(_) => "-?".into(),
        })
    })?;
    let mut a = GearmanArgs { operands, ..GearmanArgs::default() };
    for o in opts {
        let raw = o.value.unwrap_or_default();
        // Host, port, counts and times are text; anything else keeps its bytes.
        let v = raw.to_string_lossy().into_owned();
        match o.name {
            'b' => a.background = true,
            'c' => a.count = atoi(&v),
            'd' => a.daemon = true,
            'e' => a.epoch = Some(v.trim().parse().map_err(|_| UsageError(format!("bad epoch time {v:?}")))?),
            'f' => a.functions.push(raw.into_vec()),
            'h' => a.host = Some(v),
            'H' => a.help = true,
            'i' => a.pidfile = Some(PathBuf::from(raw)),
            // The last of -I and -L wins, as in gearman(1).
            'I' => (a.high, a.low) = (true, false),
            'L' => (a.high, a.low) = (false, true),
            'n' => a.per_line = true,
            'N' => {
                a.per_line = true;
                a.strip_newline = true;
            }
            'p' => a.port = Some(v),
            'P' => a.prefix = true,
            's' => a.no_stdin = true,
            'S' => a.ssl = true,
            't' => a.timeout_ms = Some(atoi(&v)),
            'u' => a.unique = Some(raw.into_vec()),
            'v' => a.verbose = true,
            'w' => a.worker = true,
            _ => return Err(UsageError("-?".into())),
        }
    }
    Ok(a)
}

/// A port as gearman(1) reads `-p`: C `atoi` (leading blanks, a sign,
/// digits) stored in 16 bits, so `47301x` is 47301, `99999` is 34463 and
/// `-1` 65535; 0 (also `notaport`) means the default port 4730.
pub fn c_port(s: &str) -> u16 {
    let t = s.trim_start();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // Only the low 16 bits matter, so wrapping arithmetic gives the
    // truncated value whatever the length.
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0u16, |n, d| n.wrapping_mul(10).wrapping_add(u16::from(d - b'0')));
    let n = if negative { n.wrapping_neg() } else { n };
    if n == 0 {
        4730
    } else {
        n
    }
}

/// C `atoi`: leading digits, anything else ends the number.
fn atoi(s: &str) -> u64 {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |n, c| n.saturating_mul(10).saturating_add(u64::from(c as u8 - b'0')))
}

impl GearmanArgs {
    /// The servers to use: the lists in `GEARMAN_SERVERS` (libgearman's
    /// variable) and `GEARMAN_SERVER` (gearman(1)'s), both when both are
    /// set; else `-h`/`-p` (default localhost:4730). An empty variable
    /// counts as unset.
    pub fn servers(&self) -> String {
        let lists: Vec<String> = ["GEARMAN_SERVERS", "GEARMAN_SERVER"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .map(|list| list.trim().to_string())
            .filter(|list| !list.is_empty())
            .collect();
        if !lists.is_empty() {
            return lists.join(",");
        }
        // As gearman(1): an empty host is localhost, and the port is
        // read with atoi into 16 bits, 0 meaning the default.
        let host = self.host.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        let port = self.port.as_deref().map_or(4730, c_port);
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}

/// The help text (our own wording, same options).
pub fn usage() -> String {
    "\nClient mode: gearman [options] [<data>]\n\
Worker mode: gearman -w [options] [<command> [<args> ...]]\n\
\n\
Options for both modes:\n\
\t-f <function> - function to submit to or to serve; repeat for several\n\
\t-h <host>     - job server host (default localhost)\n\
\t-p <port>     - job server port (default 4730)\n\
\t-H            - show this help\n\
\t-v            - verbose: print each job handle on stdout\n\
\t-t <timeout>  - I/O timeout in milliseconds\n\
\t-i <pidfile>  - write the process id to this file\n\
\t-d            - detach and run as a daemon\n\
\t-S            - TLS; files from GEARMAND_CA_CERTIFICATE, GEARMAN_CLIENT_PEM,\n\
\t                GEARMAN_CLIENT_KEY (the server's certificate is verified)\n\
\n\
Client mode:\n\
\t-b            - submit background jobs\n\
\t-I            - high priority\n\
\t-L            - low priority\n\
\t-n            - one job per input line\n\
\t-N            - like -n, without the newline\n\
\t-P            - prefix output with the function name\n\
\t-s            - do not read stdin; send an empty workload\n\
\t-u <unique>   - unique key for the jobs\n\
\t-e <epoch>    - run background jobs at this Unix time (Sprocket extension)\n\
\n\
Worker mode:\n\
\t-w            - run as a worker\n\
\t-c <count>    - exit after this many jobs\n\
\t-n            - send each output line as a data packet\n\
\t-N            - like -n, without the newline\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_like_atoi_into_16_bits() {
        assert_eq!(c_port("47301"), 47301);
        assert_eq!(c_port("47301x"), 47301);
        assert_eq!(c_port(" 47301"), 47301);
        assert_eq!(c_port("99999"), 34463);
        assert_eq!(c_port("-1"), 65535);
        assert_eq!(c_port("notaport"), 4730);
        assert_eq!(c_port(""), 4730);
        assert_eq!(c_port("65536"), 4730);
    }
}
