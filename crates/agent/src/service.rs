//! The agent's HTTP+JSON service. Every `/v1` route needs the cluster token as a bearer
//! token; `/clustercheck` answers without one, 200 when the node may take writes and 503
//! otherwise, so that an existing HAProxy can use it as an HTTP check. It answers from
//! the agent's last report ([`crate::clustercheck`]), so it never waits for SQL.
//! `/metrics` (Prometheus text, [`crate::metrics`]) answers without one too: it holds
//! the server's status counters and numeric settings, never a credential, and reads
//! them on its own connection, cached for a second.
//!
//! Served through `httpd` with [`httpd::Limits::agent_api`]: header and idle timeouts,
//! connection caps and a body limit, so that unauthenticated clients (idle sockets, a
//! flood of checks) cannot keep the controller's requests out.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Notify;

use crate::api::{
    ErrorBody, InitResponse, NodeReport, RecoverResponse, StartRequest, StartResponse,
    StopResponse, WipeRequest, WipeResponse,
};
use crate::clustercheck::{ClusterCheck, Probing};
use crate::metrics::Exporter;
use crate::server::{Server, ServerError};

#[derive(Debug, Clone)]
struct AppState {
    server: Arc<Server>,
    shutdown: Arc<Notify>,
    clustercheck: Arc<ClusterCheck>,
    exporter: Arc<Exporter>,
}

/// Serves the agent API on `listener` until `shutdown` resolves or a caller asks the
/// agent to exit (`POST /v1/shutdown`), with the default limits and probe.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clustercheck = ClusterCheck::start(Arc::clone(&server), Probing::default());
    serve_with(
        listener,
        server,
        clustercheck,
        httpd::Limits::agent_api(),
        shutdown,
    )
    .await
}

/// [`serve`] with its `/clustercheck` probe and HTTP limits given.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    clustercheck: Arc<ClusterCheck>,
    limits: httpd::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let exit_requested = Arc::new(Notify::new());
    let state = AppState {
        exporter: Arc::new(Exporter::new(Arc::clone(&server))),
        server,
        shutdown: Arc::clone(&exit_requested),
        clustercheck,
    };
    let api = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/init", post(init))
        .route("/v1/start", post(start))
        .route("/v1/stop", post(stop))
        .route("/v1/recover", post(recover))
        .route("/v1/shutdown", post(shutdown_agent))
        .route("/v1/clear-bootstrap-flag", post(clear_bootstrap_flag))
        .route("/v1/wipe", post(wipe))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let app = Router::new()
        .route("/clustercheck", get(check_cluster))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(state);
    httpd::Server::new("agent API", limits)
        .serve(listener, app, async move {
            tokio::select! {
                () = shutdown => {}
                () = exit_requested.notified() => {}
            }
        })
        .await?;
    Ok(())
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if state.server.secrets().token_matches(token) => next.run(request).await,
        _ => error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong cluster token (Authorization: Bearer <token>)",
        ),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        match self {
            ServerError::Conflict(message) => error(StatusCode::CONFLICT, message),
            ServerError::Internal(cause) => {
                tracing::error!("{cause:#}");
                error(StatusCode::INTERNAL_SERVER_ERROR, format!("{cause:#}"))
            }
        }
    }
}

/// A fresh report, which `/clustercheck` then answers from too.
async fn status(State(state): State<AppState>) -> Json<NodeReport> {
    let report = state.server.report().await;
    state.clustercheck.record(&report);
    Json(report)
}

async fn check_cluster(State(state): State<AppState>) -> Response {
    state.clustercheck.answer().into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let page = state.exporter.page().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page.to_string(),
    )
        .into_response()
}

async fn init(State(state): State<AppState>) -> Result<Json<InitResponse>, ServerError> {
    Ok(Json(state.server.init().await?))
}

async fn start(
    State(state): State<AppState>,
    Json(request): Json<StartRequest>,
) -> Result<Json<StartResponse>, ServerError> {
    let pid = state.server.start(request).await?;
    Ok(Json(StartResponse { pid }))
}

async fn stop(State(state): State<AppState>) -> Result<Json<StopResponse>, ServerError> {
    let stopped = state.server.stop(state.server.stop_timeout().await).await?;
    Ok(Json(StopResponse::from(stopped)))
}

async fn recover(State(state): State<AppState>) -> Result<Json<RecoverResponse>, ServerError> {
    let position = state.server.recover().await?;
    Ok(Json(RecoverResponse { position }))
}

/// Stops the server if it runs, then lets the agent exit.
async fn shutdown_agent(State(state): State<AppState>) -> Result<Json<StopResponse>, ServerError> {
    let stopped = state.server.stop(state.server.stop_timeout().await).await?;
    state.shutdown.notify_one();
    Ok(Json(StopResponse::from(stopped)))
}

async fn clear_bootstrap_flag(
    State(state): State<AppState>,
) -> Result<Json<StopResponse>, ServerError> {
    let grastate = state.server.clear_bootstrap_flag().await?;
    Ok(Json(StopResponse {
        grastate,
        killed_after_s: None,
    }))
}

async fn wipe(
    State(state): State<AppState>,
    Json(request): Json<WipeRequest>,
) -> Result<Json<WipeResponse>, ServerError> {
    let aside = state.server.wipe(&request.label).await?;
    Ok(Json(WipeResponse {
        moved_to: aside.display().to_string(),
    }))
}

impl From<crate::server::Stopped> for StopResponse {
    fn from(stopped: crate::server::Stopped) -> StopResponse {
        StopResponse {
            grastate: stopped.grastate,
            killed_after_s: stopped.killed_after_s,
        }
    }
}
