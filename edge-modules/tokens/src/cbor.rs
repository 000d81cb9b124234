//! A small, bounded CBOR value model (RFC 8949) on top of `minicbor`'s
//! pull decoder and encoder.
//!
//! Decoding never panics, never pre-allocates from a length the input claims,
//! refuses nesting deeper than [`MAX_DEPTH`], indefinite-length items and
//! duplicate map keys (RFC 8949 §5.6: COSE and CWT need unique keys).
//! Encoding is deterministic (RFC 8949 §4.2.1: shortest heads, map keys
//! sorted by their encoded bytes).

use minicbor::data::Type;

use crate::TokenError;

/// Maximum nesting of arrays, maps and tags.
pub const MAX_DEPTH: usize = 16;

/// A decoded CBOR data item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// Major types 0 and 1: -2^64 ..= 2^64-1.
    Int(i128),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tag(u64, Box<Value>),
    Bool(bool),
    Null,
    Float(f64),
    /// `undefined` and other simple values.
    Simple(u8),
}

const MALFORMED: TokenError = TokenError::Malformed("invalid CBOR");

fn err(_: minicbor::decode::Error) -> TokenError {
    MALFORMED
}

/// Decode exactly one item spanning all of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, TokenError> {
    let mut dec = minicbor::Decoder::new(bytes);
    let value = decode_item(&mut dec, 0)?;
    if dec.position() != bytes.len() {
        return Err(TokenError::Malformed("trailing bytes after CBOR item"));
    }
    Ok(value)
}

fn decode_item(dec: &mut minicbor::Decoder<'_>, depth: usize) -> Result<Value, TokenError> {
    if depth > MAX_DEPTH {
        return Err(TokenError::Malformed("CBOR nested too deeply"));
    }
    let remaining = dec.input().len().saturating_sub(dec.position());
    Ok(match dec.datatype().map_err(err)? {
        Type::Bool => Value::Bool(dec.bool().map_err(err)?),
        Type::Null => {
            dec.null().map_err(err)?;
            Value::Null
        }
        Type::Undefined => {
            dec.undefined().map_err(err)?;
            Value::Simple(23)
        }
        Type::Simple => Value::Simple(dec.simple().map_err(err)?),
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => Value::Int(i128::from(dec.int().map_err(err)?)),
        Type::F16 => {
            // minicbor decodes half floats only with its `half` feature:
            // read the head byte 0xf9 and 2 bytes ourselves.
            let pos = dec.position();
            let bits = dec.input().get(pos + 1..pos + 3).ok_or(MALFORMED)?;
            dec.set_position(pos + 3);
            Value::Float(half_to_f64(u16::from_be_bytes([bits[0], bits[1]])))
        }
        Type::F32 => Value::Float(f64::from(dec.f32().map_err(err)?)),
        Type::F64 => Value::Float(dec.f64().map_err(err)?),
        Type::Bytes => Value::Bytes(dec.bytes().map_err(err)?.to_vec()),
        Type::String => Value::Text(dec.str().map_err(err)?.to_owned()),
        Type::Array => {
            let len = dec.array().map_err(err)?.ok_or(MALFORMED)?;
            // Every item takes at least one byte: a longer claimed length is
            // a lie, refuse it before looping.
            if len > remaining as u64 {
                return Err(MALFORMED);
            }
            let mut items = Vec::new();
            for _ in 0..len {
                items.push(decode_item(dec, depth + 1)?);
            }
            Value::Array(items)
        }
        Type::Map => {
            let len = dec.map().map_err(err)?.ok_or(MALFORMED)?;
            if len.saturating_mul(2) > remaining as u64 {
                return Err(MALFORMED);
            }
            let mut entries: Vec<(Value, Value)> = Vec::new();
            for _ in 0..len {
                let key = decode_item(dec, depth + 1)?;
                if entries.iter().any(|(k, _)| *k == key) {
                    return Err(TokenError::Malformed("duplicate CBOR map key"));
                }
                let value = decode_item(dec, depth + 1)?;
                entries.push((key, value));
            }
            Value::Map(entries)
        }
        Type::Tag => {
            let tag = dec.tag().map_err(err)?.as_u64();
            Value::Tag(tag, Box::new(decode_item(dec, depth + 1)?))
        }
        Type::BytesIndef | Type::StringIndef | Type::ArrayIndef | Type::MapIndef => {
            return Err(TokenError::Malformed(
                "indefinite-length CBOR is not accepted",
            ));
        }
        Type::Break | Type::Unknown(_) => return Err(MALFORMED),
    })
}

/// IEEE 754 binary16 to f64 (RFC 8949 Appendix D).
fn half_to_f64(half: u16) -> f64 {
    let exp = (half >> 10) & 0x1f;
    let mant = f64::from(half & 0x3ff);
    let value = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (mant + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    if half & 0x8000 != 0 { -value } else { value }
}

/// Encode deterministically (RFC 8949 §4.2.1).
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

fn encode_into(value: &Value, out: &mut Vec<u8>) {
    let mut enc = minicbor::Encoder::new(&mut *out);
    // Writing to a Vec cannot fail: the results are Infallible.
    match value {
        Value::Int(i) => {
            if let Ok(int) = minicbor::data::Int::try_from(*i) {
                let _ = enc.int(int);
            } else {
                // Outside CBOR's integer range: only reachable through a bug
                // in this crate's own encoders, which never build such values.
                unreachable!("integer {i} outside the CBOR range");
            }
        }
        Value::Bytes(b) => {
            let _ = enc.bytes(b);
        }
        Value::Text(s) => {
            let _ = enc.str(s);
        }
        Value::Array(items) => {
            let _ = enc.array(items.len() as u64);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            let _ = enc.map(entries.len() as u64);
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                entries.iter().map(|(k, v)| (encode(k), v)).collect();
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in encoded {
                out.extend_from_slice(&key);
                encode_into(value, out);
            }
        }
        Value::Tag(tag, inner) => {
            let _ = enc.tag(minicbor::data::Tag::new(*tag));
            encode_into(inner, out);
        }
        Value::Bool(b) => {
            let _ = enc.bool(*b);
        }
        Value::Null => {
            let _ = enc.null();
        }
        Value::Float(f) => {
            let _ = enc.f64(*f);
        }
        Value::Simple(s) => {
            let _ = enc.simple(*s);
        }
    }
}

impl Value {
    /// The entry of a map with an integer key.
    pub(crate) fn map_get(entries: &[(Value, Value)], key: i128) -> Option<&Value> {
        entries
            .iter()
            .find(|(k, _)| *k == Value::Int(key))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_keys() {
        let v = Value::Map(vec![
            (Value::Int(-1), Value::Text("a".into())),
            (Value::Int(312), Value::Bytes(vec![1, 2])),
            (
                Value::Int(1),
                Value::Array(vec![Value::Int(-70000), Value::Bool(true)]),
            ),
        ]);
        let bytes = encode(&v);
        // Keys in bytewise order: 1 (0x01), 312 (0x19 0x01 0x38), -1 (0x20).
        assert_eq!(bytes[1], 0x01);
        let back = decode(&bytes).unwrap();
        let Value::Map(entries) = back else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(
            Value::map_get(&entries, 312),
            Some(&Value::Bytes(vec![1, 2]))
        );
    }

    #[test]
    fn refuses_bad_input() {
        // Nesting: 100 one-element arrays.
        let mut deep = vec![0x81; 100];
        deep.push(0x00);
        assert!(decode(&deep).is_err());
        // Duplicate keys.
        assert!(decode(&[0xa2, 0x01, 0x00, 0x01, 0x00]).is_err());
        // Indefinite array.
        assert!(decode(&[0x9f, 0x01, 0xff]).is_err());
        // Length lies: array of 2^32 items in 6 bytes.
        assert!(decode(&[0x9a, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
        // Byte string longer than the input.
        assert!(decode(&[0x5a, 0x00, 0x10, 0x00, 0x00]).is_err());
        // Trailing bytes.
        assert!(decode(&[0x00, 0x00]).is_err());
        // Invalid UTF-8.
        assert!(decode(&[0x62, 0xff, 0xfe]).is_err());
        // Empty.
        assert!(decode(&[]).is_err());
        // Half floats (RFC 8949 Appendix A).
        assert_eq!(decode(&[0xf9, 0x3e, 0x00]).unwrap(), Value::Float(1.5));
        assert_eq!(decode(&[0xf9, 0x7b, 0xff]).unwrap(), Value::Float(65504.0));
        assert_eq!(
            decode(&[0xf9, 0x00, 0x01]).unwrap(),
            Value::Float(5.960464477539063e-8)
        );
        assert_eq!(decode(&[0xf9, 0xc4, 0x00]).unwrap(), Value::Float(-4.0));
        assert!(decode(&[0xf9, 0x3e]).is_err());
        // Smallest and largest integers.
        assert_eq!(
            decode(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Value::Int(-(1i128 << 64))
        );
    }

    #[test]
    fn never_panics_on_short_garbage() {
        // Every 1- and 2-byte input, and 3-byte inputs over a set of heads.
        for a in 0..=255u8 {
            let _ = decode(&[a]);
            for b in 0..=255u8 {
                let _ = decode(&[a, b]);
                for c in [0x00, 0x18, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xff] {
                    let _ = decode(&[a, b, c]);
                }
            }
        }
    }
}
