//! The cluster's TLS certificates (docs/tls.md): which ones a spec needs ([`plan`], pure),
//! issuing the missing ones with rcgen ([`ensure`]), and checking that a certificate and
//! its key belong together ([`check_pair`]).
//!
//! Every leaf is signed by the root directly: Galera refuses a leaf whose issuer is an
//! intermediate CA (MDEV-35812), so galley's CA is created with a path length of 0.
//! Private keys are written with mode 0600 and never appear in a message.

mod issue;
mod plan;

pub use issue::{check_pair, ensure, Issued};
pub use plan::{plan, Planned, Role};

use std::path::PathBuf;

/// Why certificates could not be read or issued. Messages name the file and never hold
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{path} is not a PEM private key (PKCS#8, as `openssl pkcs8 -topk8 -nocrypt` writes it): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("the key {key} does not belong to the certificate {cert}: their public keys differ")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{path} is not a CA certificate (its basic constraints do not say CA:TRUE); give the root CA that signs the cluster's certificates")]
    NotCa { path: PathBuf },
    #[error("cannot issue {what}: {reason}")]
    Issue { what: String, reason: String },
}
