//! `/clustercheck` answers from the agent's last report: a flood of it runs no SQL and
//! does not keep the controller's `/v1/status` waiting behind the agent's SQL connection.

use std::time::Duration;

use agent::api::StartMode;
use agent::Probing;
use mysql_async::prelude::Queryable as _;

use crate::support::TestNode;

/// Statements the server has run for every client: `Questions` counts each one.
async fn questions(conn: &mut mysql_async::Conn) -> u64 {
    let row: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Questions'")
        .await
        .unwrap();
    row.unwrap().1
}

const CHECKS: usize = 400;
/// Concurrent clients, each with its own connection (under the agent's per-source cap).
const CLIENTS: usize = 32;

#[tokio::test]
async fn a_flood_of_clustercheck_runs_no_sql_and_status_still_answers() {
    // A probe that, after its first report, would not run again within the test: every
    // answer must come from a report made before the flood.
    let node = TestNode::start_with(Probing {
        interval: Duration::from_secs(3600),
        max_age: Duration::from_secs(3600),
    })
    .await;
    node.client.init().await.unwrap();
    node.client
        .start(StartMode::Bootstrap, false)
        .await
        .unwrap();
    // wait_synced asks /v1/status, whose report the check then answers from.
    node.wait_synced().await;
    let probes = node.clustercheck.probes();
    let mut conn = node.admin_conn().await;
    let before = questions(&mut conn).await;

    let url = format!("{}/clustercheck", node.base_url);
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        flood.spawn(async move {
            let http = reqwest::Client::new();
            let mut answers = Vec::new();
            for _ in 0..CHECKS / CLIENTS {
                let response = http.get(&url).send().await.unwrap();
                answers.push((response.status().as_u16(), response.text().await.unwrap()));
            }
            answers
        });
    }
    // The controller's request meanwhile: answered, with a fresh report.
    let report = tokio::time::timeout(Duration::from_secs(30), node.client.status())
        .await
        .expect("/v1/status answers during a flood of checks")
        .unwrap();
    assert!(report.is_synced(), "{report:?}");
    let mut answered = 0;
    while let Some(answers) = flood.join_next().await {
        for (status, text) in answers.unwrap() {
            assert_eq!((status, text.as_str()), (200, "solo is synced\n"));
            answered += 1;
        }
    }
    assert_eq!(answered, CHECKS / CLIENTS * CLIENTS);

    let after = questions(&mut conn).await;
    // The status report above and this count's own statements: a handful. With a query
    // per check it was at least one statement per check.
    assert!(
        after - before < 50,
        "{} statements ran during {answered} checks",
        after - before
    );
    assert_eq!(
        node.clustercheck.probes(),
        probes,
        "no probe ran for the checks"
    );
}

#[tokio::test]
async fn a_stale_report_is_a_503_that_says_how_old_it_is() {
    let node = TestNode::start_with(Probing {
        interval: Duration::from_secs(3600),
        max_age: Duration::from_millis(1),
    })
    .await;
    // The first probe's report (a stopped server) ages past 1 ms at once.
    let url = format!("{}/clustercheck", node.base_url);
    let mut text = String::new();
    for _ in 0..100 {
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 503);
        text = response.text().await.unwrap();
        if text.contains("last probe") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("the agent's last probe is") && text.contains("s old"),
        "{text}"
    );
}
