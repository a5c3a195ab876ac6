//! What the API's unit tests share: a controller state with a store, an observation and
//! a proxy address, and one request sent through the whole router.

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt as _;

use super::{router, ApiSecrets, ApiState, RemoteAddr};
use crate::sql_observe::report_from_sql;

/// A port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A cluster of three nodes (one reported Synced, one with its agent down, one
/// stopped), a proxy whose admin endpoint is at `proxy_admin_port`, and a controller
/// store in `dir`.
pub(crate) fn api_state(dir: &std::path::Path, proxy_admin_port: u16) -> Arc<ApiState> {
    let root = dir.display();
    let mut text = format!(
        "[cluster]\nname = \"contract\"\nsecrets_file = \"{root}/secrets.toml\"\n\n\
         [controller]\nstate_dir = \"{root}/controller\"\n\n\
         [proxy]\naddress = \"127.0.0.1\"\nadmin_port = {proxy_admin_port}\n"
    );
    for n in 1..=3 {
        text.push_str(&format!(
            "\n[[node]]\nname = \"node{n}\"\naddress = \"127.0.0.1\"\nclient_port = {}\n\
             galera_port = {}\nist_port = {}\nsst_port = {}\nagent_port = {}\n\
             data_dir = \"{root}/node{n}/data\"\nrun_dir = \"{root}/node{n}/run\"\n\
             log_dir = \"{root}/node{n}/log\"\n",
            3300 + n,
            4500 + n,
            4510 + n,
            4520 + n,
            4530 + n
        ));
    }
    let loaded = spec::parse(&dir.join("galley.toml"), &text).unwrap();
    let settings = loaded.spec.controller.clone().unwrap();
    let store = store::Store::open(&crate::store_path(&settings)).unwrap();
    crate::api::auth::set_console_password(&store, "admin", "a long console password", 1).unwrap();
    store
        .record_event(&store::NewEvent {
            at_ms: 1_000,
            severity: store::Severity::Warning,
            kind: "node_down".to_owned(),
            node: Some("node2".to_owned()),
            message: "node2 went from Synced to agent down.".to_owned(),
        })
        .unwrap();
    store
        .record_decision(&store::NewDecision {
            at_ms: 2_000,
            situation: Some("degraded".to_owned()),
            rule: "RestartCrashedNode".to_owned(),
            action: "start node3".to_owned(),
            node: Some("node3".to_owned()),
            reason: "node3 crashed".to_owned(),
            evidence: json!({"node3": "stopped"}),
            outcome: "done: started".to_owned(),
        })
        .unwrap();
    let synced = galera::WsrepStatus::from_variables([
        ("wsrep_ready", "ON"),
        ("wsrep_connected", "ON"),
        ("wsrep_cluster_status", "Primary"),
        ("wsrep_cluster_size", "1"),
        (
            "wsrep_cluster_state_uuid",
            "6b8c2a4e-0f1d-11f0-9a3b-5b1e2c3d4f5a",
        ),
        ("wsrep_local_state", "4"),
        ("wsrep_last_committed", "17"),
    ]);
    let mut stopped = report_from_sql("node3", synced.clone());
    stopped.process.running = false;
    stopped.wsrep = None;
    let nodes = &loaded.spec.nodes;
    let observations = crate::Observations::default();
    observations.publish(crate::LastObservation {
        at_ms: 3_000,
        nodes: vec![
            (nodes[0].clone(), Some(report_from_sql("node1", synced))),
            (nodes[1].clone(), None),
            (nodes[2].clone(), Some(stopped)),
        ],
    });
    ApiState::new(
        loaded.spec.clone(),
        settings,
        ApiSecrets {
            cluster_token: "cluster-token".to_owned(),
            admin_user: "galley_admin".to_owned(),
            admin_password: "unused".to_owned(),
        },
        observations,
        false,
    )
    .unwrap()
}

/// Sends one request through the whole router, as the cluster token.
pub(crate) async fn call(
    state: &Arc<ApiState>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, body) =
        call_as(state, Some("cluster-token"), "127.0.0.1", method, uri, body).await;
    (status, body)
}

/// Sends one request through the whole router with `bearer` (none: no Authorization
/// header) from `source` (an IP address); returns the status, headers and JSON body.
pub(crate) async fn call_as(
    state: &Arc<ApiState>,
    bearer: Option<&str>,
    source: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let mut request = request
        .body(body.map_or_else(HttpBody::empty, |body| HttpBody::from(body.to_string())))
        .unwrap();
    let source: std::net::IpAddr = source.parse().unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(RemoteAddr((source, 50000).into())));
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else if headers
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"))
    {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|error| panic!("{uri} answered {status} with no JSON ({error})"))
    };
    (status, headers, body)
}
