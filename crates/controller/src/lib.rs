//! The galley controller: every period it observes each node through its agent (which
//! reads the server over SQL), keeps the history in SQLite, asks the pure planner what to
//! do, and acts through the agents, all through the one reconcile engine
//! (`reconcile::Engine`). It acts only while it holds the store's lease, so that a
//! second controller or a `galley recover` never acts at the same time.
//!
//! Desired state vs observed state: the desired state is "every node Synced in one
//! Primary component", minus the nodes an operator stopped on purpose. Each tick closes
//! the gap by at most one step (or all position recoveries together) and then observes
//! again, so a controller that dies at any point resumes correctly.
//!
//! By step: `agents` (what the engine observes and acts through: the agents, and SQL
//! for imported nodes), `record` (what each round writes down: history, high-water
//! mark, alerts, decisions; the planner's inputs from the store), `rates` (the pure
//! parts of that record), and this file (the tick, under the lease).

mod agents;
mod alerts;
pub mod api;
pub mod console;
pub mod lease;
pub mod metrics;
mod rates;
mod record;
pub mod sql_observe;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use agent::api::NodeReport;
use anyhow::Context as _;
use planner::Policy;
use reconcile::{Clock as _, Engine, Member, RoundOptions, Settings, SystemClock};
use spec::{ClusterSpec, ConfirmStep, ControllerSpec, NodeSpec};
use store::Store;

pub use agents::ControllerAgents;
pub use alerts::{Alert, Alerts};
pub use rates::evidence;

/// What one tick saw and did; `galley recover` prints it.
pub type TickReport = reconcile::Round;

/// Wall-clock milliseconds since the epoch, for the history. Durations in the control
/// logic are differences of these values, read once per tick and passed down, so the
/// planner itself never reads a clock.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// Records the operator's intent for a node (`galley stop` / `galley start`), so that
/// the controller does not undo it. Does nothing for a cluster without a controller.
pub fn set_desired(spec: &ClusterSpec, node: &str, running: bool) -> anyhow::Result<()> {
    let Some(settings) = &spec.controller else {
        return Ok(());
    };
    let store = Store::open(&store_path(settings))?;
    store.set_desired(node, running, now_ms())?;
    Ok(())
}

/// Where the controller keeps its history for a spec.
pub fn store_path(settings: &ControllerSpec) -> PathBuf {
    settings.state_dir.join("galley.db")
}

/// The `[controller]` section, or its defaults under `default_state_dir`.
pub fn settings_for(spec: &ClusterSpec, default_state_dir: &std::path::Path) -> ControllerSpec {
    spec.controller
        .clone()
        .unwrap_or_else(|| ControllerSpec::defaults(default_state_dir))
}

/// The store's marks as the planner takes them.
pub fn planner_marks(marks: store::HighWaterMarks) -> planner::HighWaterMarks {
    let mark = |mark: store::HighWaterMark| planner::Mark {
        uuid: mark.uuid,
        seqno: mark.seqno,
    };
    planner::HighWaterMarks {
        accepted: marks.accepted.map(mark),
        others: marks.others.into_iter().map(mark).collect(),
    }
}

/// The engine's policy and patience from the `[controller]` section.
pub fn engine_settings(settings: &ControllerSpec) -> Settings {
    Settings {
        policy: Policy {
            auto_recover_nodes: settings.auto_recover_nodes,
            auto_recover_cluster: settings.auto_recover_cluster,
            confirm_bootstrap: settings.confirm.contains(&ConfirmStep::Bootstrap),
            confirm_restart: settings.confirm.contains(&ConfirmStep::Restart),
            allow_wipe: settings.allow_wipe,
            wipe_after_failed_starts: settings.wipe_after_failed_starts,
        },
        stuck_after_ms: settings.stuck_after_s as i64 * 1000,
    }
}

/// The engine's members: every node of the spec.
pub fn members(spec: &ClusterSpec) -> Vec<Member> {
    spec.nodes
        .iter()
        .map(|node| Member {
            name: node.name.clone(),
            priority: node.priority,
            managed: node.managed,
        })
        .collect()
}

/// How this controller instance behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lease owner name, e.g. `controller:1234` or `recover:5678`.
    pub owner: String,
    /// Run steps that policy says need confirmation (`galley recover --yes`).
    pub approve_all: bool,
    /// Allow a bootstrap below the high-water mark (`--force`).
    pub force: bool,
    /// Nodes whose data the operator says is lost (`galley recover --rebuild NODE`).
    pub rebuild: Vec<String>,
}

/// The latest gather: every node's report (None when its agent did not answer) and
/// when it was taken. The API serves it instead of asking the agents per request.
#[derive(Debug, Clone)]
pub struct LastObservation {
    pub at_ms: i64,
    pub nodes: Vec<(NodeSpec, Option<NodeReport>)>,
}

/// A handle on the controller's latest observation and its counters
/// ([`metrics::Counters`]), shared with the API.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    latest: Arc<RwLock<Option<Arc<LastObservation>>>>,
    counters: Arc<metrics::Counters>,
}

impl Observations {
    pub fn counters(&self) -> &metrics::Counters {
        &self.counters
    }

    pub fn latest(&self) -> Option<Arc<LastObservation>> {
        self.latest.read().expect("observation lock").clone()
    }

    pub fn publish(&self, observation: LastObservation) {
        *self.latest.write().expect("observation lock") = Some(Arc::new(observation));
    }
}

/// The engine and the journal's memory, behind one lock: one tick at a time.
#[derive(Debug)]
struct State {
    engine: Engine<ControllerAgents>,
    record: record::RecordMemory,
    last_prune_ms: i64,
}

pub struct Controller {
    spec: ClusterSpec,
    observations: Observations,
    settings: ControllerSpec,
    store: Mutex<Store>,
    state: tokio::sync::Mutex<State>,
    alerts: Alerts,
    options: Options,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("cluster", &self.spec.name)
            .field("owner", &self.options.owner)
            .finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(
        spec: ClusterSpec,
        settings: ControllerSpec,
        token: &str,
        options: Options,
    ) -> anyhow::Result<Controller> {
        let path = store_path(&settings);
        let store = Store::open(&path)
            .with_context(|| format!("cannot open the controller's history {}", path.display()))?;
        let alerts = Alerts::new(
            settings.alert_command.clone(),
            settings.alert_webhook.clone(),
        );
        // Imported nodes have no agent: the controller reads them over SQL with the
        // administrative account `galley import` stored in the secrets file.
        let sql_account = if spec.is_imported() {
            let secrets = agent::Secrets::load(&spec.secrets_file)?;
            Some(sql_observe::SqlAccount {
                user: secrets.admin_user().to_owned(),
                password: secrets.admin_password.clone(),
            })
        } else {
            None
        };
        let engine = Engine::new(
            members(&spec),
            ControllerAgents::new(&spec.nodes, token, sql_account),
            engine_settings(&settings),
        )
        .with_arbitrators(spec.arbitrators.len());
        Ok(Controller {
            spec,
            observations: Observations::default(),
            settings,
            store: Mutex::new(store),
            state: tokio::sync::Mutex::new(State {
                engine,
                record: record::RecordMemory::default(),
                last_prune_ms: 0,
            }),
            alerts,
            options,
        })
    }

    /// The handle on this controller's latest observation (for the API).
    pub fn observations(&self) -> Observations {
        self.observations.clone()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }

    /// Observes and plans without recording or acting (`galley recover` without --yes).
    pub async fn plan_only(&self) -> anyhow::Result<TickReport> {
        let now = now_ms();
        let mut state = self.state.lock().await;
        let state = &mut *state;
        let mut journal = record::Journal {
            controller: self,
            memory: &mut state.record,
            recording: false,
            acting: false,
        };
        state
            .engine
            .round(now, &RoundOptions::default(), &mut journal)
            .await
            .map_err(|error| anyhow::anyhow!(error))
    }

    /// One observe, plan, act round; it acts only while this controller holds the lease.
    pub async fn tick(&self) -> anyhow::Result<TickReport> {
        let now = now_ms();
        let ttl = (self.settings.interval_ms as i64 * 5).max(5000);
        let acting = self.store().acquire_lease(&self.options.owner, now, ttl)?;
        let mut state = self.state.lock().await;
        let state = &mut *state;
        let mut journal = record::Journal {
            controller: self,
            memory: &mut state.record,
            recording: true,
            acting,
        };
        let options = RoundOptions { acting, only: None };
        let round = state.engine.round(now, &options, &mut journal);
        // A step can outlast the lease (an SST takes minutes): renew it while acting.
        let round = if acting {
            lease::keeping(&self.store, &self.options.owner, ttl, now_ms, round).await?
        } else {
            round.await
        };
        let round = round.map_err(|error| anyhow::anyhow!(error))?;
        self.observations.counters().tick();
        if now - state.last_prune_ms > 3_600_000 {
            state.last_prune_ms = now;
            let older_than = now - self.settings.retention_hours as i64 * 3_600_000;
            if let Err(error) = self.store().prune(older_than) {
                tracing::warn!("pruning the history failed: {error}");
            }
        }
        Ok(round)
    }

    /// Observes and acts every interval until `shutdown` resolves; then gives up the lease.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            let started = tokio::time::Instant::now();
            // A tick waits on agents (up to seconds when they are unreachable), so shutdown
            // may cut it short. That is safe: store writes are synchronous and never cut in
            // half, an agent finishes a start or stop it was asked for on its own, and the
            // next controller plans again from a fresh observation.
            tokio::select! {
                result = self.tick() => {
                    if let Err(error) = result {
                        tracing::error!("controller tick failed: {error:#}");
                    }
                }
                () = &mut shutdown => break,
            }
            tokio::select! {
                () = tokio::time::sleep_until(started + interval) => {}
                () = &mut shutdown => break,
            }
        }
        if let Err(error) = self.store().release_lease(&self.options.owner) {
            tracing::error!("cannot give up the controller's lease: {error}");
        }
    }
}

/// The controller as the engine's rounds (`galley recover --yes` without a running
/// controller): each round is a tick, and a tick without the lease is an error.
#[derive(Debug)]
pub struct ControllerRounds<'a>(pub &'a Controller);

impl reconcile::Rounds for ControllerRounds<'_> {
    async fn round(&mut self, _now: i64) -> Result<TickReport, reconcile::RoundError> {
        let tick = self.0.tick().await?;
        if !tick.acting {
            return Err(
                "another actor holds the controller's lease; try again in a few seconds".into(),
            );
        }
        Ok(tick)
    }
}
