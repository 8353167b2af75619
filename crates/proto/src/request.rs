//! Packets sent to the server (`\0REQ`), typed.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::packet::{split_body, write_packet, Magic, PacketType, Priority};

/// Foreground (a client waits for results) or background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitMode {
    /// The queue the job goes into.
    pub priority: Priority,
    /// Nobody waits for the result: the submitter gets only JOB_CREATED.
    pub background: bool,
}

impl SubmitMode {
    /// The SUBMIT_JOB* packet type for this mode.
    pub fn packet_type(self) -> PacketType {
        use PacketType::*;
        match (self.priority, self.background) {
            (Priority::High, false) => SubmitJobHigh,
            (Priority::High, true) => SubmitJobHighBg,
            (Priority::Normal, false) => SubmitJob,
            (Priority::Normal, true) => SubmitJobBg,
            (Priority::Low, false) => SubmitJobLow,
            (Priority::Low, true) => SubmitJobLowBg,
        }
    }
}

/// A request packet with its arguments. Field names follow the protocol
/// document (`gearman-reference.md` §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CAN_DO: the worker can run `function`.
    CanDo {
        /// The function's name.
        function: Bytes,
    },
    /// CANT_DO: the worker no longer runs `function`.
    CantDo {
        /// The function's name.
        function: Bytes,
    },
    /// RESET_ABILITIES: the worker forgets every function it registered.
    ResetAbilities,
    /// PRE_SLEEP: the worker sleeps until a NOOP wakes it.
    PreSleep,
    /// SUBMIT_JOB and its priority and background variants.
    SubmitJob {
        /// Priority, and whether the client waits.
        mode: SubmitMode,
        /// The function to run.
        function: Bytes,
        /// The client's unique id, for coalescing (may be empty).
        unique: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// SUBMIT_JOB_SCHED: a background job for a cron-style schedule, whose
    /// fields (minute, hour, day of month, month, day of week) are kept as
    /// sent (`*` or a number each).
    SubmitJobSched {
        /// The function to run.
        function: Bytes,
        /// The client's unique id (may be empty).
        unique: Bytes,
        /// The five schedule fields.
        schedule: [Bytes; 5],
        /// The job's data.
        data: Bytes,
    },
    /// SUBMIT_JOB_EPOCH: a background job not to run before a time.
    SubmitJobEpoch {
        /// The function to run.
        function: Bytes,
        /// The client's unique id (may be empty).
        unique: Bytes,
        /// Unix seconds, as decimal text.
        epoch: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// SUBMIT_REDUCE_JOB and SUBMIT_REDUCE_JOB_BACKGROUND (map/reduce).
    SubmitReduceJob {
        /// The background variant.
        background: bool,
        /// The function to run.
        function: Bytes,
        /// The client's unique id (may be empty).
        unique: Bytes,
        /// The reducer function's name.
        reducer: Bytes,
        /// The aggregator field (unused by gearmand 1.1).
        aggregate: Bytes,
        /// The job's data.
        data: Bytes,
    },
    /// GRAB_JOB: the worker asks for a job (answered with JOB_ASSIGN).
    GrabJob,
    /// GRAB_JOB_UNIQ: as GRAB_JOB, answered with JOB_ASSIGN_UNIQ.
    GrabJobUniq,
    /// GRAB_JOB_ALL: as GRAB_JOB, answered with JOB_ASSIGN_ALL.
    GrabJobAll,
    /// WORK_STATUS: progress of a running job.
    WorkStatus {
        /// The job's handle.
        handle: Bytes,
        /// Work done, as decimal text.
        numerator: Bytes,
        /// Work in all, as decimal text.
        denominator: Bytes,
    },
    /// WORK_COMPLETE: the job succeeded.
    WorkComplete {
        /// The job's handle.
        handle: Bytes,
        /// The result.
        data: Bytes,
    },
    /// WORK_FAIL: the job failed.
    WorkFail {
        /// The job's handle.
        handle: Bytes,
    },
    /// WORK_EXCEPTION: the job failed with an exception.
    WorkException {
        /// The job's handle.
        handle: Bytes,
        /// The exception's text.
        data: Bytes,
    },
    /// WORK_DATA: part of the result, before the end.
    WorkData {
        /// The job's handle.
        handle: Bytes,
        /// The part.
        data: Bytes,
    },
    /// WORK_WARNING: a warning for the job's clients.
    WorkWarning {
        /// The job's handle.
        handle: Bytes,
        /// The warning.
        data: Bytes,
    },
    /// GET_STATUS: a job's status by handle.
    GetStatus {
        /// The job's handle.
        handle: Bytes,
    },
    /// GET_STATUS_UNIQUE: a job's status by unique id.
    GetStatusUnique {
        /// The job's unique id.
        unique: Bytes,
    },
    /// ECHO_REQ: answered with ECHO_RES carrying the same data.
    EchoReq {
        /// What to echo.
        data: Bytes,
    },
    /// SET_CLIENT_ID: the id `workers` shows for the connection.
    SetClientId {
        /// The id.
        id: Bytes,
    },
    /// CAN_DO_TIMEOUT: as CAN_DO, with a time limit per job.
    CanDoTimeout {
        /// The function's name.
        function: Bytes,
        /// The limit in seconds, as decimal text.
        timeout: Bytes,
    },
    /// ALL_YOURS: accepted and ignored, as by gearmand.
    AllYours,
    /// OPTION_REQ: turns on a connection option (`exceptions`).
    OptionReq {
        /// The option's name.
        name: Bytes,
    },
}

/// Why a `\0REQ` packet could not become a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A response-only or unused type was sent as a request.
    #[error("{0:?} is not a request")]
    NotARequest(PacketType),
    /// A field separator is missing.
    #[error("{0:?} is missing an argument separator")]
    MissingSeparator(PacketType),
}

/// The part of a lone field before its first NUL. gearmand reads the only
/// field of WORK_FAIL, GET_STATUS, GET_STATUS_UNIQUE and OPTION_REQ as a C
/// string, so a client that ends it with a NUL is understood there; kept
/// whole, the NUL made the handle unknown and was echoed back inside
/// STATUS_RES as an extra field.
fn c_string(field: Bytes) -> Bytes {
    match field.iter().position(|&b| b == 0) {
        Some(end) => field.slice(..end),
        None => field,
    }
}

impl Request {
    /// Builds a request from a decoded body. Never panics.
    pub fn parse(kind: PacketType, body: Bytes) -> Result<Request, ParseError> {
        use PacketType as T;
        // WORK_* results from Perl's Gearman::Worker can lack the NUL after
        // the handle; take that as empty data rather than desynchronising.
        let lenient = matches!(kind, T::WorkComplete | T::WorkException | T::WorkData | T::WorkWarning);
        let (mut f, data) = split_body(kind, &body, lenient).map_err(|_| ParseError::MissingSeparator(kind))?;
        let mut next = || f.take();
        let submit = |priority, background| SubmitMode { priority, background };
        Ok(match kind {
            T::CanDo => Request::CanDo { function: next() },
            T::CantDo => Request::CantDo { function: next() },
            T::ResetAbilities => Request::ResetAbilities,
            T::PreSleep => Request::PreSleep,
            T::SubmitJob
            | T::SubmitJobBg
            | T::SubmitJobHigh
            | T::SubmitJobHighBg
            | T::SubmitJobLow
            | T::SubmitJobLowBg => {
                let mode = match kind {
                    T::SubmitJob => submit(Priority::Normal, false),
                    T::SubmitJobBg => submit(Priority::Normal, true),
                    T::SubmitJobHigh => submit(Priority::High, false),
                    T::SubmitJobHighBg => submit(Priority::High, true),
                    T::SubmitJobLow => submit(Priority::Low, false),
                    _ => submit(Priority::Low, true),
                };
                Request::SubmitJob { mode, function: next(), unique: next(), data }
            }
            T::SubmitJobSched => {
                let function = next();
                let unique = next();
                let schedule = [next(), next(), next(), next(), next()];
                Request::SubmitJobSched { function, unique, schedule, data }
            }
            T::SubmitJobEpoch => Request::SubmitJobEpoch { function: next(), unique: next(), epoch: next(), data },
            T::SubmitReduceJob | T::SubmitReduceJobBackground => Request::SubmitReduceJob {
                background: kind == T::SubmitReduceJobBackground,
                function: next(),
                unique: next(),
                reducer: next(),
                aggregate: next(),
                data,
            },
            T::GrabJob => Request::GrabJob,
            T::GrabJobUniq => Request::GrabJobUniq,
            T::GrabJobAll => Request::GrabJobAll,
            T::WorkStatus => Request::WorkStatus { handle: next(), numerator: next(), denominator: next() },
            T::WorkComplete => Request::WorkComplete { handle: next(), data },
            T::WorkFail => Request::WorkFail { handle: c_string(next()) },
            T::WorkException => Request::WorkException { handle: next(), data },
            T::WorkData => Request::WorkData { handle: next(), data },
            T::WorkWarning => Request::WorkWarning { handle: next(), data },
            T::GetStatus => Request::GetStatus { handle: c_string(next()) },
            T::GetStatusUnique => Request::GetStatusUnique { unique: c_string(next()) },
            T::EchoReq => Request::EchoReq { data },
            T::SetClientId => Request::SetClientId { id: next() },
            T::CanDoTimeout => Request::CanDoTimeout { function: next(), timeout: next() },
            T::AllYours => Request::AllYours,
            T::OptionReq => Request::OptionReq { name: c_string(next()) },
            T::Noop
            | T::JobCreated
            | T::NoJob
            | T::JobAssign
            | T::EchoRes
            | T::Error
            | T::StatusRes
            | T::OptionRes
            | T::JobAssignUniq
            | T::JobAssignAll
            | T::StatusResUnique => return Err(ParseError::NotARequest(kind)),
        })
    }

    /// The packet type this request is sent as.
    pub fn packet_type(&self) -> PacketType {
        use PacketType as T;
        match self {
            Request::CanDo { .. } => T::CanDo,
            Request::CantDo { .. } => T::CantDo,
            Request::ResetAbilities => T::ResetAbilities,
            Request::PreSleep => T::PreSleep,
            Request::SubmitJob { mode, .. } => mode.packet_type(),
            Request::SubmitJobSched { .. } => T::SubmitJobSched,
            Request::SubmitJobEpoch { .. } => T::SubmitJobEpoch,
            Request::SubmitReduceJob { background: false, .. } => T::SubmitReduceJob,
            Request::SubmitReduceJob { background: true, .. } => T::SubmitReduceJobBackground,
            Request::GrabJob => T::GrabJob,
            Request::GrabJobUniq => T::GrabJobUniq,
            Request::GrabJobAll => T::GrabJobAll,
            Request::WorkStatus { .. } => T::WorkStatus,
            Request::WorkComplete { .. } => T::WorkComplete,
            Request::WorkFail { .. } => T::WorkFail,
            Request::WorkException { .. } => T::WorkException,
            Request::WorkData { .. } => T::WorkData,
            Request::WorkWarning { .. } => T::WorkWarning,
            Request::GetStatus { .. } => T::GetStatus,
            Request::GetStatusUnique { .. } => T::GetStatusUnique,
            Request::EchoReq { .. } => T::EchoReq,
            Request::SetClientId { .. } => T::SetClientId,
            Request::CanDoTimeout { .. } => T::CanDoTimeout,
            Request::AllYours => T::AllYours,
            Request::OptionReq { .. } => T::OptionReq,
        }
    }

    /// Appends the encoded packet (`\0REQ` magic) to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let kind = self.packet_type();
        let w = |buf: &mut BytesMut, fields: &[&[u8]], data: &[u8]| write_packet(buf, Magic::Req, kind, fields, data);
        match self {
            Request::CanDo { function } | Request::CantDo { function } => w(buf, &[function], &[]),
            Request::ResetAbilities
            | Request::PreSleep
            | Request::GrabJob
            | Request::GrabJobUniq
            | Request::GrabJobAll
            | Request::AllYours => w(buf, &[], &[]),
            Request::SubmitJob { function, unique, data, .. } => w(buf, &[function, unique], data),
            Request::SubmitJobSched { function, unique, schedule, data } => {
                w(buf, &[function, unique, &schedule[0], &schedule[1], &schedule[2], &schedule[3], &schedule[4]], data)
            }
            Request::SubmitJobEpoch { function, unique, epoch, data } => w(buf, &[function, unique, epoch], data),
            Request::SubmitReduceJob { function, unique, reducer, aggregate, data, .. } => {
                w(buf, &[function, unique, reducer, aggregate], data)
            }
            Request::WorkStatus { handle, numerator, denominator } => w(buf, &[handle, numerator, denominator], &[]),
            Request::WorkComplete { handle, data }
            | Request::WorkException { handle, data }
            | Request::WorkData { handle, data }
            | Request::WorkWarning { handle, data } => w(buf, &[handle], data),
            Request::WorkFail { handle } | Request::GetStatus { handle } => w(buf, &[handle], &[]),
            Request::GetStatusUnique { unique } => w(buf, &[unique], &[]),
            Request::EchoReq { data } => w(buf, &[], data),
            Request::SetClientId { id } => w(buf, &[id], &[]),
            Request::CanDoTimeout { function, timeout } => w(buf, &[function, timeout], &[]),
            Request::OptionReq { name } => w(buf, &[name], &[]),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode(&mut buf);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{blob, decode_one, field};
    use proptest::prelude::*;

    #[test]
    fn a_lone_field_ending_in_nul_is_read_as_a_c_string() {
        let h = Bytes::from_static(b"H:x:1\0");
        assert_eq!(
            Request::parse(PacketType::GetStatus, h.clone()),
            Ok(Request::GetStatus { handle: Bytes::from_static(b"H:x:1") })
        );
        assert_eq!(
            Request::parse(PacketType::WorkFail, h),
            Ok(Request::WorkFail { handle: Bytes::from_static(b"H:x:1") })
        );
        assert_eq!(
            Request::parse(PacketType::GetStatusUnique, Bytes::from_static(b"u\0junk")),
            Ok(Request::GetStatusUnique { unique: Bytes::from_static(b"u") })
        );
        assert_eq!(
            Request::parse(PacketType::OptionReq, Bytes::from_static(b"exceptions\0")),
            Ok(Request::OptionReq { name: Bytes::from_static(b"exceptions") })
        );
    }

    fn priority() -> impl Strategy<Value = Priority> {
        prop_oneof![Just(Priority::High), Just(Priority::Normal), Just(Priority::Low)]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            field().prop_map(|function| Request::CanDo { function }),
            field().prop_map(|function| Request::CantDo { function }),
            Just(Request::ResetAbilities),
            Just(Request::PreSleep),
            (priority(), any::<bool>(), field(), field(), blob()).prop_map(
                |(priority, background, function, unique, data)| {
                    Request::SubmitJob { mode: SubmitMode { priority, background }, function, unique, data }
                }
            ),
            (field(), field(), [field(), field(), field(), field(), field()], blob()).prop_map(
                |(function, unique, schedule, data)| Request::SubmitJobSched { function, unique, schedule, data }
            ),
            (field(), field(), field(), blob()).prop_map(|(function, unique, epoch, data)| Request::SubmitJobEpoch {
                function,
                unique,
                epoch,
                data
            }),
            (any::<bool>(), field(), field(), field(), field(), blob()).prop_map(
                |(background, function, unique, reducer, aggregate, data)| Request::SubmitReduceJob {
                    background,
                    function,
                    unique,
                    reducer,
                    aggregate,
                    data
                }
            ),
            Just(Request::GrabJob),
            Just(Request::GrabJobUniq),
            Just(Request::GrabJobAll),
            (field(), field(), field()).prop_map(|(handle, numerator, denominator)| Request::WorkStatus {
                handle,
                numerator,
                denominator
            }),
            (field(), blob()).prop_map(|(handle, data)| Request::WorkComplete { handle, data }),
            field().prop_map(|handle| Request::WorkFail { handle }),
            (field(), blob()).prop_map(|(handle, data)| Request::WorkException { handle, data }),
            (field(), blob()).prop_map(|(handle, data)| Request::WorkData { handle, data }),
            (field(), blob()).prop_map(|(handle, data)| Request::WorkWarning { handle, data }),
            field().prop_map(|handle| Request::GetStatus { handle }),
            field().prop_map(|unique| Request::GetStatusUnique { unique }),
            blob().prop_map(|data| Request::EchoReq { data }),
            field().prop_map(|id| Request::SetClientId { id }),
            (field(), field()).prop_map(|(function, timeout)| Request::CanDoTimeout { function, timeout }),
            Just(Request::AllYours),
            field().prop_map(|name| Request::OptionReq { name }),
        ]
    }

    proptest! {
        #[test]
        fn every_request_round_trips(req in request()) {
            let mut buf = BytesMut::new();
            req.encode(&mut buf);
            let (magic, kind, body) = decode_one(&mut buf);
            prop_assert_eq!(magic, Magic::Req);
            prop_assert_eq!(Request::parse(kind, body).unwrap(), req);
        }

        #[test]
        fn parse_never_panics(code in 1u32..=42, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(kind) = PacketType::from_code(code) {
                let _ = Request::parse(kind, Bytes::from(body));
            }
        }
    }

    #[test]
    fn response_types_are_not_requests() {
        assert_eq!(Request::parse(PacketType::Noop, Bytes::new()), Err(ParseError::NotARequest(PacketType::Noop)));
    }

    #[test]
    fn submit_without_separators_is_rejected() {
        assert_eq!(
            Request::parse(PacketType::SubmitJob, Bytes::from_static(b"fn")),
            Err(ParseError::MissingSeparator(PacketType::SubmitJob))
        );
    }

    #[test]
    fn perl_style_work_complete_without_separator_is_empty_result() {
        assert_eq!(
            Request::parse(PacketType::WorkComplete, Bytes::from_static(b"H:h:1")).unwrap(),
            Request::WorkComplete { handle: Bytes::from_static(b"H:h:1"), data: Bytes::new() }
        );
    }
}
