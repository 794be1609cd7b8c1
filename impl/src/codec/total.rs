//! Total decoding: a payload's bytes are deserialised so that no length prefix can make the
//! process allocate more than the bytes that follow it.
//!
//! # Why bincode alone is not enough
//!
//! bincode 2.0.1, through serde, allocates on a length it has read before it checks that the
//! bytes are there:
//! - a `String` (and a `Vec<u8>`) is decoded by `Vec<u8>::decode`, which runs
//!   `vec![0u8; len]` and only then reads `len` bytes: a 25-byte frame declaring a string of
//!   2^40 bytes aborts the process;
//! - a sequence's or a map's length goes to serde's visitor as its size hint, and `Vec`'s
//!   visitor reserves up to 1 MiB on it before it decodes the first element.
//!
//! Its one guard, `with_limit`, charges the claims of its `Decode` impls against a constant: a
//! string claims its length, but a sequence read through serde claims nothing for its length,
//! and an integer claims its in-memory size (16 bytes for a `u128` that takes one on the wire),
//! so no limit both refuses every forged length and accepts every valid payload. Its `Decoder`
//! trait is sealed, and its borrowing serde decoder (whose strings are slices checked against
//! the input) only reads a plain slice, whose position it does not share.
//!
//! # How
//!
//! The payload is read through [`Rest`], a bincode [`Reader`] whose unread bytes sit in a
//! [`Cell`] that [`Guard`] shares. `Guard` wraps bincode's serde deserializer (and, through
//! [`Wrap`], every visitor, element seed, map, enum and variant below it, so no nested value
//! escapes it) and changes two things:
//! - a string or byte string is read by the guard itself: its length prefix (bincode's format:
//!   a `u64`, as `decode_slice_len` reads it) is decoded by bincode, compared with the bytes
//!   left, and only then are the bytes taken from the input and handed to the visitor, which
//!   copies exactly them;
//! - a sequence or map whose declared length exceeds the bytes left is refused in the visitor,
//!   before serde's visitor sees it, and the visitor is then given no size hint, so that it
//!   grows its collection as elements are decoded rather than reserving on a promise.
//!
//! So every allocation made while decoding is either a copy of bytes present in the input
//! (strings) or a collection holding elements already decoded from it, with the usual doubling
//! slack: what the input justifies. Integers, enums and options allocate nothing. The refusal
//! is recorded beside the input, so the caller reports it as a typed
//! [`DecodeError::LengthPastEnd`](super::DecodeError::LengthPastEnd), not as a string.
//!
//! Every element of the types this crate sends or stores (entries, commands, strings) takes at
//! least one byte, so a length above the bytes left can never be valid. (A sequence of a
//! zero-sized type, which takes no bytes, would be refused past that length: none is used.)

use std::cell::Cell;
use std::fmt;

use bincode::de::read::Reader;
use bincode::error::DecodeError as BincodeError;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

/// A length prefix that claims more than the input holds after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LengthPastEnd {
    pub(super) declared: u64,
    pub(super) left: usize,
}

/// The bytes not yet read, and the refusal of a length, if one was refused.
struct Input<'s> {
    rest: Cell<&'s [u8]>,
    refused: Cell<Option<LengthPastEnd>>,
}

impl<'s> Input<'s> {
    /// Takes `declared` bytes from the input, or records and returns a refusal.
    fn take<E: de::Error>(&self, declared: u64) -> Result<&'s [u8], E> {
        let rest = self.rest.get();
        match usize::try_from(declared) {
            Ok(len) if len <= rest.len() => {
                let (taken, tail) = rest.split_at(len);
                self.rest.set(tail);
                Ok(taken)
            }
            _ => Err(self.refuse(declared)),
        }
    }

    /// Refuses a sequence or map of `declared` elements if fewer bytes than that are left.
    fn check<E: de::Error>(&self, declared: Option<usize>) -> Result<(), E> {
        match declared {
            Some(len) if len > self.rest.get().len() => Err(self.refuse(len as u64)),
            _ => Ok(()),
        }
    }

    fn refuse<E: de::Error>(&self, declared: u64) -> E {
        let refusal = LengthPastEnd {
            declared,
            left: self.rest.get().len(),
        };
        self.refused.set(Some(refusal));
        E::custom(format_args!(
            "a length of {declared} with {} bytes left",
            refusal.left
        ))
    }
}

/// Deserialises all of `payload` with bincode's standard configuration, totally (see the
/// module documentation). Returns the value and how many bytes it took, or bincode's error, or
/// the refusal of a length.
pub(super) fn decode<T: DeserializeOwned>(
    payload: &[u8],
) -> Result<(T, usize), Result<BincodeError, LengthPastEnd>> {
    let input = Input {
        rest: Cell::new(payload),
        refused: Cell::new(None),
    };
    let mut decoder =
        bincode::serde::OwnedSerdeDecoder::from_reader(Rest(&input.rest), super::bincode_config());
    let result = T::deserialize(Guard {
        inner: decoder.as_deserializer(),
        input: &input,
    });
    match (result, input.refused.get()) {
        (_, Some(refusal)) => Err(Err(refusal)),
        (Err(e), None) => Err(Ok(e)),
        (Ok(value), None) => Ok((value, payload.len() - input.rest.get().len())),
    }
}

/// bincode's view of the input: reads take from the front of the shared unread bytes.
struct Rest<'c, 's>(&'c Cell<&'s [u8]>);

impl Reader for Rest<'_, '_> {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), BincodeError> {
        let rest = self.0.get();
        let (head, tail) =
            rest.split_at_checked(bytes.len())
                .ok_or(BincodeError::UnexpectedEnd {
                    additional: bytes.len() - rest.len(),
                })?;
        bytes.copy_from_slice(head);
        self.0.set(tail);
        Ok(())
    }

    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.get().get(..n)
    }

    fn consume(&mut self, n: usize) {
        self.0.set(self.0.get().get(n..).unwrap_or_default());
    }
}

/// bincode's deserializer `inner`, with the lengths it reads checked against `input`.
struct Guard<'c, 's, D> {
    inner: D,
    input: &'c Input<'s>,
}

impl<'c, 's, D> Guard<'c, 's, D> {
    fn wrap<V>(&self, visitor: V, declared: bool) -> Wrap<'c, 's, V> {
        Wrap {
            visitor,
            input: self.input,
            declared,
        }
    }
}

impl<'de, 'c, 's, D: Deserializer<'de>> Guard<'c, 's, D> {
    /// Reads a length prefix, then that many bytes, checked against what is left.
    fn bytes(self) -> Result<&'s [u8], D::Error> {
        let declared = self.inner.deserialize_u64(Length)?;
        self.input.take(declared)
    }
}

/// Visits the `u64` length prefix of a string.
struct Length;

impl Visitor<'_> for Length {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a length")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
}

/// Methods that read no nested value hand the visitor to bincode as it is.
macro_rules! forward_plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<'_, '_, D> {
    type Error = D::Error;

    forward_plain! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let bytes = self.bytes()?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Self::Error::custom(format_args!("invalid UTF-8 in a string: {e}")))?;
        visitor.visit_str(text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bytes(self.bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_option(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, true);
        self.inner.deserialize_seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, true);
        self.inner.deserialize_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor, false);
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor whose nested values go through the guard. `declared`: the length its sequence or
/// map reports came from the input (a `Vec`, a map), not from the type (a tuple, a struct), and
/// is checked against the bytes left.
struct Wrap<'c, 's, V> {
    visitor: V,
    input: &'c Input<'s>,
    declared: bool,
}

impl<'c, 's, V> Wrap<'c, 's, V> {
    fn guard<D>(&self, inner: D) -> Guard<'c, 's, D> {
        Guard {
            inner,
            input: self.input,
        }
    }
}

/// Visits of plain values go to the wrapped visitor as they are.
macro_rules! visit_plain {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, '_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    visit_plain! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        let guarded = self.guard(inner);
        self.visitor.visit_some(guarded)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        let guarded = self.guard(inner);
        self.visitor.visit_newtype_struct(guarded)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        if self.declared {
            self.input.check(access.size_hint())?;
        }
        self.visitor.visit_seq(Elements {
            access,
            input: self.input,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        if self.declared {
            self.input.check(access.size_hint())?;
        }
        self.visitor.visit_map(Elements {
            access,
            input: self.input,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_enum(Elements {
            access,
            input: self.input,
        })
    }
}

/// A sequence's, map's, enum's or variant's access, whose values go through the guard. It
/// gives no size hint: a collection grows as its elements are decoded.
struct Elements<'c, 's, A> {
    access: A,
    input: &'c Input<'s>,
}

impl<'c, 's, A> Elements<'c, 's, A> {
    fn seed<S>(&self, seed: S) -> Seed<'c, 's, S> {
        Seed {
            seed,
            input: self.input,
        }
    }

    fn wrap<V>(&self, visitor: V) -> Wrap<'c, 's, V> {
        Wrap {
            visitor,
            input: self.input,
            declared: false,
        }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<'_, '_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.seed(seed);
        self.access.next_element_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Elements<'_, '_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.seed(seed);
        self.access.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seed = self.seed(seed);
        self.access.next_value_seed(seed)
    }
}

impl<'de, 'c, 's, A: EnumAccess<'de>> EnumAccess<'de> for Elements<'c, 's, A> {
    type Error = A::Error;
    type Variant = Elements<'c, 's, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        // The variant's index is an integer: it allocates nothing and needs no guard.
        let (index, access) = self.access.variant_seed(seed)?;
        let variant = Elements {
            access,
            input: self.input,
        };
        Ok((index, variant))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Elements<'_, '_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.access.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.seed(seed);
        self.access.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.access.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.access.struct_variant(fields, visitor)
    }
}

/// An element's seed, which deserialises through the guard.
struct Seed<'c, 's, S> {
    seed: S,
    input: &'c Input<'s>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, '_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Guard {
            inner,
            input: self.input,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;
    use crate::kv::{KvCommand, KvOp, KvRequest, Session};
    use crate::message::{AppendEntries, Envelope, Message};
    use crate::types::Entry;

    /// bincode's own decoding, under a limit that a payload of up to 256 bytes cannot reach
    /// with a valid value (16 bytes claimed per byte at most) but a forged length does.
    fn reference<T: DeserializeOwned>(payload: &[u8]) -> Option<(T, usize)> {
        let config = bincode::config::standard().with_limit::<{ 1 << 16 }>();
        bincode::serde::decode_from_slice(payload, config).ok()
    }

    fn envelope(keys: Vec<String>, values: Vec<String>) -> Envelope<KvCommand> {
        let entries = keys
            .into_iter()
            .zip(values)
            .enumerate()
            .map(|(i, (key, value))| Entry {
                term: i as u64 * 1_000,
                command: KvCommand {
                    time: u64::MAX - i as u64,
                    request: KvRequest::InSession {
                        session: Session {
                            id: i as u64,
                            nonce: u64::MAX - i as u64,
                        },
                        seq: i as u64,
                        op: KvOp::Append { key, value },
                    },
                },
            })
            .collect();
        Envelope {
            from: 1,
            to: 2,
            msg: Message::AppendEntries(AppendEntries {
                term: 7,
                prev_log_index: 300,
                prev_log_term: 70_000,
                entries,
                leader_commit: 1 << 40,
            }),
        }
    }

    fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, super::super::bincode_config()).unwrap()
    }

    proptest! {
        /// The guard changes what is allocated, never what is decoded: on valid payloads with
        /// a few bytes overwritten, it decodes exactly what bincode decodes, to the same byte,
        /// and refuses exactly what bincode refuses (a length past the end included).
        #[test]
        fn decodes_exactly_what_bincode_decodes(
            keys in proptest::collection::vec(".{0,6}", 0..4),
            values in proptest::collection::vec(".{0,6}", 0..4),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let mut payload = encoded(&envelope(keys, values));
            for (at, byte) in &edits {
                let at = at.index(payload.len());
                payload[at] = *byte;
            }
            let ours = decode::<Envelope<KvCommand>>(&payload).ok();
            prop_assert_eq!(ours, reference::<Envelope<KvCommand>>(&payload));
        }
    }

    /// The guard's paths that the crate's own types do not reach (an option, a newtype struct,
    /// a map, a tuple variant), each holding a string that claims 1 MiB with one byte left: each
    /// is refused at the length. Unguarded, bincode allocates the 1 MiB and then fails.
    #[test]
    fn a_length_past_the_end_is_refused_inside_an_option_a_newtype_a_map_and_a_tuple_variant() {
        #[derive(serde::Deserialize, Debug)]
        struct Newtype(#[allow(dead_code)] String);
        #[derive(serde::Deserialize, Debug)]
        enum E {
            T(#[allow(dead_code)] u8, #[allow(dead_code)] String),
        }
        let claim: Vec<u8> = {
            let mut v = vec![252u8];
            v.extend_from_slice(&(1u32 << 20).to_le_bytes());
            v.push(b'x');
            v
        };
        let with = |prefix: &[u8]| [prefix, &claim[..]].concat();
        let refused = |r: Result<(), Result<BincodeError, LengthPastEnd>>, what: &str| {
            assert!(
                matches!(r, Err(Err(LengthPastEnd { declared, .. })) if declared == 1 << 20),
                "{what}: {r:?}"
            );
        };
        refused(decode::<Option<String>>(&with(&[1])).map(|_| ()), "option");
        refused(decode::<Newtype>(&with(&[])).map(|_| ()), "newtype struct");
        refused(
            decode::<std::collections::BTreeMap<String, String>>(&with(&[1])).map(|_| ()),
            "map key",
        );
        refused(decode::<E>(&with(&[0, 7])).map(|_| ()), "tuple variant");
    }

    #[test]
    fn a_sequence_may_declare_exactly_the_bytes_left() {
        // A `Vec<u8>` of 3 elements (a sequence of u8 through serde), then its 3 bytes.
        let payload = [3, 10, 20, 30];
        assert_eq!(
            decode::<Vec<u8>>(&payload).ok(),
            Some((vec![10, 20, 30], 4))
        );
        assert!(matches!(
            decode::<Vec<u8>>(&payload[..3]),
            Err(Err(LengthPastEnd {
                declared: 3,
                left: 2
            }))
        ));
    }
}
