//! The per-session CA for the hosts secrets are bound to: made in memory when a session starts,
//! never written to the project or the state directory. Its certificate goes into the session's
//! CA bundle (the session directory, removed with the session, and a tmpfs bundle in the
//! container); each bound host gets a certificate signed by it, handed with its key to the proxy.
//! The CA's own key is dropped as soon as those are signed, so nothing can mint another
//! certificate with it — and the CA is name-constrained to the bound hosts, so even its leaves
//! could not stand in for any other name.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};

/// How long the session's certificates are valid (a session may run for days).
const VALIDITY_DAYS: i64 = 30;

/// One bound host's certificate and key (PEM), for the proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    pub host: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf").field("host", &self.host).field("key_pem", &"<hidden>").finish()
    }
}

/// A session's CA certificate and its hosts' certificates; the CA key is already gone.
#[derive(Debug, Clone)]
pub struct SessionCa {
    /// The CA certificate (PEM) the session trusts.
    pub ca_pem: String,
    pub leaves: Vec<Leaf>,
}

/// Why the session's certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot make the session's CA for the hosts secrets are bound to ({what}): {source}")]
pub struct CaError {
    what: &'static str,
    source: rcgen::Error,
}

fn err(what: &'static str) -> impl FnOnce(rcgen::Error) -> CaError {
    move |source| CaError { what, source }
}

/// Makes a CA valid only for `hosts` and one certificate for each host.
pub fn generate(hosts: &[String]) -> Result<SessionCa, CaError> {
    let now = time::OffsetDateTime::now_utc();
    let (not_before, not_after) = (now - time::Duration::hours(1), now + time::Duration::days(VALIDITY_DAYS));
    let ca_key = KeyPair::generate().map_err(err("its key"))?;
    // Distinct per session (not a secret): from the CA's fresh public key.
    let tag = <sha2::Sha256 as sha2::Digest>::digest(ca_key.public_key_der());
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("codex-box session CA {}", hex::encode(&tag[..8])));
    dn.push(DnType::OrganizationName, "codex-box (this session only)");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: hosts.iter().map(|h| GeneralSubtree::DnsName(h.clone())).collect(),
        excluded_subtrees: Vec::new(),
    });
    (ca.not_before, ca.not_after) = (not_before, not_after);
    let ca_cert = ca.self_signed(&ca_key).map_err(err("its certificate"))?;
    let mut leaves = Vec::new();
    for host in hosts {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host.clone());
        p.distinguished_name = dn;
        p.subject_alt_names =
            vec![SanType::DnsName(host.clone().try_into().map_err(err("a host name in a certificate"))?)];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        (p.not_before, p.not_after) = (not_before, not_after);
        let key = KeyPair::generate().map_err(err("a host's key"))?;
        let cert = p.signed_by(&key, &ca_cert, &ca_key).map_err(err("a host's certificate"))?;
        leaves.push(Leaf { host: host.clone(), cert_pem: cert.pem(), key_pem: key.serialize_pem() });
    }
    // `ca_key` ends here: no certificate can be signed by this CA any more.
    Ok(SessionCa { ca_pem: ca_cert.pem(), leaves })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    fn verify(ca_pem: &str, leaf_pem: &str, name: &str) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
        let provider = std::sync::Arc::new(hickory_resolver::net::tls::default_provider());
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider).build().unwrap();
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap();
        let sn = ServerName::try_from(name.to_string()).unwrap();
        v.verify_server_cert(&leaf, &[], &sn, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn each_bound_host_gets_a_certificate_of_a_fresh_ca_valid_for_that_host_only() {
        let hosts = vec!["api.bound.test".to_string(), "uploads.bound.test".to_string()];
        let a = generate(&hosts).unwrap();
        assert_eq!(
            a.leaves.iter().map(|l| l.host.as_str()).collect::<Vec<_>>(),
            ["api.bound.test", "uploads.bound.test"]
        );
        for l in &a.leaves {
            verify(&a.ca_pem, &l.cert_pem, &l.host).unwrap();
            assert!(l.key_pem.contains("PRIVATE KEY") && !a.ca_pem.contains("PRIVATE KEY"));
        }
        // A leaf is not valid for another host, nor under another session's CA.
        assert!(verify(&a.ca_pem, &a.leaves[0].cert_pem, "uploads.bound.test").is_err());
        let b = generate(&hosts).unwrap();
        assert_ne!(a.ca_pem, b.ca_pem);
        assert!(verify(&b.ca_pem, &a.leaves[0].cert_pem, "api.bound.test").is_err());
        assert!(!format!("{a:?}").contains("PRIVATE KEY"), "Debug hides the keys");
    }
}
