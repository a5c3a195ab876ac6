//! The decision task (`proxy.writer_decision = "shared"`): once per probe period, and
//! at once when a backend's health changed, it reads the shared writer record
//! `galley.writer` and the Primary component's members from one write-healthy node,
//! decides (crate::decision::next_step) and, when the decision is to replace the
//! recorded writer, changes the record by compare-and-set. One persistent connection
//! (the monitor account), causal reads (`wsrep_sync_wait = 1`) so that a change
//! committed through another node is seen.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::decision::{Record, Step};
use crate::state::Proxy;

/// How often the task asks again while this proxy routes no writes (a writer that just
/// died leaves the Primary component within milliseconds on a clean crash).
const RETRY_WHILE_REFUSING: Duration = Duration::from_millis(25);

/// What one round found.
enum Round {
    Follow {
        term: u64,
        node: String,
    },
    Refuse {
        term: Option<u64>,
        reason: String,
    },
    /// Another proxy changed the record first; read again at once.
    LostRace,
}

/// Runs decision rounds until `shutdown` fires.
pub async fn run(
    proxy: Arc<Proxy>,
    user: String,
    password: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut conn: Option<(usize, mysql_async::Conn)> = None;
    let identity = format!("proxy pid {}", std::process::id());
    loop {
        let settings = proxy.settings();
        let timeout = Duration::from_millis(settings.probe_timeout_ms);
        let round = tokio::time::timeout(
            timeout,
            one_round(&proxy, &mut conn, &user, &password, &identity),
        )
        .await;
        let again_at_once = match round {
            Ok(Ok(Round::Follow { term, node })) => {
                proxy.learn(Some(term), Some(&node), None);
                false
            }
            Ok(Ok(Round::Refuse { term, reason })) => {
                proxy.learn(term, None, Some(reason));
                false
            }
            Ok(Ok(Round::LostRace)) => true,
            Ok(Err(reason)) => {
                conn = None;
                proxy.decision_failed(reason);
                false
            }
            Err(_) => {
                conn = None;
                proxy.decision_failed(format!("no answer within {} ms", timeout.as_millis()));
                false
            }
        };
        if again_at_once {
            continue;
        }
        let period = if proxy.refusing_writes() {
            RETRY_WHILE_REFUSING.min(Duration::from_millis(settings.probe_interval_ms))
        } else {
            Duration::from_millis(settings.probe_interval_ms)
        };
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = proxy.decide_now.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn one_round(
    proxy: &Proxy,
    conn: &mut Option<(usize, mysql_async::Conn)>,
    user: &str,
    password: &str,
    identity: &str,
) -> Result<Round, String> {
    let current = conn.as_ref().map(|(index, _)| *index);
    let Some(source) = proxy.decision_source(current) else {
        return Ok(Round::Refuse {
            term: None,
            reason: "no node in the Primary component answers this proxy".to_owned(),
        });
    };
    if current != Some(source) {
        *conn = Some((source, connect(proxy, source, user, password).await?));
    }
    let sql = &mut conn.as_mut().expect("connected above").1;
    let node_name = &proxy.backends[source].name;
    let members: Vec<String> = sql
        .query("SELECT node_name FROM mysql.wsrep_cluster_members")
        .await
        .map_err(|error| {
            format!("reading the Primary component's members on {node_name}: {error}")
        })?;
    let record: Option<(u64, String)> = sql
        .query_first("SELECT term, node FROM galley.writer WHERE id = 1")
        .await
        .map_err(|error| describe_read_error(node_name, &error))?;
    let record = record.map(|(term, node)| Record { term, node });
    match proxy.decide(record.as_ref(), &members) {
        Step::Follow(node) => Ok(Round::Follow {
            term: record.map_or(0, |r| r.term),
            node,
        }),
        Step::Refuse(reason) => Ok(Round::Refuse {
            term: record.map(|r| r.term),
            reason,
        }),
        Step::Propose {
            expected,
            node,
            why,
        } => {
            let reason: String = why.chars().take(255).collect();
            let changed = match expected {
                None => sql.exec_drop(
                    "INSERT IGNORE INTO galley.writer (id, term, node, decided_by, reason) VALUES (1, 1, ?, ?, ?)",
                    (&node, identity, &reason),
                ),
                Some(term) => sql.exec_drop(
                    "UPDATE galley.writer SET term = term + 1, node = ?, decided_by = ?, reason = ?, decided_at = NOW(6) WHERE id = 1 AND term = ?",
                    (&node, identity, &reason, term),
                ),
            }
            .await;
            match changed {
                Ok(()) if sql.affected_rows() == 1 => {
                    let term = expected.map_or(1, |term| term + 1);
                    tracing::warn!(term, writer = %node, "changed the shared writer record: {why}");
                    proxy
                        .metrics
                        .record_changes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(Round::Follow { term, node })
                }
                Ok(()) => Ok(Round::LostRace),
                // Certification aborts the later of two concurrent changes (deadlock).
                Err(mysql_async::Error::Server(error)) if error.code == 1213 => Ok(Round::LostRace),
                Err(error) => Err(format!(
                    "changing the shared writer record on {node_name}: {error}"
                )),
            }
        }
    }
}

async fn connect(
    proxy: &Proxy,
    index: usize,
    user: &str,
    password: &str,
) -> Result<mysql_async::Conn, String> {
    let backend = &proxy.backends[index];
    let (host, port) = backend
        .address
        .rsplit_once(':')
        .expect("backend addresses are host:port");
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .tcp_port(port.parse().expect("valid port"))
        .user(Some(user.to_owned()))
        .pass(Some(password.to_owned()))
        .prefer_socket(false)
        .tcp_nodelay(true)
        // Causal reads: a change committed through another node is seen here.
        .init(vec!["SET SESSION wsrep_sync_wait = 1"]);
    mysql_async::Conn::new(options).await.map_err(|error| {
        format!(
            "connecting to {} for the shared writer record: {error}",
            backend.name
        )
    })
}

fn describe_read_error(node: &str, error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Server(server) if server.code == 1146 => format!(
            "the shared writer record galley.writer does not exist on {node} yet (each agent makes it once its node is Synced)"
        ),
        mysql_async::Error::Server(server) if server.code == 1142 => format!(
            "the monitor account may not read galley.writer on {node} (each agent grants it once its node is Synced)"
        ),
        other => format!("reading the shared writer record on {node}: {other}"),
    }
}
