//! The admin HTTP endpoint: `GET /status` (JSON), `GET /metrics` (Prometheus), and,
//! with the cluster token, `POST /drain/{node}`, `POST /undrain/{node}` and
//! `POST /shutdown`. It listens on `proxy.admin_address`, loopback by default. `/metrics`
//! is open so that monitoring can scrape it; `/status` (node addresses, states and
//! reasons) is open only while the endpoint listens on loopback, and needs the cluster
//! token otherwise (`AdminClient` always sends it).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::state::Proxy;

/// Who may read `/status` without the cluster token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAccess {
    /// The endpoint listens on loopback: only this host reaches it.
    Open,
    /// The endpoint listens where other hosts reach it.
    TokenRequired,
}

impl StatusAccess {
    /// Judged by the address the listener is bound to, not by each peer: a wildcard
    /// address is reachable from anywhere, so it needs the token from loopback too.
    pub fn for_listener(listener: &tokio::net::TcpListener) -> StatusAccess {
        match listener.local_addr() {
            Ok(address) if address.ip().is_loopback() => StatusAccess::Open,
            _ => StatusAccess::TokenRequired,
        }
    }
}

#[derive(Clone)]
struct AdminState {
    proxy: Arc<Proxy>,
    token: Arc<String>,
    shutdown: tokio::sync::watch::Sender<bool>,
    status_access: StatusAccess,
}

pub fn router(
    proxy: Arc<Proxy>,
    token: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    status_access: StatusAccess,
) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/drain/{node}", post(drain))
        .route("/undrain/{node}", post(undrain))
        .route("/shutdown", post(shutdown_proxy))
        .with_state(AdminState {
            proxy,
            token: Arc::new(token),
            shutdown,
            status_access,
        })
}

fn authorized(state: &AdminState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.token.as_bytes();
    let matches = presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if matches {
        Ok(())
    } else {
        let body = Json(serde_json::json!({"error": "missing or wrong cluster token"}));
        Err(Box::new((StatusCode::UNAUTHORIZED, body).into_response()))
    }
}

async fn status(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if state.status_access == StatusAccess::TokenRequired {
        if let Err(response) = authorized(&state, &headers) {
            return *response;
        }
    }
    Json(state.proxy.status()).into_response()
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state.proxy),
    )
        .into_response()
}

async fn set_drain(
    state: &AdminState,
    headers: &HeaderMap,
    node: &str,
    draining: bool,
) -> Response {
    if let Err(response) = authorized(state, headers) {
        return *response;
    }
    match state.proxy.set_draining(node, draining) {
        Ok(()) => {
            tracing::info!(node, draining, "drain changed");
            if draining {
                writer_moved_off(&state.proxy, node).await;
            }
            Json(state.proxy.status()).into_response()
        }
        Err(message) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": message})),
        )
            .into_response(),
    }
}

/// With the shared writer decision, the writer moves off a drained node once the
/// decision task changed the record: the answer waits for it (at most two probe
/// timeouts), so that a drain's caller sees the new writer, as with a local decision.
async fn writer_moved_off(proxy: &Proxy, node: &str) {
    if proxy.writer_decision != spec::WriterDecision::Shared {
        return;
    }
    let patience = std::time::Duration::from_millis(2 * proxy.settings().probe_timeout_ms);
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < deadline {
        let moved = proxy
            .writer()
            .is_some_and(|index| proxy.backends[index].name != node);
        if moved {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn drain(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Response {
    set_drain(&state, &headers, &node, true).await
}

async fn undrain(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Response {
    set_drain(&state, &headers, &node, false).await
}

async fn shutdown_proxy(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return *response;
    }
    let _ = state.shutdown.send(true);
    Json(serde_json::json!({"stopping": true})).into_response()
}
