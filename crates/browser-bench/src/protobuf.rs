//! Just enough of the protobuf wire format to write a message: fields in the order they
//! are added, each nested message sized before it is written, and large payloads written
//! straight into the output when it is encoded, so a model's weights are copied once.

use crate::BenchError;

/// Writes a payload's bytes into the output; it must write exactly the length declared.
type WritePayload<'a> = Box<dyn Fn(&mut Vec<u8>) -> Result<(), BenchError> + 'a>;

/// One field's value, by wire type.
enum Value<'a> {
    /// Wire type 0: `int32`, `int64`, `uint64`, `bool`, enums.
    Varint(u64),
    /// Wire type 5: `float`, as its bits.
    Fixed32(u32),
    /// Wire type 2: `bytes`, `string`.
    Bytes(Vec<u8>),
    /// Wire type 2, written by a closure when the message is encoded.
    Payload(usize, WritePayload<'a>),
    /// Wire type 2: a nested message.
    Message(Message<'a>),
}

/// A protobuf message: its fields, in order.
#[derive(Default)]
pub(crate) struct Message<'a> {
    fields: Vec<(u32, Value<'a>)>,
}

impl<'a> Message<'a> {
    /// An empty message.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an integer field (`int64` as two's complement, as protobuf does).
    pub(crate) fn int(mut self, field: u32, value: i64) -> Self {
        self.fields.push((field, Value::Varint(value as u64)));
        self
    }

    /// Adds a `float` field.
    pub(crate) fn float(mut self, field: u32, value: f32) -> Self {
        self.fields.push((field, Value::Fixed32(value.to_bits())));
        self
    }

    /// Adds a `string` field.
    pub(crate) fn string(self, field: u32, value: &str) -> Self {
        self.bytes(field, value.as_bytes().to_vec())
    }

    /// Adds a `bytes` field.
    pub(crate) fn bytes(mut self, field: u32, value: Vec<u8>) -> Self {
        self.fields.push((field, Value::Bytes(value)));
        self
    }

    /// Adds a `bytes` field of `len` bytes that `write` appends when the message is encoded.
    pub(crate) fn payload(
        mut self,
        field: u32,
        len: usize,
        write: impl Fn(&mut Vec<u8>) -> Result<(), BenchError> + 'a,
    ) -> Self {
        self.fields
            .push((field, Value::Payload(len, Box::new(write))));
        self
    }

    /// Adds a nested message.
    pub(crate) fn message(mut self, field: u32, value: Message<'a>) -> Self {
        self.fields.push((field, Value::Message(value)));
        self
    }

    /// The message's encoded length in bytes.
    pub(crate) fn encoded_len(&self) -> usize {
        self.fields
            .iter()
            .map(|(field, value)| {
                let key = varint_len(u64::from(field << 3));
                key + match value {
                    Value::Varint(v) => varint_len(*v),
                    Value::Fixed32(_) => 4,
                    Value::Bytes(bytes) => varint_len(bytes.len() as u64) + bytes.len(),
                    Value::Payload(len, _) => varint_len(*len as u64) + len,
                    Value::Message(message) => {
                        let len = message.encoded_len();
                        varint_len(len as u64) + len
                    }
                }
            })
            .sum()
    }

    /// The message's bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, BenchError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out)?;
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), BenchError> {
        for (field, value) in &self.fields {
            let wire_type = match value {
                Value::Varint(_) => 0,
                Value::Fixed32(_) => 5,
                Value::Bytes(_) | Value::Payload(..) | Value::Message(_) => 2,
            };
            put_varint(out, u64::from(field << 3 | wire_type));
            match value {
                Value::Varint(v) => put_varint(out, *v),
                Value::Fixed32(bits) => out.extend_from_slice(&bits.to_le_bytes()),
                Value::Bytes(bytes) => {
                    put_varint(out, bytes.len() as u64);
                    out.extend_from_slice(bytes);
                }
                Value::Payload(len, write) => {
                    put_varint(out, *len as u64);
                    let start = out.len();
                    write(out)?;
                    if out.len() - start != *len {
                        return Err(BenchError::Export(format!(
                            "field {field}: {} bytes written where {len} were declared",
                            out.len() - start
                        )));
                    }
                }
                Value::Message(message) => {
                    put_varint(out, message.encoded_len() as u64);
                    message.write(out)?;
                }
            }
        }
        Ok(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_encode_as_the_protobuf_documentation_shows() {
        // The encoding guide's examples: field 1 = 150 is `08 96 01`; field 2 = "testing"
        // is `12 07 74 65 73 74 69 6e 67`; a message holding the first as field 3 is
        // `1a 03 08 96 01`.
        let varint = Message::new().int(1, 150);
        assert_eq!(varint.encode().unwrap(), [0x08, 0x96, 0x01]);
        let string = Message::new().string(2, "testing");
        assert_eq!(
            string.encode().unwrap(),
            [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]
        );
        let nested = Message::new().message(3, Message::new().int(1, 150));
        assert_eq!(nested.encode().unwrap(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
    }

    #[test]
    fn negative_integers_floats_and_payloads_encode_in_full() {
        // -1 as int64 is ten bytes of varint; 1.0f32 is 0x3f800000, little-endian.
        let message = Message::new()
            .int(1, -1)
            .float(2, 1.0)
            .payload(3, 2, |out| {
                out.extend_from_slice(&[7, 8]);
                Ok(())
            });
        let bytes = message.encode().unwrap();
        assert_eq!(bytes.len(), message.encoded_len());
        assert_eq!(
            bytes,
            [
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x15, 0x00, 0x00,
                0x80, 0x3f, 0x1a, 0x02, 7, 8
            ]
        );
    }

    #[test]
    fn a_payload_of_the_wrong_length_is_refused() {
        let message = Message::new().payload(1, 3, |out| {
            out.push(1);
            Ok(())
        });
        assert!(message.encode().is_err());
    }

    #[test]
    fn varint_lengths_match_what_is_written() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }
}
