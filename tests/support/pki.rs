//! A throwaway PKI made with the `openssl` CLI: a test CA and one server certificate for the names a
//! test chooses (never a real name), in a temporary directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA (`ca.pem`, `ca.key`) and `server.pem` / `server.key` valid for `names`.
    pub fn new(ca_name: &str, names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
        write(
            "ca.cnf",
            &format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {ca_name}\n[ca]\n\
                 basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        );
        write("server.cnf", &format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {}\n", names[0]));
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        write(
            "server-ext.cnf",
            &format!(
                "[server]\nsubjectAltName = {}\nbasicConstraints = CA:FALSE\n\
                 keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n",
                san.join(",")
            ),
        );
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            d,
            &[
                &["req", "-x509", "-config", "ca.cnf", "-extensions", "ca"],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            ],
        );
        openssl(d, &[&["req", "-new", "-config", "server.cnf"], &ec, &["-keyout", "server.key", "-out", "server.csr"]]);
        openssl(
            d,
            &[&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-days",
                "2",
                "-extfile",
                "server-ext.cnf",
                "-extensions",
                "server",
                "-out",
                "server.pem",
            ]],
        );
        for f in ["ca.pem", "server.pem", "server.key"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn openssl(dir: &Path, parts: &[&[&str]]) {
    let args: Vec<&str> = parts.concat();
    let out = Command::new("openssl").args(&args).current_dir(dir).output().expect("the openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
