//! A typed client for the agent API, used by `galley` commands (and the controller).

use std::time::Duration;

use anyhow::Context as _;
use galera::Position;
use serde::de::DeserializeOwned;

use crate::api::{
    ErrorBody, InitResponse, NodeReport, RecoverResponse, StartMode, StartRequest, StartResponse,
    StopResponse,
};

/// A stop waits at most `server.stop_timeout_s` (bounded by
/// `ServerSettings::MAX_STOP_TIMEOUT_S`), then the kill; the call allows for both.
const STOP_CALL_TIMEOUT: Duration =
    Duration::from_secs(spec::ServerSettings::MAX_STOP_TIMEOUT_S + 30);

#[derive(Clone)]
pub struct AgentClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a call failed: the agent could not be reached, or it answered with an error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    #[error("the agent at {address} does not answer: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the agent at {address} refused: {message}")]
    Refused {
        address: String,
        status: u16,
        message: String,
    },
}

impl AgentClient {
    /// `address` is `host:port`.
    pub fn new(address: &str, token: &str) -> AgentClient {
        AgentClient {
            base: format!("http://{address}"),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub async fn status(&self) -> Result<NodeReport, AgentError> {
        self.call(
            reqwest::Method::GET,
            "/v1/status",
            None,
            Duration::from_secs(8),
        )
        .await
    }

    pub async fn init(&self) -> Result<InitResponse, AgentError> {
        self.call(
            reqwest::Method::POST,
            "/v1/init",
            None,
            Duration::from_secs(180),
        )
        .await
    }

    pub async fn start(
        &self,
        mode: StartMode,
        mark_safe_to_bootstrap: bool,
    ) -> Result<StartResponse, AgentError> {
        let body = serde_json::to_value(StartRequest {
            mode,
            mark_safe_to_bootstrap,
        })
        .expect("serializes");
        self.call(
            reqwest::Method::POST,
            "/v1/start",
            Some(body),
            Duration::from_secs(180),
        )
        .await
    }

    pub async fn stop(&self) -> Result<StopResponse, AgentError> {
        self.call(reqwest::Method::POST, "/v1/stop", None, STOP_CALL_TIMEOUT)
            .await
    }

    pub async fn recover(&self) -> Result<Position, AgentError> {
        let response: RecoverResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/recover",
                None,
                Duration::from_secs(180),
            )
            .await?;
        Ok(response.position)
    }

    pub async fn clear_bootstrap_flag(&self) -> Result<StopResponse, AgentError> {
        self.call(
            reqwest::Method::POST,
            "/v1/clear-bootstrap-flag",
            None,
            Duration::from_secs(30),
        )
        .await
    }

    /// Moves the stopped node's data dir aside; the next start rebuilds it by SST.
    pub async fn wipe(&self, label: &str) -> Result<crate::api::WipeResponse, AgentError> {
        let body = serde_json::to_value(crate::api::WipeRequest {
            label: label.to_owned(),
        })
        .expect("serializes");
        self.call(
            reqwest::Method::POST,
            "/v1/wipe",
            Some(body),
            Duration::from_secs(60),
        )
        .await
    }

    /// Stops the server (if running) and the agent.
    pub async fn shutdown(&self) -> Result<StopResponse, AgentError> {
        self.call(
            reqwest::Method::POST,
            "/v1/shutdown",
            None,
            STOP_CALL_TIMEOUT,
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<T, AgentError> {
        let address = self.base.trim_start_matches("http://").to_owned();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|error| AgentError::Unreachable {
                address: address.clone(),
                reason: describe(&error),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| AgentError::Unreachable {
                address: address.clone(),
                reason: describe(&error),
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|body| body.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(AgentError::Refused {
                address,
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .context("unexpected answer")
            .map_err(|error| AgentError::Refused {
                address,
                status: status.as_u16(),
                message: format!("{error:#}"),
            })
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection refused (is the agent running?)".to_owned()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    /// A stop that waits its longest allowed deadline, then kills, is neither cut short by
    /// the agent's own request timeout (the kill would never come) nor by its client.
    #[test]
    fn the_longest_stop_fits_in_every_timeout_on_its_way() {
        let longest_stop = std::time::Duration::from_secs(
            spec::ServerSettings::MAX_STOP_TIMEOUT_S + 10, // the kill, reaped
        );
        assert!(super::STOP_CALL_TIMEOUT > longest_stop);
        assert!(httpd::Limits::agent_api().request_timeout > super::STOP_CALL_TIMEOUT);
    }
}
