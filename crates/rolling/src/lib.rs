//! Rolling restart: every node of a running cluster restarted one at a time, so that
//! clients see nothing worse than a reconnect. For each node: drain it at every proxy,
//! wait until the writer is elsewhere and its sessions are gone, stop it gracefully
//! through its agent, start it again (it rejoins by IST), wait until it is Synced, and
//! undrain it. The controller is told to leave the node alone meanwhile (an operator
//! stop, [`Intent`]), so that it never "heals" a node that is down on purpose.
//!
//! It works only through HTTP (agent clients and proxy admin clients), never local
//! paths, so that the same code restarts a local cluster (`galley restart --rolling`)
//! and remote hosts after a deployment changed their configuration.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use agent::api::StartMode;
use agent::AgentClient;
use proxy::{AdminClient, ProxyStatus};
use tokio::time::Instant;

/// One node to restart: its name in the spec and a client for its agent.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub agent: AgentClient,
}

/// How long each wait may take.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a drained node's sessions may take to leave (the proxy closes them after
    /// its writer grace). After that the restart goes on and the stop cuts the rest.
    pub drain_timeout: Duration,
    /// How long a restarted node may take to be Synced again (an IST is quick; a full
    /// SST of a large node, when the donors' gcache no longer holds the gap, is not).
    pub sync_timeout: Duration,
    /// How long the proxies may take to see a restarted node write-healthy again (their
    /// rise hysteresis), before the next node is drained.
    pub healthy_timeout: Duration,
    pub poll_interval: Duration,
    /// The spec's arbitrators (garbd): a whole cluster's view counts them too, and a node
    /// goes down only while they are in it, so that the rest keeps a majority.
    pub arbitrators: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            drain_timeout: Duration::from_secs(15),
            sync_timeout: Duration::from_secs(900),
            healthy_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            arbitrators: 0,
        }
    }
}

/// Records the operator's intent for a node in the controller's desired state, so that
/// the controller does not start a node the restart has stopped (nor restart one that
/// is slow to join). Implemented by the caller: the local store, or a remote API.
pub trait Intent {
    fn set_desired(
        &self,
        node: &str,
        running: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// For a cluster without a controller: nothing to tell.
#[derive(Debug, Clone, Copy)]
pub struct NoController;

impl Intent for NoController {
    fn set_desired(
        &self,
        _node: &str,
        _running: bool,
    ) -> impl Future<Output = Result<(), String>> + Send {
        std::future::ready(Ok(()))
    }
}

/// What the restart is doing, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Draining {
        node: String,
    },
    Drained {
        node: String,
        writer: Option<String>,
        /// Sessions still on the node when the drain timeout ran out (the stop cuts them).
        sessions_left: u64,
    },
    Stopping {
        node: String,
    },
    Stopped {
        node: String,
        seqno: Option<i64>,
    },
    Starting {
        node: String,
    },
    Joining {
        node: String,
        state: String,
    },
    Synced {
        node: String,
        old_pid: Option<u32>,
        new_pid: Option<u32>,
        seconds: f64,
    },
    Undrained {
        node: String,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Draining { node } => write!(f, "{node}: draining at the proxy"),
            Event::Drained {
                node,
                writer,
                sessions_left,
            } => {
                let writer = writer.as_deref().unwrap_or("none");
                if *sessions_left == 0 {
                    write!(f, "{node}: drained (writer: {writer}, no sessions left)")
                } else {
                    write!(f, "{node}: drained (writer: {writer}); {sessions_left} sessions still open, the stop closes them")
                }
            }
            Event::Stopping { node } => write!(f, "{node}: stopping gracefully"),
            Event::Stopped { node, seqno } => match seqno {
                Some(seqno) => write!(f, "{node}: stopped at seqno {seqno}"),
                None => write!(f, "{node}: stopped"),
            },
            Event::Starting { node } => write!(f, "{node}: starting (joins by IST)"),
            Event::Joining { node, state } => write!(f, "{node}: {state}"),
            Event::Synced {
                node,
                old_pid,
                new_pid,
                seconds,
            } => {
                let pid = |pid: &Option<u32>| pid.map_or("?".to_owned(), |pid| pid.to_string());
                write!(
                    f,
                    "{node}: Synced again in {seconds:.1} s (mariadbd pid {} -> {})",
                    pid(old_pid),
                    pid(new_pid)
                )
            }
            Event::Undrained { node } => write!(f, "{node}: takes sessions again"),
        }
    }
}

/// Receives progress. `()` ignores it.
pub trait Observer {
    fn event(&self, event: Event);
}

impl Observer for () {
    fn event(&self, _event: Event) {}
}

/// One restarted node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restarted {
    pub node: String,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
}

/// What a finished rolling restart did.
#[derive(Debug, Clone)]
pub struct Report {
    /// In the order they were restarted.
    pub restarted: Vec<Restarted>,
    /// How often the writer moved, summed over the proxies.
    pub writer_moves: u64,
    /// The (first) proxy's writer at the end; `None` for a cluster without a proxy.
    pub writer: Option<String>,
}

/// Where a node was when the restart stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub node: String,
    pub state: String,
}

/// The step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The check, before each node, that the cluster is still whole.
    Check,
    Drain,
    Stop,
    Start,
    Sync,
    Undrain,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Check => "before taking it down",
            Step::Drain => "while draining it at the proxy",
            Step::Stop => "while stopping it",
            Step::Start => "while starting it",
            Step::Sync => "while waiting for it to be Synced",
            Step::Undrain => "while undraining it at the proxy",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollingError {
    /// Nothing was touched: the cluster is not healthy enough for a rolling restart.
    #[error("refusing a rolling restart: it needs every node Synced and every proxy answering, because taking one node down from a degraded cluster can lose quorum. {}. Bring the cluster back first (`galley status` shows it), then run the restart again", .problems.join("; "))]
    NotReady { problems: Vec<String> },
    /// The restart stopped at `node`; nodes after it were not touched.
    #[error("the rolling restart stopped at {node} {step}: {reason}\n{}", render_states(.states))]
    Failed {
        node: String,
        step: Step,
        reason: String,
        states: Vec<NodeState>,
    },
}

fn render_states(states: &[NodeState]) -> String {
    states
        .iter()
        .map(|state| format!("  {}: {}", state.node, state.state))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which node to restart next: a node that is no proxy's writer, the least preferred
/// first (`remaining` is in preference order, most preferred first); the writer last.
///
/// Why this order: draining a non-writer moves no writer, and when the writer is
/// finally drained every other node has already been restarted, so the writer moves
/// exactly once and never onto a node that still has to go down. (With `failback`,
/// undraining a preferred node moves the writer back to it: that is the configured
/// behaviour, at most once per restart.)
pub fn next_node<'a>(remaining: &'a [String], writers: &[String]) -> Option<&'a String> {
    remaining
        .iter()
        .rev()
        .find(|node| !writers.contains(node))
        .or_else(|| remaining.last())
}

/// Restarts every member, one at a time. `members` are in preference order (most
/// preferred first). Refuses, touching nothing, unless every node is Synced and every
/// proxy answers; stops at the first failure, leaving the remaining nodes untouched.
pub async fn rolling_restart(
    members: &[Member],
    proxies: &[AdminClient],
    intent: &impl Intent,
    observer: &impl Observer,
    options: &Options,
) -> Result<Report, RollingError> {
    let old_pids = preflight(members, proxies, options.arbitrators).await?;
    let failovers_before = failovers(proxies).await;
    let mut remaining: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let mut restarted: Vec<Restarted> = Vec::new();
    while !remaining.is_empty() {
        let writers = current_writers(proxies).await;
        let name = next_node(&remaining, &writers)
            .expect("remaining is not empty")
            .clone();
        let member = members
            .iter()
            .find(|m| m.name == name)
            .expect("remaining holds member names");
        let old_pid = old_pids
            .iter()
            .find(|(node, _)| *node == name)
            .and_then(|(_, pid)| *pid);
        // Each node goes down only from a whole cluster: a node that failed meanwhile
        // (or a proxy gone) would make this one's absence cost quorum or clients.
        let ready = if restarted.is_empty() {
            Ok(())
        } else {
            preflight(members, proxies, options.arbitrators)
                .await
                .map(|_| ())
        };
        let result = match ready {
            Err(RollingError::NotReady { problems }) => Err((Step::Check, problems.join("; "))),
            Err(other) => return Err(other),
            Ok(()) => {
                let run = RestartOne {
                    member,
                    members,
                    proxies,
                    intent,
                    observer,
                    options,
                };
                run.restart(old_pid).await
            }
        };
        match result {
            Ok(new_pid) => restarted.push(Restarted {
                node: name.clone(),
                old_pid,
                new_pid,
            }),
            Err((step, reason)) => {
                let mut states: Vec<NodeState> = restarted
                    .iter()
                    .map(|r| NodeState {
                        node: r.node.clone(),
                        state: "restarted, Synced".to_owned(),
                    })
                    .collect();
                states.push(NodeState {
                    node: name.clone(),
                    state: describe_failed(member, step).await,
                });
                for other in remaining.iter().filter(|other| **other != name) {
                    states.push(NodeState {
                        node: other.clone(),
                        state: "untouched".to_owned(),
                    });
                }
                return Err(RollingError::Failed {
                    node: name,
                    step,
                    reason,
                    states,
                });
            }
        }
        remaining.retain(|node| *node != name);
    }
    let failovers_after = failovers(proxies).await;
    let writer = current_writers(proxies).await.into_iter().next();
    Ok(Report {
        restarted,
        writer_moves: failovers_after.saturating_sub(failovers_before),
        writer,
    })
}

/// Restarts one node the same way (drained, stopped, started, Synced, undrained), only
/// while the whole cluster is Synced: for a caller that walks the nodes itself, such as
/// a deployment applying a changed configuration host by host.
pub async fn restart_one(
    name: &str,
    members: &[Member],
    proxies: &[AdminClient],
    intent: &impl Intent,
    observer: &impl Observer,
    options: &Options,
) -> Result<Restarted, RollingError> {
    let Some(member) = members.iter().find(|member| member.name == name) else {
        let names: Vec<&str> = members.iter().map(|member| member.name.as_str()).collect();
        return Err(RollingError::NotReady {
            problems: vec![format!(
                "no node named `{name}`; nodes: {}",
                names.join(", ")
            )],
        });
    };
    let old_pid = preflight(members, proxies, options.arbitrators)
        .await?
        .into_iter()
        .find(|(node, _)| node == name)
        .and_then(|(_, pid)| pid);
    let run = RestartOne {
        member,
        members,
        proxies,
        intent,
        observer,
        options,
    };
    match run.restart(old_pid).await {
        Ok(new_pid) => Ok(Restarted {
            node: name.to_owned(),
            old_pid,
            new_pid,
        }),
        Err((step, reason)) => Err(RollingError::Failed {
            node: name.to_owned(),
            step,
            reason,
            states: vec![NodeState {
                node: name.to_owned(),
                state: describe_failed(member, step).await,
            }],
        }),
    }
}

/// Checks that every node is Synced and every proxy answers, knows every node, has a
/// writer and has no node drained by someone else. Returns each node's mariadbd pid.
async fn preflight(
    members: &[Member],
    proxies: &[AdminClient],
    arbitrators: usize,
) -> Result<Vec<(String, Option<u32>)>, RollingError> {
    let mut problems = Vec::new();
    let mut pids = Vec::new();
    for member in members {
        match member.agent.status().await {
            Ok(report) if report.node != member.name => problems.push(format!(
                "the agent asked for {} answers as node {}",
                member.name, report.node
            )),
            Ok(report) if report.is_synced() => {
                // Synced in a component that lacks some of the nodes (a partition, or a
                // node that is not a member at all) is not a whole cluster.
                // An arbitrator counts in the view: without it, two data nodes are a
                // pair that loses quorum when one of them stops.
                let size = report.wsrep.as_ref().map_or(0, |wsrep| wsrep.cluster_size);
                let whole = members.len() + arbitrators;
                if size != whole as i64 {
                    let arbitrators = match arbitrators {
                        0 => String::new(),
                        count => {
                            format!(" ({} data nodes and {count} arbitrator(s))", members.len())
                        }
                    };
                    problems.push(format!(
                        "{} is Synced in a cluster of {size} nodes, not {whole}{arbitrators}",
                        member.name,
                    ));
                }
                pids.push((member.name.clone(), report.process.pid));
            }
            Ok(report) => {
                let why = report
                    .wsrep
                    .as_ref()
                    .and_then(|wsrep| wsrep.write_health().err())
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default();
                problems.push(format!("{} is {}{why}", member.name, report.state_label()));
            }
            Err(error) => problems.push(format!("{}: {error}", member.name)),
        }
    }
    for admin in proxies {
        match admin.status().await {
            Ok(status) => {
                if status.writer.is_none() {
                    problems.push(format!("the proxy at {} has no writer", admin.address()));
                }
                for member in members {
                    match status.backends.iter().find(|b| b.name == member.name) {
                        None => problems.push(format!(
                            "the proxy at {} does not know {} (restart the proxy after adding nodes)",
                            admin.address(),
                            member.name
                        )),
                        Some(backend) if backend.draining => problems.push(format!(
                            "{} is drained at the proxy at {} (taken out for maintenance); undrain it first",
                            member.name,
                            admin.address()
                        )),
                        Some(_) => {}
                    }
                }
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(pids)
    } else {
        Err(RollingError::NotReady { problems })
    }
}

async fn current_writers(proxies: &[AdminClient]) -> Vec<String> {
    let mut writers = Vec::new();
    for admin in proxies {
        if let Ok(ProxyStatus {
            writer: Some(writer),
            ..
        }) = admin.status().await
        {
            writers.push(writer);
        }
    }
    writers
}

async fn failovers(proxies: &[AdminClient]) -> u64 {
    let mut total = 0;
    for admin in proxies {
        if let Ok(status) = admin.status().await {
            total += status.failovers;
        }
    }
    total
}

/// What the failed node looks like now, and what the operator must know about it.
async fn describe_failed(member: &Member, step: Step) -> String {
    let now = match member.agent.status().await {
        Ok(report) => report.state_label(),
        Err(error) => format!("unknown ({error})"),
    };
    match step {
        Step::Check => format!("{now}, not touched"),
        Step::Drain => format!("{now}, not restarted (its drain was undone)"),
        Step::Stop | Step::Start | Step::Sync => format!(
            "{now}; still drained at the proxy and marked stopped on purpose, so the controller leaves it alone \
             (bring it back with `galley start {node}` and `galley undrain {node}`)",
            node = member.name
        ),
        Step::Undrain => format!(
            "{now}, restarted; may still be drained at the proxy (`galley undrain {}`)",
            member.name
        ),
    }
}

struct RestartOne<'a, I, O> {
    member: &'a Member,
    /// Every node of the cluster: the wait for Synced observes them all.
    members: &'a [Member],
    proxies: &'a [AdminClient],
    intent: &'a I,
    observer: &'a O,
    options: &'a Options,
}

type StepError = (Step, String);

impl<I: Intent, O: Observer> RestartOne<'_, I, O> {
    fn name(&self) -> &str {
        &self.member.name
    }

    /// Restarts the node; returns its new mariadbd pid.
    async fn restart(&self, old_pid: Option<u32>) -> Result<Option<u32>, StepError> {
        let started = Instant::now();
        if let Err(reason) = self.drain().await {
            // Nothing was stopped: give the node back to the proxy and the controller.
            for admin in self.proxies {
                let _ = admin.undrain(self.name()).await;
            }
            let _ = self.intent.set_desired(self.name(), true).await;
            return Err((Step::Drain, reason));
        }
        self.observer.event(Event::Stopping {
            node: self.name().to_owned(),
        });
        let stopped = self
            .member
            .agent
            .stop()
            .await
            .map_err(|error| (Step::Stop, error.to_string()))?;
        self.observer.event(Event::Stopped {
            node: self.name().to_owned(),
            seqno: stopped
                .grastate
                .as_ref()
                .and_then(|state| state.position())
                .map(|position| position.seqno),
        });
        self.observer.event(Event::Starting {
            node: self.name().to_owned(),
        });
        self.member
            .agent
            .start(StartMode::Join, false)
            .await
            .map_err(|error| (Step::Start, error.to_string()))?;
        let new_pid = self
            .wait_synced()
            .await
            .map_err(|reason| (Step::Sync, reason))?;
        self.observer.event(Event::Synced {
            node: self.name().to_owned(),
            old_pid,
            new_pid,
            seconds: started.elapsed().as_secs_f64(),
        });
        self.intent
            .set_desired(self.name(), true)
            .await
            .map_err(|reason| {
                (
                    Step::Undrain,
                    format!("cannot tell the controller: {reason}"),
                )
            })?;
        if !self.proxies.is_empty() {
            self.undrain()
                .await
                .map_err(|reason| (Step::Undrain, reason))?;
            self.observer.event(Event::Undrained {
                node: self.name().to_owned(),
            });
        }
        Ok(new_pid)
    }

    /// Tells the controller, drains at every proxy, and waits until no proxy has the
    /// node as its writer (and every proxy has one) and its sessions are gone, or the
    /// drain timeout passed. A writer that does not move is an error: stopping the node
    /// would leave clients without one.
    async fn drain(&self) -> Result<(), String> {
        let name = self.name();
        self.intent
            .set_desired(name, false)
            .await
            .map_err(|reason| format!("cannot tell the controller: {reason}"))?;
        if self.proxies.is_empty() {
            // No proxy: clients connected to this node lose their sessions at the stop.
            return Ok(());
        }
        self.observer.event(Event::Draining {
            node: name.to_owned(),
        });
        for admin in self.proxies {
            admin.drain(name).await.map_err(|error| error.to_string())?;
        }
        let deadline = Instant::now() + self.options.drain_timeout;
        loop {
            let mut writer_ok = true;
            let mut sessions_left = 0;
            let mut writer = None;
            let mut last_writer_problem = String::new();
            for admin in self.proxies {
                let status = admin.status().await.map_err(|error| error.to_string())?;
                match status.writer.as_deref() {
                    Some(current) if current == name => {
                        writer_ok = false;
                        last_writer_problem = format!(
                            "the proxy at {} still has it as the writer",
                            admin.address()
                        );
                    }
                    None => {
                        writer_ok = false;
                        last_writer_problem = format!(
                            "the proxy at {} has no other node that can take writes",
                            admin.address()
                        );
                    }
                    Some(_) => {}
                }
                writer = writer.or(status.writer.clone());
                sessions_left += status
                    .backends
                    .iter()
                    .find(|backend| backend.name == name)
                    .map_or(0, |backend| backend.active_connections);
            }
            let timed_out = Instant::now() >= deadline;
            if writer_ok && (sessions_left == 0 || timed_out) {
                self.observer.event(Event::Drained {
                    node: name.to_owned(),
                    writer,
                    sessions_left,
                });
                return Ok(());
            }
            if timed_out {
                return Err(format!(
                    "{last_writer_problem} after {} s; nothing was stopped",
                    self.options.drain_timeout.as_secs()
                ));
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// Watches the node through the reconcile engine until it is Synced; fails at once
    /// if the server stops. Returns its mariadbd pid.
    async fn wait_synced(&self) -> Result<Option<u32>, String> {
        let agents = reconcile::AgentClients::new(
            self.members
                .iter()
                .map(|member| (member.name.clone(), member.agent.clone()))
                .collect(),
        );
        let members = self
            .members
            .iter()
            .enumerate()
            .map(|(priority, member)| reconcile::Member {
                name: member.name.clone(),
                priority: priority as u32,
                managed: true,
            })
            .collect();
        // Watching only: the policy and patience are never used to act.
        let settings = reconcile::Settings {
            policy: planner::Policy::default(),
            stuck_after_ms: i64::MAX,
        };
        let mut engine = reconcile::Engine::new(members, agents, settings);
        let limits = reconcile::Limits {
            poll: self.options.poll_interval,
            stall: self.options.sync_timeout,
            fail_fast: true,
        };
        // `Starting` was already reported; show each later state once.
        let round = reconcile::wait_synced(
            &mut engine,
            self.name(),
            &limits,
            &reconcile::SystemClock,
            |state| {
                if state != "starting" {
                    self.observer.event(Event::Joining {
                        node: self.name().to_owned(),
                        state: state.to_owned(),
                    });
                }
            },
        )
        .await
        .map_err(|error| match error {
            reconcile::DriveError::Stalled { waiting_for, after } => format!(
                "{waiting_for} after {} s; see its mariadbd error log",
                after.as_secs()
            ),
            other => other.to_string(),
        })?;
        Ok(round
            .reports
            .iter()
            .find(|(name, _)| name == self.name())
            .and_then(|(_, report)| report.as_ref())
            .and_then(|report| report.process.pid))
    }

    /// Undrains at every proxy and waits until each sees the node write-healthy again,
    /// so that the next drain has somewhere to move the writer.
    async fn undrain(&self) -> Result<(), String> {
        let name = self.name();
        for admin in self.proxies {
            admin
                .undrain(name)
                .await
                .map_err(|error| error.to_string())?;
        }
        let deadline = Instant::now() + self.options.healthy_timeout;
        loop {
            let mut waiting_for = None;
            for admin in self.proxies {
                let status = admin.status().await.map_err(|error| error.to_string())?;
                let healthy = status
                    .backends
                    .iter()
                    .any(|backend| backend.name == name && backend.write_healthy);
                if !healthy {
                    waiting_for = Some(admin.address().to_owned());
                }
            }
            let Some(address) = waiting_for else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{name} is Synced, but the proxy at {address} still does not see it write-healthy after {} s",
                    self.options.healthy_timeout.as_secs()
                ));
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn non_writers_go_first_least_preferred_first_and_the_writer_last() {
        // (remaining in preference order, writers, expected next)
        let cases: &[(&[&str], &[&str], Option<&str>)] = &[
            (&["n1", "n2", "n3"], &["n1"], Some("n3")),
            (&["n1", "n2"], &["n1"], Some("n2")),
            (&["n1"], &["n1"], Some("n1")),
            // The writer is not the preferred node (an earlier failover): it still goes last.
            (&["n1", "n2", "n3"], &["n3"], Some("n2")),
            (&["n1", "n3"], &["n3"], Some("n1")),
            // Two proxies that disagree: both writers wait until the end.
            (&["n1", "n2", "n3"], &["n1", "n3"], Some("n2")),
            (&["n1", "n3"], &["n1", "n3"], Some("n3")),
            // No proxy: plain reverse preference order.
            (&["n1", "n2", "n3"], &[], Some("n3")),
            (&[], &["n1"], None),
        ];
        for (remaining, writers, expected) in cases {
            let remaining = names(remaining);
            let next = next_node(&remaining, &names(writers));
            assert_eq!(
                next.map(String::as_str),
                *expected,
                "remaining {remaining:?}, writers {writers:?}"
            );
        }
    }

    #[test]
    fn a_failure_names_every_node_and_its_state() {
        let error = RollingError::Failed {
            node: "n2".to_owned(),
            step: Step::Sync,
            reason: "n2 is still Joiner after 900 s".to_owned(),
            states: vec![
                NodeState {
                    node: "n3".to_owned(),
                    state: "restarted, Synced".to_owned(),
                },
                NodeState {
                    node: "n2".to_owned(),
                    state: "Joiner".to_owned(),
                },
                NodeState {
                    node: "n1".to_owned(),
                    state: "untouched".to_owned(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "the rolling restart stopped at n2 while waiting for it to be Synced: n2 is still Joiner after 900 s\n  \
             n3: restarted, Synced\n  n2: Joiner\n  n1: untouched"
        );
        let refusal = RollingError::NotReady {
            problems: vec!["n3 is stopped".to_owned()],
        };
        assert!(refusal.to_string().contains("every node Synced"));
        assert!(refusal.to_string().contains("n3 is stopped"));
    }
}
