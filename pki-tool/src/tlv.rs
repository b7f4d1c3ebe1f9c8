//! A small, strict DER reader and writer.
//!
//! Everything this project signs or verifies goes through here, so that the exact bytes are under our
//! control: the `der`/`const-oid` crates refuse OIDs such as `2.999.10` (SGP.26 SAN registeredIDs) and
//! cannot be told which string type to use for each name attribute. The reader only borrows from its
//! input and returns the raw bytes of every element, which is what signature checks need (never a
//! re-encoding). Tags are kept as their identifier octets packed in a `u32` (`0x30`, `0x5F37`, `0xBF38`).

use std::fmt;

/// Why a DER element could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DER error at offset {offset}: {what}")]
pub struct DerError {
    pub what: String,
    pub offset: usize,
}

fn err<T>(what: impl Into<String>, offset: usize) -> Result<T, DerError> {
    Err(DerError {
        what: what.into(),
        offset,
    })
}

pub mod tag {
    pub const BOOLEAN: u32 = 0x01;
    pub const INTEGER: u32 = 0x02;
    pub const BIT_STRING: u32 = 0x03;
    pub const OCTET_STRING: u32 = 0x04;
    pub const OID: u32 = 0x06;
    pub const UTF8_STRING: u32 = 0x0C;
    pub const PRINTABLE_STRING: u32 = 0x13;
    pub const IA5_STRING: u32 = 0x16;
    pub const UTC_TIME: u32 = 0x17;
    pub const GENERALIZED_TIME: u32 = 0x18;
    pub const SEQUENCE: u32 = 0x30;
    pub const SET: u32 = 0x31;
}

/// One element: its tag, its content and the whole encoding (tag, length and content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
    pub raw: &'a [u8],
    /// Offset of `raw` within the outermost buffer, for error messages and slicing.
    pub offset: usize,
}

impl<'a> Tlv<'a> {
    /// A reader over the content of a constructed element.
    pub fn reader(&self) -> Reader<'a> {
        Reader {
            data: self.value,
            pos: 0,
            base: self.offset + (self.raw.len() - self.value.len()),
        }
    }

    pub fn is_constructed(&self) -> bool {
        let first = self
            .tag
            .to_be_bytes()
            .into_iter()
            .find(|b| *b != 0)
            .unwrap_or(0);
        first & 0x20 != 0
    }

    /// The offset of this element's content within the outermost buffer.
    pub fn value_offset(&self) -> usize {
        self.offset + (self.raw.len() - self.value.len())
    }
}

/// Reads consecutive elements from a buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            pos: 0,
            base: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The tag of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u32> {
        self.clone().read_tag().ok()
    }

    fn read_tag(&mut self) -> Result<u32, DerError> {
        let start = self.offset();
        let Some(&first) = self.data.get(self.pos) else {
            return err("unexpected end of data, expected a tag", start);
        };
        self.pos += 1;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // High tag number form; SGP.22 uses at most two subsequent octets (e.g. 5F37, BF22).
            for i in 0.. {
                let Some(&b) = self.data.get(self.pos) else {
                    return err("truncated high-number tag", start);
                };
                self.pos += 1;
                if i == 2 {
                    return err("tag number too large", start);
                }
                tag = (tag << 8) | u32::from(b);
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        Ok(tag)
    }

    fn read_len(&mut self) -> Result<usize, DerError> {
        let start = self.offset();
        let Some(&first) = self.data.get(self.pos) else {
            return err("unexpected end of data, expected a length", start);
        };
        self.pos += 1;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let n = usize::from(first & 0x7F);
        if n == 0 {
            return err("indefinite length is not DER", start);
        }
        if n > 4 {
            return err("length field longer than 4 octets", start);
        }
        let Some(bytes) = self.data.get(self.pos..self.pos + n) else {
            return err("truncated length", start);
        };
        self.pos += n;
        if bytes[0] == 0 {
            return err("length not minimally encoded", start);
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return err("length not minimally encoded", start);
        }
        Ok(len)
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.pos;
        let tag = self.read_tag()?;
        let len = self.read_len()?;
        let value_start = self.pos;
        let Some(end) = value_start
            .checked_add(len)
            .filter(|e| *e <= self.data.len())
        else {
            return err(
                format!(
                    "element of {len} bytes runs past the end ({} left)",
                    self.data.len() - value_start
                ),
                self.base + start,
            );
        };
        self.pos = end;
        Ok(Tlv {
            tag,
            value: &self.data[value_start..end],
            raw: &self.data[start..end],
            offset: self.base + start,
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, tag: u32, what: &str) -> Result<Tlv<'a>, DerError> {
        let at = self.offset();
        let tlv = self.read().map_err(|e| DerError {
            what: format!("{what}: {}", e.what),
            offset: e.offset,
        })?;
        if tlv.tag != tag {
            return err(
                format!("{what}: expected tag {tag:02X}, found {:02X}", tlv.tag),
                at,
            );
        }
        Ok(tlv)
    }

    /// Reads the next element only if it carries `tag`.
    pub fn optional(&mut self, tag: u32) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &str) -> Result<(), DerError> {
        if self.is_empty() {
            Ok(())
        } else {
            err(format!("{what}: unexpected trailing data"), self.offset())
        }
    }
}

/// Parses exactly one element spanning all of `data`.
pub fn parse_single<'a>(data: &'a [u8], what: &str) -> Result<Tlv<'a>, DerError> {
    let mut r = Reader::new(data);
    let tlv = r.read()?;
    r.finish(what)?;
    Ok(tlv)
}

// ---------------------------------------------------------------------------------------------
// Writing

fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(3);
    out.extend_from_slice(&bytes[first..]);
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// Encodes one element.
pub fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push_tag(&mut out, tag);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Encodes a constructed element from already-encoded parts.
pub fn constructed(tag: u32, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SEQUENCE, parts)
}

pub fn octet_string(value: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, value)
}

pub fn boolean(value: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if value { 0xFF } else { 0x00 }])
}

/// A BIT STRING with no unused bits.
pub fn bit_string(value: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(value.len() + 1);
    content.push(0);
    content.extend_from_slice(value);
    tlv(tag::BIT_STRING, &content)
}

/// An INTEGER from unsigned big-endian magnitude bytes (leading zeros trimmed, 0x00 pad added if needed).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    tlv(tag::INTEGER, &unsigned_integer_content(magnitude))
}

/// The content octets of a non-negative INTEGER with the given magnitude.
pub fn unsigned_integer_content(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude.iter().position(|b| *b != 0);
    let trimmed = match first {
        Some(i) => &magnitude[i..],
        None => &[0u8][..],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    content
}

/// Reads the content of a small non-negative INTEGER.
pub fn read_small_uint(value: &[u8], offset: usize) -> Result<u64, DerError> {
    if value.is_empty() || value.len() > 8 || value[0] & 0x80 != 0 {
        return err("expected a small non-negative INTEGER", offset);
    }
    Ok(value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A BIT STRING content read as (unused bits, bytes).
pub fn read_bit_string(t: &Tlv<'_>) -> Result<(u8, Vec<u8>), DerError> {
    let Some((&unused, bytes)) = t.value.split_first() else {
        return err("empty BIT STRING", t.offset);
    };
    if unused > 7 || (bytes.is_empty() && unused != 0) {
        return err("invalid BIT STRING padding", t.offset);
    }
    Ok((unused, bytes.to_vec()))
}

impl fmt::Display for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tag {:02X} ({} bytes)", self.tag, self.value.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let body = vec![0xAB; len];
            let enc = tlv(0x04, &body);
            let t = parse_single(&enc, "test").expect("parses");
            assert_eq!(t.value.len(), len);
            assert_eq!(t.raw, &enc[..]);
        }
    }

    #[test]
    fn multi_byte_tags() {
        let enc = tlv(0xBF38, &[0x80, 0x01, 0x01]);
        assert_eq!(&enc[..3], &[0xBF, 0x38, 0x03]);
        let t = parse_single(&enc, "t").expect("parses");
        assert_eq!(t.tag, 0xBF38);
        assert!(t.is_constructed());
        let s = tlv(0x5F37, &[1, 2]);
        assert_eq!(parse_single(&s, "t").expect("parses").tag, 0x5F37);
    }

    #[test]
    fn rejects_non_der() {
        assert!(parse_single(&[0x30, 0x80, 0, 0], "t").is_err());
        assert!(parse_single(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5], "t").is_err());
        assert!(parse_single(&[0x04, 0x05, 1], "t").is_err());
        assert!(parse_single(&[0x04, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], "t").is_err());
        assert!(parse_single(&[0x04, 0x00, 0x00], "t").is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(
            unsigned_integer(&[0xB8, 0x74]),
            vec![0x02, 0x03, 0x00, 0xB8, 0x74]
        );
        assert_eq!(
            unsigned_integer(&[0x00, 0x01, 0x00]),
            vec![0x02, 0x02, 0x01, 0x00]
        );
        assert_eq!(unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
    }
}
