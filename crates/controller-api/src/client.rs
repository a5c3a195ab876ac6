//! The typed client of the controller's REST API (`/api/v1`): one method per route the
//! CLI uses, sending and reading this crate's types. Errors keep the controller's own
//! message (it names what was wrong and what is allowed) and say who refused.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{
    CatalogEntry, CreatedUser, Database, DesiredRequest, Drift, ErrorBody, GrantRequest, Grants,
    NewDatabase, NewPassword, NewToken, NewTokenRequest, NewUser, ProvisionRequest, Provisioned,
    Resolved, TokenInfo, TokenScope, User,
};

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
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|answer| answer.error)
            .unwrap_or_else(|_| {
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
        body: &impl Serialize,
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
        let body = NewDatabase {
            name: name.to_owned(),
            charset: charset.map(str::to_owned),
            collation: collation.map(str::to_owned),
        };
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
        let body = NewUser {
            user: user.to_owned(),
            host: host.to_owned(),
            password: password.map(str::to_owned),
        };
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
        let body = NewPassword {
            password: password.map(str::to_owned),
        };
        self.post(&["users", user, host, "password"], &body).await
    }

    pub async fn grant(&self, request: &GrantRequest) -> Result<Grants, ApiError> {
        self.post(&["grants"], request).await
    }

    pub async fn revoke(&self, request: &GrantRequest) -> Result<Grants, ApiError> {
        self.post(&["revokes"], request).await
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
        let body = ProvisionRequest {
            services: services.map(<[String]>::to_vec),
            rotate,
            utf8mb4: None,
        };
        self.post(&["openstack", "provision"], &body).await
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

    pub async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        lifetime_days: Option<u32>,
    ) -> Result<NewToken, ApiError> {
        let body = NewTokenRequest {
            name: name.to_owned(),
            scope,
            lifetime_days,
        };
        self.post(&["tokens"], &body).await
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
            .json(&DesiredRequest { running });
        self.send(request).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
