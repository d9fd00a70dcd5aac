//! The image build context, made in-process as a tar (never a directory on disk): the Dockerfile
//! compiled into the binary, plus any extra CA certificates under `ca-certs/`.

use std::path::PathBuf;

pub use crate::ca_certs::{read_ca_certs, CaCertError};

/// The Dockerfile of the codex-sandbox image.
pub const DOCKERFILE: &str = include_str!("../../images/Dockerfile.codex-sandbox");

/// The build context cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    CaCert(#[from] CaCertError),
    #[error("cannot assemble the build context: {0}")]
    Tar(std::io::Error),
}

/// The build context tar: `Dockerfile` and `ca-certs/extra-N.crt` (the directory always exists, so
/// the Dockerfile's COPY works without certificates).
pub fn build_context(certs: &[(PathBuf, Vec<u8>)]) -> Result<Vec<u8>, ContextError> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "Dockerfile", DOCKERFILE.as_bytes(), 0o644)?;
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    b.append_data(&mut dir, "ca-certs/", std::io::empty()).map_err(ContextError::Tar)?;
    for (i, (_, data)) in certs.iter().enumerate() {
        append(&mut b, &format!("ca-certs/extra-{i}.crt"), data, 0o644)?;
    }
    b.into_inner().map_err(ContextError::Tar)
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) -> Result<(), ContextError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).map_err(ContextError::Tar)
}

/// Default tag for a build: `codex-sandbox`, or `codex-sandbox:<version>` for a pinned version.
pub fn default_tag(codex_version: Option<&str>) -> String {
    match codex_version {
        Some(v) if v != "latest" => format!("codex-sandbox:{v}"),
        _ => "codex-sandbox".to_string(),
    }
}

/// The Codex version an image name pins (`codex-sandbox:0.1.2` → `0.1.2`), for automatic builds.
pub fn pinned_version(image: &str) -> Option<&str> {
    let (_, tag) = image.rsplit_once(':')?;
    (tag != "latest" && !tag.contains('/')).then_some(tag)
}

/// Whether codex-box can build this image itself (it is a codex-sandbox name, not a registry one).
pub fn is_buildable(image: &str) -> bool {
    let repo = image.rsplit_once(':').map(|(r, _)| r).unwrap_or(image);
    repo == "codex-sandbox"
}

/// Lists the entries of a tar (for tests and `--dry-run` style inspection).
pub fn entries(tar_bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .map(|es| es.filter_map(|e| e.ok()?.path().ok().map(|p| p.to_string_lossy().into_owned())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_holds_dockerfile_and_certs() {
        let t = tempfile::tempdir().unwrap();
        let pem = t.path().join("corp.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let certs = read_ca_certs(&[pem]).unwrap();
        let tar = build_context(&certs).unwrap();
        assert_eq!(entries(&tar), vec!["Dockerfile", "ca-certs/", "ca-certs/extra-0.crt"]);
        let empty = build_context(&[]).unwrap();
        assert_eq!(entries(&empty), vec!["Dockerfile", "ca-certs/"]);
    }

    #[test]
    fn dockerfile_has_what_sessions_need() {
        for needle in [
            "ARG BASE_IMAGE",
            "ARG CODEX_VERSION",
            "@openai/codex@${CODEX_VERSION}",
            "iptables",
            "ipset",
            "iproute2",
            "dnsutils",
            "openjdk-21-jdk-headless",
            "openjdk-17-jdk-headless",
            "useradd",
            "WORKDIR /workspace",
            "update-ca-certificates",
            "NODE_EXTRA_CA_CERTS",
            "util-linux",
        ] {
            assert!(DOCKERFILE.contains(needle), "Dockerfile lacks {needle}");
        }
    }

    #[test]
    fn der_or_missing_certs_are_refused_by_name() {
        let t = tempfile::tempdir().unwrap();
        let der = t.path().join("corp.der");
        std::fs::write(&der, [0x30, 0x82, 0x01]).unwrap();
        let e = read_ca_certs(std::slice::from_ref(&der)).unwrap_err();
        assert!(e.to_string().contains("corp.der") && e.to_string().contains("PEM"), "{e}");
        let e = read_ca_certs(&[t.path().join("missing.pem")]).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }

    #[test]
    fn tags() {
        assert_eq!(default_tag(None), "codex-sandbox");
        assert_eq!(default_tag(Some("0.169.0")), "codex-sandbox:0.169.0");
        assert_eq!(pinned_version("codex-sandbox:0.169.0"), Some("0.169.0"));
        assert_eq!(pinned_version("codex-sandbox"), None);
        assert!(is_buildable("codex-sandbox:1.2"));
        assert!(!is_buildable("ghcr.io/x/codex-sandbox"));
    }
}
