//! The controller's Prometheus text (`GET /api/v1/metrics`, docs/metrics.md): every node
//! as its latest observation saw it, with a `node` label (the wsrep gauges under
//! mysqld_exporter's names, and galley's view: agent up, state, stale view, writer), and
//! what the controller did: decisions by rule, steps by action and result, events, the
//! lease holder and the high-water mark.
//!
//! [`Counters`] live in memory (a restarted controller starts them again at zero, which
//! Prometheus's `rate` and `increase` handle); the history proper is in the store.
//! [`render`] is pure: a [`Snapshot`] in, the page out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use agent::api::NodeReport;

/// What the controller counts as it goes, shared by the journal and the API.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<CounterValues>,
}

#[derive(Debug, Default, Clone)]
pub struct CounterValues {
    /// (rule, outcome) -> recorded decisions.
    pub decisions: BTreeMap<(String, String), u64>,
    /// (action, rule, result) -> steps run.
    pub steps: BTreeMap<(String, String, String), u64>,
    /// (kind, severity) -> events recorded.
    pub events: BTreeMap<(String, String), u64>,
    /// The proxy's writer when the API last read it, and how often it changed.
    pub last_writer: Option<String>,
    pub writer_read: bool,
    pub writer_changes: u64,
    pub ticks: u64,
}

impl Counters {
    fn with<T>(&self, change: impl FnOnce(&mut CounterValues) -> T) -> T {
        change(&mut self.inner.lock().expect("counters lock"))
    }

    pub fn decision(&self, rule: &str, outcome: &str) {
        self.with(|values| {
            *values
                .decisions
                .entry((rule.to_owned(), outcome_kind(outcome).to_owned()))
                .or_default() += 1;
        });
    }

    pub fn step(&self, action: &str, rule: &str, succeeded: bool) {
        let result = if succeeded { "done" } else { "failed" };
        self.with(|values| {
            *values
                .steps
                .entry((action.to_owned(), rule.to_owned(), result.to_owned()))
                .or_default() += 1;
        });
    }

    pub fn event(&self, kind: &str, severity: &str) {
        self.with(|values| {
            *values
                .events
                .entry((kind.to_owned(), severity.to_owned()))
                .or_default() += 1;
        });
    }

    pub fn tick(&self) {
        self.with(|values| values.ticks += 1);
    }

    /// The proxy's writer as just read; a change from the last one read is counted
    /// (the first one read is not a change).
    pub fn saw_writer(&self, writer: Option<&str>) {
        self.with(|values| {
            if values.writer_read && values.last_writer.as_deref() != writer {
                values.writer_changes += 1;
            }
            values.writer_read = true;
            values.last_writer = writer.map(str::to_owned);
        });
    }

    pub fn values(&self) -> CounterValues {
        self.with(|values| values.clone())
    }
}

/// The recorded outcome's kind, for a label with few values: `done`, `failed`,
/// `refused`, `waiting`, `needs_confirmation`, `none`.
pub fn outcome_kind(outcome: &str) -> &'static str {
    if outcome.starts_with("done") {
        "done"
    } else if outcome.starts_with("failed") {
        "failed"
    } else if outcome.starts_with("refused") {
        "refused"
    } else if outcome.starts_with("waiting") {
        "waiting"
    } else if outcome.starts_with("needs confirmation") {
        "needs_confirmation"
    } else {
        "none"
    }
}

/// Everything one page shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every node of the spec with its latest report (None: its agent did not answer).
    pub nodes: Vec<(String, Option<NodeReport>)>,
    /// Seconds since that observation; None before the first one.
    pub observation_age_s: Option<f64>,
    pub counters: CounterValues,
    /// The proxy's writer, when the spec has a proxy and it answered.
    pub writer: Option<String>,
    pub proxy_answered: bool,
    /// The lease's holder, when one holds it.
    pub lease_holder: Option<String>,
    /// The accepted history's high-water mark (uuid, seqno).
    pub high_water_mark: Option<(String, i64)>,
}

struct Page {
    out: String,
}

impl Page {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}").expect("String write");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (index, (label, text)) in labels.iter().enumerate() {
                if index > 0 {
                    self.out.push(',');
                }
                let escaped = text
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                write!(self.out, "{label}=\"{escaped}\"").expect("String write");
            }
            self.out.push('}');
        }
        writeln!(self.out, " {value}").expect("String write");
    }
}

/// A per-node wsrep gauge: its mysqld_exporter name and how to read it from a report.
type NodeValue = fn(&galera::WsrepStatus) -> f64;

const WSREP_GAUGES: [(&str, NodeValue); 19] = [
    ("mysql_global_status_wsrep_cluster_size", |w| {
        w.cluster_size as f64
    }),
    ("mysql_global_status_wsrep_local_state", |w| {
        w.local_state.code() as f64
    }),
    ("mysql_global_status_wsrep_ready", |w| {
        f64::from(u8::from(w.ready))
    }),
    ("mysql_global_status_wsrep_connected", |w| {
        f64::from(u8::from(w.connected))
    }),
    ("mysql_global_status_wsrep_cluster_status", |w| {
        f64::from(u8::from(w.is_primary()))
    }),
    ("mysql_global_status_wsrep_cluster_conf_id", |w| {
        w.conf_id as f64
    }),
    ("mysql_global_status_wsrep_local_index", |w| {
        w.local_index as f64
    }),
    ("mysql_global_status_wsrep_last_committed", |w| {
        w.last_committed as f64
    }),
    ("mysql_global_status_wsrep_local_recv_queue", |w| {
        w.local_recv_queue as f64
    }),
    ("mysql_global_status_wsrep_local_send_queue", |w| {
        w.local_send_queue as f64
    }),
    ("mysql_global_status_wsrep_flow_control_paused", |w| {
        w.flow_control_paused
    }),
    ("mysql_global_status_wsrep_local_cert_failures", |w| {
        w.cert_failures as f64
    }),
    ("mysql_global_status_wsrep_local_bf_aborts", |w| {
        w.bf_aborts as f64
    }),
    ("mysql_global_status_wsrep_replicated", |w| {
        w.replicated as f64
    }),
    ("mysql_global_status_wsrep_received", |w| w.received as f64),
    ("mysql_global_status_wsrep_replicated_bytes", |w| {
        w.replicated_bytes as f64
    }),
    ("mysql_global_status_wsrep_received_bytes", |w| {
        w.received_bytes as f64
    }),
    ("mysql_global_status_questions", |w| w.questions as f64),
    ("mysql_global_status_threads_connected", |w| {
        w.threads_connected as f64
    }),
];

/// The whole page.
pub fn render(snapshot: &Snapshot) -> String {
    let mut page = Page { out: String::new() };
    let nodes = &snapshot.nodes;
    page.header(
        "galley_node_agent_up",
        "gauge",
        "1 when the node's agent answered the controller's latest observation.",
    );
    for (node, report) in nodes {
        page.sample(
            "galley_node_agent_up",
            &[("node", node)],
            up(report.is_some()),
        );
    }
    page.header(
        "galley_node_running",
        "gauge",
        "1 when the node's mariadbd runs, as its agent reported.",
    );
    for (node, report) in nodes {
        let running = report.as_ref().is_some_and(|r| r.process.running);
        page.sample("galley_node_running", &[("node", node)], up(running));
    }
    page.header(
        "galley_node_state",
        "gauge",
        "1 for the node's state as galley shows it (Synced, Donor/Desynced, Joining, stopped, agent down, ...).",
    );
    for (node, report) in nodes {
        let state = match report {
            Some(report) => report.state_label(),
            None if snapshot.observation_age_s.is_none() => "unknown".to_owned(),
            None => "agent down".to_owned(),
        };
        page.sample(
            "galley_node_state",
            &[("node", node), ("state", &state)],
            1.0,
        );
    }
    page.header(
        "galley_node_stale_view",
        "gauge",
        "1 when the node reports a view the other nodes have left (docs/galera.md, \"A node that froze and resumed\").",
    );
    for (node, report) in nodes {
        let stale = report.as_ref().is_some_and(|r| r.stale_view.is_some());
        page.sample("galley_node_stale_view", &[("node", node)], up(stale));
    }
    if snapshot.proxy_answered {
        page.header(
            "galley_node_writer",
            "gauge",
            "1 for the node galley's proxy sends writes to.",
        );
        for (node, _) in nodes {
            let writer = snapshot.writer.as_deref() == Some(node.as_str());
            page.sample("galley_node_writer", &[("node", node)], up(writer));
        }
    }
    for (name, value) in WSREP_GAUGES {
        let mut header_written = false;
        for (node, report) in nodes {
            let Some(wsrep) = report.as_ref().and_then(|r| r.wsrep.as_ref()) else {
                continue;
            };
            if !header_written {
                page.header(
                    name,
                    "untyped",
                    "From the node's SHOW GLOBAL STATUS, as the controller last read it through its agent.",
                );
                header_written = true;
            }
            page.sample(name, &[("node", node)], value(wsrep));
        }
    }
    if let Some(age) = snapshot.observation_age_s {
        page.header(
            "galley_controller_observation_age_seconds",
            "gauge",
            "Seconds since the controller's latest observation of the nodes.",
        );
        page.sample("galley_controller_observation_age_seconds", &[], age);
    }
    let counters = &snapshot.counters;
    page.header(
        "galley_controller_ticks_total",
        "counter",
        "Observe-plan-act rounds this controller ran.",
    );
    page.sample("galley_controller_ticks_total", &[], counters.ticks as f64);
    page.header(
        "galley_controller_decisions_total",
        "counter",
        "Decisions recorded (docs/safety-rules.md), by the rule that made them and their outcome.",
    );
    for ((rule, outcome), count) in &counters.decisions {
        page.sample(
            "galley_controller_decisions_total",
            &[("rule", rule), ("outcome", outcome)],
            *count as f64,
        );
    }
    page.header(
        "galley_controller_steps_total",
        "counter",
        "Recovery steps run, by action, rule and result (done or failed).",
    );
    for ((action, rule, result), count) in &counters.steps {
        page.sample(
            "galley_controller_steps_total",
            &[("action", action), ("rule", rule), ("result", result)],
            *count as f64,
        );
    }
    page.header(
        "galley_controller_events_total",
        "counter",
        "Events recorded, by kind and severity (warnings and worse are also alerts).",
    );
    for ((kind, severity), count) in &counters.events {
        page.sample(
            "galley_controller_events_total",
            &[("kind", kind), ("severity", severity)],
            *count as f64,
        );
    }
    page.header(
        "galley_controller_writer_changes_total",
        "counter",
        "Changes of the proxy's writer seen by the controller's API (each time it reads the proxy's status; the proxy's galley_proxy_writer_changes_total counts every one).",
    );
    page.sample(
        "galley_controller_writer_changes_total",
        &[],
        counters.writer_changes as f64,
    );
    page.header(
        "galley_controller_lease_held",
        "gauge",
        "1 for the actor holding the controller's lease (only it acts).",
    );
    if let Some(owner) = &snapshot.lease_holder {
        page.sample("galley_controller_lease_held", &[("owner", owner)], 1.0);
    }
    if let Some((uuid, seqno)) = &snapshot.high_water_mark {
        page.header(
            "galley_high_water_mark_seqno",
            "gauge",
            "The highest seqno proven committed in the accepted cluster history (rule 10 of docs/safety-rules.md).",
        );
        page.sample(
            "galley_high_water_mark_seqno",
            &[("uuid", uuid)],
            *seqno as f64,
        );
    }
    page.out
}

fn up(yes: bool) -> f64 {
    if yes {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, state: &str, size: &str) -> NodeReport {
        serde_json::from_value(serde_json::json!({
            "node": name,
            "agent_version": "0",
            "process": {"running": true},
            "data_dir_initialized": true,
        }))
        .map(|mut report: NodeReport| {
            report.wsrep = Some(galera::WsrepStatus::from_variables([
                ("wsrep_ready", "ON"),
                ("wsrep_connected", "ON"),
                ("wsrep_cluster_status", "Primary"),
                ("wsrep_cluster_size", size),
                ("wsrep_local_state", state),
                ("wsrep_local_state_comment", "Synced"),
                ("wsrep_flow_control_paused", "0.25"),
            ]));
            report
        })
        .expect("report")
    }

    #[test]
    fn nodes_counters_lease_and_mark() {
        let counters = Counters::default();
        counters.decision("SafeToBootstrap", "done: bootstrap node1 at seqno 5");
        counters.decision("SafeToBootstrap", "done: x");
        counters.decision("healthy", "nothing to do");
        counters.step("bootstrap", "SafeToBootstrap", true);
        counters.step("start", "Rejoin", false);
        counters.saw_writer(Some("node1"));
        counters.saw_writer(Some("node1"));
        counters.saw_writer(Some("node2"));
        counters.saw_writer(None);
        let mut stale = report("node2", "4", "3");
        stale.stale_view = Some("view 3 < 4".into());
        let snapshot = Snapshot {
            nodes: vec![
                ("node1".into(), Some(report("node1", "4", "3"))),
                ("node2".into(), Some(stale)),
                ("node3".into(), None),
            ],
            observation_age_s: Some(0.5),
            counters: counters.values(),
            writer: Some("node1".into()),
            proxy_answered: true,
            lease_holder: Some("controller:7".into()),
            high_water_mark: Some(("u-1".into(), 42)),
        };
        let page = render(&snapshot);
        for line in [
            "galley_node_agent_up{node=\"node3\"} 0\n",
            "galley_node_state{node=\"node3\",state=\"agent down\"} 1\n",
            "galley_node_stale_view{node=\"node2\"} 1\n",
            "galley_node_stale_view{node=\"node1\"} 0\n",
            "galley_node_writer{node=\"node1\"} 1\n",
            "mysql_global_status_wsrep_cluster_size{node=\"node1\"} 3\n",
            "mysql_global_status_wsrep_local_state{node=\"node2\"} 4\n",
            "mysql_global_status_wsrep_flow_control_paused{node=\"node1\"} 0.25\n",
            "galley_controller_decisions_total{rule=\"SafeToBootstrap\",outcome=\"done\"} 2\n",
            "galley_controller_decisions_total{rule=\"healthy\",outcome=\"none\"} 1\n",
            "galley_controller_steps_total{action=\"start\",rule=\"Rejoin\",result=\"failed\"} 1\n",
            "galley_controller_writer_changes_total 2\n",
            "galley_controller_lease_held{owner=\"controller:7\"} 1\n",
            "galley_high_water_mark_seqno{uuid=\"u-1\"} 42\n",
        ] {
            assert!(page.contains(line), "missing {line:?} in\n{page}");
        }
        assert!(
            !page.contains("wsrep_cluster_size{node=\"node3\"}"),
            "{page}"
        );
        // One header per family, however many nodes.
        assert_eq!(
            page.matches("# TYPE mysql_global_status_wsrep_cluster_size ")
                .count(),
            1
        );
    }
}
