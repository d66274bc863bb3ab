//! A small bounds-checked BER/DER reader for the ASN.1 protocols (Kerberos, SNMP).
//!
//! Every read returns `None` on truncated or malformed input; nothing here panics on input.
//! Only definite lengths are read (Kerberos and SNMP use DER or definite-length BER).

/// One TLV: its tag byte (class, constructed bit and number < 31), its content, and the bytes
/// that follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The content as far as the data goes (longer than `content` only when truncated: see
    /// [`read_partial`]).
    pub rest: &'a [u8],
}

/// The length at the start of `data`: (length, bytes used).
fn read_len(data: &[u8]) -> Option<(usize, usize)> {
    let first = *data.first()?;
    if first < 0x80 {
        return Some((first as usize, 1));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = data.get(1..1 + n)?;
    let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Some((len, 1 + n))
}

/// Reads one complete TLV (the high-tag-number form is not supported).
pub fn read(data: &[u8]) -> Option<Tlv<'_>> {
    let t = read_partial(data)?;
    (t.content.len() == t.declared_len).then_some(Tlv { tag: t.tag, content: t.content, rest: t.rest })
}

/// A TLV whose content may be cut short by the end of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialTlv<'a> {
    pub tag: u8,
    /// The content present (all of it unless truncated).
    pub content: &'a [u8],
    pub declared_len: usize,
    /// What follows the content (empty when truncated).
    pub rest: &'a [u8],
}

/// Reads one TLV whose content may be truncated by the end of `data` (a message cut by a
/// segment boundary): its header must be complete.
pub fn read_partial(data: &[u8]) -> Option<PartialTlv<'_>> {
    let tag = *data.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (len, used) = read_len(data.get(1..)?)?;
    let body = data.get(1 + used..)?;
    let have = len.min(body.len());
    Some(PartialTlv { tag, content: &body[..have], declared_len: len, rest: &body[have..] })
}

/// Reads a TLV with the expected tag.
pub fn expect(data: &[u8], tag: u8) -> Option<Tlv<'_>> {
    read(data).filter(|t| t.tag == tag)
}

/// The value of an INTEGER's content (up to 8 bytes, sign-extended then taken as `i64`).
pub fn integer(content: &[u8]) -> Option<i64> {
    if content.is_empty() || content.len() > 8 {
        return None;
    }
    let neg = content[0] & 0x80 != 0;
    let init: i64 = if neg { -1 } else { 0 };
    Some(content.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Iterates over the TLVs of a constructed content; stops at the first malformed one.
/// With `partial`, the last TLV may be truncated.
pub fn children(content: &[u8], partial: bool) -> impl Iterator<Item = PartialTlv<'_>> {
    let mut rest = content;
    std::iter::from_fn(move || {
        let t = read_partial(rest)?;
        if t.content.len() < t.declared_len && !partial {
            rest = &[];
            return None;
        }
        rest = t.rest;
        Some(t)
    })
}

/// The child with a context tag `[n]` (constructed: `0xa0 | n`) of a SEQUENCE content.
pub fn field(content: &[u8], n: u8, partial: bool) -> Option<PartialTlv<'_>> {
    children(content, partial).find(|t| t.tag == 0xa0 | n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_rejects_truncation() {
        let t = read(&[0x04, 0x02, b'a', b'b', 0xff]).unwrap();
        assert_eq!((t.tag, t.content, t.rest), (0x04, &b"ab"[..], &[0xff][..]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        assert_eq!(read(&long).unwrap().content.len(), 0x80);
        assert!(read(&long[..50]).is_none());
        assert_eq!(read_partial(&long[..50]).unwrap().content.len(), 47);
        assert!(read(&[0x30]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[]).is_none());
    }

    #[test]
    fn integers_are_sign_extended() {
        assert_eq!(integer(&[0x05]), Some(5));
        assert_eq!(integer(&[0x00, 0x80]), Some(128));
        assert_eq!(integer(&[0xff]), Some(-1));
        assert_eq!(integer(&[]), None);
        assert_eq!(integer(&[0; 9]), None);
    }

    #[test]
    fn context_fields_are_found_in_a_sequence() {
        let seq = [0xa0, 0x03, 0x02, 0x01, 0x05, 0xa1, 0x03, 0x02, 0x01, 0x0a];
        assert_eq!(field(&seq, 1, false).unwrap().content, &[0x02, 0x01, 0x0a]);
        assert!(field(&seq, 2, false).is_none());
        assert!(field(&seq[..8], 1, false).is_none());
        assert_eq!(field(&seq[..8], 1, true).unwrap().content, &[0x02]);
    }
}
