//! Counters and the Prometheus text rendering of `/metrics`. Plain atomics: the copy
//! path adds to them without locks or allocation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::{Backend, Proxy, Role};

/// Upper bounds (seconds) of the probe latency histogram buckets.
const LATENCY_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5];

#[derive(Debug, Default)]
pub struct Metrics {
    connections: [AtomicU64; 3],
    pub bytes_from_clients: AtomicU64,
    pub bytes_to_clients: AtomicU64,
    pub failovers: AtomicU64,
    /// Changes this proxy made to the shared writer record (crate::decider).
    pub record_changes: AtomicU64,
    /// Every change of the writer, the first choice and a change to none included.
    pub writer_changes: AtomicU64,
    pub rejected_no_backend: AtomicU64,
    pub rejected_limit: AtomicU64,
    /// Clients refused at `max_connections_per_source`.
    pub rejected_source_limit: AtomicU64,
    /// Clients of the writer and multi-writer ports refused while a split brain left no
    /// node that may take writes.
    pub rejected_split_brain: AtomicU64,
    /// Backend connections closed because the server sent no greeting in time.
    pub greeting_timeouts: AtomicU64,
    /// Sessions closed because the client had not logged in within `login_timeout_ms`.
    pub login_timeouts: AtomicU64,
    /// Sessions still logging in that were closed to make room for a new client while the
    /// proxy was full.
    pub logins_displaced: AtomicU64,
    /// Sessions closed after `idle_timeout_s` without a byte either way.
    pub idle_closed: AtomicU64,
    /// Sessions the kernel splice could not take (the map full, a socket closed), copied
    /// in userspace instead.
    pub splice_refused: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of probe latencies in microseconds.
    latency_sum_micros: AtomicU64,
}

fn role_slot(role: Role) -> usize {
    match role {
        Role::Writer => 0,
        Role::Reader => 1,
        Role::MultiWriter => 2,
    }
}

impl Metrics {
    pub fn count_connection(&self, role: Role) {
        self.connections[role_slot(role)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn connections_total(&self) -> u64 {
        self.connections
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn observe_probe_latency(&self, latency_ms: f64) {
        let seconds = latency_ms / 1000.0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((latency_ms * 1000.0) as u64, Ordering::Relaxed);
    }
}

/// The whole `/metrics` page.
pub fn render(proxy: &Proxy) -> String {
    let metrics = &proxy.metrics;
    let mut out = String::new();
    header(
        &mut out,
        "galley_proxy_connections_total",
        "counter",
        "Client connections accepted, by listener.",
    );
    for role in [Role::Writer, Role::Reader, Role::MultiWriter] {
        let value = metrics.connections[role_slot(role)].load(Ordering::Relaxed);
        writeln!(
            out,
            "galley_proxy_connections_total{{listener=\"{}\"}} {value}",
            role.label()
        )
        .expect("String write");
    }
    let simple = [
        (
            "galley_proxy_active_connections",
            "gauge",
            "Client sessions open now.",
            &proxy.active_connections,
        ),
        (
            "galley_proxy_bytes_from_clients_total",
            "counter",
            "Bytes read from clients and sent to backends (a kernel-spliced session adds its bytes every 5 s and when it ends).",
            &metrics.bytes_from_clients,
        ),
        (
            "galley_proxy_bytes_to_clients_total",
            "counter",
            "Bytes read from backends and sent to clients (a kernel-spliced session adds its bytes every 5 s and when it ends).",
            &metrics.bytes_to_clients,
        ),
        (
            "galley_proxy_failovers_total",
            "counter",
            "Times the writer moved away from a node.",
            &metrics.failovers,
        ),
        (
            "galley_proxy_writer_record_changes_total",
            "counter",
            "Times this proxy changed the shared writer record (proxy.writer_decision = \"shared\").",
            &metrics.record_changes,
        ),
        (
            "galley_proxy_writer_changes_total",
            "counter",
            "Times the writer changed: chosen, moved, or lost (no node could take writes).",
            &metrics.writer_changes,
        ),
        (
            "galley_proxy_rejected_no_backend_total",
            "counter",
            "Clients refused because no node could serve them.",
            &metrics.rejected_no_backend,
        ),
        (
            "galley_proxy_rejected_limit_total",
            "counter",
            "Clients refused at max_connections.",
            &metrics.rejected_limit,
        ),
        (
            "galley_proxy_rejected_source_limit_total",
            "counter",
            "Clients refused at max_connections_per_source (error 1040).",
            &metrics.rejected_source_limit,
        ),
        (
            "galley_proxy_rejected_split_brain_total",
            "counter",
            "Clients of the writer ports refused because a split brain left no majority node to write to.",
            &metrics.rejected_split_brain,
        ),
        (
            "galley_proxy_greeting_timeouts_total",
            "counter",
            "Backend connections given up because the server sent no greeting within greeting_timeout_ms.",
            &metrics.greeting_timeouts,
        ),
        (
            "galley_proxy_login_timeouts_total",
            "counter",
            "Sessions closed because the client had not finished its login within login_timeout_ms.",
            &metrics.login_timeouts,
        ),
        (
            "galley_proxy_logins_displaced_total",
            "counter",
            "Sessions still logging in, closed (the oldest first) to make room for a new client while the proxy was full.",
            &metrics.logins_displaced,
        ),
        (
            "galley_proxy_idle_closed_total",
            "counter",
            "Sessions closed after idle_timeout_s without a byte either way.",
            &metrics.idle_closed,
        ),
        (
            "galley_proxy_splice_refused_total",
            "counter",
            "Sessions the kernel splice could not take, copied in userspace instead.",
            &metrics.splice_refused,
        ),
    ];
    for (name, kind, help, counter) in simple {
        header(&mut out, name, kind, help);
        writeln!(out, "{name} {}", counter.load(Ordering::Relaxed)).expect("String write");
    }
    let name = "galley_proxy_kernel_forwarding";
    header(&mut out, name, "gauge", "1 when the kernel forwards sessions' bytes (proxy.forwarding), 0 when the proxy copies them.");
    let kernel = matches!(proxy.forwarder, crate::state::Forwarder::Kernel(_));
    writeln!(out, "{name} {}", u64::from(kernel)).expect("String write");
    let name = "galley_proxy_split_brain";
    header(&mut out, name, "gauge", "1 while the probes see two cluster histories running as Primary components (rule 9 of docs/safety-rules.md); the minority gets no writes.");
    writeln!(out, "{name} {}", u64::from(proxy.split_brain_active())).expect("String write");
    // Each per-node family reads its value from the backend and whether it is the writer.
    type BackendValue = fn(&Backend, bool) -> u64;
    let per_backend: [(&str, &str, &str, BackendValue); 7] = [
        (
            "galley_proxy_backend_active_connections",
            "gauge",
            "Sessions open to the node.",
            |b, _| b.active_connections.load(Ordering::Relaxed),
        ),
        (
            "galley_proxy_backend_connect_errors_total",
            "counter",
            "Failed connection attempts to the node.",
            |b, _| b.connect_errors.load(Ordering::Relaxed),
        ),
        (
            "galley_proxy_backend_health_changes_total",
            "counter",
            "Times the node's read or write health flipped.",
            |b, _| b.health_changes.load(Ordering::Relaxed),
        ),
        (
            "galley_proxy_backend_write_healthy",
            "gauge",
            "1 when the node may take writes.",
            |b, _| u64::from(b.write_healthy()),
        ),
        (
            "galley_proxy_backend_split_minority",
            "gauge",
            "1 when the node is on the minority side of a split brain (no writes).",
            |b, _| u64::from(b.split_minority()),
        ),
        (
            "galley_proxy_backend_stale_view",
            "gauge",
            "1 when the node's last status was in a stale view (a lower wsrep_cluster_conf_id than another Primary node's): out of service until a fresh view.",
            |b, _| u64::from(b.stale_view()),
        ),
        (
            "galley_proxy_backend_writer",
            "gauge",
            "1 for the current writer.",
            |_, is_writer| u64::from(is_writer),
        ),
    ];
    let writer = proxy.writer();
    for (name, kind, help, value) in per_backend {
        header(&mut out, name, kind, help);
        for (index, backend) in proxy.backends.iter().enumerate() {
            let value = value(backend, writer == Some(index));
            writeln!(out, "{name}{{backend=\"{}\"}} {value}", backend.name).expect("String write");
        }
    }
    let name = "galley_proxy_probe_latency_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time of one health probe query.",
    );
    for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&metrics.latency_buckets) {
        writeln!(
            out,
            "{name}_bucket{{le=\"{bound}\"}} {}",
            bucket.load(Ordering::Relaxed)
        )
        .expect("String write");
    }
    let count = metrics.latency_count.load(Ordering::Relaxed);
    writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}").expect("String write");
    let sum = metrics.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    writeln!(out, "{name}_sum {sum}\n{name}_count {count}").expect("String write");
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}").expect("String write");
}
