//! How the CLI finds which controller to talk to and with which token.
//!
//! Target resolution, first match wins:
//! - URL: `--url` / `GALLEY_URL`, else the `[controller] address:port` of the cluster in
//!   `--dir` (an unspecified listen address becomes loopback; https when the spec sets
//!   `tls_cert`, whose certificate is then trusted);
//! - trusted certificate for https: `--ca-cert` / `GALLEY_CA_CERT`, else the local
//!   cluster's `tls_cert`, besides the system's roots;
//! - token: `GALLEY_TOKEN`, else the file named by `--token-file` / `GALLEY_TOKEN_FILE`,
//!   else the cluster token from that cluster's secrets file. There is deliberately no
//!   `--token VALUE` flag: a command line is visible to every user in `ps`.
//!
//! Reading the local cluster (its spec and secrets file) is the caller's part: it hands
//! [`resolve`] a function that returns a [`LocalController`].

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

/// Where the controller listens and the token to present, once resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    pub token: String,
    /// A PEM certificate (bundle) to trust for https.
    pub ca_cert: Option<PathBuf>,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// What the operator gave: flags and environment, before anything is read.
#[derive(Debug, Clone, Default)]
pub struct TargetInputs {
    pub url: Option<String>,
    /// From `GALLEY_TOKEN`.
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
}

/// The controller of a local cluster state directory. `Debug` hides the token.
#[derive(Clone)]
pub struct LocalController {
    /// `http://host:port` (or https) from the spec's `[controller]` (or its defaults).
    pub url: String,
    pub cluster_token: String,
    /// The controller's own certificate when it serves TLS.
    pub ca_cert: Option<PathBuf>,
}

impl LocalController {
    /// The controller a cluster's `[controller]` settings describe, with its cluster
    /// token. A controller listening on every address is reached on loopback; one with
    /// TLS over https, trusting its own certificate.
    pub fn for_settings(settings: &spec::ControllerSpec, cluster_token: &str) -> LocalController {
        let host = match settings.address.as_str() {
            "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            other => other,
        };
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        LocalController {
            url: format!("{scheme}://{}", spec::host_port(host, settings.port)),
            cluster_token: cluster_token.to_owned(),
            ca_cert: settings.tls.as_ref().map(|files| files.cert.clone()),
        }
    }
}

impl fmt::Debug for LocalController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalController")
            .field("url", &self.url)
            .field("ca_cert", &self.ca_cert)
            .finish_non_exhaustive()
    }
}

/// Applies the resolution rules of this module. `local` is only called when the URL or
/// the token must come from the local cluster.
pub fn resolve(
    inputs: &TargetInputs,
    local: impl FnOnce() -> anyhow::Result<LocalController>,
) -> anyhow::Result<Resolved> {
    let file_token = match &inputs.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                bail!("the token file {} is empty", path.display());
            }
            Some(token)
        }
        None => None,
    };
    let token = inputs
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or(file_token);
    let url = inputs
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let (url, token, local_ca_cert) = match (url, token) {
        (Some(url), Some(token)) => (url.to_owned(), token, None),
        (url, token) => {
            let local = local().map_err(|error| {
                anyhow::anyhow!(
                    "no controller to talk to: {error:#}\n\
                     Give the controller's URL with --url (or GALLEY_URL) and a token in GALLEY_TOKEN \
                     or --token-file, or point --dir at a cluster's state directory."
                )
            })?;
            (
                url.map_or(local.url, str::to_owned),
                token.unwrap_or(local.cluster_token),
                local.ca_cert,
            )
        }
    };
    Ok(Resolved {
        base_url: normalize_url(&url)?,
        token,
        ca_cert: inputs.ca_cert.clone().or(local_ca_cert),
    })
}

/// `host:port` or `http://host:port/` into `http://host:port`.
pub fn normalize_url(url: &str) -> anyhow::Result<String> {
    let with_scheme = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let parsed = reqwest::Url::parse(&with_scheme).map_err(|error| {
        anyhow::anyhow!("`{url}` is not a URL ({error}); give one like http://10.0.0.5:4600")
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        bail!(
            "`{url}` uses {}://; the controller speaks http:// or https://",
            parsed.scheme()
        );
    }
    if parsed.host_str().is_none() {
        bail!("`{url}` names no host; give one like http://10.0.0.5:4600");
    }
    Ok(with_scheme.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> anyhow::Result<LocalController> {
        Ok(LocalController {
            url: "https://127.0.0.1:4600".to_owned(),
            cluster_token: "cluster-token".to_owned(),
            ca_cert: Some(PathBuf::from("/srv/galley/controller.pem")),
        })
    }

    fn no_local() -> anyhow::Result<LocalController> {
        bail!("no cluster at /nowhere")
    }

    #[test]
    fn the_local_cluster_fills_in_what_is_not_given() {
        let resolved = resolve(&TargetInputs::default(), local).unwrap();
        assert_eq!(resolved.base_url, "https://127.0.0.1:4600");
        assert_eq!(resolved.token, "cluster-token");
        assert_eq!(
            resolved.ca_cert.as_deref(),
            Some(std::path::Path::new("/srv/galley/controller.pem"))
        );

        let inputs = TargetInputs {
            token: Some("api-token\n".to_owned()),
            ..TargetInputs::default()
        };
        let resolved = resolve(&inputs, local).unwrap();
        assert_eq!(resolved.base_url, "https://127.0.0.1:4600");
        assert_eq!(resolved.token, "api-token");

        let inputs = TargetInputs {
            url: Some("https://galley.example.org:4600/".to_owned()),
            ..TargetInputs::default()
        };
        let resolved = resolve(&inputs, local).unwrap();
        assert_eq!(resolved.base_url, "https://galley.example.org:4600");
        assert_eq!(resolved.token, "cluster-token");
    }

    /// `[controller]` settings listening on `address:port`, with or without TLS.
    fn settings(address: &str, port: u16, tls: bool) -> spec::ControllerSpec {
        let text = format!(
            "[cluster]\nname = \"c\"\nsecrets_file = \"/srv/c/secrets.toml\"\n\
             [controller]\naddress = \"{address}\"\nport = {port}\nstate_dir = \"/srv/c/controller\"\n{}\
             [[node]]\nname = \"db1\"\naddress = \"10.0.0.1\"\nclient_port = 3306\nmanaged = false\n",
            if tls {
                "tls_cert = \"/etc/galley/api.crt\"\ntls_key = \"/etc/galley/api.key\"\n"
            } else {
                ""
            }
        );
        let loaded = spec::parse(std::path::Path::new("/srv/c/galley.toml"), &text).unwrap();
        loaded.spec.controller.unwrap()
    }

    #[test]
    fn the_local_controller_comes_from_the_settings() {
        let local = LocalController::for_settings(&settings("0.0.0.0", 4711, false), "t");
        assert_eq!(
            local.url, "http://127.0.0.1:4711",
            "a wildcard listener is dialled on loopback"
        );
        assert_eq!(local.cluster_token, "t");
        assert_eq!(local.ca_cert, None);
        let local = LocalController::for_settings(&settings("::", 4711, false), "t");
        assert_eq!(local.url, "http://[::1]:4711");

        let local = LocalController::for_settings(&settings("10.0.0.5", 4712, true), "t");
        assert_eq!(local.url, "https://10.0.0.5:4712");
        assert_eq!(
            local.ca_cert.as_deref(),
            Some(std::path::Path::new("/etc/galley/api.crt"))
        );
        assert!(
            !format!("{local:?}").contains("\"t\""),
            "Debug hides the token"
        );
    }

    #[test]
    fn url_and_token_together_need_no_local_cluster() {
        let inputs = TargetInputs {
            url: Some("10.0.0.5:4600".to_owned()),
            token: Some("t".to_owned()),
            token_file: None,
            ca_cert: None,
        };
        let resolved = resolve(&inputs, no_local).unwrap();
        assert_eq!(resolved.base_url, "http://10.0.0.5:4600");
        assert_eq!(resolved.token, "t");
        assert_eq!(resolved.ca_cert, None);
    }

    #[test]
    fn a_token_file_is_read_and_trimmed_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let mut inputs = TargetInputs {
            url: Some("http://10.0.0.5:4600".to_owned()),
            token: None,
            token_file: Some(path.clone()),
            ca_cert: None,
        };
        assert_eq!(resolve(&inputs, no_local).unwrap().token, "from-file");
        inputs.token = Some("from-env".to_owned());
        assert_eq!(resolve(&inputs, no_local).unwrap().token, "from-env");

        std::fs::write(&path, "  \n").unwrap();
        inputs.token = None;
        let error = resolve(&inputs, no_local).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
        inputs.token_file = Some(dir.path().join("missing"));
        let error = resolve(&inputs, no_local).unwrap_err().to_string();
        assert!(error.contains("cannot read the token file"), "{error}");
    }

    #[test]
    fn without_a_target_the_error_says_how_to_give_one() {
        let error = format!(
            "{:#}",
            resolve(&TargetInputs::default(), no_local).unwrap_err()
        );
        assert!(error.contains("no controller to talk to"), "{error}");
        assert!(error.contains("no cluster at /nowhere"), "{error}");
        assert!(error.contains("GALLEY_URL"), "{error}");
        assert!(error.contains("GALLEY_TOKEN"), "{error}");
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            normalize_url("127.0.0.1:4600").unwrap(),
            "http://127.0.0.1:4600"
        );
        assert_eq!(
            normalize_url("http://[::1]:4600/").unwrap(),
            "http://[::1]:4600"
        );
        let error = normalize_url("ftp://host:21").unwrap_err().to_string();
        assert!(error.contains("ftp://"), "{error}");
        let error = normalize_url("http://").unwrap_err().to_string();
        assert!(
            error.contains("not a URL") || error.contains("no host"),
            "{error}"
        );
    }
}
