//! Trust for DNS-over-TLS to the host's chosen resolver (`--dns-tls-name`); Linux builds only (see
//! `Cargo.toml`: ring, the crypto, is built from C for the target).
//!
//! [`client_config`] trusts the system's CA bundle (the first of [`SYSTEM_CA_BUNDLES`] that exists)
//! plus the session's CA files (`--ca-cert`, `CODEX_BOX_CA_CERTS`) and nothing else. There is no
//! insecure mode: a server whose certificate does not chain to these roots, or is not valid for the
//! name, fails every lookup, and [`super::resolve`] never falls back to plain DNS.
//!
//! What it does not do: client certificates, certificate pinning, revocation checks, or reading
//! `SSL_CERT_FILE` (the roots are the distribution's bundle plus what the session names).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::net::tls::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::resolver_types::{DnsTls, ResolveError};

/// Where Linux distributions keep their CA bundle (PEM); the first that exists is read.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    // Debian, Ubuntu, Arch, Gentoo
    "/etc/ssl/certs/ca-certificates.crt",
    // Fedora, RHEL, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    // openSUSE
    "/etc/ssl/ca-bundle.pem",
    // Alpine
    "/etc/ssl/cert.pem",
];

/// The TLS client configuration for `tls`: reads the system bundle and the extra CA files.
pub fn client_config(tls: &DnsTls) -> Result<ClientConfig, ResolveError> {
    let system = read_system_bundle()?;
    let extra = tls
        .extra_roots
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|pem| (p.clone(), pem))
                .map_err(|source| ResolveError::TlsCaRead { path: p.clone(), source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let roots = root_store(system.as_ref().map(|(p, pem)| (p.as_path(), pem.as_slice())), &extra, &tls.name)?;
    let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ResolveError::TlsConfig { name: tls.name.clone(), message: e.to_string() })?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Why a TLS handshake with the server at `addr` fails, as the resolver would make it (same roots,
/// same name, no SNI); `Ok` when it succeeds. Blocking, each step bounded by `timeout`. The resolver
/// itself only reports that no connection was available; this names the reason (an unknown issuer,
/// a certificate for another name, no TLS on that port).
pub fn handshake(addr: SocketAddr, tls: &DnsTls, timeout: Duration) -> Result<(), String> {
    let mut config = client_config(tls).map_err(|e| e.to_string())?;
    config.enable_sni = false;
    let name = ServerName::try_from(tls.name.clone()).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect: {e}"))?;
    sock.set_read_timeout(Some(timeout))
        .and_then(|()| sock.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) if conn.is_handshaking() => return Err("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The first system bundle that exists, if any.
fn read_system_bundle() -> Result<Option<(PathBuf, Vec<u8>)>, ResolveError> {
    for p in SYSTEM_CA_BUNDLES {
        match std::fs::read(p) {
            Ok(pem) => return Ok(Some((PathBuf::from(p), pem))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ResolveError::TlsCaRead { path: PathBuf::from(p), source }),
        }
    }
    Ok(None)
}

/// The trust roots (pure): every usable certificate of the system bundle (a distribution's bundle
/// may hold one the verifier cannot parse; it is skipped), and every certificate of each extra file,
/// which must hold at least one and only usable ones — a file the user named that silently trusted
/// nothing would be a puzzle. No root at all is an error.
pub fn root_store(
    system: Option<(&Path, &[u8])>,
    extra: &[(PathBuf, Vec<u8>)],
    name: &str,
) -> Result<RootCertStore, ResolveError> {
    let mut roots = RootCertStore::empty();
    if let Some((_, pem)) = system {
        roots.add_parsable_certificates(CertificateDer::pem_slice_iter(pem).filter_map(Result::ok));
    }
    for (path, pem) in extra {
        let invalid = |problem: String| ResolveError::TlsCaInvalid { path: path.clone(), problem };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("its PEM cannot be read ({e})")))?;
        if certs.is_empty() {
            return Err(invalid("there is no certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(format!("a certificate in it is not usable ({e})")))?;
        }
    }
    if roots.is_empty() {
        return Err(ResolveError::TlsNoRoots { name: name.to_string(), searched: SYSTEM_CA_BUNDLES.join(", ") });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA made for this test (`openssl req -x509 -newkey ec`), never used to sign.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAT+gAwIBAgIUPfP2oBqxdxIkSyb6SSaILQLMtM8wCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWY29kZXgtYm94IHVuaXQgdGVzdCBDQTAgFw0yNjExMjYwNDU4
NTJaGA8yMTI2MTEwMjA0NTg1MlowITEfMB0GA1UEAwwWY29kZXgtYm94IHVuaXQg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIFLVpkGKgFu+x4U338e
YGcNVQwvSPqIF2d0/9MBdBYsGO6r+uhREFOXDnskpRQXzmIawTQgBLSZN9oekBqs
/AyjUzBRMB0GA1UdDgQWBBTav8cwQ0QsKu/daT1CVhzJuKgkijAfBgNVHSMEGDAW
gBTav8cwQ0QsKu/daT1CVhzJuKgkijAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0kAMEYCIQDq3ts1jRUbAAzAgJKAXFV1Nby5OPNtfcC40COwfYhGcwIhAMO2
TOQJvaRioxe5C2tG/0EVoR3wuapRRdiwKJp7zNOK
-----END CERTIFICATE-----
";

    fn extra(pem: &str) -> Vec<(PathBuf, Vec<u8>)> {
        vec![(PathBuf::from("/etc/corp-ca.pem"), pem.as_bytes().to_vec())]
    }

    #[test]
    fn system_and_extra_roots_are_both_trusted() {
        let system =
            format!("{TEST_CA}junk between sections\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let only_system = root_store(Some((Path::new("/etc/ssl/cert.pem"), system.as_bytes())), &[], "dot.test");
        assert_eq!(only_system.unwrap().len(), 1, "the unusable system entry is skipped");
        let both = root_store(Some((Path::new("/etc/ssl/cert.pem"), TEST_CA.as_bytes())), &extra(TEST_CA), "dot.test");
        assert_eq!(both.unwrap().len(), 2);
        assert_eq!(root_store(None, &extra(TEST_CA), "dot.test").unwrap().len(), 1);
    }

    #[test]
    fn a_bad_extra_ca_file_is_an_error_naming_it() {
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = root_store(None, &extra(key), "dot.test").unwrap_err().to_string();
        assert_eq!(
            e,
            "/etc/corp-ca.pem cannot be used as a CA for the DNS-over-TLS server: there is no \
             certificate in it; fix: pass a PEM file of CA certificates (-----BEGIN CERTIFICATE-----) \
             with --ca-cert or CODEX_BOX_CA_CERTS"
        );
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = root_store(None, &extra(bad), "dot.test").unwrap_err().to_string();
        assert!(e.starts_with("/etc/corp-ca.pem cannot be used as a CA for the DNS-over-TLS server: a certificate in it is not usable"), "{e}");
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let e = root_store(None, &extra(truncated), "dot.test").unwrap_err().to_string();
        assert!(e.contains("its PEM cannot be read"), "{e}");
    }

    #[test]
    fn no_root_at_all_is_an_error_with_the_fix() {
        let e = root_store(Some((Path::new("/etc/ssl/cert.pem"), b"")), &[], "dot.test").unwrap_err().to_string();
        assert!(e.starts_with("no CA certificate to check the DNS-over-TLS server dot.test with: none of /etc/ssl/certs/ca-certificates.crt, "), "{e}");
        assert!(e.ends_with("fix: install the ca-certificates package, or pass the CA that issued the server's certificate with --ca-cert FILE or CODEX_BOX_CA_CERTS"), "{e}");
    }

    #[test]
    fn an_unreadable_extra_file_is_an_error_naming_it() {
        let tls = DnsTls { name: "dot.test".into(), extra_roots: vec![PathBuf::from("/nonexistent/ca.pem")] };
        let e = client_config(&tls).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read the CA certificates in /nonexistent/ca.pem (for the DNS-over-TLS server): "),
            "{e}"
        );
    }
}
