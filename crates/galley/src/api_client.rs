//! A small typed client of the controller's REST API (`/api/v1`), and how the CLI finds
//! which controller to talk to and with which token.
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

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use local::{Cluster, Location};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

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

/// The controller of a local cluster state directory.
#[derive(Clone)]
pub struct LocalController {
    /// `http://host:port` (or https) from the spec's `[controller]` (or its defaults).
    pub url: String,
    pub cluster_token: String,
    /// The controller's own certificate when it serves TLS.
    pub ca_cert: Option<PathBuf>,
}

impl LocalController {
    /// Reads the spec and secrets of the cluster at `location`.
    pub fn load(location: &Location) -> anyhow::Result<LocalController> {
        let cluster = Cluster::load(location, false)?;
        let settings = local::controller_daemon::settings(&cluster);
        // A controller listening on every address is reached on loopback from here.
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
        Ok(LocalController {
            url: format!("{scheme}://{}", spec::host_port(host, settings.port)),
            cluster_token: cluster.secrets.cluster_token.clone(),
            ca_cert: settings.tls.as_ref().map(|files| files.cert.clone()),
        })
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

/// Why an API call failed. The message the controller sent is passed on as is (it names
/// what was wrong and what is allowed); the status says who refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the controller at {url}: {cause}. Is it running? `galley up` starts it for a cluster it manages (or run `galley controller --config FILE`)")]
    Unreachable { url: String, cause: String },
    #[error("{}: {message}", status_meaning(*.status))]
    Refused { status: u16, message: String },
    #[error("the controller at {url} sent an answer this galley cannot read: {message}")]
    Protocol { url: String, message: String },
}

/// What an HTTP status from the controller means, in the operator's words.
pub fn status_meaning(status: u16) -> String {
    match status {
        400 => "the controller refused the request (400 invalid input)".to_owned(),
        401 => "the controller refused the token (401 not authenticated; check GALLEY_TOKEN or --token-file)".to_owned(),
        403 => "the controller refused (403 forbidden)".to_owned(),
        404 => "not found (404)".to_owned(),
        409 => "conflict (409: it exists already)".to_owned(),
        429 => "the controller refused (429 too many requests; wait and retry)".to_owned(),
        502 => "the database server refused (502)".to_owned(),
        503 => "no Synced node to run the SQL on (503)".to_owned(),
        other => format!("the controller answered {other}"),
    }
}

/// The innermost cause of an error: reqwest's own text ("error sending request") says
/// less than the connection error under it ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    pub name: String,
    pub size_bytes: Option<i64>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    pub tables: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub user: String,
    pub host: String,
    pub grants: Vec<String>,
    /// An account of the server or of galley itself (root, galley_admin, ...).
    pub system: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatedUser {
    pub user: String,
    pub host: String,
    /// Only when the controller generated it.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewPassword {
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    pub grants: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogEntry {
    pub service: String,
    pub databases: Vec<String>,
    pub optional: bool,
    pub aliases: Vec<String>,
    pub default: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceConfig {
    pub service: String,
    pub databases: Vec<String>,
    pub user: String,
    pub changes: Vec<String>,
    pub config: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Provisioned {
    pub services: Vec<ServiceConfig>,
    pub changed: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDrift {
    pub service: String,
    pub missing: Vec<String>,
    pub differs: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Drift {
    pub services: Vec<ServiceDrift>,
    pub clean: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    /// A number or a string, whichever the controller uses.
    pub id: serde_json::Value,
    pub name: String,
    pub created_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewToken {
    pub id: serde_json::Value,
    pub name: String,
    pub token: String,
}

/// A privilege change: `POST /grants` and `POST /revokes`.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRequest<'a> {
    pub user: &'a str,
    pub host: &'a str,
    pub database: &'a str,
    pub privileges: &'a [String],
}

/// The controller's API, authenticated with a Bearer token. `Debug` hides the token.
#[derive(Clone)]
pub struct ApiClient {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    pub fn new(target: &Resolved) -> anyhow::Result<ApiClient> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            // Creating or dropping a database, or provisioning many services, waits for
            // Galera to replicate the DDL to every node.
            .timeout(Duration::from_secs(120));
        if let Some(path) = &target.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the certificate {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| anyhow::anyhow!("{} is not a PEM certificate", path.display()))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().context("cannot set up the HTTP client")?;
        Ok(ApiClient {
            base_url: target.base_url.clone(),
            token: target.token.clone(),
            http,
        })
    }

    /// `/api/v1/<segments...>`, each segment percent-encoded (a host pattern `%` is
    /// sent as `%25`, a `/` in a value cannot escape its segment).
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ApiError> {
        let mut url = reqwest::Url::parse(&self.base_url).map_err(|error| ApiError::Protocol {
            url: self.base_url.clone(),
            message: error.to_string(),
        })?;
        {
            let mut path = url.path_segments_mut().map_err(|()| ApiError::Protocol {
                url: self.base_url.clone(),
                message: "the URL cannot take a path".to_owned(),
            })?;
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        Ok(url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|error| ApiError::Unreachable {
                url: self.base_url.clone(),
                cause: root_cause(&error),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                let text = body.trim();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text.chars().take(500).collect()
                }
            });
        Err(ApiError::Refused {
            status: status.as_u16(),
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = self.send(request).await?;
        let body = response.bytes().await.map_err(|error| ApiError::Protocol {
            url: self.base_url.clone(),
            message: root_cause(&error),
        })?;
        serde_json::from_slice(&body).map_err(|error| ApiError::Protocol {
            url: self.base_url.clone(),
            message: error.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        self.json(self.http.get(self.url(segments)?)).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        self.json(self.http.post(self.url(segments)?).json(body))
            .await
    }

    async fn delete(&self, url: reqwest::Url) -> Result<(), ApiError> {
        self.send(self.http.delete(url)).await.map(|_| ())
    }

    pub async fn databases(&self) -> Result<Vec<Database>, ApiError> {
        self.get(&["databases"]).await
    }

    pub async fn create_database(
        &self,
        name: &str,
        charset: Option<&str>,
        collation: Option<&str>,
    ) -> Result<Database, ApiError> {
        let mut body = json!({ "name": name });
        if let Some(charset) = charset {
            body["charset"] = json!(charset);
        }
        if let Some(collation) = collation {
            body["collation"] = json!(collation);
        }
        self.post(&["databases"], &body).await
    }

    /// `confirm` must repeat the name: the controller refuses a drop without it.
    pub async fn drop_database(&self, name: &str, confirm: &str) -> Result<(), ApiError> {
        let mut url = self.url(&["databases", name])?;
        url.query_pairs_mut().append_pair("confirm", confirm);
        self.delete(url).await
    }

    pub async fn users(&self) -> Result<Vec<User>, ApiError> {
        self.get(&["users"]).await
    }

    pub async fn create_user(
        &self,
        user: &str,
        host: &str,
        password: Option<&str>,
    ) -> Result<CreatedUser, ApiError> {
        let mut body = json!({ "user": user, "host": host });
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        self.post(&["users"], &body).await
    }

    pub async fn drop_user(&self, user: &str, host: &str) -> Result<(), ApiError> {
        self.delete(self.url(&["users", user, host])?).await
    }

    pub async fn set_password(
        &self,
        user: &str,
        host: &str,
        password: Option<&str>,
    ) -> Result<NewPassword, ApiError> {
        let body = match password {
            Some(password) => json!({ "password": password }),
            None => json!({}),
        };
        self.post(&["users", user, host, "password"], &body).await
    }

    pub async fn grant(&self, request: &GrantRequest<'_>) -> Result<Grants, ApiError> {
        self.post(&["grants"], &json!(request)).await
    }

    pub async fn revoke(&self, request: &GrantRequest<'_>) -> Result<Grants, ApiError> {
        self.post(&["revokes"], &json!(request)).await
    }

    pub async fn catalog(&self) -> Result<Vec<CatalogEntry>, ApiError> {
        self.get(&["openstack", "catalog"]).await
    }

    /// `services: None` provisions the catalog's default set.
    pub async fn provision(
        &self,
        services: Option<&[String]>,
        rotate: bool,
    ) -> Result<Provisioned, ApiError> {
        self.post(
            &["openstack", "provision"],
            &json!({ "services": services, "rotate": rotate }),
        )
        .await
    }

    pub async fn openstack(&self) -> Result<Provisioned, ApiError> {
        self.get(&["openstack"]).await
    }

    /// The config lines of one provisioned service, as text.
    pub async fn openstack_config(&self, service: &str) -> Result<String, ApiError> {
        let mut url = self.url(&["openstack", "config"])?;
        url.query_pairs_mut().append_pair("service", service);
        let response = self.send(self.http.get(url)).await?;
        response.text().await.map_err(|error| ApiError::Protocol {
            url: self.base_url.clone(),
            message: root_cause(&error),
        })
    }

    pub async fn drift(&self) -> Result<Drift, ApiError> {
        self.get(&["openstack", "drift"]).await
    }

    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, ApiError> {
        self.get(&["tokens"]).await
    }

    pub async fn create_token(&self, name: &str) -> Result<NewToken, ApiError> {
        self.post(&["tokens"], &json!({ "name": name })).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        self.delete(self.url(&["tokens", id])?).await
    }

    /// Tells the controller whether `node` should run (false: stopped on purpose, so
    /// that it does not heal the node).
    pub async fn set_desired(&self, node: &str, running: bool) -> Result<(), ApiError> {
        let request = self
            .http
            .put(self.url(&["nodes", node, "desired"])?)
            .json(&serde_json::json!({ "running": running }));
        self.send(request).await.map(|_| ())
    }
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

    /// A state directory with a spec whose controller listens on `controller`.
    fn local_cluster(controller: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display();
        std::fs::write(
            dir.path().join("galley.toml"),
            format!(
                "[cluster]\nname = \"c\"\nsecrets_file = \"{root}/secrets.toml\"\n\
                 [controller]\n{controller}\nstate_dir = \"{root}/controller\"\n\
                 [[node]]\nname = \"db1\"\naddress = \"10.0.0.1\"\nclient_port = 3306\nmanaged = false\n"
            ),
        )
        .unwrap();
        agent::Secrets::for_imported("dba", "pw")
            .write_new(&dir.path().join("secrets.toml"))
            .unwrap();
        dir
    }

    #[test]
    fn the_local_controller_comes_from_the_spec_and_the_secrets_file() {
        let dir = local_cluster("address = \"0.0.0.0\"\nport = 4711");
        let location = Location::new(dir.path().to_path_buf(), None);
        let local = LocalController::load(&location).unwrap();
        assert_eq!(
            local.url, "http://127.0.0.1:4711",
            "a wildcard listener is dialled on loopback"
        );
        let secrets = agent::Secrets::load(&dir.path().join("secrets.toml")).unwrap();
        assert_eq!(local.cluster_token, secrets.cluster_token);
        assert_eq!(local.ca_cert, None);

        let dir = local_cluster(
            "address = \"10.0.0.5\"\nport = 4712\ntls_cert = \"/etc/galley/api.crt\"\ntls_key = \"/etc/galley/api.key\"",
        );
        let location = Location::new(dir.path().to_path_buf(), None);
        let local = LocalController::load(&location).unwrap();
        assert_eq!(local.url, "https://10.0.0.5:4712");
        assert_eq!(
            local.ca_cert.as_deref(),
            Some(std::path::Path::new("/etc/galley/api.crt"))
        );

        let missing = Location::new(dir.path().join("nothing"), None);
        let error = format!(
            "{:#}",
            resolve(&TargetInputs::default(), || LocalController::load(&missing)).unwrap_err()
        );
        assert!(error.contains("no controller to talk to"), "{error}");
        assert!(error.contains("does not exist"), "{error}");
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

    #[test]
    fn path_segments_are_escaped() {
        let client = ApiClient::new(&Resolved {
            base_url: "http://127.0.0.1:4600".to_owned(),
            token: "secret-token-value".to_owned(),
            ca_cert: None,
        })
        .unwrap();
        let url = client.url(&["users", "nova", "%"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:4600/api/v1/users/nova/%25");
        let url = client.url(&["users", "a/b", "10.0.0.%"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:4600/api/v1/users/a%2Fb/10.0.0.%25"
        );
        assert!(!format!("{client:?}").contains("secret-token-value"));
    }

    #[test]
    fn refusals_say_who_refused() {
        let error = ApiError::Refused {
            status: 400,
            message: "`no-such!` is not a valid database name".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "the controller refused the request (400 invalid input): `no-such!` is not a valid database name"
        );
        let error = ApiError::Refused {
            status: 503,
            message: "no node is Synced".to_owned(),
        };
        assert!(error.to_string().starts_with("no Synced node"), "{error}");
        let error = ApiError::Unreachable {
            url: "http://127.0.0.1:1".to_owned(),
            cause: "Connection refused (os error 111)".to_owned(),
        };
        assert!(error.to_string().contains("galley up"), "{error}");
    }
}
