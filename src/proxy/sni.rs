//! The server name (SNI) of a TLS ClientHello, read from the first bytes a client sends through a
//! CONNECT tunnel: pure and bounded, never decrypting anything.
//!
//! The ClientHello may span several TLS records; their handshake fragments are joined up to
//! [`MAX_HELLO`] bytes. The parse walks: record header (content type 22, version 3.x, length at
//! most 2^14 + 2048), handshake header (type 1), legacy version, random, session id, cipher
//! suites, compression methods, extensions, and returns the `host_name` entry of the
//! `server_name` extension (type 0), lowercased without a trailing dot.
//!
//! What it enforces: nothing by itself — [`super::server`] compares the name with the CONNECT
//! host. What it does not: see inside Encrypted Client Hello (only the outer, public name is
//! visible), or tell what the client will send after the handshake.

/// The largest ClientHello accepted (post-quantum key shares make them a few KiB).
pub const MAX_HELLO: usize = 32 * 1024;

/// The outcome of parsing what has been received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// More bytes are needed.
    Partial,
    /// A complete ClientHello, and its server name if it has one.
    Complete { sni: Option<String> },
}

/// Bytes that are not a ClientHello we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SniError {
    #[error("the tunnel did not start with a TLS handshake")]
    NotTls,
    #[error("malformed TLS ClientHello: {0}")]
    Malformed(&'static str),
    #[error("TLS ClientHello larger than {MAX_HELLO} bytes")]
    TooLarge,
}

/// Parses the ClientHello at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Hello, SniError> {
    let mut handshake: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(header) = buf.get(pos..pos + 5) else {
            if pos == 0 && !buf.is_empty() && buf[0] != 22 {
                return Err(SniError::NotTls);
            }
            return Ok(Hello::Partial);
        };
        if header[0] != 22 {
            return Err(if pos == 0 {
                SniError::NotTls
            } else {
                SniError::Malformed("record of another type inside the ClientHello")
            });
        }
        if header[1] != 3 {
            return Err(SniError::NotTls);
        }
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        if len == 0 || len > (1 << 14) + 2048 {
            return Err(SniError::Malformed("record length"));
        }
        let Some(fragment) = buf.get(pos + 5..pos + 5 + len) else {
            return if handshake.len() + (buf.len() - pos) > MAX_HELLO + 5 {
                Err(SniError::TooLarge)
            } else {
                Ok(Hello::Partial)
            };
        };
        handshake.extend_from_slice(fragment);
        pos += 5 + len;
        if handshake.len() >= 4 {
            if handshake[0] != 1 {
                return Err(SniError::Malformed("first handshake message is not a ClientHello"));
            }
            let body_len = u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize;
            if body_len > MAX_HELLO {
                return Err(SniError::TooLarge);
            }
            if handshake.len() >= 4 + body_len {
                return client_hello(&handshake[4..4 + body_len]).map(|sni| Hello::Complete { sni });
            }
        }
        if handshake.len() > MAX_HELLO {
            return Err(SniError::TooLarge);
        }
    }
}

/// A cursor over a ClientHello body; every read is bounds-checked.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SniError> {
        if self.data.len() < n {
            return Err(SniError::Malformed(what));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<usize, SniError> {
        Ok(self.take(1, what)?[0] as usize)
    }

    fn u16(&mut self, what: &'static str) -> Result<usize, SniError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let n = self.u8(what)?;
        self.take(n, what)
    }

    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let n = self.u16(what)?;
        self.take(n, what)
    }
}

fn client_hello(body: &[u8]) -> Result<Option<String>, SniError> {
    let mut r = Reader { data: body };
    r.take(2, "version")?;
    r.take(32, "random")?;
    if r.vec8("session id")?.len() > 32 {
        return Err(SniError::Malformed("session id"));
    }
    let suites = r.vec16("cipher suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(SniError::Malformed("cipher suites"));
    }
    if r.vec8("compression methods")?.is_empty() {
        return Err(SniError::Malformed("compression methods"));
    }
    if r.data.is_empty() {
        return Ok(None);
    }
    let mut ext = Reader { data: r.vec16("extensions")? };
    let mut sni = None;
    while !ext.data.is_empty() {
        let typ = ext.u16("extension type")?;
        let data = ext.vec16("extension")?;
        if typ != 0 {
            continue;
        }
        if sni.is_some() {
            return Err(SniError::Malformed("two server_name extensions"));
        }
        let mut list = Reader { data: Reader { data }.vec16("server name list")? };
        while !list.data.is_empty() {
            let kind = list.u8("server name type")?;
            let name = list.vec16("server name")?;
            if kind != 0 {
                continue;
            }
            if sni.is_some() {
                return Err(SniError::Malformed("two host names"));
            }
            if name.is_empty()
                || name.len() > 255
                || !name.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
            {
                return Err(SniError::Malformed("server name is not a host name"));
            }
            let s = std::str::from_utf8(name).map_err(|_| SniError::Malformed("server name"))?;
            sni = Some(s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase());
        }
    }
    Ok(sni)
}

/// Test support: a minimal but well-formed ClientHello carrying `sni` (or none), split into
/// records of at most `record` bytes of handshake data.
#[doc(hidden)]
pub fn synthetic_hello(sni: Option<&str>, record: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8];
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name.as_bytes());
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(&data);
    }
    // supported_versions (43): TLS 1.3, so the hello looks modern.
    ext.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut out = Vec::new();
    for chunk in hs.chunks(record.max(1)) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello made by Python 3 / OpenSSL 3 for `allowed.test` (captured once, with
    /// `ssl.MemoryBIO`, no network).
    const OPENSSL_HELLO: &str = include_str!("testdata/openssl_client_hello.hex");

    fn openssl_hello() -> Vec<u8> {
        let hex: String = OPENSSL_HELLO.split_whitespace().collect();
        hex::decode(hex).unwrap()
    }

    #[test]
    fn a_real_client_hello_names_its_server() {
        let hello = openssl_hello();
        assert_eq!(parse(&hello), Ok(Hello::Complete { sni: Some("allowed.test".into()) }));
        // Every proper prefix is partial, never an error.
        for n in 0..hello.len() {
            assert_eq!(parse(&hello[..n]), Ok(Hello::Partial), "prefix {n}");
        }
        // Data after the hello does not matter.
        let mut more = hello.clone();
        more.extend_from_slice(b"\x14\x03\x03\x00\x01\x01");
        assert_eq!(parse(&more), Ok(Hello::Complete { sni: Some("allowed.test".into()) }));
    }

    #[test]
    fn a_hello_split_over_records_is_joined() {
        let h = synthetic_hello(Some("Other.Test."), 7);
        assert_eq!(parse(&h), Ok(Hello::Complete { sni: Some("other.test".into()) }));
        assert_eq!(parse(&synthetic_hello(None, 1000)), Ok(Hello::Complete { sni: None }));
    }

    #[test]
    fn other_protocols_and_broken_hellos_are_errors() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(SniError::NotTls));
        assert_eq!(parse(b"SSH-2.0-OpenSSH"), Err(SniError::NotTls));
        assert_eq!(parse(b"G"), Err(SniError::NotTls));
        assert_eq!(parse(&[22, 2, 0, 0, 1, 1]), Err(SniError::NotTls));
        assert_eq!(parse(&[22, 3, 1, 0, 0]), Err(SniError::Malformed("record length")));
        assert_eq!(
            parse(&[22, 3, 1, 0, 4, 2, 0, 0, 0]),
            Err(SniError::Malformed("first handshake message is not a ClientHello"))
        );
        let mut h = synthetic_hello(Some("a.test"), 1000);
        let sni_at = h.windows(6).position(|w| w == b"a.test").unwrap();
        h[sni_at] = b' ';
        assert_eq!(parse(&h), Err(SniError::Malformed("server name is not a host name")));
        // A handshake length far beyond the cap is refused at once.
        assert_eq!(parse(&[22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]), Err(SniError::TooLarge));
    }

    #[test]
    fn random_and_truncated_bytes_never_panic() {
        crate::proxy::fuzz::run(
            20_000,
            |bytes| {
                let _ = parse(bytes);
            },
            &[openssl_hello(), synthetic_hello(Some("x.test"), 9)],
        );
    }
}
