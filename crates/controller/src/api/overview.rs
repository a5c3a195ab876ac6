//! The overview endpoints: health, the cluster as the controller last observed it (with
//! the proxy's writer), the events and decisions history, and the metric history for the
//! console's charts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, put};
use axum::Json;
use controller_api::{
    ClusterView, ComponentView, ControllerView, Decision, DecisionsQuery, DesiredRequest,
    DesiredState, Event, EventsQuery, Health, History, HistoryQuery, NodeView, ProxyView, Severity,
};
use serde_json::Value;

use super::{
    Access, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Route, RouteDoc, SharedState,
};
use crate::now_ms;

async fn health() -> Json<Health> {
    Json(Health { ok: true })
}

async fn openapi() -> Json<Value> {
    Json(super::openapi_document())
}

/// The proxy's view: its writer and healthy nodes, from its admin `/status`; None when
/// the spec has no proxy or it does not answer within a second.
async fn proxy_view(state: &SharedState) -> Option<ProxyView> {
    let proxy = state.spec.proxy.as_ref()?;
    let status = state.proxy.as_ref()?.status().await.ok()?;
    state
        .observations
        .counters()
        .saw_writer(status.writer.as_deref());
    Some(ProxyView {
        writer: status.writer,
        writer_address: spec::host_port(&proxy.address, proxy.writer_port),
        reader_address: spec::host_port(&proxy.address, proxy.reader_port),
        healthy: status
            .backends
            .into_iter()
            .filter(|backend| backend.read_healthy)
            .map(|backend| backend.name)
            .collect(),
    })
}

/// The cluster as the controller's latest observation saw it (without the proxy's view).
pub(super) fn cluster_view(state: &SharedState) -> ClusterView {
    let latest = state.observations.latest();
    let mut nodes = Vec::new();
    let mut primary: Option<(i64, String)> = None;
    for node in &state.spec.nodes {
        let report = latest.as_ref().and_then(|observed| {
            observed
                .nodes
                .iter()
                .find(|(spec, _)| spec.name == node.name)
                .and_then(|(_, report)| report.clone())
        });
        let wsrep = report.as_ref().and_then(|report| report.wsrep.clone());
        if let Some(wsrep) = wsrep.as_ref().filter(|wsrep| wsrep.is_primary()) {
            if primary
                .as_ref()
                .is_none_or(|(size, _)| wsrep.cluster_size > *size)
            {
                primary = Some((wsrep.cluster_size, wsrep.cluster_state_uuid.clone()));
            }
        }
        let state_label = match &report {
            None if latest.is_none() => "unknown".to_owned(),
            None => "agent down".to_owned(),
            Some(report) => report.state_label(),
        };
        nodes.push(NodeView {
            name: node.name.clone(),
            address: node.address.clone(),
            client_port: node.client_port,
            state: state_label,
            reachable: report.is_some(),
            cluster_size: wsrep.as_ref().map(|w| w.cluster_size),
            cluster_status: wsrep.as_ref().map(|w| w.cluster_status.clone()),
            last_committed: wsrep.as_ref().map(|w| w.last_committed),
            recv_queue: wsrep.as_ref().map(|w| w.local_recv_queue),
            send_queue: wsrep.as_ref().map(|w| w.local_send_queue),
            flow_control_paused: wsrep.as_ref().map(|w| w.flow_control_paused),
            cert_failures: wsrep.as_ref().map(|w| w.cert_failures),
            ready: wsrep.as_ref().map(|w| w.ready),
            desync: wsrep.as_ref().map(|w| w.desync),
            read_only: wsrep.as_ref().map(|w| w.read_only),
        });
    }
    let cluster = match primary {
        Some((size, uuid)) => ComponentView {
            size,
            status: "Primary".to_owned(),
            uuid: Some(uuid),
        },
        None => ComponentView {
            size: 0,
            status: "non-Primary".to_owned(),
            uuid: None,
        },
    };
    ClusterView {
        name: state.spec.name.clone(),
        observed_at_ms: latest.as_ref().map(|observed| observed.at_ms),
        nodes,
        cluster,
        proxy: None,
        controller: ControllerView {
            auto_recover_nodes: state.settings.auto_recover_nodes,
            auto_recover_cluster: state.settings.auto_recover_cluster,
        },
    }
}

async fn cluster(State(state): State<SharedState>) -> Json<ClusterView> {
    let mut view = cluster_view(&state);
    view.proxy = proxy_view(&state).await;
    Json(view)
}

/// Prometheus text: every node as last observed, with a `node` label, and what the
/// controller did ([`crate::metrics`]; docs/metrics.md).
async fn metrics(State(state): State<SharedState>) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let latest = state.observations.latest();
    let now = now_ms();
    let nodes = state
        .spec
        .nodes
        .iter()
        .map(|node| {
            let report = latest.as_ref().and_then(|observed| {
                observed
                    .nodes
                    .iter()
                    .find(|(spec, _)| spec.name == node.name)
                    .and_then(|(_, report)| report.clone())
            });
            (node.name.clone(), report)
        })
        .collect();
    let proxy = proxy_view(&state).await;
    let (lease_holder, high_water_mark) = {
        let store = state.store();
        let lease = store.lease_holder(now)?.map(|(owner, _)| owner);
        let mark = store
            .high_water_marks()?
            .accepted
            .map(|mark| (mark.uuid, mark.seqno));
        (lease, mark)
    };
    let snapshot = crate::metrics::Snapshot {
        nodes,
        observation_age_s: latest
            .as_ref()
            .map(|observed| (now - observed.at_ms).max(0) as f64 / 1000.0),
        counters: state.observations.counters().values(),
        proxy_answered: proxy.is_some(),
        writer: proxy.and_then(|proxy| proxy.writer),
        lease_holder,
        high_water_mark,
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&snapshot),
    )
        .into_response())
}

/// `limit` between 1 and 10 000, 100 when absent.
fn check_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit {
        None => Ok(100),
        Some(limit @ 1..=10_000) => Ok(limit),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid limit {other}: use a number from 1 to 10000"
        ))),
    }
}

/// Records the operator's intent for a node, as `galley stop`/`galley start` do on the
/// controller's own host: a node stopped on purpose is left down, not healed. A rolling
/// restart driven from another host (a deployment) says so here before it stops a node.
async fn set_desired(
    State(state): State<SharedState>,
    ApiPath(node): ApiPath<String>,
    ApiJson(body): ApiJson<DesiredRequest>,
) -> ApiResult<Json<DesiredState>> {
    known_node(&state, &node)?;
    state.store().set_desired(&node, body.running, now_ms())?;
    Ok(Json(DesiredState {
        node,
        running: body.running,
    }))
}

/// A 400 naming the nodes there are, for a node name the spec does not have.
fn known_node(state: &SharedState, node: &str) -> ApiResult<()> {
    if state.spec.nodes.iter().any(|n| n.name == node) {
        return Ok(());
    }
    let names: Vec<&str> = state.spec.nodes.iter().map(|n| n.name.as_str()).collect();
    Err(ApiError::bad_request(format!(
        "unknown node {node:?}: this cluster has {}",
        names.join(", ")
    )))
}

async fn events(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Vec<Event>>> {
    let limit = check_limit(query.limit)?;
    if let Some(node) = &query.node {
        known_node(&state, node)?;
    }
    let filter = store::EventFilter {
        since_ms: None,
        node: query.node,
        limit,
    };
    let events = state.store().events(&filter)?;
    Ok(Json(
        events
            .into_iter()
            .map(|event| Event {
                at_ms: event.at_ms,
                severity: match event.severity {
                    store::Severity::Info => Severity::Info,
                    store::Severity::Warning => Severity::Warning,
                    store::Severity::Critical => Severity::Critical,
                },
                kind: event.kind,
                node: event.node,
                message: event.message,
            })
            .collect(),
    ))
}

async fn decisions(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<DecisionsQuery>,
) -> ApiResult<Json<Vec<Decision>>> {
    let limit = check_limit(query.limit)?;
    let decisions = state.store().decisions(None, limit)?;
    Ok(Json(
        decisions
            .into_iter()
            .map(|decision| Decision {
                at_ms: decision.at_ms,
                situation: decision.situation,
                rule: decision.rule,
                action: decision.action,
                node: decision.node,
                reason: decision.reason,
                outcome: decision.outcome,
                evidence: decision.evidence,
            })
            .collect(),
    ))
}

/// The windows the history offers, with their lengths in milliseconds.
const WINDOWS: &[(&str, i64)] = &[
    ("5m", 300_000),
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
];

/// Points per series at most: longer windows are averaged into buckets.
const MAX_POINTS: i64 = 300;

/// How a metric's per-node values combine into the cluster's.
#[derive(Clone, Copy)]
enum Combine {
    Sum,
    Max,
}

const METRICS: &[(&str, Combine)] = &[
    ("qps", Combine::Sum),
    ("flow_control_paused", Combine::Max),
    ("recv_queue", Combine::Max),
    ("replication_bytes_per_s", Combine::Max),
];

fn metric_value(sample: &store::Sample, metric: &str) -> f64 {
    match metric {
        "qps" => sample.queries_per_second,
        "flow_control_paused" => sample.flow_control_paused,
        "recv_queue" => sample.recv_queue as f64,
        _ => sample.replication_bytes_per_second,
    }
}

/// Per (metric, node): bucket index -> (sum, count) of the values in that bucket.
type Buckets = BTreeMap<i64, (f64, u32)>;

/// The series for the charts: every metric per node (`"<metric>:<node>"`) and for the
/// cluster (`"<metric>"`), averaged into at most [`MAX_POINTS`] buckets of the window.
/// NaN values (rates not computable yet) are left out.
pub(super) fn series(
    samples: &[store::Sample],
    since_ms: i64,
    window_ms: i64,
) -> BTreeMap<String, Vec<(i64, f64)>> {
    let bucket_ms = (window_ms / MAX_POINTS).max(1);
    let mut per_node: BTreeMap<(&str, &str), Buckets> = BTreeMap::new();
    for sample in samples {
        let bucket = (sample.at_ms - since_ms).max(0) / bucket_ms;
        for (metric, _) in METRICS {
            let value = metric_value(sample, metric);
            if value.is_nan() {
                continue;
            }
            let entry = per_node
                .entry((metric, sample.node.as_str()))
                .or_default()
                .entry(bucket)
                .or_insert((0.0, 0));
            entry.0 += value;
            entry.1 += 1;
        }
    }
    let mut series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut cluster: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for ((metric, node), buckets) in &per_node {
        let combine = METRICS
            .iter()
            .find(|(name, _)| name == metric)
            .map_or(Combine::Max, |(_, combine)| *combine);
        let points = series.entry(format!("{metric}:{node}")).or_default();
        for (bucket, (sum, count)) in buckets {
            let average = sum / f64::from(*count);
            let at_ms = since_ms + bucket * bucket_ms;
            points.push((at_ms, average));
            let total = cluster
                .entry(metric)
                .or_default()
                .entry(at_ms)
                .or_insert(0.0);
            *total = match combine {
                Combine::Sum => *total + average,
                Combine::Max => total.max(average),
            };
        }
    }
    for (metric, points) in cluster {
        series.insert(metric.to_owned(), points.into_iter().collect());
    }
    series
}

async fn history(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<History>> {
    let window = query.window.as_deref().unwrap_or("1h");
    let Some((_, window_ms)) = WINDOWS.iter().find(|(name, _)| *name == window) else {
        return Err(ApiError::bad_request(format!(
            "invalid window {window:?}: use one of 5m, 1h, 6h, 24h, 7d"
        )));
    };
    let now = now_ms();
    let since = now - window_ms;
    let samples = state.store().samples(None, since, now)?;
    Ok(Json(History {
        window: window.to_owned(),
        series: series(&samples, since, *window_ms),
    }))
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/v1/health",
            Access::Public,
            get(health),
            RouteDoc::new("Liveness of the controller's API")
                .response::<Health>(200)
                .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/openapi.json",
            Access::Read,
            get(openapi),
            RouteDoc::new("This document")
                .response::<serde_json::Map<String, Value>>(200)
                .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/cluster",
            Access::Read,
            get(cluster),
            RouteDoc::new(
                "Every node as the controller last observed it, the cluster, and the proxy's writer",
            )
            .response::<ClusterView>(200)
            .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/metrics",
            Access::Read,
            get(metrics),
            RouteDoc::new(
                "Prometheus text: every node's wsrep status with a node label, galley's view of each node, decisions by rule, steps, events, the lease holder and the high-water mark",
            )
            .text()
            .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/events",
            Access::Read,
            get(events),
            RouteDoc::new("Events, newest first")
                .query::<EventsQuery>()
                .response::<Vec<Event>>(200)
                .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/decisions",
            Access::Read,
            get(decisions),
            RouteDoc::new("The controller's decisions with their reasons, newest first")
                .query::<DecisionsQuery>()
                .response::<Vec<Decision>>(200)
                .errors(&[400]),
        ),
        Route::new(
            Method::GET,
            "/api/v1/history",
            Access::Read,
            get(history),
            RouteDoc::new(
                "Metric series for charts: qps, flow_control_paused, recv_queue, replication_bytes_per_s; per node as \"<metric>:<node>\"",
            )
            .query::<HistoryQuery>()
            .response::<History>(200)
            .errors(&[400]),
        ),
        Route::new(
            Method::PUT,
            "/api/v1/nodes/{node}/desired",
            Access::Manage,
            put(set_desired),
            RouteDoc::new(
                "Whether a node should run: false tells the controller it is stopped on purpose (not to be healed), true lets it heal the node again",
            )
            .request::<DesiredRequest>()
            .response::<DesiredState>(200)
            .errors(&[400]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use super::*;
    use crate::api::test_support::{api_state, call, closed_port};

    /// The cluster view takes the proxy's writer and read-healthy nodes from the proxy's
    /// own typed `/status`.
    #[tokio::test]
    async fn the_cluster_view_reads_the_proxys_status() {
        let backend = |name: &str, read_healthy: bool| proxy::BackendStatus {
            name: name.to_owned(),
            address: "127.0.0.1:3301".to_owned(),
            priority: 1,
            write_healthy: read_healthy,
            read_healthy,
            split_minority: false,
            write_reason: None,
            read_reason: (!read_healthy).then(|| "not Synced".to_owned()),
            draining: false,
            state: None,
            local_index: None,
            active_connections: 0,
            connect_errors: 0,
            health_changes: 0,
            probe_latency_ms: Some(0.4),
        };
        let status = proxy::ProxyStatus {
            pid: 4711,
            listeners: proxy::state::ListenerAddresses::default(),
            writer: Some("node1".to_owned()),
            failovers: 0,
            active_connections: 0,
            connections_total: 0,
            backends: vec![backend("node1", true), backend("node2", false)],
            forwarding: "userspace".to_owned(),
            forwarding_note: None,
            split_brain: None,
            writer_decision: None,
        };
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = admin.local_addr().unwrap().port();
        let app = axum::Router::new().route("/status", get(move || async move { Json(status) }));
        let server = tokio::spawn(async move { axum::serve(admin, app).await });
        let dir = tempfile::tempdir().unwrap();
        let state = api_state(dir.path(), port);
        let (status, view) = call(&state, Method::GET, "/api/v1/cluster", None).await;
        server.abort();
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["proxy"]["writer"], "node1", "{view}");
        assert_eq!(
            view["proxy"]["healthy"],
            serde_json::json!(["node1"]),
            "{view}"
        );
        assert_eq!(view["proxy"]["writer_address"], "127.0.0.1:3306", "{view}");

        // A proxy that does not answer leaves the view without one.
        let dir = tempfile::tempdir().unwrap();
        let state = api_state(dir.path(), closed_port());
        let (_, view) = call(&state, Method::GET, "/api/v1/cluster", None).await;
        assert!(view["proxy"].is_null(), "{view}");
    }

    fn sample(at_ms: i64, node: &str, qps: f64, recv_queue: i64) -> store::Sample {
        store::Sample {
            at_ms,
            node: node.to_owned(),
            last_committed: 0,
            queries_per_second: qps,
            flow_control_paused: 0.0,
            recv_queue,
            send_queue: 0,
            cert_failures: 0,
            bf_aborts: 0,
            connections: 0,
            replicated: 0,
            replication_bytes_per_second: f64::NAN,
        }
    }

    #[test]
    fn series_average_per_bucket_and_combine_nodes() {
        // A 5-minute window has 1-second buckets.
        let samples = [
            sample(1_000, "node1", 10.0, 1),
            sample(1_500, "node1", 20.0, 3),
            sample(1_200, "node2", 5.0, 7),
            sample(3_000, "node2", 1.0, 0),
        ];
        let series = series(&samples, 0, 300_000);
        assert_eq!(series["qps:node1"], vec![(1_000, 15.0)]);
        assert_eq!(series["qps:node2"], vec![(1_000, 5.0), (3_000, 1.0)]);
        assert_eq!(series["qps"], vec![(1_000, 20.0), (3_000, 1.0)]);
        assert_eq!(series["recv_queue"], vec![(1_000, 7.0), (3_000, 0.0)]);
        // NaN rates are left out, so a metric without values has no series.
        assert!(!series.contains_key("replication_bytes_per_s"));
    }

    #[test]
    fn long_windows_have_at_most_max_points() {
        let samples: Vec<store::Sample> = (0..10_000)
            .map(|i| sample(i * 60_000, "node1", 1.0, 0))
            .collect();
        let series = series(&samples, 0, 604_800_000);
        assert!(series["qps"].len() as i64 <= MAX_POINTS + 1);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(check_limit(None).unwrap(), 100);
        assert_eq!(check_limit(Some(5)).unwrap(), 5);
        assert!(check_limit(Some(0)).is_err());
        assert!(check_limit(Some(10_001)).is_err());
    }
}
