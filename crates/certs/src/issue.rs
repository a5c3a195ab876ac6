//! Issuing the planned certificates with rcgen, and reading certificates and keys back.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use spec::{ClusterSpec, TlsFiles, TlsSpec};
use time::{Duration, OffsetDateTime};

use crate::{plan, CertError, Planned, Role};

/// What [`ensure`] wrote: the files it created, keys included (by path only).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Issued {
    /// True when galley generated a new CA (false: it existed, or it is the operator's).
    pub new_ca: bool,
    /// The certificates issued now, by file stem (`node-db1`).
    pub leaves: Vec<String>,
}

/// Makes sure every certificate `spec` needs exists in `[tls] dir`: generates the CA
/// (unless the operator gave one, which is checked: readable, a CA, its key matching)
/// and issues each missing leaf with it. Existing files are left alone, so running it
/// again is safe. The directory is created with mode 0700, keys with 0600.
pub fn ensure(spec: &ClusterSpec, now: OffsetDateTime) -> Result<Issued, CertError> {
    let Some(tls) = &spec.tls else {
        return Ok(Issued::default());
    };
    create_private_dir(&tls.dir)?;
    let mut issued = Issued::default();
    let (ca_cert, ca_key) = match &tls.operator_ca {
        Some(files) => load_ca(files)?,
        None => {
            let files = TlsFiles {
                cert: tls.ca_cert(),
                key: tls.ca_key(),
            };
            if !files.cert.exists() {
                generate_ca(spec, tls, &files, now)?;
                issued.new_ca = true;
            }
            load_ca(&files)?
        }
    };
    for planned in plan(spec) {
        let files = TlsFiles {
            cert: tls.dir.join(format!("{}.crt", planned.stem)),
            key: tls.dir.join(format!("{}.key", planned.stem)),
        };
        if files.cert.exists() && files.key.exists() {
            continue;
        }
        issue_leaf(&planned, tls, &files, &ca_cert, &ca_key, now)?;
        issued.leaves.push(planned.stem);
    }
    Ok(issued)
}

/// Checks that `files.cert` is a readable PEM certificate and `files.key` its private
/// key; returns the certificate's PEM text.
pub fn check_pair(files: &TlsFiles) -> Result<String, CertError> {
    let cert_pem = read(&files.cert)?;
    let key = read_key(&files.key)?;
    let spki = certificate_spki(&files.cert, &cert_pem)?;
    if spki != key.public_key_der() {
        return Err(CertError::KeyMismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        });
    }
    Ok(cert_pem)
}

fn load_ca(files: &TlsFiles) -> Result<(rcgen::Certificate, KeyPair), CertError> {
    let cert_pem = check_pair(files)?;
    let params = CertificateParams::from_ca_cert_pem(&cert_pem).map_err(|error| {
        CertError::BadCertificate {
            path: files.cert.clone(),
            reason: error.to_string(),
        }
    })?;
    if !matches!(params.is_ca, IsCa::Ca(_)) {
        return Err(CertError::NotCa {
            path: files.cert.clone(),
        });
    }
    let key = read_key(&files.key)?;
    // rcgen signs with an issuer `Certificate`; one rebuilt from the CA's own subject and
    // key gives leaves the same issuer name and authority key identifier.
    let issuer = params.self_signed(&key).map_err(|error| CertError::Issue {
        what: "the CA's issuer record".to_owned(),
        reason: error.to_string(),
    })?;
    Ok((issuer, key))
}

fn generate_ca(
    spec: &ClusterSpec,
    tls: &TlsSpec,
    files: &TlsFiles,
    now: OffsetDateTime,
) -> Result<(), CertError> {
    let issue_error = |error: rcgen::Error| CertError::Issue {
        what: "the cluster CA".to_owned(),
        reason: error.to_string(),
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("galley CA of cluster {}", spec.name),
    );
    // Path length 0: this root signs leaves only, never an intermediate (MDEV-35812).
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::hours(1);
    // The CA outlives its leaves: rotating leaves must not need a new CA.
    params.not_after = now + Duration::days(i64::from(tls.validity_days) * 5);
    let key = KeyPair::generate().map_err(issue_error)?;
    let cert = params.self_signed(&key).map_err(issue_error)?;
    write_key(&files.key, &key)?;
    write_public(&files.cert, &cert.pem())
}

fn issue_leaf(
    planned: &Planned,
    tls: &TlsSpec,
    files: &TlsFiles,
    ca_cert: &rcgen::Certificate,
    ca_key: &KeyPair,
    now: OffsetDateTime,
) -> Result<(), CertError> {
    let issue_error = |error: rcgen::Error| CertError::Issue {
        what: planned.stem.clone(),
        reason: error.to_string(),
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(issue_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, planned.common_name.clone());
    for ip in &planned.ip_sans {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for dns in &planned.dns_sans {
        let name = dns.clone().try_into().map_err(issue_error)?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match planned.role {
        Role::Node => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(tls.validity_days));
    let key = KeyPair::generate().map_err(issue_error)?;
    let cert = params
        .signed_by(&key, ca_cert, ca_key)
        .map_err(issue_error)?;
    write_key(&files.key, &key)?;
    write_public(&files.cert, &cert.pem())
}

fn create_private_dir(dir: &Path) -> Result<(), CertError> {
    let write_error = |source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(write_error)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(write_error)
}

/// A new file with `mode` from its creation on (never world-readable for a moment);
/// written to a temporary name and renamed, so a crash leaves no half-written file.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let write_error = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temporary = path.with_extension("part");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}

fn write_key(path: &Path, key: &KeyPair) -> Result<(), CertError> {
    write_new(path, key.serialize_pem().as_bytes(), 0o600)
}

fn write_public(path: &Path, pem: &str) -> Result<(), CertError> {
    write_new(path, pem.as_bytes(), 0o644)
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_key(path: &Path) -> Result<KeyPair, CertError> {
    let pem = read(path)?;
    // rcgen's error says only what kind of problem it was, never the key's bytes.
    KeyPair::from_pem(&pem).map_err(|error| CertError::BadKey {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

/// The DER SubjectPublicKeyInfo of the first certificate in a PEM file.
fn certificate_spki(path: &Path, pem: &str) -> Result<Vec<u8>, CertError> {
    let bad = |reason: String| CertError::BadCertificate {
        path: path.to_path_buf(),
        reason,
    };
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|error| bad(error.to_string()))?;
    if parsed.label != "CERTIFICATE" {
        return Err(bad(format!("its first PEM block is `{}`", parsed.label)));
    }
    let cert = parsed
        .parse_x509()
        .map_err(|error| bad(error.to_string()))?;
    Ok(cert.public_key().raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn spec_in(dir: &Path, tls_extra: &str) -> ClusterSpec {
        let root = dir.display();
        let mut text = format!(
            "[cluster]\nname = \"prod\"\nsecrets_file = \"{root}/secrets.toml\"\n[tls]\n{tls_extra}"
        );
        for (n, address) in ["10.0.0.1", "db2.example.org", "127.0.0.1"]
            .iter()
            .enumerate()
        {
            text.push_str(&format!(
                "[[node]]\nname = \"db{}\"\naddress = \"{address}\"\ndata_dir = \"/var/lib/galley/db{0}\"\nrun_dir = \"/run/galley/db{0}\"\nlog_dir = \"/var/log/galley/db{0}\"\n",
                n + 1
            ));
        }
        spec::parse(Path::new("/etc/galley/galley.toml"), &text)
            .expect("valid spec")
            .spec
    }

    fn openssl(args: &[&str]) -> String {
        let output = Command::new("openssl").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generated_ca_signs_every_leaf_directly() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_in(dir.path(), "validity_days = 90\n");
        let tls = spec.tls.as_ref().unwrap();
        let issued = ensure(&spec, OffsetDateTime::now_utc()).unwrap();
        assert!(issued.new_ca);
        assert_eq!(
            issued.leaves,
            [
                "node-db1",
                "node-db2",
                "node-db3",
                "client-controller",
                "client-cli",
                "client-proxy"
            ]
        );
        assert_eq!(mode(&tls.dir), 0o700);
        assert_eq!(mode(&tls.ca_key()), 0o600);
        assert_eq!(mode(&tls.node_files("db1").key), 0o600);
        assert_eq!(mode(&tls.node_files("db1").cert), 0o644);
        let ca = tls.ca_cert().display().to_string();
        let ca_text = openssl(&["x509", "-noout", "-text", "-in", &ca]);
        assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
        for stem in &issued.leaves {
            let cert = tls.dir.join(format!("{stem}.crt")).display().to_string();
            // -purpose checks the extended key usage too.
            let purpose = if stem.starts_with("node-") {
                "sslserver"
            } else {
                "sslclient"
            };
            let verified = openssl(&["verify", "-purpose", purpose, "-CAfile", &ca, &cert]);
            assert!(verified.trim_end().ends_with(": OK"), "{verified}");
        }
        let db2 = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            &tls.node_files("db2").cert.display().to_string(),
        ]);
        assert!(db2.contains("DNS:db2.example.org"), "{db2}");
        assert!(
            db2.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
            "{db2}"
        );
        let db3 = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            &tls.node_files("db3").cert.display().to_string(),
        ]);
        assert!(
            db3.contains("IP Address:127.0.0.1") && db3.contains("DNS:localhost"),
            "{db3}"
        );
        let enddate = openssl(&[
            "x509",
            "-noout",
            "-checkend",
            &(89 * 86400).to_string(),
            "-in",
            &tls.node_files("db1").cert.display().to_string(),
        ]);
        assert!(enddate.contains("will not expire"), "{enddate}");

        // Again: nothing is replaced.
        let before = std::fs::read(tls.node_files("db1").cert).unwrap();
        assert_eq!(
            ensure(&spec, OffsetDateTime::now_utc()).unwrap(),
            Issued::default()
        );
        assert_eq!(std::fs::read(tls.node_files("db1").cert).unwrap(), before);
        // A missing leaf is issued alone, by the same CA.
        std::fs::remove_file(tls.client_files("cli").cert).unwrap();
        let again = ensure(&spec, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(again.leaves, ["client-cli"]);
        assert!(!again.new_ca);
    }

    #[test]
    fn operator_ca_is_checked_then_used() {
        let dir = tempfile::tempdir().unwrap();
        let ca_cert = dir.path().join("operator-ca.pem");
        let ca_key = dir.path().join("operator-ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Operator Root",
            "-keyout",
            &ca_key.display().to_string(),
            "-out",
            &ca_cert.display().to_string(),
        ]);
        let extra = format!(
            "ca_cert = \"{}\"\nca_key = \"{}\"\ndir = \"{}/issued\"\n",
            ca_cert.display(),
            ca_key.display(),
            dir.path().display()
        );
        let spec = spec_in(dir.path(), &extra);
        let tls = spec.tls.as_ref().unwrap();
        let issued = ensure(&spec, OffsetDateTime::now_utc()).unwrap();
        assert!(!issued.new_ca);
        assert!(!tls.dir.join("ca.key").exists());
        let verified = openssl(&[
            "verify",
            "-CAfile",
            &ca_cert.display().to_string(),
            &tls.node_files("db1").cert.display().to_string(),
        ]);
        assert!(verified.trim_end().ends_with(": OK"), "{verified}");
        let issuer = openssl(&[
            "x509",
            "-noout",
            "-issuer",
            "-in",
            &tls.node_files("db1").cert.display().to_string(),
        ]);
        assert!(issuer.contains("Operator Root"), "{issuer}");

        // A key of another certificate: refused, naming both files, showing no key.
        let leaf_key = tls.node_files("db1").key;
        let wrong = TlsFiles {
            cert: ca_cert.clone(),
            key: leaf_key.clone(),
        };
        let error = check_pair(&wrong).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "the key {} does not belong to the certificate {}: their public keys differ",
                leaf_key.display(),
                ca_cert.display()
            )
        );
        // A leaf given as the CA: refused as no CA.
        let not_ca = spec_in(
            dir.path(),
            &format!(
                "ca_cert = \"{}\"\nca_key = \"{}\"\ndir = \"{}/other\"\n",
                tls.node_files("db1").cert.display(),
                leaf_key.display(),
                dir.path().display()
            ),
        );
        let error = ensure(&not_ca, OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a CA certificate"), "{error}");
        // A missing file: the path and the OS's reason.
        let missing = spec_in(
            dir.path(),
            &format!(
                "ca_cert = \"{}/nope.pem\"\nca_key = \"{}\"\n",
                dir.path().display(),
                ca_key.display()
            ),
        );
        let error = ensure(&missing, OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot read ") && error.contains("nope.pem"),
            "{error}"
        );
    }
}
