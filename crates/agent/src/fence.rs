//! The hang fence (`server.hang_fence_ms`; docs/galera.md, "Hung hosts"): a local
//! mariadbd that answered SQL before and then gives no answer at all for the fence's
//! bound, while this agent on the same host runs fine, is killed with SIGKILL. A hung
//! process keeps its sockets open, so its peers would wait for Galera's suspect timeout
//! while every commit in the cluster stalls; once it is killed, its sockets close, the
//! agent evicts the dead incarnation through a peer (`Server::on_exit`), and the
//! controller restarts it like any crashed node (it rejoins by IST).
//!
//! Never fenced: a server this agent is stopping (its shutdown may take minutes), one
//! that has not answered since it started (InnoDB recovery, a joiner waiting for its
//! state transfer), one receiving a state transfer, and one that answers with an error
//! (refusing is an answer: it is alive).

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use tokio::time::Instant;

use crate::secrets::MONITOR_USER;
use crate::server::Server;

/// How often the fence asks the server.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// What one question to the server got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `SELECT 1` answered.
    Answered,
    /// The server answered with an error (too many connections, ...): alive.
    Refused,
    /// No server answered within the bound: a timeout, no socket (not started yet, or
    /// gone), a full listen backlog, a broken connection.
    Silent,
}

/// The fence's memory of one server process: when it last answered.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// (pid, when it last answered or refused); None until the process first answered.
    last_heard: Option<(u32, Instant)>,
}

impl Watch {
    /// Records the answer of process `pid` at `now`; returns true when it must be
    /// fenced: it answered before, and it has been silent for `bound` since.
    pub(crate) fn heard(
        &mut self,
        pid: u32,
        answer: Answer,
        now: Instant,
        bound: Duration,
    ) -> bool {
        if self.last_heard.is_some_and(|(known, _)| known != pid) {
            // Another process: it must answer once before it can be fenced.
            self.last_heard = None;
        }
        match answer {
            Answer::Answered => self.last_heard = Some((pid, now)),
            Answer::Refused => {
                if self.last_heard.is_some() {
                    self.last_heard = Some((pid, now));
                }
            }
            Answer::Silent => {
                if let Some((_, at)) = self.last_heard {
                    if now.duration_since(at) >= bound {
                        self.last_heard = None;
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Forgets the process (stopped, being stopped, receiving a state transfer).
    pub(crate) fn forget(&mut self) {
        self.last_heard = None;
    }
}

/// Watches the server until the agent exits.
pub(crate) async fn run(server: Arc<Server>, bound: Duration) {
    let mut watch = Watch::default();
    let mut conn: Option<(u32, mysql_async::Conn)> = None;
    let mut asked_at = Instant::now();
    loop {
        tokio::time::sleep(ASK_EVERY).await;
        // The agent itself was held up (a stalled host, a starved CPU): the server's
        // silence meanwhile says nothing about the server alone, so it is not held
        // against it. The fence is for a server that hangs while its host runs.
        if host_stalled(asked_at.elapsed(), bound) {
            tracing::info!(
                held_up_ms = asked_at.elapsed().as_millis() as u64,
                "the agent itself was held up: the server's silence meanwhile is not held against it"
            );
            watch.forget();
        }
        asked_at = Instant::now();
        let Some(pid) = server.fenceable_pid().await else {
            watch.forget();
            conn = None;
            continue;
        };
        if conn.as_ref().is_some_and(|(known, _)| *known != pid) {
            conn = None;
        }
        let answer = ask(&server, pid, &mut conn, bound).await;
        if watch.heard(pid, answer, Instant::now(), bound) {
            server
                .fence(pid, format!("no SQL answer for {} ms", bound.as_millis()))
                .await;
            conn = None;
        }
    }
}

/// Whether the time since the fence last asked (its question, at most `bound`, and its
/// sleep) shows that the agent itself did not run for a while.
fn host_stalled(since_last_question: Duration, bound: Duration) -> bool {
    since_last_question > bound + ASK_EVERY + bound / 2
}

/// `SELECT 1` on a connection kept between questions (made again after any failure),
/// over the unix socket with the monitor account, within `bound`.
async fn ask(
    server: &Server,
    pid: u32,
    conn: &mut Option<(u32, mysql_async::Conn)>,
    bound: Duration,
) -> Answer {
    let question = async {
        if conn.is_none() {
            let node = server.node();
            let options = mysql_async::OptsBuilder::default()
                .ip_or_hostname("localhost")
                .socket(Some(node.socket_path().to_string_lossy().into_owned()))
                .prefer_socket(true)
                .user(Some(MONITOR_USER))
                .pass(Some(server.secrets().monitor_password.clone()))
                .init(vec![galera::PROBE_SESSION_INIT]);
            *conn = Some((pid, mysql_async::Conn::new(options).await?));
        }
        let (_, live) = conn.as_mut().expect("connected above");
        live.query_drop("SELECT 1").await
    };
    match tokio::time::timeout(bound, question).await {
        Ok(Ok(())) => Answer::Answered,
        // An error packet: the server itself answered.
        Ok(Err(mysql_async::Error::Server(_))) => {
            *conn = None;
            Answer::Refused
        }
        // No server answered: the socket is gone or full (a stopped process accepts
        // nothing, and once its backlog is full a connect fails at once with EAGAIN,
        // seen in CI), or the connection broke. Silence, like a timeout.
        Ok(Err(_)) | Err(_) => {
            *conn = None;
            Answer::Silent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(1000);

    #[test]
    fn silence_after_an_answer_is_fenced_once_it_lasts_the_bound() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut watch = Watch::default();
        assert!(!watch.heard(7, Answer::Answered, at(0), BOUND));
        assert!(!watch.heard(7, Answer::Silent, at(600), BOUND));
        assert!(watch.heard(7, Answer::Silent, at(1000), BOUND));
        // Fenced once: the same silence does not fence again.
        assert!(!watch.heard(7, Answer::Silent, at(2000), BOUND));
    }

    #[test]
    fn a_server_that_never_answered_or_that_refuses_is_not_fenced() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut watch = Watch::default();
        // Starting: silent from the first question on (InnoDB recovery, an SST).
        for ms in [0, 5000, 60_000] {
            assert!(!watch.heard(7, Answer::Silent, at(ms), BOUND));
        }
        // Refusing is an answer: alive.
        assert!(!watch.heard(7, Answer::Answered, at(61_000), BOUND));
        assert!(!watch.heard(7, Answer::Refused, at(61_900), BOUND));
        assert!(!watch.heard(7, Answer::Silent, at(62_800), BOUND));
        assert!(watch.heard(7, Answer::Silent, at(62_900), BOUND));
    }

    #[test]
    fn a_held_up_agent_does_not_count_the_silence_against_the_server() {
        // A question that timed out after the bound, then the sleep: on time.
        assert!(!host_stalled(
            BOUND + ASK_EVERY + Duration::from_millis(100),
            BOUND
        ));
        // The agent did not run for a second and a half more than it should have.
        assert!(host_stalled(
            BOUND + ASK_EVERY + Duration::from_millis(1500),
            BOUND
        ));
    }

    #[test]
    fn a_new_process_must_answer_before_it_can_be_fenced() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut watch = Watch::default();
        assert!(!watch.heard(7, Answer::Answered, at(0), BOUND));
        // pid 8 replaced pid 7 and is still starting.
        assert!(!watch.heard(8, Answer::Silent, at(5000), BOUND));
        assert!(!watch.heard(8, Answer::Silent, at(9000), BOUND));
        watch.forget();
        assert!(!watch.heard(8, Answer::Silent, at(20_000), BOUND));
    }
}
