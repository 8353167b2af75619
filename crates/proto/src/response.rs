//! Packets sent by the server (`\0RES`), typed.

use bytes::{Bytes, BytesMut};

use crate::packet::{split_body, write_packet, Magic, PacketType};
use crate::request::ParseError;

/// A response packet with its arguments.
///
/// Status numbers travel as decimal text; they are kept as `u64` here and
/// WORK_STATUS keeps the worker's bytes so they are forwarded unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// NOOP: wakes a sleeping worker.
    Noop,
    /// JOB_CREATED: the job was queued.
    JobCreated {
        /// The job's handle.
        handle: Bytes,
    },
    /// NO_JOB: nothing to do for this worker.
    NoJob,
    /// JOB_ASSIGN: a job for the worker.
    JobAssign {
        /// The job's handle.
        handle: Bytes,
        /// The job's function.
        function: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// JOB_ASSIGN_UNIQ: a job with its unique id.
    JobAssignUniq {
        /// The job's handle.
        handle: Bytes,
        /// The job's function.
        function: Bytes,
        /// The job's unique id.
        unique: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// JOB_ASSIGN_ALL: a job with its unique id and reducer.
    JobAssignAll {
        /// The job's handle.
        handle: Bytes,
        /// The job's function.
        function: Bytes,
        /// The job's unique id.
        unique: Bytes,
        /// The reducer function's name.
        reducer: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// WORK_STATUS forwarded to a client.
    WorkStatus {
        /// The job's handle.
        handle: Bytes,
        /// Work done, as the worker sent it.
        numerator: Bytes,
        /// Work in all, as the worker sent it.
        denominator: Bytes,
    },
    /// WORK_COMPLETE forwarded to a client.
    WorkComplete {
        /// The job's handle.
        handle: Bytes,
        /// The result.
        data: Bytes,
    },
    /// WORK_FAIL forwarded to a client (or made by the server).
    WorkFail {
        /// The job's handle.
        handle: Bytes,
    },
    /// WORK_EXCEPTION forwarded to a client that asked for exceptions.
    WorkException {
        /// The job's handle.
        handle: Bytes,
        /// The exception's text.
        data: Bytes,
    },
    /// WORK_DATA forwarded to a client.
    WorkData {
        /// The job's handle.
        handle: Bytes,
        /// The part of the result.
        data: Bytes,
    },
    /// WORK_WARNING forwarded to a client.
    WorkWarning {
        /// The job's handle.
        handle: Bytes,
        /// The warning.
        data: Bytes,
    },
    /// ECHO_RES: the data of an ECHO_REQ.
    EchoRes {
        /// The echoed data.
        data: Bytes,
    },
    /// ERROR: a request could not be served.
    Error {
        /// A code such as `ARGUMENT_TOO_LARGE`.
        code: Bytes,
        /// A human-readable text.
        text: Bytes,
    },
    /// STATUS_RES: the answer to GET_STATUS.
    StatusRes {
        /// The job's handle.
        handle: Bytes,
        /// The server knows the job.
        known: bool,
        /// A worker runs it.
        running: bool,
        /// Work done, from the last WORK_STATUS.
        numerator: u64,
        /// Work in all, from the last WORK_STATUS.
        denominator: u64,
    },
    /// STATUS_RES_UNIQUE: the answer to GET_STATUS_UNIQUE.
    StatusResUnique {
        /// The job's unique id.
        unique: Bytes,
        /// The server knows the job.
        known: bool,
        /// A worker runs it.
        running: bool,
        /// Work done, from the last WORK_STATUS.
        numerator: u64,
        /// Work in all, from the last WORK_STATUS.
        denominator: u64,
        /// Clients waiting for the job.
        clients: u64,
    },
    /// OPTION_RES: the option was turned on.
    OptionRes {
        /// The option's name.
        name: Bytes,
    },
}

fn flag(b: bool) -> &'static [u8] {
    if b {
        b"1"
    } else {
        b"0"
    }
}

/// atoi-style: leading decimal digits, anything else stops (garbage is 0).
pub fn parse_decimal(b: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &c in b.iter().skip_while(|c| **c == b' ') {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    n
}

impl Response {
    /// An ERROR packet with a static code and text.
    pub fn error(code: &'static str, text: &'static str) -> Response {
        Response::Error { code: Bytes::from_static(code.as_bytes()), text: Bytes::from_static(text.as_bytes()) }
    }

    /// The packet type this response is sent as.
    pub fn packet_type(&self) -> PacketType {
        use PacketType as T;
        match self {
            Response::Noop => T::Noop,
            Response::JobCreated { .. } => T::JobCreated,
            Response::NoJob => T::NoJob,
            Response::JobAssign { .. } => T::JobAssign,
            Response::JobAssignUniq { .. } => T::JobAssignUniq,
            Response::JobAssignAll { .. } => T::JobAssignAll,
            Response::WorkStatus { .. } => T::WorkStatus,
            Response::WorkComplete { .. } => T::WorkComplete,
            Response::WorkFail { .. } => T::WorkFail,
            Response::WorkException { .. } => T::WorkException,
            Response::WorkData { .. } => T::WorkData,
            Response::WorkWarning { .. } => T::WorkWarning,
            Response::EchoRes { .. } => T::EchoRes,
            Response::Error { .. } => T::Error,
            Response::StatusRes { .. } => T::StatusRes,
            Response::StatusResUnique { .. } => T::StatusResUnique,
            Response::OptionRes { .. } => T::OptionRes,
        }
    }

    /// Appends the encoded packet (`\0RES` magic) to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let kind = self.packet_type();
        let w = |buf: &mut BytesMut, fields: &[&[u8]], data: &[u8]| write_packet(buf, Magic::Res, kind, fields, data);
        match self {
            Response::Noop | Response::NoJob => w(buf, &[], &[]),
            Response::JobCreated { handle } | Response::WorkFail { handle } => w(buf, &[handle], &[]),
            Response::JobAssign { handle, function, data } => w(buf, &[handle, function], data),
            Response::JobAssignUniq { handle, function, unique, data } => w(buf, &[handle, function, unique], data),
            Response::JobAssignAll { handle, function, unique, reducer, data } => {
                w(buf, &[handle, function, unique, reducer], data)
            }
            Response::WorkStatus { handle, numerator, denominator } => w(buf, &[handle, numerator, denominator], &[]),
            Response::WorkComplete { handle, data }
            | Response::WorkException { handle, data }
            | Response::WorkData { handle, data }
            | Response::WorkWarning { handle, data } => w(buf, &[handle], data),
            Response::EchoRes { data } => w(buf, &[], data),
            Response::Error { code, text } => w(buf, &[code, text], &[]),
            Response::StatusRes { handle, known, running, numerator, denominator } => {
                let (n, d) = (numerator.to_string(), denominator.to_string());
                w(buf, &[handle, flag(*known), flag(*running), n.as_bytes(), d.as_bytes()], &[])
            }
            Response::StatusResUnique { unique, known, running, numerator, denominator, clients } => {
                let (n, d, c) = (numerator.to_string(), denominator.to_string(), clients.to_string());
                w(buf, &[unique, flag(*known), flag(*running), n.as_bytes(), d.as_bytes(), c.as_bytes()], &[])
            }
            Response::OptionRes { name } => w(buf, &[name], &[]),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Builds a response from a decoded `\0RES` body (used by clients).
    pub fn parse(kind: PacketType, body: Bytes) -> Result<Response, ParseError> {
        use PacketType as T;
        let (mut f, data) = split_body(kind, &body, false).map_err(|_| ParseError::MissingSeparator(kind))?;
        let mut next = || f.take();
        Ok(match kind {
            T::Noop => Response::Noop,
            T::JobCreated => Response::JobCreated { handle: next() },
            T::NoJob => Response::NoJob,
            T::JobAssign => Response::JobAssign { handle: next(), function: next(), data },
            T::JobAssignUniq => Response::JobAssignUniq { handle: next(), function: next(), unique: next(), data },
            T::JobAssignAll => {
                Response::JobAssignAll { handle: next(), function: next(), unique: next(), reducer: next(), data }
            }
            T::WorkStatus => Response::WorkStatus { handle: next(), numerator: next(), denominator: next() },
            T::WorkComplete => Response::WorkComplete { handle: next(), data },
            T::WorkFail => Response::WorkFail { handle: next() },
            T::WorkException => Response::WorkException { handle: next(), data },
            T::WorkData => Response::WorkData { handle: next(), data },
            T::WorkWarning => Response::WorkWarning { handle: next(), data },
            T::EchoRes => Response::EchoRes { data },
            T::Error => Response::Error { code: next(), text: next() },
            T::StatusRes => Response::StatusRes {
                handle: next(),
                known: next().as_ref() == b"1",
                running: next().as_ref() == b"1",
                numerator: parse_decimal(&next()),
                denominator: parse_decimal(&next()),
            },
            T::StatusResUnique => Response::StatusResUnique {
                unique: next(),
                known: next().as_ref() == b"1",
                running: next().as_ref() == b"1",
                numerator: parse_decimal(&next()),
                denominator: parse_decimal(&next()),
                clients: parse_decimal(&next()),
            },
            T::OptionRes => Response::OptionRes { name: next() },
            other => return Err(ParseError::NotARequest(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{blob, decode_one, field};
    use proptest::prelude::*;

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            Just(Response::Noop),
            field().prop_map(|handle| Response::JobCreated { handle }),
            Just(Response::NoJob),
            (field(), field(), blob()).prop_map(|(handle, function, data)| Response::JobAssign {
                handle,
                function,
                data
            }),
            (field(), field(), field(), blob()).prop_map(|(handle, function, unique, data)| Response::JobAssignUniq {
                handle,
                function,
                unique,
                data
            }),
            (field(), field(), field(), field(), blob()).prop_map(|(handle, function, unique, reducer, data)| {
                Response::JobAssignAll { handle, function, unique, reducer, data }
            }),
            (field(), field(), field()).prop_map(|(handle, numerator, denominator)| Response::WorkStatus {
                handle,
                numerator,
                denominator
            }),
            (field(), blob()).prop_map(|(handle, data)| Response::WorkComplete { handle, data }),
            field().prop_map(|handle| Response::WorkFail { handle }),
            (field(), blob()).prop_map(|(handle, data)| Response::WorkException { handle, data }),
            (field(), blob()).prop_map(|(handle, data)| Response::WorkData { handle, data }),
            (field(), blob()).prop_map(|(handle, data)| Response::WorkWarning { handle, data }),
            blob().prop_map(|data| Response::EchoRes { data }),
            (field(), field()).prop_map(|(code, text)| Response::Error { code, text }),
            (field(), any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>()).prop_map(
                |(handle, known, running, n, d)| {
                    Response::StatusRes { handle, known, running, numerator: n.into(), denominator: d.into() }
                }
            ),
            (field(), any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
                |(unique, known, running, n, d, c)| Response::StatusResUnique {
                    unique,
                    known,
                    running,
                    numerator: n.into(),
                    denominator: d.into(),
                    clients: c.into()
                }
            ),
            field().prop_map(|name| Response::OptionRes { name }),
        ]
    }

    proptest! {
        #[test]
        fn every_response_round_trips(resp in response()) {
            let mut buf = BytesMut::new();
            resp.encode(&mut buf);
            let (magic, kind, body) = decode_one(&mut buf);
            prop_assert_eq!(magic, Magic::Res);
            prop_assert_eq!(Response::parse(kind, body).unwrap(), resp);
        }
    }

    #[test]
    fn status_res_bytes_match_gearmand() {
        let r = Response::StatusRes {
            handle: Bytes::from_static(b"H:h:1"),
            known: true,
            running: false,
            numerator: 6,
            denominator: 10,
        };
        assert_eq!(&r.to_bytes()[12..], b"H:h:1\x001\x000\x006\x0010");
    }

    #[test]
    fn decimal_parse_is_atoi_like() {
        assert_eq!(parse_decimal(b"42abc"), 42);
        assert_eq!(parse_decimal(b"abc"), 0);
        assert_eq!(parse_decimal(b""), 0);
    }
}
