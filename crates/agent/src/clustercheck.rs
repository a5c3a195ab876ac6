//! `/clustercheck` answers from the agent's last report of its server, never from a new
//! SQL query: the route needs no token, so a query per request would let anyone who can
//! reach the port queue the agent's one SQL connection (and with it the controller's
//! `/v1/status`) behind a flood of checks, and the node would look down.
//!
//! A background probe makes a report every [`Probing::interval`]; every `/v1/status`
//! report is recorded too, so the answer is never older than the freshest report the
//! agent made. An answer older than [`Probing::max_age`] is a 503 that says how old it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::time::Instant;

use crate::api::NodeReport;
use crate::server::Server;

/// How often the agent probes its server for `/clustercheck`, and how old a report may
/// be before the check fails for that reason alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probing {
    pub interval: Duration,
    pub max_age: Duration,
}

impl Default for Probing {
    /// Every second: HAProxy checks every 2 s by default, so its verdict is at most a
    /// second staler than with a query per check. 10 s of age: one report waits at most
    /// 5 s for SQL (a 2 s connect and a 3 s query timeout) plus an interval, with margin;
    /// older means the agent itself is stuck.
    fn default() -> Probing {
        Probing {
            interval: Duration::from_secs(1),
            max_age: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
struct Latest {
    at: Instant,
    node: String,
    verdict: Result<(), String>,
}

/// The last verdict, and how many reports the probe has made.
#[derive(Debug)]
pub struct ClusterCheck {
    probing: Probing,
    latest: Mutex<Option<Latest>>,
    probes: AtomicU64,
}

impl ClusterCheck {
    /// Starts the probe of `server`; it ends once the returned value is dropped.
    pub fn start(server: Arc<Server>, probing: Probing) -> Arc<ClusterCheck> {
        let check = Arc::new(ClusterCheck {
            probing,
            latest: Mutex::new(None),
            probes: AtomicU64::new(0),
        });
        tokio::spawn(probe(server, Arc::downgrade(&check), probing.interval));
        check
    }

    /// Reports made by the background probe so far (not counting `/v1/status`).
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    pub fn record(&self, report: &NodeReport) {
        let latest = Latest {
            at: Instant::now(),
            node: report.node.clone(),
            verdict: verdict(report),
        };
        *self.latest.lock().expect("clustercheck lock") = Some(latest);
    }

    /// The status and text of `/clustercheck`.
    pub fn answer(&self) -> (StatusCode, String) {
        let latest = self.latest.lock().expect("clustercheck lock");
        let Some(latest) = latest.as_ref() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the agent has not probed its server yet (it probes every {} s)\n",
                    self.probing.interval.as_secs_f64()
                ),
            );
        };
        let age = latest.at.elapsed();
        if age > self.probing.max_age {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} is not known to be usable: the agent's last probe is {} s old (it probes every {} s; over {} s means the agent is stuck)\n",
                    latest.node,
                    age.as_secs(),
                    self.probing.interval.as_secs_f64(),
                    self.probing.max_age.as_secs()
                ),
            );
        }
        match &latest.verdict {
            Ok(()) => (StatusCode::OK, format!("{} is synced\n", latest.node)),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} is not usable: {reason}\n", latest.node),
            ),
        }
    }
}

/// Whether the node may take writes, and if not, why.
fn verdict(report: &NodeReport) -> Result<(), String> {
    match (&report.wsrep, report.process.running) {
        (_, false) => Err("the server is not running".to_owned()),
        (None, true) => Err(report
            .sql_error
            .clone()
            .unwrap_or_else(|| "no status".to_owned())),
        (Some(wsrep), true) => wsrep.write_health().map_err(|reason| reason.to_string()),
    }
}

async fn probe(server: Arc<Server>, check: Weak<ClusterCheck>, interval: Duration) {
    loop {
        let report = server.report().await;
        let Some(check) = check.upgrade() else {
            return;
        };
        check.probes.fetch_add(1, Ordering::Relaxed);
        check.record(&report);
        drop(check);
        tokio::time::sleep(interval).await;
    }
}
