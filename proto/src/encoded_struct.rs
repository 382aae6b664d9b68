//! A `google.protobuf.Struct` field held as its encoded bytes.
//!
//! A tool's `input_schema` is a JSON Schema; decoded, prost holds it as a
//! tree of `BTreeMap`s (a few KB for a 500-byte schema), and the registry
//! holds one per tool of every agent although it never reads inside it. On
//! the wire an embedded message and a `bytes` field are encoded alike, so
//! holding the message's own encoding changes nothing any client sees: the
//! same bytes come in and go out, and a reader that wants the tree decodes
//! it with [`EncodedStruct::decode_struct`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint};
use prost::{DecodeError, Message};
use prost_types::Struct;

/// `Struct.fields`: the only field of a `Struct`.
const FIELDS_TAG: u32 = 1;

/// A `google.protobuf.Struct` kept encoded (see the module docs).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncodedStruct {
    bytes: Bytes,
}

// === impl EncodedStruct ===

impl EncodedStruct {
    /// The encoding of `value`.
    ///
    /// ```
    /// use switchboard_proto::EncodedStruct;
    /// use switchboard_proto::prost_types::{Struct, Value, value::Kind};
    ///
    /// let object = Value { kind: Some(Kind::StringValue("object".into())) };
    /// let schema = Struct { fields: [("type".to_owned(), object)].into_iter().collect() };
    /// let encoded = EncodedStruct::from_struct(&schema);
    /// assert_eq!(encoded.decode_struct().unwrap(), schema);
    /// ```
    pub fn from_struct(value: &Struct) -> Self {
        EncodedStruct { bytes: value.encode_to_vec().into() }
    }

    /// A value holding `bytes` as they came on the wire, unchecked until
    /// [`decode_struct`](Self::decode_struct) reads them.
    pub fn from_encoded(bytes: Bytes) -> Self {
        EncodedStruct { bytes }
    }

    /// The struct these bytes encode; an error when they do not decode.
    pub fn decode_struct(&self) -> Result<Struct, DecodeError> {
        Struct::decode(self.bytes.clone())
    }

    /// The encoded bytes, as on the wire (without the field's length).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Struct> for EncodedStruct {
    fn from(value: Struct) -> Self {
        EncodedStruct::from_struct(&value)
    }
}

impl std::fmt::Debug for EncodedStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decode_struct() {
            Ok(value) => value.fmt(f),
            Err(_) => write!(f, "EncodedStruct({} undecodable bytes)", self.bytes.len()),
        }
    }
}

impl Message for EncodedStruct {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag != FIELDS_TAG {
            // What prost's own `Struct` does with a field it does not know.
            return prost::encoding::skip_field(wire_type, tag, buf, ctx);
        }
        // prost's own reading of a length-delimited value: wire type, length
        // and bounds checked (a slice of `buf`, copied below).
        let mut value = Bytes::new();
        prost::encoding::bytes::merge(wire_type, &mut value, buf, ctx)?;
        // Appending to the buffer this value already owns is amortised O(1):
        // `BytesMut::from` takes a uniquely held buffer back without a copy.
        let mut bytes = BytesMut::from(std::mem::take(&mut self.bytes));
        bytes.reserve(value.len() + 15);
        encode_key(tag, wire_type, &mut bytes);
        encode_varint(value.len() as u64, &mut bytes);
        bytes.put_slice(&value);
        self.bytes = bytes.freeze();
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use prost_types::value::Kind;
    use prost_types::{ListValue, Value};

    use super::*;
    use crate::v1::Tool;

    fn schema() -> Struct {
        let text = |s: &str| Value { kind: Some(Kind::StringValue(s.to_owned())) };
        let required = Value { kind: Some(Kind::ListValue(ListValue { values: vec![text("a")] })) };
        Struct {
            fields: [("type".to_owned(), text("object")), ("required".to_owned(), required)]
                .into_iter()
                .collect(),
        }
    }

    /// The wire is what `Struct` would send: a client decoding the field as
    /// a `Struct` gets the tree back, and re-encoding gives the same bytes.
    #[test]
    fn round_trips_through_the_wire() {
        let tool = Tool {
            name: "t".into(),
            input_schema: Some(EncodedStruct::from_struct(&schema())),
            ..Tool::default()
        };
        let wire = tool.encode_to_vec();
        let decoded = Tool::decode(wire.as_slice()).unwrap();
        assert_eq!(decoded.input_schema.as_ref().unwrap().decode_struct().unwrap(), schema());
        assert_eq!(decoded.encode_to_vec(), wire);
    }

    #[test]
    fn an_undecodable_schema_is_an_error_when_read() {
        // Field 1 holding bytes that are not a map entry.
        let broken = EncodedStruct { bytes: Bytes::from_static(&[0x0a, 0x02, 0xff, 0xff]) };
        assert!(broken.decode_struct().is_err());
        let tool = Tool { input_schema: Some(broken), ..Tool::default() };
        let decoded = Tool::decode(tool.encode_to_vec().as_slice()).unwrap();
        assert!(decoded.input_schema.unwrap().decode_struct().is_err());
    }

    #[test]
    fn a_truncated_field_is_a_decode_error() {
        // Tool.input_schema (field 6) of 3 bytes holding a field 1 that claims 9.
        let wire = [0x32, 0x03, 0x0a, 0x09, 0x00];
        assert!(Tool::decode(wire.as_slice()).is_err());
    }
}
