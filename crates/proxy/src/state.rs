//! The proxy's shared state: its settings, every backend's health, the current writer,
//! and the counters. Probes and listeners report into it; only `Proxy` decides health
//! transitions and the writer, under short locks that are never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use galera::{SplitBrain, WsrepStatus};
use serde::{Deserialize, Serialize};
use spec::ProxySpec;
use tokio::sync::{watch, Notify};

use crate::decision::{Record, Seen, Step};
use crate::health::Hysteresis;
use crate::metrics::Metrics;
use crate::splice::KernelSplice;
use crate::writer::{choose_writer, Candidate};

/// Which listener a client came in on; decides how its backend is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Writer,
    Reader,
    MultiWriter,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::MultiWriter => "multi_writer",
        }
    }
}

/// Tunables that a reload may change.
#[derive(Debug, Clone)]
pub struct Settings {
    pub probe_interval_ms: u64,
    pub probe_timeout_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub connect_timeout_ms: u64,
    pub greeting_timeout_ms: u64,
    pub login_timeout_ms: u64,
    pub drain_timeout_ms: u64,
    /// 0: sessions are never closed for being idle.
    pub idle_timeout_s: u64,
    pub recv_queue_limit: i64,
    pub failback: bool,
    pub writer_grace_ms: u64,
    pub max_connections: u32,
    pub max_connections_per_source: u32,
}

impl Settings {
    pub fn from_spec(proxy: &ProxySpec) -> Settings {
        Settings {
            probe_interval_ms: proxy.probe_interval_ms,
            probe_timeout_ms: proxy.probe_timeout_ms,
            rise: proxy.rise,
            fall: proxy.fall,
            connect_timeout_ms: proxy.connect_timeout_ms,
            greeting_timeout_ms: proxy.greeting_timeout_ms,
            login_timeout_ms: proxy.login_timeout_ms,
            drain_timeout_ms: proxy.drain_timeout_ms,
            idle_timeout_s: proxy.idle_timeout_s,
            recv_queue_limit: proxy.recv_queue_limit,
            failback: proxy.failback,
            writer_grace_ms: proxy.writer_grace_ms,
            max_connections: proxy.max_connections,
            max_connections_per_source: proxy.max_connections_per_source,
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone)]
pub enum ProbeOutcome {
    Status {
        status: Box<WsrepStatus>,
        latency_ms: f64,
    },
    /// Refused, reset or closed: the server is gone; down at once.
    HardFailure(String),
    /// Timed out or failed otherwise: counts toward `fall`.
    SoftFailure(String),
}

#[derive(Debug, Default)]
struct Health {
    write: Hysteresis,
    read: Hysteresis,
    write_reason: Option<String>,
    read_reason: Option<String>,
    last_status: Option<WsrepStatus>,
    last_error: Option<String>,
    probe_latency_ms: Option<f64>,
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    /// host:port of the node's client port.
    pub address: String,
    priority: AtomicU32,
    health: Mutex<Health>,
    pub active_connections: AtomicU64,
    draining: AtomicBool,
    /// Bumped when sessions through the writer and multi-writer ports must leave.
    writer_evictions: watch::Sender<u64>,
    /// Bumped when sessions through the reader port must leave.
    reader_evictions: watch::Sender<u64>,
    pub connect_errors: AtomicU64,
    pub health_changes: AtomicU64,
    /// In the minority (or on either side, without a majority) of a split brain: no
    /// writes, whatever its own status says (rule 9 of docs/safety-rules.md).
    split_minority: AtomicBool,
    /// Its last status was in a stale view (`galera::stale_views`): out of service until
    /// a fresh status says otherwise. Exported as `galley_proxy_backend_stale_view`.
    stale_view: AtomicBool,
}

impl Backend {
    fn new(node: &spec::NodeSpec) -> Backend {
        Backend {
            name: node.name.clone(),
            address: spec::host_port(&node.address, node.client_port),
            priority: AtomicU32::new(node.priority),
            health: Mutex::new(Health::default()),
            active_connections: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            writer_evictions: watch::Sender::new(0),
            reader_evictions: watch::Sender::new(0),
            connect_errors: AtomicU64::new(0),
            health_changes: AtomicU64::new(0),
            split_minority: AtomicBool::new(false),
            stale_view: AtomicBool::new(false),
        }
    }

    /// Whether its last probe answered from a stale view.
    pub fn stale_view(&self) -> bool {
        self.stale_view.load(Ordering::Relaxed)
    }

    pub fn write_healthy(&self) -> bool {
        self.health.lock().expect("health lock").write.is_healthy()
    }

    pub fn read_healthy(&self) -> bool {
        self.health.lock().expect("health lock").read.is_healthy()
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn split_minority(&self) -> bool {
        self.split_minority.load(Ordering::Relaxed)
    }

    /// A receiver that changes when sessions of `role` on this backend must close.
    pub fn evictions(&self, role: Role) -> watch::Receiver<u64> {
        match role {
            Role::Writer | Role::MultiWriter => self.writer_evictions.subscribe(),
            Role::Reader => self.reader_evictions.subscribe(),
        }
    }

    fn evict(&self, role: Role) {
        let sender = match role {
            Role::Writer | Role::MultiWriter => &self.writer_evictions,
            Role::Reader => &self.reader_evictions,
        };
        sender.send_modify(|epoch| *epoch += 1);
    }
}

/// The addresses the listeners are bound to, for status output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListenerAddresses {
    pub writer: Option<String>,
    pub reader: Option<String>,
    pub multi_writer: Option<String>,
    pub admin: Option<String>,
}

#[derive(Debug)]
pub struct Proxy {
    settings: RwLock<Settings>,
    pub backends: Vec<Backend>,
    writer: Mutex<Option<usize>>,
    pub metrics: Metrics,
    pub listeners: RwLock<ListenerAddresses>,
    pub active_connections: AtomicU64,
    /// Sessions the file-descriptor limit allows (two descriptors each); caps
    /// `max_connections` so that clients get a clear refusal instead of a stuck accept.
    pub descriptor_cap: AtomicU32,
    /// Who moves sessions' bytes, chosen once at start (`proxy.forwarding`).
    pub forwarder: Forwarder,
    /// Open sessions per client address, for `max_connections_per_source`. An address
    /// is removed with its last session, so the table never holds more entries than
    /// there are sessions (at most `max_connections`).
    sources: Mutex<HashMap<IpAddr, u32>>,
    /// The split brain the probes see now, if any.
    split_brain: Mutex<Option<SplitBrain>>,
    /// `proxy.writer_decision`, fixed at start.
    pub writer_decision: spec::WriterDecision,
    /// The shared writer record as this proxy last learned it (crate::decision).
    agreement: Mutex<Agreement>,
    /// Wakes the decision task (crate::decider) when a backend's health changed.
    pub decide_now: Notify,
    /// Sessions that have not finished their login yet, oldest first, each with the
    /// signal that closes it: when the proxy is full, the oldest of them makes room for a
    /// new client (docs/proxy-limits.md). Logged-in sessions are never taken.
    logins: Mutex<BTreeMap<u64, (IpAddr, Arc<Notify>)>>,
    next_login: AtomicU64,
}

/// What this proxy last learned from the shared writer record.
#[derive(Debug, Default, Clone)]
struct Agreement {
    /// The backend the record names, while this proxy follows it.
    followed: Option<usize>,
    term: Option<u64>,
    /// Why this proxy routes no writes, when it does not follow the record.
    refused: Option<String>,
    /// Decision rounds that failed in a row; the record is forgotten after `fall`.
    failures: u32,
}

/// The shared writer decision as `/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionStatus {
    /// "shared" or "local" (`proxy.writer_decision`).
    pub mode: String,
    /// The record's term when this proxy last read it.
    pub term: Option<u64>,
    /// The node the record names, while this proxy follows it.
    pub follows: Option<String>,
    /// Why this proxy routes no writes.
    pub refused: Option<String>,
}

/// Who moves a session's bytes once the backend has greeted the client.
#[derive(Debug)]
pub enum Forwarder {
    /// The kernel, through the socket map (see `splice`).
    Kernel(KernelSplice),
    /// The proxy's own copy loop, and why.
    Userspace { reason: String },
}

impl Forwarder {
    /// Loads the kernel splice where the mode allows and the kernel lets it; `kernel`
    /// mode fails instead of falling back.
    pub fn choose(mode: spec::Forwarding, sessions: u32) -> anyhow::Result<Forwarder> {
        match mode {
            spec::Forwarding::Userspace => Ok(Forwarder::Userspace {
                reason: "proxy.forwarding = \"userspace\"".to_owned(),
            }),
            spec::Forwarding::Auto | spec::Forwarding::Kernel => match KernelSplice::load(sessions) {
                Ok(splice) => Ok(Forwarder::Kernel(splice)),
                Err(error) if mode == spec::Forwarding::Auto => Ok(Forwarder::Userspace {
                    reason: format!("the kernel splice could not be loaded ({error}); it needs root or CAP_BPF and CAP_NET_ADMIN"),
                }),
                Err(error) => Err(anyhow::anyhow!(
                    "proxy.forwarding = \"kernel\", but the kernel splice could not be loaded: {error}; it needs root or CAP_BPF and CAP_NET_ADMIN (or set forwarding = \"auto\")"
                )),
            },
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Forwarder::Kernel(_) => "kernel",
            Forwarder::Userspace { .. } => "userspace",
        }
    }
}

/// One backend as `/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendStatus {
    pub name: String,
    pub address: String,
    pub priority: u32,
    pub write_healthy: bool,
    pub read_healthy: bool,
    /// In the minority of a split brain (or on either side of one without a majority):
    /// it gets no writes.
    #[serde(default)]
    pub split_minority: bool,
    /// Why it may not take writes, when it may not.
    pub write_reason: Option<String>,
    pub read_reason: Option<String>,
    pub draining: bool,
    pub state: Option<String>,
    pub local_index: Option<i64>,
    pub active_connections: u64,
    pub connect_errors: u64,
    pub health_changes: u64,
    pub probe_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyStatus {
    /// The proxy's process id, for signals (SIGHUP reloads).
    pub pid: u32,
    pub listeners: ListenerAddresses,
    pub writer: Option<String>,
    pub failovers: u64,
    pub active_connections: u64,
    pub connections_total: u64,
    pub backends: Vec<BackendStatus>,
    /// "kernel" or "userspace" (see `proxy.forwarding`), and why userspace.
    #[serde(default)]
    pub forwarding: String,
    #[serde(default)]
    pub forwarding_note: Option<String>,
    /// The split brain the probes see (two cluster histories running as Primary).
    #[serde(default)]
    pub split_brain: Option<String>,
    /// Whose writer choice this proxy follows, and what it last learned.
    #[serde(default)]
    pub writer_decision: Option<DecisionStatus>,
}

impl Proxy {
    pub fn new(spec: &spec::ClusterSpec, proxy: &ProxySpec) -> Proxy {
        Proxy {
            settings: RwLock::new(Settings::from_spec(proxy)),
            backends: spec.nodes.iter().map(Backend::new).collect(),
            writer: Mutex::new(None),
            metrics: Metrics::default(),
            listeners: RwLock::new(ListenerAddresses::default()),
            active_connections: AtomicU64::new(0),
            descriptor_cap: AtomicU32::new(u32::MAX),
            forwarder: Forwarder::Userspace {
                reason: "not chosen yet".to_owned(),
            },
            sources: Mutex::new(HashMap::new()),
            split_brain: Mutex::new(None),
            writer_decision: proxy.writer_decision,
            agreement: Mutex::new(Agreement::default()),
            decide_now: Notify::new(),
            logins: Mutex::new(BTreeMap::new()),
            next_login: AtomicU64::new(0),
        }
    }

    /// Enters a new session from `source` in the table of sessions still logging in; its
    /// id and the signal that tells it to close.
    pub fn begin_login(&self, source: IpAddr) -> (u64, Arc<Notify>) {
        let id = self.next_login.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Notify::new());
        self.logins
            .lock()
            .expect("logins lock")
            .insert(id, (source, Arc::clone(&signal)));
        (id, signal)
    }

    /// Takes a session out of that table (logged in, or gone).
    pub fn end_login(&self, id: u64) {
        self.logins.lock().expect("logins lock").remove(&id);
    }

    /// Tells the session that has been logging in the longest (from `source` only, when
    /// given) to close; false when there is none.
    pub fn close_oldest_login(&self, source: Option<IpAddr>) -> bool {
        let mut logins = self.logins.lock().expect("logins lock");
        let oldest = logins
            .iter()
            .find(|(_, (from, _))| source.is_none_or(|source| *from == source))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| logins.remove(&id)) {
            Some((_, signal)) => {
                // notify_one keeps a permit, so a session not waiting yet still sees it.
                signal.notify_one();
                true
            }
            None => false,
        }
    }

    /// How many sessions are logging in now.
    pub fn logins_in_progress(&self) -> usize {
        self.logins.lock().expect("logins lock").len()
    }

    /// Counts a new session from `source` unless it already holds `limit`; false when
    /// the session must be refused. Every true is paired with one `release_source`.
    pub fn admit_source(&self, source: IpAddr, limit: u32) -> bool {
        let mut sources = self.sources.lock().expect("sources lock");
        let count = sources.entry(source).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                sources.remove(&source);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Counts a session from `source` past its limit: one that takes the place of a
    /// session from there that was told to close (`close_oldest_login`).
    pub fn admit_source_in_place(&self, source: IpAddr) {
        *self
            .sources
            .lock()
            .expect("sources lock")
            .entry(source)
            .or_insert(0) += 1;
    }

    pub fn release_source(&self, source: IpAddr) {
        let mut sources = self.sources.lock().expect("sources lock");
        if let Some(count) = sources.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                sources.remove(&source);
            }
        }
    }

    /// How many client addresses hold sessions now (the per-source table's size).
    pub fn source_count(&self) -> usize {
        self.sources.lock().expect("sources lock").len()
    }

    /// The split brain the probes see now, in words, if any.
    pub fn split_brain(&self) -> Option<String> {
        self.split_brain
            .lock()
            .expect("split brain lock")
            .as_ref()
            .map(ToString::to_string)
    }

    /// Judges the last statuses of every backend for a split brain (rule 9 of
    /// docs/safety-rules.md, by `galera::split_brain`, as the planner does) and marks the
    /// nodes that must get no writes. Returns whether the verdict changed (who is in
    /// which history, or which side is the majority); then the writer must be chosen
    /// again. Locks each backend's health in turn, then the verdict: callers hold no lock.
    fn update_split_brain(&self) -> bool {
        let statuses: Vec<(&str, WsrepStatus)> = self
            .backends
            .iter()
            .filter_map(|backend| {
                let health = backend.health.lock().expect("health lock");
                health
                    .last_status
                    .clone()
                    .map(|status| (backend.name.as_str(), status))
            })
            .collect();
        let verdict = galera::split_brain(statuses.iter().map(|(name, status)| (*name, status)));
        // What the routing depends on; the seqnos in the verdict change with every write.
        fn shape(split: &SplitBrain) -> (Vec<(&str, &[String])>, Option<&str>) {
            (
                split
                    .groups
                    .iter()
                    .map(|group| (group.uuid.as_str(), group.nodes.as_slice()))
                    .collect(),
                split.majority().map(|group| group.uuid.as_str()),
            )
        }
        let mut current = self.split_brain.lock().expect("split brain lock");
        let changed = current.as_ref().map(shape) != verdict.as_ref().map(shape);
        if changed {
            match &verdict {
                Some(split) => {
                    tracing::error!("{split}; no writes go to the minority; an operator decides which history to keep (galley recover)")
                }
                None => {
                    tracing::warn!("split brain over: every Primary node runs one cluster history")
                }
            }
            for backend in &self.backends {
                let minority = verdict
                    .as_ref()
                    .is_some_and(|split| split.is_minority(&backend.name));
                let was = backend.split_minority.swap(minority, Ordering::Relaxed);
                if minority && !was {
                    // Multi-writer sessions there leave now; the writer's go when it moves.
                    backend.evict(Role::MultiWriter);
                }
            }
        }
        *current = verdict;
        changed
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    /// Applies a reloaded spec: tunables and node priorities. Listeners and the set of
    /// nodes stay as they are; established sessions are not touched.
    pub fn reload(&self, spec: &spec::ClusterSpec, proxy: &ProxySpec) -> Vec<String> {
        *self.settings.write().expect("settings lock") = Settings::from_spec(proxy);
        let mut ignored = Vec::new();
        for node in &spec.nodes {
            match self
                .backends
                .iter()
                .find(|backend| backend.name == node.name)
            {
                Some(backend) => {
                    backend.priority.store(node.priority, Ordering::Relaxed);
                    if backend.address != spec::host_port(&node.address, node.client_port) {
                        ignored.push(format!(
                            "node {} changed address; restart the proxy to apply",
                            node.name
                        ));
                    }
                }
                None => ignored.push(format!(
                    "node {} is new; restart the proxy to route to it",
                    node.name
                )),
            }
        }
        for backend in &self.backends {
            if spec.node(&backend.name).is_none() {
                ignored.push(format!(
                    "node {} was removed; restart the proxy to stop routing to it",
                    backend.name
                ));
            }
        }
        self.recompute_writer();
        ignored
    }

    pub fn writer(&self) -> Option<usize> {
        *self.writer.lock().expect("writer lock")
    }

    /// Records a probe result for backend `index`, flips health with hysteresis, and
    /// moves the writer when needed.
    pub fn on_probe(&self, index: usize, outcome: ProbeOutcome) {
        let settings = self.settings();
        let backend = &self.backends[index];
        // Read before taking this backend's lock: locks are never nested across backends.
        let others_down = self.is_only_write_healthy(index);
        let others = match &outcome {
            ProbeOutcome::Status { .. } => self.other_statuses(index),
            _ => Vec::new(),
        };
        let (write_changed, read_changed) = {
            let mut health = backend.health.lock().expect("health lock");
            match outcome {
                ProbeOutcome::Status { status, latency_ms } => {
                    self.metrics.observe_probe_latency(latency_ms);
                    health.probe_latency_ms = Some(latency_ms);
                    health.last_error = None;
                    let stale = stale_view(&backend.name, &status, &others);
                    backend.stale_view.store(stale.is_some(), Ordering::Relaxed);
                    if let Some(stale) = stale {
                        // Its own word is stale (frozen, then resumed): out at once, for
                        // writes and reads; it comes back like any node, after `rise`.
                        health.write_reason = Some(stale.clone());
                        health.read_reason = Some(stale);
                        health.last_status = Some(*status);
                        let write_changed = health.write.force_down().then_some(false);
                        let read_changed = health.read.force_down().then_some(false);
                        (write_changed, read_changed)
                    } else {
                        let write = status.write_health();
                        let read = status.read_health(settings.recv_queue_limit);
                        health.write_reason = write.as_ref().err().map(ToString::to_string);
                        health.read_reason = read.as_ref().err().map(ToString::to_string);
                        health.last_status = Some(*status);
                        let write_changed =
                            health
                                .write
                                .observe(write.is_ok(), settings.rise, settings.fall);
                        let read_changed =
                            health
                                .read
                                .observe(read.is_ok(), settings.rise, settings.fall);
                        (write_changed, read_changed)
                    }
                }
                ProbeOutcome::HardFailure(reason) => {
                    backend.stale_view.store(false, Ordering::Relaxed);
                    health.write_reason = Some(reason.clone());
                    health.read_reason = Some(reason.clone());
                    health.last_error = Some(reason);
                    health.last_status = None;
                    let write_changed = health.write.force_down().then_some(false);
                    let read_changed = health.read.force_down().then_some(false);
                    (write_changed, read_changed)
                }
                ProbeOutcome::SoftFailure(reason) => {
                    health.last_error = Some(reason.clone());
                    // A slow probe of the only node that can still take writes more likely
                    // means this proxy (or its host) is overloaded than that the node died:
                    // taking it down would cut every session at once. A dead node refuses
                    // or resets connections, which is a hard failure and still counts.
                    let last_writer = health.write.is_healthy() && others_down;
                    if last_writer {
                        tracing::warn!(backend = %backend.name, "{reason}; not counted: it is the only write-healthy node");
                        (None, None)
                    } else {
                        health.write_reason = Some(reason.clone());
                        health.read_reason = Some(reason);
                        let write_changed =
                            health.write.observe(false, settings.rise, settings.fall);
                        let read_changed = health.read.observe(false, settings.rise, settings.fall);
                        (write_changed, read_changed)
                    }
                }
            }
        };
        let split_changed = self.update_split_brain();
        self.after_change(index, write_changed, read_changed);
        if split_changed && write_changed.is_none() {
            self.recompute_writer();
        }
    }

    /// The last statuses of every backend but `index`. Locks each in turn; callers must
    /// not hold any health lock.
    fn other_statuses(&self, index: usize) -> Vec<(String, WsrepStatus)> {
        self.backends
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .filter_map(|(_, backend)| {
                let health = backend.health.lock().expect("health lock");
                let status = health.last_status.clone()?;
                Some((backend.name.clone(), status))
            })
            .collect()
    }

    /// Whether every backend other than `index` is write-unhealthy. Locks each other
    /// backend in turn; callers must not hold any health lock.
    fn is_only_write_healthy(&self, index: usize) -> bool {
        self.backends
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .all(|(_, backend)| {
                !backend
                    .health
                    .lock()
                    .expect("health lock")
                    .write
                    .is_healthy()
            })
    }

    /// Passive detection: a client's connection attempt to `index` was refused or reset.
    pub fn on_connect_refused(&self, index: usize, reason: &str) {
        let backend = &self.backends[index];
        let (write_changed, read_changed) = {
            let mut health = backend.health.lock().expect("health lock");
            health.write_reason = Some(format!("client connection failed: {reason}"));
            health.read_reason = health.write_reason.clone();
            (
                health.write.force_down().then_some(false),
                health.read.force_down().then_some(false),
            )
        };
        self.after_change(index, write_changed, read_changed);
    }

    fn after_change(&self, index: usize, write_changed: Option<bool>, read_changed: Option<bool>) {
        let backend = &self.backends[index];
        for (kind, change) in [("write", write_changed), ("read", read_changed)] {
            if let Some(healthy) = change {
                backend.health_changes.fetch_add(1, Ordering::Relaxed);
                let reason = {
                    let health = backend.health.lock().expect("health lock");
                    if kind == "write" {
                        health.write_reason.clone()
                    } else {
                        health.read_reason.clone()
                    }
                };
                if healthy {
                    tracing::info!(backend = %backend.name, "{kind}-healthy");
                } else {
                    tracing::warn!(backend = %backend.name, reason = reason.as_deref().unwrap_or(""), "not {kind}-healthy");
                }
            }
        }
        if write_changed == Some(false) {
            backend.evict(Role::MultiWriter);
        }
        if read_changed == Some(false) {
            backend.evict(Role::Reader);
        }
        if write_changed.is_some() {
            self.recompute_writer();
        }
    }

    /// Chooses the writer again; on a change, sessions on the old writer are told to go.
    /// With the shared decision, the decision task is also woken to look again.
    pub fn recompute_writer(&self) {
        if self.writer_decision == spec::WriterDecision::Shared {
            self.decide_now.notify_one();
        }
        self.recompute_writer_quietly();
    }

    /// [`Proxy::recompute_writer`] without waking the decision task (which calls it).
    fn recompute_writer_quietly(&self) {
        let settings = self.settings();
        let mut writer = self.writer.lock().expect("writer lock");
        // At start-up, wait until every node has been probed once: otherwise the first
        // node to answer would become the (sticky) writer, and proxies would disagree.
        let all_known = self
            .backends
            .iter()
            .all(|backend| backend.health.lock().expect("health lock").write.is_known());
        if writer.is_none() && !all_known {
            return;
        }
        let statuses: Vec<(bool, Option<i64>)> = self
            .backends
            .iter()
            .map(|backend| {
                let health = backend.health.lock().expect("health lock");
                (
                    health.write.is_healthy(),
                    health.last_status.as_ref().map(|s| s.local_index),
                )
            })
            .collect();
        let candidates: Vec<Candidate> = self
            .backends
            .iter()
            .zip(&statuses)
            .map(|(backend, (write_healthy, local_index))| Candidate {
                name: &backend.name,
                priority: backend.priority.load(Ordering::Relaxed),
                local_index: *local_index,
                write_healthy: *write_healthy,
                draining: backend.draining(),
                split_minority: backend.split_minority(),
            })
            .collect();
        let chosen = match self.writer_decision {
            spec::WriterDecision::Local => choose_writer(&candidates, *writer, settings.failback),
            // The record's node, while it is eligible here too; the decision task is
            // woken to replace it when it is not (crate::decision).
            spec::WriterDecision::Shared => {
                let followed = self.agreement.lock().expect("agreement lock").followed;
                followed.filter(|index| candidates[*index].eligible())
            }
        };
        if chosen != *writer {
            let old = writer.map(|index| self.backends[index].name.as_str());
            let new = chosen.map(|index| self.backends[index].name.as_str());
            match (old, new) {
                (Some(old), Some(new)) => tracing::warn!(from = old, to = new, "writer moved"),
                (None, Some(new)) => tracing::info!(writer = new, "writer chosen"),
                (Some(old), None) => tracing::error!(from = old, "no node can take writes"),
                (None, None) => {}
            }
            self.metrics.writer_changes.fetch_add(1, Ordering::Relaxed);
            if let Some(old_index) = *writer {
                self.metrics.failovers.fetch_add(1, Ordering::Relaxed);
                self.backends[old_index].evict(Role::Writer);
            }
            *writer = chosen;
        }
    }

    /// Every backend as the shared decision sees it ([`Seen`] keeps borrowed names, so
    /// the caller maps these owned values).
    pub fn seen(&self) -> Vec<(String, bool, bool, bool)> {
        self.backends
            .iter()
            .map(|backend| {
                let health = backend.health.lock().expect("health lock");
                // The node answered and its own status forbids writes: a fact about the
                // node that every proxy reads the same, unlike an unanswered probe.
                let answered = health.last_status.is_some() && health.last_error.is_none();
                let refuses = backend.split_minority()
                    || (answered && !health.write.is_healthy() && health.write_reason.is_some());
                (
                    backend.name.clone(),
                    health.write.is_healthy(),
                    refuses,
                    backend.draining(),
                )
            })
            .collect()
    }

    /// The node this proxy would choose on its own, never `leaving`.
    pub fn own_choice(&self, leaving: Option<&str>) -> Option<String> {
        let statuses: Vec<(bool, Option<i64>)> = self
            .backends
            .iter()
            .map(|backend| {
                let health = backend.health.lock().expect("health lock");
                (
                    health.write.is_healthy(),
                    health.last_status.as_ref().map(|s| s.local_index),
                )
            })
            .collect();
        let candidates: Vec<Candidate> = self
            .backends
            .iter()
            .zip(&statuses)
            .map(|(backend, (write_healthy, local_index))| Candidate {
                name: &backend.name,
                priority: backend.priority.load(Ordering::Relaxed),
                local_index: *local_index,
                write_healthy: *write_healthy && Some(backend.name.as_str()) != leaving,
                draining: backend.draining(),
                split_minority: backend.split_minority(),
            })
            .collect();
        choose_writer(&candidates, None, true).map(|index| candidates[index].name.to_owned())
    }

    /// A backend the decision task may read the record from: write-healthy (Synced, in
    /// the current Primary view) and not in a split-brain minority; `preferred` first,
    /// and a node other than the writer before the writer. Every node of the Primary
    /// component gives the same record (causal reads), but a writer that hangs would
    /// hold the very decision that moves writes off it for a whole probe timeout.
    pub fn decision_source(&self, preferred: Option<usize>) -> Option<usize> {
        let usable = |index: usize| {
            let backend = &self.backends[index];
            backend.write_healthy() && !backend.split_minority()
        };
        let writer = self.writer();
        let candidates = || preferred.into_iter().chain(0..self.backends.len());
        candidates()
            .find(|&index| usable(index) && Some(index) != writer)
            .or_else(|| candidates().find(|&index| usable(index)))
    }

    /// Decides from a record just read (crate::decision::next_step).
    pub fn decide(&self, record: Option<&Record>, members: &[String]) -> Step {
        // As with a local choice: until every node has been probed once, the first node
        // to answer would be chosen, and proxies would record different first writers.
        let all_known = self
            .backends
            .iter()
            .all(|backend| backend.health.lock().expect("health lock").write.is_known());
        if !all_known {
            return Step::Refuse("waiting for the first probe of every node".to_owned());
        }
        let seen = self.seen();
        let seen: Vec<Seen> = seen
            .iter()
            .map(|(name, write_healthy, refuses_writes, draining)| Seen {
                name,
                write_healthy: *write_healthy,
                refuses_writes: *refuses_writes,
                draining: *draining,
            })
            .collect();
        let failback = self.settings().failback;
        crate::decision::next_step(record, members, &seen, failback, |leaving| {
            self.own_choice(leaving)
        })
    }

    /// The decision task learned the record: follow `node` at `term`, or (None) route
    /// no writes for `refused`.
    pub fn learn(&self, term: Option<u64>, node: Option<&str>, refused: Option<String>) {
        let index = node.and_then(|name| self.backends.iter().position(|b| b.name == name));
        {
            let mut agreement = self.agreement.lock().expect("agreement lock");
            if agreement.term != term || agreement.followed != index {
                match (node, &refused) {
                    (Some(node), _) => {
                        tracing::info!(
                            term = term.unwrap_or(0),
                            writer = node,
                            "following the shared writer record"
                        )
                    }
                    (None, Some(reason)) => tracing::warn!("routing no writes: {reason}"),
                    (None, None) => {}
                }
            }
            *agreement = Agreement {
                followed: index,
                term,
                refused,
                failures: 0,
            };
        }
        self.recompute_writer_quietly();
    }

    /// A decision round failed (`reason`); after `fall` failures in a row this proxy
    /// no longer knows the decision and routes no writes rather than guess.
    pub fn decision_failed(&self, reason: String) {
        let fall = self.settings().fall;
        let forget = {
            let mut agreement = self.agreement.lock().expect("agreement lock");
            agreement.failures += 1;
            if agreement.failures >= fall && agreement.followed.is_some() {
                tracing::warn!("routing no writes: cannot read the shared writer record: {reason}");
                agreement.followed = None;
                agreement.refused = Some(format!("cannot read the shared writer record: {reason}"));
                true
            } else {
                if agreement.followed.is_none() {
                    agreement.refused =
                        Some(format!("cannot read the shared writer record: {reason}"));
                }
                false
            }
        };
        if forget {
            self.recompute_writer_quietly();
        }
    }

    /// Whether this proxy routes no writes because of the shared decision: the decision
    /// task then asks again soon instead of once per probe period.
    pub fn refusing_writes(&self) -> bool {
        self.writer_decision == spec::WriterDecision::Shared
            && self
                .agreement
                .lock()
                .expect("agreement lock")
                .followed
                .is_none()
    }

    fn decision_status(&self) -> DecisionStatus {
        let agreement = self.agreement.lock().expect("agreement lock").clone();
        DecisionStatus {
            mode: match self.writer_decision {
                spec::WriterDecision::Shared => "shared",
                spec::WriterDecision::Local => "local",
            }
            .to_owned(),
            term: agreement.term,
            follows: agreement
                .followed
                .map(|index| self.backends[index].name.clone()),
            refused: agreement.refused,
        }
    }

    /// Sets or clears maintenance drain on a node: it stops taking new sessions and the
    /// writer moves off it; existing sessions there close after the writer grace.
    pub fn set_draining(&self, name: &str, draining: bool) -> Result<(), String> {
        let Some(backend) = self.backends.iter().find(|backend| backend.name == name) else {
            let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
            return Err(format!(
                "no node named `{name}`; nodes: {}",
                names.join(", ")
            ));
        };
        backend.draining.store(draining, Ordering::Relaxed);
        if draining {
            backend.evict(Role::MultiWriter);
            backend.evict(Role::Reader);
        }
        self.recompute_writer();
        Ok(())
    }

    /// The backend for a new session of `role`, skipping `excluded`; or why there is none.
    /// The chosen backend's connection count is raised at once (a reservation), so that
    /// concurrent picks spread; the caller lowers it again if the session does not start.
    pub fn pick(&self, role: Role, excluded: &[usize]) -> Result<usize, String> {
        let index = self.choose(role, excluded)?;
        self.backends[index]
            .active_connections
            .fetch_add(1, Ordering::Relaxed);
        Ok(index)
    }

    fn choose(&self, role: Role, excluded: &[usize]) -> Result<usize, String> {
        let writer = self.writer();
        let usable = |index: usize, backend: &Backend| {
            !excluded.contains(&index)
                && !backend.draining()
                && match role {
                    Role::Reader => backend.read_healthy(),
                    Role::Writer | Role::MultiWriter => {
                        backend.write_healthy() && !backend.split_minority()
                    }
                }
        };
        let chosen = match role {
            Role::Writer => writer.filter(|index| usable(*index, &self.backends[*index])),
            Role::Reader | Role::MultiWriter => self
                .backends
                .iter()
                .enumerate()
                .filter(|(index, backend)| usable(*index, backend))
                // Least connections; on a tie, readers stay off the writer.
                .min_by_key(|(index, backend)| {
                    (
                        backend.active_connections.load(Ordering::Relaxed),
                        writer == Some(*index),
                        backend.priority.load(Ordering::Relaxed),
                        *index,
                    )
                })
                .map(|(index, _)| index),
        };
        chosen.ok_or_else(|| self.why_none(role))
    }

    /// Whether a session of `role` may stay on `index` (checked right after connecting,
    /// to close the race with a writer change).
    pub fn still_valid(&self, role: Role, index: usize) -> bool {
        let backend = &self.backends[index];
        !backend.draining()
            && match role {
                Role::Writer => self.writer() == Some(index),
                Role::MultiWriter => backend.write_healthy() && !backend.split_minority(),
                Role::Reader => backend.read_healthy(),
            }
    }

    fn why_none(&self, role: Role) -> String {
        let reasons: Vec<String> = self
            .backends
            .iter()
            .map(|backend| {
                let health = backend.health.lock().expect("health lock");
                let writes = matches!(role, Role::Writer | Role::MultiWriter);
                let reason = if backend.draining() {
                    "draining".to_owned()
                } else if writes && backend.split_minority() {
                    "on the minority side of a split brain".to_owned()
                } else {
                    match role {
                        Role::Reader => health.read_reason.clone(),
                        Role::Writer | Role::MultiWriter => health.write_reason.clone(),
                    }
                    .unwrap_or_else(|| "not probed yet".to_owned())
                };
                format!("{}: {reason}", backend.name)
            })
            .collect();
        let what = match role {
            Role::Reader => "serve reads",
            Role::Writer | Role::MultiWriter => "take writes",
        };
        let split = match role {
            Role::Writer | Role::MultiWriter => self
                .split_brain()
                .map(|split| format!("; {split}; no writes go to a side that may be abandoned")),
            Role::Reader => None,
        };
        if role == Role::Writer && self.refusing_writes() {
            let refused = self
                .agreement
                .lock()
                .expect("agreement lock")
                .refused
                .clone();
            if let Some(refused) = refused {
                return format!(
                    "galley proxy: no Galera node can take writes through this proxy now: {refused} ({}){}",
                    reasons.join("; "),
                    split.unwrap_or_default()
                );
            }
        }
        format!(
            "galley proxy: no Galera node can {what} now ({}){}",
            reasons.join("; "),
            split.unwrap_or_default()
        )
    }

    /// Whether the probes see a split brain now.
    pub fn split_brain_active(&self) -> bool {
        self.split_brain.lock().expect("split brain lock").is_some()
    }

    pub fn status(&self) -> ProxyStatus {
        let backends = self
            .backends
            .iter()
            .map(|backend| {
                let health = backend.health.lock().expect("health lock");
                BackendStatus {
                    name: backend.name.clone(),
                    address: backend.address.clone(),
                    priority: backend.priority.load(Ordering::Relaxed),
                    write_healthy: health.write.is_healthy(),
                    read_healthy: health.read.is_healthy(),
                    split_minority: backend.split_minority(),
                    write_reason: health.write_reason.clone(),
                    read_reason: health.read_reason.clone(),
                    draining: backend.draining(),
                    state: health
                        .last_status
                        .as_ref()
                        .map(|status| status.local_state.to_string()),
                    local_index: health.last_status.as_ref().map(|status| status.local_index),
                    active_connections: backend.active_connections.load(Ordering::Relaxed),
                    connect_errors: backend.connect_errors.load(Ordering::Relaxed),
                    health_changes: backend.health_changes.load(Ordering::Relaxed),
                    probe_latency_ms: health.probe_latency_ms,
                }
            })
            .collect();
        ProxyStatus {
            pid: std::process::id(),
            listeners: self.listeners.read().expect("listeners lock").clone(),
            writer: self.writer().map(|index| self.backends[index].name.clone()),
            failovers: self.metrics.failovers.load(Ordering::Relaxed),
            active_connections: self.active_connections.load(Ordering::Relaxed),
            connections_total: self.metrics.connections_total(),
            backends,
            forwarding: self.forwarder.label().to_owned(),
            forwarding_note: match &self.forwarder {
                Forwarder::Kernel(_) => None,
                Forwarder::Userspace { reason } => Some(reason.clone()),
            },
            split_brain: self.split_brain(),
            writer_decision: Some(self.decision_status()),
        }
    }
}

/// Why `node`'s status is in a stale view, judged against the others' last statuses
/// (`galera::stale_views`; docs/galera.md, "A node that froze and resumed").
fn stale_view(
    node: &str,
    status: &WsrepStatus,
    others: &[(String, WsrepStatus)],
) -> Option<String> {
    let all =
        std::iter::once((node, status)).chain(others.iter().map(|(name, s)| (name.as_str(), s)));
    galera::stale_views(all)
        .into_iter()
        .find(|view| view.node == node)
        .map(|view| view.reason())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::synced;

    fn proxy() -> Proxy {
        let mut text = String::from("[cluster]\nname = \"t\"\nsecrets_file = \"/tmp/s.toml\"\n[proxy]\nrise = 2\nfall = 2\nwriter_decision = \"local\"\n");
        for n in 1..=3 {
            text.push_str(&format!(
                "[[node]]\nname = \"n{n}\"\naddress = \"127.0.1.{n}\"\ndata_dir = \"/d{n}\"\n"
            ));
        }
        let spec = spec::parse(std::path::Path::new("galley.toml"), &text)
            .unwrap()
            .spec;
        let proxy_spec = spec.proxy.clone().unwrap();
        Proxy::new(&spec, &proxy_spec)
    }

    fn soft() -> ProbeOutcome {
        ProbeOutcome::SoftFailure("probe timed out".into())
    }

    fn hard() -> ProbeOutcome {
        ProbeOutcome::HardFailure("connection refused".into())
    }

    /// A Synced Primary node's status in view `conf_id` of `size` nodes.
    fn in_view(index: i64, conf_id: i64, size: i64) -> ProbeOutcome {
        let (index, conf_id, size) = (index.to_string(), conf_id.to_string(), size.to_string());
        let status = WsrepStatus::from_variables([
            ("wsrep_ready", "ON"),
            ("wsrep_cluster_status", "Primary"),
            ("wsrep_local_state", "4"),
            ("wsrep_local_index", index.as_str()),
            ("wsrep_cluster_conf_id", conf_id.as_str()),
            ("wsrep_cluster_size", size.as_str()),
            (
                "wsrep_cluster_state_uuid",
                "259f0f64-2a80-46ae-a206-519b5024470e",
            ),
        ]);
        ProbeOutcome::Status {
            status: Box::new(status),
            latency_ms: 1.0,
        }
    }

    #[test]
    fn a_resumed_node_in_an_old_view_leaves_the_rotation_at_its_next_probe() {
        let proxy = proxy();
        for index in 0..3 {
            proxy.on_probe(index, in_view(index as i64, 3, 3));
        }
        assert_eq!(proxy.writer(), Some(0));
        // node 0 froze; the others formed view 4 without it and took writes.
        proxy.on_probe(1, in_view(0, 4, 2));
        proxy.on_probe(2, in_view(1, 4, 2));
        // It resumes still saying Synced in view 3 of 3: out for writes and reads at once.
        proxy.on_probe(0, in_view(0, 3, 3));
        assert_eq!(proxy.writer(), Some(1));
        assert!(!proxy.backends[0].read_healthy());
        let page = crate::metrics::render(&proxy);
        assert!(
            page.contains("galley_proxy_backend_stale_view{backend=\"n1\"} 1\n"),
            "{page}"
        );
        assert!(
            page.contains("galley_proxy_backend_stale_view{backend=\"n2\"} 0\n"),
            "{page}"
        );
        // Chosen at start, then moved: two changes, one failover.
        assert!(
            page.contains("galley_proxy_writer_changes_total 2\n"),
            "{page}"
        );
        assert!(page.contains("galley_proxy_failovers_total 1\n"), "{page}");
        let status = proxy.status();
        let reason = status.backends[0].write_reason.clone().unwrap_or_default();
        assert!(reason.contains("stale view"), "{reason}");
        assert_ne!(proxy.pick(Role::Reader, &[]).unwrap(), 0);
        // Back in the current view (it rejoined): readable again after `rise` probes.
        for _ in 0..proxy.settings().rise {
            proxy.on_probe(0, in_view(2, 5, 3));
            proxy.on_probe(1, in_view(0, 5, 3));
            proxy.on_probe(2, in_view(1, 5, 3));
        }
        assert!(proxy.backends[0].read_healthy());
        assert!(!proxy.backends[0].stale_view());
    }

    /// The same three nodes with the shared writer decision (the spec's default).
    fn shared_proxy() -> Proxy {
        let mut text = String::from("[cluster]\nname = \"t\"\nsecrets_file = \"/tmp/s.toml\"\n[proxy]\nrise = 2\nfall = 2\n");
        for n in 1..=3 {
            text.push_str(&format!(
                "[[node]]\nname = \"n{n}\"\naddress = \"127.0.1.{n}\"\ndata_dir = \"/d{n}\"\n"
            ));
        }
        let spec = spec::parse(std::path::Path::new("galley.toml"), &text)
            .unwrap()
            .spec;
        let proxy_spec = spec.proxy.clone().unwrap();
        Proxy::new(&spec, &proxy_spec)
    }

    #[test]
    fn with_the_shared_decision_the_record_is_followed_and_never_overruled_locally() {
        let proxy = shared_proxy();
        assert_eq!(proxy.writer_decision, spec::WriterDecision::Shared);
        let members: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        // n1, the preferred node, has not answered its first probe yet: no proposal,
        // or the first record would name whichever node answered first.
        proxy.on_probe(1, synced(1));
        proxy.on_probe(2, synced(2));
        assert_eq!(
            proxy.decide(None, &members),
            Step::Refuse("waiting for the first probe of every node".into())
        );
        for index in 0..3 {
            proxy.on_probe(index, synced(index as i64));
        }
        // Every node is healthy, but no record has been read: no writer, and the first
        // decision would record n1, this proxy's own choice.
        assert_eq!(proxy.writer(), None);
        assert!(proxy.refusing_writes());
        assert!(matches!(
            proxy.decide(None, &members),
            Step::Propose { expected: None, ref node, .. } if node == "n1"
        ));
        // The record names n2 (another proxy failed over to it): followed, although n1
        // is preferred here.
        proxy.learn(Some(3), Some("n2"), None);
        assert_eq!(proxy.writer(), Some(1));
        let record = Record {
            term: 3,
            node: "n2".into(),
        };
        assert_eq!(
            proxy.decide(Some(&record), &members),
            Step::Follow("n2".into())
        );
        // n2's probes time out while it is still a member: this proxy stops writing
        // rather than move to n1 on its own word.
        for _ in 0..proxy.settings().fall {
            proxy.on_probe(1, soft());
        }
        assert_eq!(proxy.writer(), None);
        assert!(matches!(
            proxy.decide(Some(&record), &members),
            Step::Refuse(_)
        ));
        // n2 left the Primary component: replace it, with n1.
        let without_n2: Vec<String> = ["n1", "n3"].map(String::from).to_vec();
        assert!(matches!(
            proxy.decide(Some(&record), &without_n2),
            Step::Propose { expected: Some(3), ref node, .. } if node == "n1"
        ));
        // Rounds that fail `fall` times in a row forget the record.
        proxy.learn(Some(4), Some("n1"), None);
        assert_eq!(proxy.writer(), Some(0));
        proxy.decision_failed("timed out".into());
        assert_eq!(proxy.writer(), Some(0));
        proxy.decision_failed("timed out".into());
        assert_eq!(proxy.writer(), None);
        let status = proxy.status().writer_decision.unwrap();
        assert_eq!(status.mode, "shared");
        assert!(status
            .refused
            .unwrap()
            .contains("cannot read the shared writer record"));
    }

    #[test]
    fn writer_waits_for_every_first_probe_then_prefers_priority() {
        let proxy = proxy();
        proxy.on_probe(1, synced(1));
        assert_eq!(
            proxy.writer(),
            None,
            "no writer before every node was probed"
        );
        proxy.on_probe(2, synced(2));
        proxy.on_probe(0, synced(0));
        assert_eq!(proxy.writer(), Some(0));
    }

    #[test]
    fn soft_failures_flip_with_hysteresis_but_never_take_the_last_writer() {
        let proxy = proxy();
        for index in 0..3 {
            proxy.on_probe(index, synced(index as i64));
        }
        // A timeout on n2 counts toward fall: one is not enough, two are.
        proxy.on_probe(1, soft());
        assert!(proxy.backends[1].write_healthy());
        proxy.on_probe(1, soft());
        assert!(!proxy.backends[1].write_healthy());
        // A hard failure is at once.
        proxy.on_probe(2, hard());
        assert!(!proxy.backends[2].write_healthy());
        // n1 is now the only write-healthy node: timeouts alone do not take it down...
        for _ in 0..5 {
            proxy.on_probe(0, soft());
        }
        assert!(proxy.backends[0].write_healthy());
        assert_eq!(proxy.writer(), Some(0));
        // ...but a refused connection does.
        proxy.on_probe(0, hard());
        assert_eq!(proxy.writer(), None);
        assert!(proxy
            .pick(Role::Writer, &[])
            .unwrap_err()
            .contains("no Galera node can take writes"));
    }

    const A: &str = "259f0f64-2a80-46ae-a206-519b5024470e";
    const B: &str = "11111111-2a80-46ae-a206-519b5024470e";

    /// A Synced Primary node's status as the probe reads it: rows of (VARIABLE_NAME,
    /// VARIABLE_VALUE) in the server's spelling, parsed as `probe::run` parses them.
    fn primary_of(history: &str, cluster_size: u32, local_index: u32) -> ProbeOutcome {
        let uuid = match history {
            "A" => A,
            "B" => B,
            other => panic!("history {other}"),
        };
        let size = cluster_size.to_string();
        let index = local_index.to_string();
        let rows: Vec<(String, String)> = [
            ("WSREP_READY", "ON"),
            ("WSREP_CONNECTED", "ON"),
            ("WSREP_CLUSTER_STATUS", "Primary"),
            ("WSREP_CLUSTER_SIZE", size.as_str()),
            ("WSREP_CLUSTER_STATE_UUID", uuid),
            ("WSREP_LOCAL_STATE", "4"),
            ("WSREP_LOCAL_STATE_COMMENT", "Synced"),
            ("WSREP_LOCAL_INDEX", index.as_str()),
            ("WSREP_LAST_COMMITTED", "42"),
            ("read_only", "0"),
            ("wsrep_desync", "0"),
            ("wsrep_reject_queries", "NONE"),
        ]
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let status =
            WsrepStatus::from_variables(rows.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        ProbeOutcome::Status {
            status: Box::new(status),
            latency_ms: 1.0,
        }
    }

    /// Feeds one probe round to the three-node proxy, `name history size` per node (or
    /// `name down` for a refused probe), and checks the writer, the nodes kept from
    /// writes and the multi-writer pick.
    fn check_round(proxy: &Proxy, round: &str, writer: &str, minority: &[&str]) {
        for entry in round.split(',') {
            let words: Vec<&str> = entry.split_whitespace().collect();
            let index = proxy
                .backends
                .iter()
                .position(|backend| backend.name == words[0])
                .expect("a node of the fixture");
            let outcome = match words[1] {
                "down" => hard(),
                history => primary_of(history, words[2].parse().unwrap(), index as u32),
            };
            proxy.on_probe(index, outcome);
        }
        let chosen = proxy
            .writer()
            .map_or("none", |index| proxy.backends[index].name.as_str());
        assert_eq!(chosen, writer, "writer after {round}");
        let kept: Vec<&str> = proxy
            .backends
            .iter()
            .filter(|backend| backend.split_minority())
            .map(|backend| backend.name.as_str())
            .collect();
        assert_eq!(kept, minority, "minority after {round}");
        let status = proxy.status();
        assert_eq!(
            status.split_brain.is_some(),
            !minority.is_empty(),
            "{round}"
        );
        match proxy.pick(Role::MultiWriter, &[]) {
            Ok(index) => {
                let name = proxy.backends[index].name.as_str();
                assert!(
                    !minority.contains(&name),
                    "multi-writer to {name} after {round}"
                );
            }
            Err(message) => {
                assert_eq!(writer, "none", "no multi-writer after {round}: {message}");
                assert!(message.contains("split brain"), "{message}");
            }
        }
        match proxy.pick(Role::Writer, &[]) {
            Ok(index) => assert_eq!(proxy.backends[index].name, writer, "{round}"),
            Err(message) => {
                assert_eq!(writer, "none", "{round}: {message}");
                if !minority.is_empty() {
                    assert!(message.contains("split brain"), "{message}");
                }
            }
        }
    }

    #[test]
    fn a_split_brain_minority_never_gets_writes() {
        let proxy = proxy();
        // One history: the preferred node writes.
        check_round(&proxy, "n1 A 3, n2 A 3, n3 A 3", "n1", &[]);
        // n1 was cut off and bootstrapped by hand: a second Primary component with its
        // own history. It says Synced and Primary, but it is the smaller side: the
        // (sticky) writer leaves it, and its writer sessions are told to go.
        let mut writer_sessions = proxy.backends[0].evictions(Role::Writer);
        writer_sessions.mark_unchanged();
        check_round(&proxy, "n1 B 1, n2 A 2, n3 A 2", "n2", &["n1"]);
        assert!(
            writer_sessions.has_changed().unwrap(),
            "n1's writer sessions were not evicted"
        );
        // The view size counts members the probes cannot read: n3 alone reports a
        // component of 2, so B (one member seen, view 1) is still the minority.
        check_round(&proxy, "n2 down, n3 A 2", "n3", &["n1"]);
        // Two sides of one size: no majority can be decided, so nothing gets writes.
        check_round(&proxy, "n3 A 1", "none", &["n1", "n3"]);
        // The split heals (n1 rejoins A): the flags clear and writes resume.
        check_round(&proxy, "n1 A 2, n3 A 2", "n1", &[]);
    }

    #[test]
    fn the_decision_is_read_from_a_node_other_than_the_writer() {
        let proxy = proxy();
        for index in 0..3 {
            proxy.on_probe(index, synced(index as i64));
        }
        assert_eq!(proxy.writer(), Some(0));
        // Not the writer, even when the task is connected to it: a hung writer would
        // hold the decision for a probe timeout.
        assert_eq!(proxy.decision_source(None), Some(1));
        assert_eq!(proxy.decision_source(Some(0)), Some(1));
        assert_eq!(proxy.decision_source(Some(2)), Some(2));
        // Only the writer is left: it is the source.
        proxy.on_probe(1, hard());
        proxy.on_probe(1, hard());
        proxy.on_probe(2, hard());
        proxy.on_probe(2, hard());
        assert_eq!(proxy.decision_source(Some(2)), Some(0));
    }

    #[test]
    fn reads_spread_and_avoid_the_writer_on_ties() {
        let proxy = proxy();
        for index in 0..3 {
            proxy.on_probe(index, synced(index as i64));
        }
        let first = proxy.pick(Role::Reader, &[]).unwrap();
        let second = proxy.pick(Role::Reader, &[]).unwrap();
        let third = proxy.pick(Role::Reader, &[]).unwrap();
        assert_eq!((first, second, third), (1, 2, 0));
    }
}
