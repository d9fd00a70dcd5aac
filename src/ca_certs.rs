//! Extra CA certificates (`--ca-cert`, `CODEX_BOX_CA_CERTS`): read and checked once, for the session
//! (trusted inside it) and the image build (baked into it) alike.

use std::path::PathBuf;

/// A CA certificate file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    #[error("--ca-cert {path}: {source}; pass a readable PEM file")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "--ca-cert {0}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----); pass a PEM file, not DER"
    )]
    NotPem(PathBuf),
}

/// Reads CA certificate files, checking each holds at least one PEM certificate.
pub fn read_ca_certs(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<u8>)>, CaCertError> {
    paths
        .iter()
        .map(|p| {
            let data = std::fs::read(p).map_err(|source| CaCertError::Read { path: p.clone(), source })?;
            if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
                return Err(CaCertError::NotPem(p.clone()));
            }
            Ok((p.clone(), data))
        })
        .collect()
}
