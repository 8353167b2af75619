//! What a client attached to an ended job through `sprocket.result` is
//! sent: the packets a foreground client of that job would have seen.

use crate::record::{ChunkKind, Record};
use crate::state::RecordState;

/// One packet of a replay, in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayPacket<'a> {
    /// WORK_DATA with this payload.
    Data(&'a [u8]),
    /// WORK_WARNING with this payload.
    Warning(&'a [u8]),
    /// WORK_STATUS with these numbers.
    Status(u32, u32),
    /// WORK_COMPLETE with this result.
    Complete(&'a [u8]),
    /// WORK_EXCEPTION with this text.
    Exception(&'a [u8]),
    /// WORK_FAIL.
    Fail,
}

/// The packets that replay an ended job, in order: every kept data and
/// warning chunk as it arrived, the last status, then the end: WORK_COMPLETE
/// with the result; WORK_EXCEPTION with the text for a client that asked
/// for exceptions (OPTION_REQ `exceptions`) and WORK_FAIL for one that did
/// not, as a live foreground client would have been told; WORK_FAIL for
/// every other end (failed, cancelled, timeout, dropped, dead). A payload
/// cut by the byte limit replays cut. `None` while the job is live: the
/// caller is then attached to the job itself.
pub fn replay(record: &Record, exceptions: bool) -> Option<Vec<ReplayPacket<'_>>> {
    if !record.state().is_final() {
        return None;
    }
    let mut packets: Vec<ReplayPacket<'_>> = record
        .chunks()
        .iter()
        .map(|chunk| match chunk.kind() {
            ChunkKind::Data => ReplayPacket::Data(chunk.bytes()),
            ChunkKind::Warning => ReplayPacket::Warning(chunk.bytes()),
        })
        .collect();
    if let Some(status) = record.status_numbers() {
        packets.push(ReplayPacket::Status(status.numerator, status.denominator));
    }
    packets.push(match record.state() {
        RecordState::Complete => ReplayPacket::Complete(record.result().unwrap_or_default()),
        RecordState::Exception if exceptions => ReplayPacket::Exception(record.error().unwrap_or_default()),
        _ => ReplayPacket::Fail,
    });
    Some(packets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{queued, worker};
    use crate::record::Limits;
    use crate::state::Outcome;

    #[test]
    fn replays_in_arrival_order_then_the_end() {
        let mut record = queued("H:h:1");
        assert_eq!(replay(&record, true), None);
        record.started(worker("w"), 5).unwrap();
        assert_eq!(replay(&record, true), None);
        record.data(b"a", Limits::default()).unwrap();
        record.status(1, 2).unwrap();
        record.warning(b"w", Limits::default()).unwrap();
        record.status(2, 2).unwrap();
        let mut failed = record.clone();
        let mut thrown = record.clone();
        record.ended(Outcome::Complete(b"r"), 9, Limits::default()).unwrap();
        assert_eq!(
            replay(&record, false).unwrap(),
            [
                ReplayPacket::Data(b"a"),
                ReplayPacket::Warning(b"w"),
                ReplayPacket::Status(2, 2),
                ReplayPacket::Complete(b"r")
            ]
        );
        thrown.ended(Outcome::Exception(b"boom"), 9, Limits::default()).unwrap();
        assert_eq!(replay(&thrown, true).unwrap().last(), Some(&ReplayPacket::Exception(b"boom")));
        assert_eq!(replay(&thrown, false).unwrap().last(), Some(&ReplayPacket::Fail));
        failed.ended(Outcome::Dropped, 9, Limits::default()).unwrap();
        assert_eq!(replay(&failed, true).unwrap().last(), Some(&ReplayPacket::Fail));
        let mut cancelled = queued("H:h:2");
        cancelled.ended(Outcome::Cancelled, 3, Limits::default()).unwrap();
        assert_eq!(replay(&cancelled, true).unwrap(), [ReplayPacket::Fail]);
    }
}
