//! Health probes: one task per backend, one persistent MySQL connection each (the
//! monitor account), one query per period. No process is forked per check.

use std::sync::Arc;
use std::time::Duration;

use galera::WsrepStatus;
use mysql_async::prelude::Queryable as _;
use tokio::time::Instant;

use crate::state::{ProbeOutcome, Proxy};

/// The one statement a probe runs: the wsrep status variables and the three settings
/// the health rules read, as (name, value) rows.
fn probe_query() -> String {
    let names: Vec<String> = galera::STATUS_VARIABLES
        .iter()
        .filter(|name| {
            name.starts_with("wsrep_") && !matches!(**name, "wsrep_desync" | "wsrep_reject_queries")
        })
        .map(|name| format!("'{}'", name.to_ascii_uppercase()))
        .collect();
    format!(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ({}) \
         UNION ALL SELECT 'read_only', @@global.read_only \
         UNION ALL SELECT 'wsrep_desync', @@global.wsrep_desync \
         UNION ALL SELECT 'wsrep_reject_queries', @@global.wsrep_reject_queries",
        names.join(", ")
    )
}

/// Probes backend `index` until `shutdown` fires.
pub async fn run(
    proxy: Arc<Proxy>,
    index: usize,
    user: String,
    password: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let query = probe_query();
    let (host, port) = split_address(&proxy.backends[index].address);
    let mut conn: Option<mysql_async::Conn> = None;
    loop {
        let settings = proxy.settings();
        let started = Instant::now();
        let timeout = Duration::from_millis(settings.probe_timeout_ms);
        let outcome = probe_once(&mut conn, &host, port, &user, &password, &query, timeout).await;
        let outcome = match outcome {
            Ok(status) => ProbeOutcome::Status {
                status: Box::new(status),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            },
            Err(failure) => {
                conn = None;
                failure
            }
        };
        proxy.on_probe(index, outcome);
        let period = Duration::from_millis(settings.probe_interval_ms);
        tokio::select! {
            () = tokio::time::sleep_until(started + period) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn probe_once(
    conn: &mut Option<mysql_async::Conn>,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    query: &str,
    timeout: Duration,
) -> Result<WsrepStatus, ProbeOutcome> {
    let work = async {
        if conn.is_none() {
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname(host.to_owned())
                .tcp_port(port)
                .user(Some(user.to_owned()))
                .pass(Some(password.to_owned()))
                .prefer_socket(false)
                .tcp_nodelay(true)
                .init(vec![galera::PROBE_SESSION_INIT]);
            *conn = Some(mysql_async::Conn::new(options).await?);
        }
        let rows: Vec<(String, String)> =
            conn.as_mut().expect("connected above").query(query).await?;
        Ok::<_, mysql_async::Error>(rows)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(rows)) => Ok(WsrepStatus::from_variables(
            rows.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )),
        Ok(Err(error)) => Err(classify(&error)),
        Err(_) => Err(ProbeOutcome::SoftFailure(format!(
            "probe timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

/// A refused, reset or closed connection means the server is gone: down at once.
/// Anything else (a server error, a timeout) counts toward `fall`.
fn classify(error: &mysql_async::Error) -> ProbeOutcome {
    use std::io::ErrorKind;
    let hard = match error {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => true,
        _ => false,
    };
    let text = format!("probe failed: {error}");
    if hard {
        ProbeOutcome::HardFailure(text)
    } else {
        ProbeOutcome::SoftFailure(text)
    }
}

fn split_address(address: &str) -> (String, u16) {
    let (host, port) = address
        .rsplit_once(':')
        .expect("backend addresses are host:port");
    (
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port.parse().expect("valid port"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_query_reads_every_rule_input() {
        let query = super::probe_query();
        for needed in [
            "'WSREP_READY'",
            "'WSREP_LOCAL_STATE'",
            "'WSREP_CLUSTER_STATUS'",
            "'WSREP_LOCAL_RECV_QUEUE'",
            "@@global.read_only",
            "@@global.wsrep_desync",
            "@@global.wsrep_reject_queries",
        ] {
            assert!(query.contains(needed), "{needed} missing from {query}");
        }
    }
}
