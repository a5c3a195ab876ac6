//! A typed client for the proxy's admin endpoint (`/status`, `/drain`, `/undrain`,
//! `/shutdown`), used by `galley` commands and the rolling restart.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::state::ProxyStatus;

#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a call failed: the proxy could not be reached, or it answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the proxy admin endpoint at {address} does not answer: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the proxy at {address} refused {path}: {message}")]
    Refused {
        address: String,
        path: String,
        status: u16,
        message: String,
    },
}

impl AdminClient {
    /// `address` is the admin endpoint's `host:port`; `token` the cluster token (drain,
    /// undrain and shutdown need it, and status where the endpoint is not on loopback;
    /// it is sent with every call).
    pub fn new(address: &str, token: &str) -> AdminClient {
        AdminClient::with_timeouts(
            address,
            token,
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
    }

    /// Like [`AdminClient::new`], with other limits on connecting and on the whole call
    /// (the controller's API, which answers the console, waits a second at most).
    pub fn with_timeouts(
        address: &str,
        token: &str,
        connect: Duration,
        total: Duration,
    ) -> AdminClient {
        AdminClient {
            base: format!("http://{address}"),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .connect_timeout(connect)
                .timeout(total)
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    /// The client for the proxy a spec describes.
    pub fn for_spec(proxy: &spec::ProxySpec, token: &str) -> AdminClient {
        AdminClient::new(&proxy.admin_endpoint(), token)
    }

    /// `host:port` of the admin endpoint, for messages.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn status(&self) -> Result<ProxyStatus, AdminError> {
        self.call(reqwest::Method::GET, "/status").await
    }

    /// Stops new sessions on `node`, moves the writer off it and closes its sessions
    /// after the writer grace. Returns the status after the change.
    pub async fn drain(&self, node: &str) -> Result<ProxyStatus, AdminError> {
        self.call(reqwest::Method::POST, &format!("/drain/{node}"))
            .await
    }

    pub async fn undrain(&self, node: &str) -> Result<ProxyStatus, AdminError> {
        self.call(reqwest::Method::POST, &format!("/undrain/{node}"))
            .await
    }

    pub async fn shutdown(&self) -> Result<serde_json::Value, AdminError> {
        self.call(reqwest::Method::POST, "/shutdown").await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, AdminError> {
        let address = self.address().to_owned();
        let unreachable = |error: reqwest::Error| AdminError::Unreachable {
            address: address.clone(),
            reason: if error.is_timeout() {
                "timed out".to_owned()
            } else if error.is_connect() {
                "connection refused (is the proxy running?)".to_owned()
            } else {
                error.to_string()
            },
        };
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let refused = |message: String| AdminError::Refused {
            address: address.clone(),
            path: path.to_owned(),
            status: status.as_u16(),
            message,
        };
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|body| body["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(refused(message));
        }
        serde_json::from_slice(&bytes)
            .map_err(|error| refused(format!("unexpected answer: {error}")))
    }
}
