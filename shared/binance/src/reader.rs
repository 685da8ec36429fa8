//! A fast JSON reader for the common shape of stream frames, with serde_json as the authority.
//!
//! On the 2-core machines this project runs on, serde_json needs about 1 µs just to scan one
//! `ORDER_TRADE_UPDATE`, which is the whole budget for decoding it. This reader handles only what Binance
//! sends on the hot path: objects, arrays, strings without escapes, integers, booleans and `null`. For
//! anything else (an escape, a float, a control character in a string, an integer beyond 64 bits, a data
//! error such as a missing field) it gives up, and the caller reads the text again with serde_json, which
//! then either succeeds or produces the error the user sees.
//!
//! It comes in three forms: a `serde::Deserializer` ([`from_str`]) that the derived wire types use as they
//! are, a field-by-field reader ([`read_object`]) for the wire struct of `ORDER_TRADE_UPDATE`, where
//! serde's generic visitor costs about a fifth of the time, and a [`Cursor`] for the hot path that reads
//! `ORDER_TRADE_UPDATE` straight into domain events (`crate::user::hot`): keys compared as one word
//! against the key expected next, strings scanned eight bytes at a time, decimals read from the bytes.
//!
//! Invariant: when this reader succeeds, serde_json would have produced the same value. Every construct
//! the reader is unsure about is refused rather than guessed; the tests compare both readers on every
//! fixture and on edited payloads.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;

use crate::scalar::{Scalar, digit_run, plain_decimal_prefix};

/// Nesting deeper than this is left to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Reads `T` from `text` through its `Deserialize` impl, or `None` when the text is outside what this
/// reader handles (the caller then reads it with serde_json).
pub(crate) fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Option<T> {
    let mut reader = Reader::new(text);
    let value = T::deserialize(&mut reader).ok()?;
    reader.finish().then_some(value)
}

/// Reads one JSON object field by field with `fields`, or `None` when the text is outside what this reader
/// handles or `fields` gives up.
pub(crate) fn read_object<'de, T>(
    text: &'de str,
    fields: impl FnOnce(&mut Object<'_, 'de>) -> Result<T, GiveUp>,
) -> Option<T> {
    let mut reader = Reader::new(text);
    let value = reader.object(fields).ok()?;
    reader.finish().then_some(value)
}

/// "Not handled here": the only error of this reader. It carries nothing because it is never shown.
#[derive(Debug)]
pub(crate) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        GiveUp
    }
}

/// A JSON integer as serde_json hands it to visitors.
enum Integer {
    /// Zero or positive.
    Unsigned(u64),
    /// Negative.
    Negative(i64),
}

/// The input and the position in it.
struct Reader<'de> {
    text: &'de str,
    bytes: &'de [u8],
    pos: usize,
    depth: u32,
}

impl<'de> Reader<'de> {
    fn new(text: &'de str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    /// Only whitespace may follow the value.
    fn finish(&mut self) -> bool {
        self.skip_whitespace();
        self.pos == self.bytes.len()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next significant byte, not consumed.
    #[inline(always)]
    fn peek(&mut self) -> Result<u8, GiveUp> {
        // Compact text first: no whitespace to skip.
        match self.bytes.get(self.pos) {
            Some(&b) if b > b' ' => Ok(b),
            _ => self.peek_after_whitespace(),
        }
    }

    /// [`Reader::peek`] when there is whitespace (or nothing) at the position.
    #[cold]
    #[inline(never)]
    fn peek_after_whitespace(&mut self) -> Result<u8, GiveUp> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied().ok_or(GiveUp)
    }

    /// Consumes `byte`, the next significant byte.
    #[inline]
    fn eat(&mut self, byte: u8) -> Result<(), GiveUp> {
        // Compact text first: the byte itself, with no whitespace before it.
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            return Ok(());
        }
        if self.peek()? != byte {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    #[inline]
    fn literal(&mut self, literal: &[u8]) -> Result<(), GiveUp> {
        let end = self.pos + literal.len();
        if self.bytes.get(self.pos..end) == Some(literal) {
            self.pos = end;
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    fn string(&mut self) -> Result<&'de str, GiveUp> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = plain_string_end(self.bytes, start).ok_or(GiveUp)?;
        self.pos = end + 1;
        // Both ends are ASCII quotes, so they are character boundaries.
        self.text.get(start..end).ok_or(GiveUp)
    }

    /// A JSON integer (`-?(0|[1-9][0-9]*)`) that fits 64 bits; fractions and exponents give up.
    #[inline]
    fn integer(&mut self) -> Result<Integer, GiveUp> {
        self.peek()?;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        let start = self.pos + usize::from(negative);
        let (mut value, end) = digit_run(self.bytes, start);
        let digits = end - start;
        let leading_zero = digits > 1 && self.bytes.get(start) == Some(&b'0');
        if digits == 0 || leading_zero {
            return Err(GiveUp);
        }
        if digits > 19 {
            // `digit_run` wraps beyond 19 digits; 20 may still fit.
            value = self
                .text
                .get(start..end)
                .and_then(|t| t.parse().ok())
                .ok_or(GiveUp)?;
        }
        self.pos = end;
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.pos) {
            return Err(GiveUp);
        }
        if negative {
            // serde_json gives `-0` as the float -0.0; leave it (and anything below i64::MIN) to it.
            let v = 0_i64
                .checked_sub_unsigned(value)
                .filter(|v| *v != 0)
                .ok_or(GiveUp)?;
            Ok(Integer::Negative(v))
        } else {
            Ok(Integer::Unsigned(value))
        }
    }

    /// Runs `inside` between `open` and `close`, counting the depth.
    #[inline]
    fn nested<T>(
        &mut self,
        open: u8,
        inside: impl FnOnce(&mut Self) -> Result<T, GiveUp>,
    ) -> Result<T, GiveUp> {
        self.eat(open)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let value = inside(self)?;
        self.depth -= 1;
        Ok(value)
    }

    /// Reads an object with `fields`, which must read every field (up to the closing brace).
    #[inline]
    fn object<T>(
        &mut self,
        fields: impl FnOnce(&mut Object<'_, 'de>) -> Result<T, GiveUp>,
    ) -> Result<T, GiveUp> {
        self.nested(b'{', |reader| {
            let mut object = Object {
                entries: Entries::new(reader),
            };
            let value = fields(&mut object)?;
            object.entries.closed.then_some(value).ok_or(GiveUp)
        })
    }
}

/// The index of the quote that ends the string whose text starts at `bytes[start]`, or `None` when a
/// backslash or a control character comes first (or nothing ends it). Eight bytes at a time while eight
/// are left.
#[inline]
fn plain_string_end(bytes: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = start;
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        // The classic "has a zero byte" test on `word ^ '"'`, `word ^ '\\'`, and "has a byte below
        // 0x20" on `word`. Each may also flag bytes after the first match (borrows run upwards), never
        // before it, so the lowest flag is the first special byte.
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let special = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & HIGH;
        if special != 0 {
            i += (special.trailing_zeros() / 8) as usize;
            return (bytes.get(i) == Some(&b'"')).then_some(i);
        }
        i += 8;
    }
    loop {
        match bytes.get(i) {
            Some(&b) if PLAIN[usize::from(b)] => i += 1,
            Some(b'"') => return Some(i),
            _ => return None,
        }
    }
}

/// Bytes that may appear in a string as they are: not a quote, a backslash or a control character.
static PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = false;
        b += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

impl<'de> Deserializer<'de> for &mut Reader<'de> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek()? {
            b'"' => visitor.visit_borrowed_str(self.string()?),
            b'-' | b'0'..=b'9' => match self.integer()? {
                Integer::Unsigned(v) => visitor.visit_u64(v),
                Integer::Negative(v) => visitor.visit_i64(v),
            },
            b't' => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            b'{' => self.nested(b'{', |reader| {
                let mut entries = Entries::new(reader);
                let value = visitor.visit_map(&mut entries)?;
                entries.closed.then_some(value).ok_or(GiveUp)
            }),
            b'[' => self.nested(b'[', |reader| {
                let mut entries = Entries::new(reader);
                let value = visitor.visit_seq(&mut entries)?;
                entries.closed.then_some(value).ok_or(GiveUp)
            }),
            _ => Err(GiveUp),
        }
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek()? {
            b't' | b'f' => self.deserialize_any(visitor),
            _ => Err(GiveUp),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_borrowed_str(self.string()?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek()? {
            b'[' => self.deserialize_any(visitor),
            _ => Err(GiveUp),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.peek()? {
            b'{' => self.deserialize_any(visitor),
            _ => Err(GiveUp),
        }
    }

    /// Objects only: serde_json also reads a struct from an array, which is left to it.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        self.deserialize_map(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        self.deserialize_any(visitor)
    }

    /// Newtypes include serde_json's `RawValue`, which only serde_json can produce.
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_char<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GiveUp> {
        Err(GiveUp)
    }

    // Integers: like serde_json, which hands every JSON integer to the visitor as u64 / i64.
    forward_to_deserialize_any! { i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 }
}

/// The entries of an object or the elements of an array; the opening bracket is consumed. The reader of
/// the whole must see `closed`: a visitor that stops early leaves the rest unread, which serde_json refuses.
struct Entries<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
    /// The closing bracket has been read.
    closed: bool,
}

impl<'r, 'de> Entries<'r, 'de> {
    fn new(reader: &'r mut Reader<'de>) -> Self {
        Entries {
            reader,
            first: true,
            closed: false,
        }
    }

    /// Moves past the separator before the next entry; `false` at the closing bracket `close`.
    #[inline]
    fn has_next(&mut self, close: u8) -> Result<bool, GiveUp> {
        if self.closed {
            return Ok(false);
        }
        let b = self.reader.peek()?;
        if b == close {
            self.reader.pos += 1;
            self.closed = true;
            return Ok(false);
        }
        if self.first {
            self.first = false;
        } else if b == b',' {
            self.reader.pos += 1;
            if self.reader.peek()? == close {
                // A trailing comma is not JSON.
                return Err(GiveUp);
            }
        } else {
            return Err(GiveUp);
        }
        Ok(true)
    }

    /// The next key of an object and its colon, or `None` at the closing brace.
    #[inline]
    fn next_key(&mut self) -> Result<Option<&'de str>, GiveUp> {
        if !self.has_next(b'}')? {
            return Ok(None);
        }
        let key = self.reader.string()?;
        self.reader.eat(b':')?;
        Ok(Some(key))
    }
}

impl<'de> MapAccess<'de> for &mut Entries<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GiveUp> {
        if !self.has_next(b'}')? {
            return Ok(None);
        }
        if self.reader.peek()? != b'"' {
            return Err(GiveUp);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GiveUp> {
        self.reader.eat(b':')?;
        seed.deserialize(&mut *self.reader)
    }
}

impl<'de> SeqAccess<'de> for &mut Entries<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GiveUp> {
        if !self.has_next(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// An object being read field by field: call [`Object::next_key`] until it returns `None`, and after each
/// key exactly one of the value readers.
///
/// The value readers accept Binance's usual encoding only (decimals as strings, ids and times as integers,
/// flags as booleans) and give up on anything else, including `null`; the serde path then decides.
pub(crate) struct Object<'r, 'de> {
    entries: Entries<'r, 'de>,
}

impl<'de> Object<'_, 'de> {
    /// The next key as bytes (for a `match` on byte patterns), or `None` after the last field.
    #[inline]
    pub(crate) fn next_key(&mut self) -> Result<Option<&'de [u8]>, GiveUp> {
        Ok(self.entries.next_key()?.map(str::as_bytes))
    }

    /// A string value, borrowed.
    #[inline]
    pub(crate) fn str(&mut self) -> Result<&'de str, GiveUp> {
        self.entries.reader.string()
    }

    /// A decimal written as a string.
    #[inline]
    pub(crate) fn decimal(&mut self) -> Result<Decimal, GiveUp> {
        Decimal::from_text(self.str()?).ok_or(GiveUp)
    }

    /// A non-negative integer.
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, GiveUp> {
        match self.entries.reader.integer()? {
            Integer::Unsigned(v) => Ok(v),
            Integer::Negative(_) => Err(GiveUp),
        }
    }

    /// An integer.
    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, GiveUp> {
        match self.entries.reader.integer()? {
            Integer::Unsigned(v) => i64::try_from(v).map_err(|_| GiveUp),
            Integer::Negative(v) => Ok(v),
        }
    }

    /// A boolean.
    #[inline]
    pub(crate) fn bool(&mut self) -> Result<bool, GiveUp> {
        let reader = &mut *self.entries.reader;
        match reader.peek()? {
            b't' => reader.literal(b"true").map(|()| true),
            b'f' => reader.literal(b"false").map(|()| false),
            _ => Err(GiveUp),
        }
    }

    /// A nested object, read with `fields`.
    #[inline]
    pub(crate) fn object<T>(
        &mut self,
        fields: impl FnOnce(&mut Object<'_, 'de>) -> Result<T, GiveUp>,
    ) -> Result<T, GiveUp> {
        self.entries.reader.object(fields)
    }

    /// Skips a value of a field that is not read (validating it like serde_json would).
    pub(crate) fn skip(&mut self) -> Result<(), GiveUp> {
        <IgnoredAny as de::Deserialize>::deserialize(&mut *self.entries.reader).map(drop)
    }
}

/// A cursor for a reader written by hand that maps fields straight to what it needs (the
/// `ORDER_TRADE_UPDATE` hot path), with the fewest steps per field: [`Cursor::open`] an object, then
/// [`Cursor::key`], exactly one value reader, and [`Cursor::more`], until `more` returns `false` at the
/// closing brace; [`Cursor::finish`] at the end. Same rules as [`Object`]: Binance's usual encoding only,
/// everything else gives up (the value readers named `opt_*` also take `null`, as serde does for an
/// optional field).
pub(crate) struct Cursor<'de> {
    reader: Reader<'de>,
}

impl<'de> Cursor<'de> {
    pub(crate) fn new(text: &'de str) -> Self {
        Cursor {
            reader: Reader::new(text),
        }
    }

    /// Consumes `{`; `false` when the object is empty (its `}` is consumed too).
    #[inline]
    pub(crate) fn open(&mut self) -> Result<bool, GiveUp> {
        let r = &mut self.reader;
        r.eat(b'{')?;
        r.depth += 1;
        if r.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        if r.peek()? == b'}' {
            r.pos += 1;
            r.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a value: `true` past a comma (a key must follow), `false` past the closing brace.
    #[inline(always)]
    pub(crate) fn more(&mut self) -> Result<bool, GiveUp> {
        let r = &mut self.reader;
        match r.peek()? {
            b',' => {
                r.pos += 1;
                Ok(true)
            }
            b'}' => {
                r.pos += 1;
                r.depth -= 1;
                Ok(false)
            }
            _ => Err(GiveUp),
        }
    }

    /// A key (without escapes) and its colon, as bytes.
    #[inline]
    pub(crate) fn key(&mut self) -> Result<&'de [u8], GiveUp> {
        let r = &mut self.reader;
        r.eat(b'"')?;
        let start = r.pos;
        let i = plain_string_end(r.bytes, start).ok_or(GiveUp)?;
        let key = r.bytes.get(start..i).ok_or(GiveUp)?;
        r.pos = i + 1;
        r.eat(b':')?;
        Ok(key)
    }

    /// Consumes the next key when it is exactly `expected` (quotes and colon included, no whitespace),
    /// else consumes nothing and returns `false`.
    #[inline(always)]
    pub(crate) fn key_is(&mut self, expected: &ExpectedKey) -> bool {
        let r = &mut self.reader;
        let matched = match r.bytes.get(r.pos..).and_then(<[u8]>::first_chunk::<8>) {
            Some(chunk) => u64::from_le_bytes(*chunk) & expected.mask == expected.word,
            // Fewer than 8 bytes left: byte by byte.
            None => r.bytes.get(r.pos..r.pos + expected.len) == expected.bytes.get(..expected.len),
        };
        if matched {
            r.pos += expected.len;
        }
        matched
    }

    /// Only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<(), GiveUp> {
        self.reader.finish().then_some(()).ok_or(GiveUp)
    }

    /// `null`, consumed; `false` (nothing consumed) for anything else.
    #[inline(always)]
    fn null(&mut self) -> Result<bool, GiveUp> {
        if self.reader.peek()? == b'n' {
            self.reader.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A string value without escapes, borrowed.
    #[inline(always)]
    pub(crate) fn str(&mut self) -> Result<&'de str, GiveUp> {
        self.reader.string()
    }

    /// A string or `null`.
    #[inline]
    pub(crate) fn opt_str(&mut self) -> Result<Option<&'de str>, GiveUp> {
        if self.null()? {
            return Ok(None);
        }
        self.str().map(Some)
    }

    /// A decimal written as a string: the plain form straight from the bytes, anything else through
    /// [`Scalar::from_text`] like the serde path.
    #[inline]
    pub(crate) fn decimal(&mut self) -> Result<Decimal, GiveUp> {
        let r = &mut self.reader;
        // `"0"`, the commonest value by far (stop price, notionals, fills of new orders …).
        if r.bytes.get(r.pos..r.pos + 3) == Some(b"\"0\"") {
            r.pos += 3;
            return Ok(Decimal::ZERO);
        }
        r.eat(b'"')?;
        let start = r.pos;
        if let Some((value, len)) = r.bytes.get(start..).and_then(plain_decimal_prefix)
            && r.bytes.get(start + len) == Some(&b'"')
        {
            r.pos = start + len + 1;
            return Ok(value);
        }
        r.pos = start - 1;
        Decimal::from_text(r.string()?).ok_or(GiveUp)
    }

    /// An optional decimal: a string as [`Cursor::decimal`], `""` or `null` for `None`.
    #[inline]
    pub(crate) fn opt_decimal(&mut self) -> Result<Option<Decimal>, GiveUp> {
        if self.null()? {
            return Ok(None);
        }
        let r = &mut self.reader;
        if r.bytes.get(r.pos..r.pos + 2) == Some(b"\"\"") {
            r.pos += 2;
            return Ok(None);
        }
        self.decimal().map(Some)
    }

    /// A non-negative integer.
    #[inline]
    pub(crate) fn u64(&mut self) -> Result<u64, GiveUp> {
        match self.reader.integer()? {
            Integer::Unsigned(v) => Ok(v),
            Integer::Negative(_) => Err(GiveUp),
        }
    }

    /// An integer.
    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, GiveUp> {
        match self.reader.integer()? {
            Integer::Unsigned(v) => i64::try_from(v).map_err(|_| GiveUp),
            Integer::Negative(v) => Ok(v),
        }
    }

    /// An integer or `null` (`""` and integers in strings, which serde takes too, give up).
    #[inline]
    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>, GiveUp> {
        if self.null()? {
            return Ok(None);
        }
        self.i64().map(Some)
    }

    /// A boolean.
    #[inline(always)]
    pub(crate) fn bool(&mut self) -> Result<bool, GiveUp> {
        let r = &mut self.reader;
        match r.peek()? {
            b't' => r.literal(b"true").map(|()| true),
            b'f' => r.literal(b"false").map(|()| false),
            _ => Err(GiveUp),
        }
    }

    /// A boolean or `null`.
    #[inline]
    pub(crate) fn opt_bool(&mut self) -> Result<Option<bool>, GiveUp> {
        if self.null()? {
            return Ok(None);
        }
        self.bool().map(Some)
    }

    /// Skips a value of a field that is not read (validating it like serde_json would).
    pub(crate) fn skip(&mut self) -> Result<(), GiveUp> {
        <IgnoredAny as de::Deserialize>::deserialize(&mut self.reader).map(drop)
    }
}

/// A key as [`Cursor::key_is`] expects it: its quotes and colon (`"ap":`, at most 8 bytes) as the
/// little-endian word that those bytes make, for a comparison in one instruction.
pub(crate) struct ExpectedKey {
    bytes: [u8; 8],
    word: u64,
    mask: u64,
    len: usize,
}

impl ExpectedKey {
    /// `"key":` for `key` of at most 5 bytes, without quote, backslash or control characters.
    pub(crate) const fn new(key: &[u8]) -> Self {
        assert!(!key.is_empty() && key.len() <= 5);
        let mut bytes = [0_u8; 8];
        bytes[0] = b'"';
        let mut i = 0;
        while i < key.len() {
            assert!(PLAIN[key[i] as usize]);
            bytes[i + 1] = key[i];
            i += 1;
        }
        bytes[i + 1] = b'"';
        bytes[i + 2] = b':';
        let len = key.len() + 3;
        ExpectedKey {
            bytes,
            word: u64::from_le_bytes(bytes),
            mask: u64::MAX >> (8 * (8 - len)),
            len,
        }
    }
}

/// Stores the value of a field, refusing a second occurrence (serde's derive refuses duplicate fields).
#[inline]
pub(crate) fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), GiveUp> {
    if slot.is_some() {
        return Err(GiveUp);
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::from_str;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    /// Whatever the reader accepts, serde_json reads the same way.
    fn agrees(text: &str) -> bool {
        let fast: Option<Value> = from_str(text);
        let reference: Option<Value> = serde_json::from_str(text).ok();
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), reference.as_ref(), "{text}");
        }
        fast.is_some()
    }

    #[test]
    fn plain_values_are_read() {
        for text in [
            r#"{"a":"x","b":1,"c":-2,"d":true,"e":false,"f":null,"g":[1,{"h":[]}],"i":{}}"#,
            " { \"a\" : [ 1 , 2 ] }\n",
            "18446744073709551615",
            "-9223372036854775808",
            "0",
            r#""币安USDT""#,
        ] {
            assert!(agrees(text), "{text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde_json() {
        for text in [
            r#""a\"b""#,
            r#""\u0041""#,
            "\"tab\there\"",
            "1.5",
            "1e3",
            "-0",
            "01",
            "18446744073709551616",
            "-9223372036854775809",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            "[1 2]",
            "tru",
            "nul",
            "{",
            "[",
            "\"open",
            "{} {}",
            "",
            "-",
        ] {
            assert!(!agrees(text), "{text} should be left to serde_json");
        }
    }

    #[test]
    fn string_ends_are_found_at_every_position() {
        use super::plain_string_end;
        for len in 0..20 {
            for offset in 0..3 {
                let body = "aé\u{7f}b~ \u{1F600}"
                    .chars()
                    .cycle()
                    .take(len)
                    .collect::<String>();
                for (end, expected) in [
                    ("\"", Some(offset + body.len())),
                    ("\\\"", None),
                    ("\n\"", None),
                    ("\u{1f}\"", None),
                    ("", Some(offset + body.len() + 8)),
                ] {
                    let text = format!("{}{body}{end}xxxxxxxx\"", "{".repeat(offset));
                    assert_eq!(
                        plain_string_end(text.as_bytes(), offset),
                        expected,
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_left_to_serde_json() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(from_str::<IgnoredAny>(&deep).is_none());
        let shallow = "[".repeat(10) + &"]".repeat(10);
        assert!(from_str::<IgnoredAny>(&shallow).is_some());
    }

    /// Every JSON file of `test_data/`, compacted the way frames arrive, and as stored (pretty).
    fn fixture_texts() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data");
        let mut texts = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let pretty = std::fs::read_to_string(&path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let compact =
                    serde_json::to_string(&serde_json::from_str::<Value>(&pretty).unwrap());
                texts.push((name.clone(), pretty));
                texts.push((format!("{name} (keys sorted)"), compact.unwrap()));
            }
        }
        texts
    }

    /// The user-data and market objects inside a fixture: the fixture itself, its array elements, or the
    /// `data` of a combined-stream wrapper.
    fn event_objects(value: &Value) -> Vec<&Value> {
        match value {
            Value::Array(items) => items.iter().flat_map(event_objects).collect(),
            Value::Object(map) if map.contains_key("e") => vec![value],
            Value::Object(map) => map.get("data").map(event_objects).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Reading `T` with this reader gives what serde_json gives, whenever this reader succeeds.
    fn same<'a, T>(name: &str, text: &'a str) -> bool
    where
        T: serde::Deserialize<'a> + PartialEq + std::fmt::Debug,
    {
        let Some(fast) = from_str::<T>(text) else {
            return false;
        };
        let reference: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fast, reference, "{name}");
        true
    }

    #[test]
    fn every_fixture_reads_the_same_as_with_serde_json() {
        use crate::market::MarkPriceUpdateEvent;
        use crate::user::*;
        let mut typed = 0;
        for (name, text) in fixture_texts() {
            if !name.starts_with("leverage_bracket") {
                assert!(agrees(&text), "{name} should be read by the fast reader");
            }
            let value: Value = serde_json::from_str(&text).unwrap();
            for object in event_objects(&value) {
                let text = object.to_string();
                let read = match object["e"].as_str().unwrap() {
                    ORDER_TRADE_UPDATE => {
                        assert!(
                            crate::user::hot::tests::hot_path_agrees_with_serde(&text),
                            "{name}: the hot path should read this event"
                        );
                        let fast = OrderTradeUpdateEvent::read_fast(&text);
                        let reference: OrderTradeUpdateEvent<'_> =
                            serde_json::from_str(&text).unwrap();
                        assert_eq!(fast.as_ref(), Some(&reference), "{name}");
                        same::<OrderTradeUpdateEvent<'_>>(&name, &text)
                    }
                    TRADE_LITE => same::<TradeLiteEvent<'_>>(&name, &text),
                    ACCOUNT_UPDATE => same::<AccountUpdateEvent<'_>>(&name, &text),
                    MARGIN_CALL => same::<MarginCallEvent<'_>>(&name, &text),
                    ACCOUNT_CONFIG_UPDATE => same::<AccountConfigUpdateEvent<'_>>(&name, &text),
                    ALGO_UPDATE => same::<AlgoUpdateEvent<'_>>(&name, &text),
                    CONDITIONAL_ORDER_TRIGGER_REJECT => {
                        same::<ConditionalOrderTriggerRejectEvent<'_>>(&name, &text)
                    }
                    STRATEGY_UPDATE => same::<StrategyUpdateEvent<'_>>(&name, &text),
                    GRID_UPDATE => same::<GridUpdateEvent<'_>>(&name, &text),
                    LISTEN_KEY_EXPIRED => same::<ListenKeyExpiredEvent<'_>>(&name, &text),
                    "markPriceUpdate" => same::<MarkPriceUpdateEvent<'_>>(&name, &text),
                    other => panic!("{name}: unexpected event {other}"),
                };
                assert!(read, "{name}: the fast reader should read this event");
                typed += 1;
            }
        }
        assert!(typed > 400, "only {typed} events compared");
    }

    /// One field of a real fill changed at a time, in every way that matters to a reader.
    #[test]
    fn edited_fills_read_the_same_or_are_left_to_serde_json() {
        use crate::user::OrderTradeUpdateEvent;
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/order_trade_update.real_trade_filled_2023.json"
        );
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let replacements = [
            Value::Null,
            Value::from(""),
            Value::from("x"),
            Value::from("0.5"),
            Value::from(7),
            Value::from(-7),
            Value::from(1.5),
            Value::from(true),
            Value::from("a\"b"),
            serde_json::json!({}),
            serde_json::json!([]),
        ];
        let mut variants = Vec::new();
        for (outer, inner) in original.as_object().unwrap().iter().flat_map(|(k, v)| {
            let keys: Vec<Option<String>> = match v.as_object() {
                Some(o) => o.keys().cloned().map(Some).collect(),
                None => vec![None],
            };
            keys.into_iter().map(move |inner| (k.clone(), inner))
        }) {
            let mut removed = original.clone();
            let target = match &inner {
                Some(key) => removed[&outer].as_object_mut().unwrap().remove(key),
                None => removed.as_object_mut().unwrap().remove(&outer),
            };
            assert!(target.is_some());
            variants.push(removed.to_string());
            for replacement in &replacements {
                let mut edited = original.clone();
                match &inner {
                    Some(key) => edited[&outer][key] = replacement.clone(),
                    None => edited[&outer] = replacement.clone(),
                }
                variants.push(edited.to_string());
            }
        }
        let text = original.to_string();
        variants.push(text.replacen(r#""s":"XEMUSDT""#, r#""s":"XEMUSDT","s":"XEMUSDT""#, 1));
        variants.push(text.replacen(r#""e":"#, r#""\u0065":"#, 1));
        variants.push(text.replacen('}', "},", 1));
        variants.push(format!("{text} x"));
        variants.push(text.replace(',', " ,\n "));
        assert!(variants.len() > 400);
        let mut hot = 0;
        for variant in &variants {
            let reference = serde_json::from_str::<OrderTradeUpdateEvent<'_>>(variant).ok();
            if let Some(fast) = OrderTradeUpdateEvent::read_fast(variant) {
                assert_eq!(Some(&fast), reference.as_ref(), "hand reader on {variant}");
            }
            if let Some(fast) = from_str::<OrderTradeUpdateEvent<'_>>(variant) {
                assert_eq!(Some(&fast), reference.as_ref(), "serde reader on {variant}");
            }
            // The hot path to domain events agrees with wire struct + parser, or gives up.
            if crate::user::hot::tests::hot_path_agrees_with_serde(variant) {
                hot += 1;
            }
        }
        assert!(hot > 50, "the hot path read only {hot} variants");
    }
}
