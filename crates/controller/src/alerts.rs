//! Alerts: every warning or critical event goes to the configured command (event JSON on
//! stdin) and webhook (JSON POST). Delivery runs in the background and never blocks the
//! control loop; a failed delivery is logged, once, where it is handled.

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use store::Severity;
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub cluster: String,
    pub at_ms: i64,
    pub severity: Severity,
    pub kind: String,
    pub node: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    command: Vec<String>,
    webhook: Option<String>,
    http: reqwest::Client,
}

impl Alerts {
    pub fn new(command: Vec<String>, webhook: Option<String>) -> Alerts {
        Alerts {
            command,
            webhook,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub fn send(&self, alert: Alert) {
        let body = serde_json::to_vec(&alert).expect("alerts serialize");
        if let Some((program, arguments)) = self.command.split_first() {
            let program = program.clone();
            let arguments = arguments.to_vec();
            let body = body.clone();
            let kind = alert.kind.clone();
            tokio::spawn(async move {
                let result = async {
                    let mut child = tokio::process::Command::new(&program)
                        .args(&arguments)
                        .env("GALLEY_ALERT_KIND", &kind)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()?;
                    if let Some(mut stdin) = child.stdin.take() {
                        stdin.write_all(&body).await?;
                    }
                    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
                        .await
                        .map_err(|_| std::io::Error::other("timed out after 30 s"))??;
                    if status.success() {
                        Ok(())
                    } else {
                        Err(std::io::Error::other(format!("exited with {status}")))
                    }
                }
                .await;
                if let Err(error) = result {
                    tracing::warn!(%program, "alert command failed: {error}");
                }
            });
        }
        if let Some(url) = self.webhook.clone() {
            let http = self.http.clone();
            tokio::spawn(async move {
                let result = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(error) = result {
                    tracing::warn!("{}", webhook_failure(error));
                }
            });
        }
    }
}

/// What the log says of a failed webhook delivery: never its URL, which often carries a
/// secret (a token in the path or query).
fn webhook_failure(error: reqwest::Error) -> String {
    format!(
        "alert webhook failed (its URL is in galley.toml, not in logs): {}",
        error.without_url()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_webhook_is_logged_without_its_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/hooks/s3cr3t-token?key=hunter2");
        let error = reqwest::Client::new().post(&url).send().await.unwrap_err();
        assert!(
            error.to_string().contains("s3cr3t"),
            "reqwest names the URL: {error}"
        );
        let logged = webhook_failure(error);
        assert!(
            !logged.contains("s3cr3t") && !logged.contains("hunter2"),
            "{logged}"
        );
        assert!(logged.contains("alert webhook failed"), "{logged}");
    }
}
