//! The Gearman wire protocol, as spoken by gearmand 1.1.x.
//!
//! * [`packet`]: packet type numbers, magic and the per-type body layout.
//! * [`codec`]: a streaming frame decoder that never panics and never
//!   allocates more than the configured maximum packet size.
//! * [`request`] / [`response`]: typed packets in each direction, with
//!   parsing from a body and encoding to bytes.
//! * [`admin`]: the admin text protocol that shares the port.
//!
//! No I/O happens here: callers feed bytes in and take bytes out.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod codec;
pub mod packet;
pub mod request;
pub mod response;
#[cfg(test)]
mod testing;

pub use codec::{DecodeError, Decoder, Frame, DEFAULT_MAX_PACKET_SIZE, MAX_TEXT_LINE};
pub use packet::{Magic, PacketType, Priority, HEADER_LEN};
pub use request::{ParseError, Request, SubmitMode};
pub use response::Response;
