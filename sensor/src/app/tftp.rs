//! TFTP (RFC 1350) requests on UDP port 69: a read or write request names the flow's protocol
//! (the transfer itself runs on other ports). No TFTP keyword reads its fields yet.

/// TFTP's port.
pub const PORT: u16 = 69;

/// A read (1) or write (2) request: opcode, file name and mode, each name ending with a NUL.
pub fn is_request(data: &[u8]) -> bool {
    let Some((&[0, op], rest)) = data.split_first_chunk::<2>() else { return false };
    if op != 1 && op != 2 {
        return false;
    }
    let mut parts = rest.splitn(3, |&b| b == 0);
    let (Some(name), Some(mode), Some(_)) = (parts.next(), parts.next(), parts.next()) else { return false };
    !name.is_empty() && ["netascii", "octet", "mail"].iter().any(|m| m.as_bytes().eq_ignore_ascii_case(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_write_requests_only() {
        assert!(is_request(b"\x00\x01rfc1350.txt\x00octet\x00"));
        assert!(is_request(b"\x00\x02f\x00NETASCII\x00"));
        assert!(!is_request(b"\x00\x03\x00\x01data"), "data");
        assert!(!is_request(b"\x00\x01f\x00octet"), "no final NUL");
        assert!(!is_request(b"\x00\x01\x00octet\x00"), "no file name");
        assert!(!is_request(b"\x00"));
    }
}
