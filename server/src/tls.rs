//! TLS material: the production certificate and key from PEM files, or a self-signed
//! development certificate generated into the data folder on first start.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// File name of the development certificate in the data folder.
pub const DEV_CERT_FILE: &str = "dev-cert.pem";
/// File name of the development certificate's key in the data folder.
pub const DEV_KEY_FILE: &str = "dev-key.pem";

/// A certificate chain and its key.
pub struct TlsIdentity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the leaf certificate was read from.
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate, in lowercase hex pairs joined by colons.
    pub fingerprint: String,
}

/// Loads the certificate and key from PEM files.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, String> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("failed to read the certificate {}: {error}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!("the certificate file {} holds no certificate", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| format!("failed to read the private key {}: {error}", key_path.display()))?;
    let fingerprint = fingerprint(&chain[0]);
    Ok(TlsIdentity { chain, key, cert_path: cert_path.to_owned(), fingerprint })
}

/// Loads the development certificate from the data folder, generating it first if it
/// is not there. It names `localhost`, `127.0.0.1` and `::1`.
pub fn development(data_dir: &Path) -> Result<TlsIdentity, String> {
    let (cert_path, key_path) = (data_dir.join(DEV_CERT_FILE), data_dir.join(DEV_KEY_FILE));
    if !cert_path.exists() {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|error| format!("failed to generate a development certificate: {error}"))?;
        crate::files::write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, generated.cert.pem())
            .map_err(|error| format!("failed to write {}: {error}", cert_path.display()))?;
        tracing::info!(path = %cert_path.display(), "generated a development certificate");
    }
    load(&cert_path, &key_path)
}

/// SHA-256 of a certificate, as `ab:cd:...`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
}
