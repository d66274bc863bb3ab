//! Files carried by transactions (HTTP bodies, SMB reads and writes): what the file keywords
//! inspect besides `file.data`.
//!
//! - `filesize`: the size of a complete file ([`crate::detect::AppInt::FileSize`]).
//! - `filemd5`, `filesha1`, `filesha256`: the file's digest looked up in a hash list (one hex
//!   digest a line, read with the rules, [`load_hash_list`]); the digests are the
//!   [`crate::detect::Buffer::FileMd5`], `FileSha1` and `FileSha256` buffers.
//!
//! - `file.name`: an HTTP request's multipart part's file name ([`multipart_files`]) or a PUT's
//!   URI path, an HTTP response's Content-Disposition file name or its request's URI path.
//!
//! A file is complete when all of its bytes were kept for inspection (the parsers keep a
//! bounded prefix of each file: [`crate::app::http::BODY_LIMIT`] for HTTP bodies). A file cut
//! there has no size and no digest: the keywords do not match it (no guess from a prefix).
//! Digests are computed only for the hashes the loaded rules look up
//! ([`crate::detect::Detector::file_digests`]).

use std::collections::HashSet;
use std::path::Path;

use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use crate::detect::{AppInt, Buffer};

/// Reads a hash list: one hex digest of `len` bytes a line (upper or lower case), blank lines
/// and `#` comments skipped; anything after the digest (whitespace, a file name) is ignored.
/// A malformed line is an error naming the file and line.
pub fn load_hash_list(path: &Path, len: usize) -> Result<HashSet<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_hash_list(&text, len).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

fn parse_hash_list(text: &str, len: usize) -> Result<HashSet<Vec<u8>>, (usize, String)> {
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let hex = t.split(|c: char| c.is_whitespace() || c == ',').next().unwrap_or(t);
        match decode_hex(hex).filter(|v| v.len() == len) {
            Some(v) => {
                out.insert(v);
            }
            None => return Err((i + 1, format!("'{hex}' is not a hex digest of {len} bytes"))),
        }
    }
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// The file keyword fields of one file: its size and the wanted digests (md5, sha1, sha256
/// as in [`crate::detect::Detector::file_digests`]); nothing when the file is not complete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileFields {
    pub ints: Vec<(AppInt, u64)>,
    pub digests: Vec<(Buffer, Vec<u8>)>,
}

impl FileFields {
    pub fn of(data: &[u8], complete: bool, want: [bool; 3]) -> FileFields {
        let mut f = FileFields::default();
        if !complete {
            return f;
        }
        f.ints.push((AppInt::FileSize, data.len() as u64));
        if want[0] {
            f.digests.push((Buffer::FileMd5, Md5::digest(data).to_vec()));
        }
        if want[1] {
            f.digests.push((Buffer::FileSha1, Sha1::digest(data).to_vec()));
        }
        if want[2] {
            f.digests.push((Buffer::FileSha256, Sha256::digest(data).to_vec()));
        }
        f
    }
}

/// Files of one multipart body read at most (the rest are not inspected as files).
const MAX_PARTS: usize = 64;

/// One file of a `multipart/form-data` body: a part whose Content-Disposition names a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    /// The `filename` parameter (unquoted).
    pub name: &'a [u8],
    pub data: &'a [u8],
    /// The part's closing boundary was seen (its data is whole).
    pub complete: bool,
}

/// The `boundary` parameter of a `multipart/...` content type.
fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    let (kind, params) = split_once(content_type, b';')?;
    if !trim(kind).to_ascii_lowercase().starts_with(b"multipart/") {
        return None;
    }
    param(params, b"boundary").filter(|b| !b.is_empty() && b.len() <= 200)
}

pub(crate) fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// The value of parameter `name` in `a=b; c="d"` (quotes removed).
pub(crate) fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    params.split(|&b| b == b';').find_map(|p| {
        let (k, v) = split_once(p, b'=')?;
        if !trim(k).eq_ignore_ascii_case(name) {
            return None;
        }
        let v = trim(v);
        Some(v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v))
    })
}

/// The `filename` of a Content-Disposition value (`attachment; filename="a.txt"`).
pub fn disposition_filename(value: &[u8]) -> Option<&[u8]> {
    let (_, params) = split_once(value, b';')?;
    param(params, b"filename").filter(|n| !n.is_empty())
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The files of a multipart body (parts with a file name), in order; empty when the content
/// type is not multipart or has no boundary.
pub fn multipart_files<'a>(content_type: &[u8], body: &'a [u8]) -> Vec<Part<'a>> {
    let Some(b) = boundary(content_type) else { return Vec::new() };
    let delim = [&b"--"[..], b].concat();
    let mut out = Vec::new();
    let Some(first) = find(body, &delim) else { return out };
    let mut rest = &body[first + delim.len()..];
    while out.len() < MAX_PARTS {
        // the closing delimiter ("--boundary--") or the end
        if rest.starts_with(b"--") || rest.is_empty() {
            break;
        }
        let Some(hdr_end) = find(rest, b"\r\n\r\n") else { break };
        let headers = &rest[..hdr_end];
        let data_start = hdr_end + 4;
        let tail = &rest[data_start..];
        let end_delim = [&b"\r\n"[..], &delim].concat();
        let (data, complete, next) = match find(tail, &end_delim) {
            Some(e) => (&tail[..e], true, Some(&tail[e + end_delim.len()..])),
            None => (tail, false, None),
        };
        let name = headers.split(|&c| c == b'\n').find_map(|l| {
            let (k, v) = split_once(l, b':')?;
            if trim(k).eq_ignore_ascii_case(b"content-disposition") { disposition_filename(trim(v)) } else { None }
        });
        if let Some(name) = name {
            out.push(Part { name, data, complete });
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_list_reads_digests_and_skips_comments() {
        let l = parse_hash_list("# list\n\n090FE607A5BE1228362614CCAA088577  eicar.com\n", 16).unwrap();
        assert_eq!(l.len(), 1);
        assert!(l.contains(&decode_hex("090fe607a5be1228362614ccaa088577").unwrap()));
    }

    #[test]
    fn hash_list_rejects_a_digest_of_the_wrong_length_with_its_line() {
        let e = parse_hash_list("090fe607a5be1228362614ccaa088577\nabcd\n", 16).unwrap_err();
        assert_eq!(e.0, 2);
        assert!(parse_hash_list("zz", 1).is_err());
    }

    #[test]
    fn complete_file_gets_size_and_wanted_digests_only() {
        let f = FileFields::of(b"abc", true, [true, false, true]);
        assert_eq!(f.ints, vec![(AppInt::FileSize, 3)]);
        assert_eq!(f.digests.len(), 2);
        assert_eq!(f.digests[0].1, decode_hex("900150983cd24fb0d6963f7d28e17f72").unwrap());
        assert_eq!(f.digests[1].0, Buffer::FileSha256);
    }

    #[test]
    fn multipart_body_gives_its_files_with_their_names() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"titi.txt\"\r\n\
Content-Type: text/plain\r\n\r\nTiti a vu\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\
value\r\n--XyZ\r\ncontent-disposition: form-data; filename=toto.txt\r\n\r\nbateau\r\n--XyZ--\r\n";
        let parts = multipart_files(b"multipart/form-data; boundary=XyZ", body);
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name, parts[0].data, parts[0].complete), (&b"titi.txt"[..], &b"Titi a vu"[..], true));
        assert_eq!((parts[1].name, parts[1].data), (&b"toto.txt"[..], &b"bateau"[..]));
        // quoted boundary, cut body: the last file is not complete
        let cut = multipart_files(b"Multipart/Form-Data; boundary=\"XyZ\"", &body[..body.len() - 12]);
        assert_eq!(cut.len(), 2);
        assert!(!cut[1].complete);
        assert_eq!(cut[1].data, b"batea");
    }

    #[test]
    fn not_multipart_or_malformed_gives_no_file() {
        assert!(multipart_files(b"text/plain", b"--XyZ\r\n\r\n").is_empty());
        assert!(multipart_files(b"multipart/form-data", b"--XyZ\r\n\r\n").is_empty());
        assert!(multipart_files(b"multipart/form-data; boundary=", b"").is_empty());
        assert!(multipart_files(b"multipart/form-data; boundary=a", b"--a").is_empty());
        assert!(multipart_files(b"multipart/form-data; boundary=a", b"--a\r\nno header end").is_empty());
        assert_eq!(disposition_filename(b"attachment; filename=\"x.exe\""), Some(&b"x.exe"[..]));
        assert_eq!(disposition_filename(b"inline"), None);
    }

    #[test]
    fn each_file_data_of_a_rule_may_match_a_different_file() {
        use crate::detect::{Detector, Direction, Inspection, Transport, Vars};
        let rules = "alert http any any -> any any (file.data; content:\"bateau\"; file.data; content:\"minet\"; sid:7;)\n\
                     alert http any any -> any any (file.data; content:\"bateau\"; content:\"minet\"; sid:8;)\n\
                     alert http any any -> any any (file.data; content:\"bateau\"; file.name; content:\"titi.txt\"; sid:1;)\n";
        let (det, errors) = Detector::from_rules(rules, "t.rules", &Vars::default());
        assert!(errors.is_empty(), "{errors:?}");
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let files = [
            (Buffer::FileData, &b"Titi a vu un gros minet"[..]),
            (Buffer::FileName, b"titi.txt"),
            (Buffer::FileData, b"toto est dans un bateau"),
            (Buffer::FileName, b"toto.txt"),
        ];
        let insp = Inspection {
            app_proto: Some(crate::detect::AppProto::Http),
            established: true,
            transaction: true,
            other: &files,
            ..Inspection::new(Transport::Tcp, ip, 40000, ip, 80, Direction::ToServer, &[])
        };
        let mut sids: Vec<u32> = det.inspect(&insp).iter().map(|h| h.sid).collect();
        sids.sort_unstable();
        assert_eq!(sids, vec![1, 7]);
    }

    #[test]
    fn cut_file_has_no_size_nor_digest() {
        assert_eq!(FileFields::of(b"abc", false, [true, true, true]), FileFields::default());
    }
}
