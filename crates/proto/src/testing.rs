//! Generators and helpers shared by this crate's property tests.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::codec::{Decoder, Frame};
use crate::packet::{Magic, PacketType};

/// A NUL-free field of up to 20 bytes.
pub fn field() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(1u8..=255, 0..20).prop_map(Bytes::from)
}

/// Opaque data of up to 40 bytes, NULs included.
pub fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
}

/// Decodes exactly one binary packet from `buf`.
pub fn decode_one(buf: &mut BytesMut) -> (Magic, PacketType, Bytes) {
    match Decoder::default().decode(buf) {
        Ok(Some(Frame::Packet { magic, kind, body })) => (magic, kind, body),
        other => panic!("expected one packet, got {other:?}"),
    }
}
