//! What one node's manager does reaches the other nodes: Galera replicates the DDL and
//! account statements (total order isolation), so the caller runs them on one node only.

use std::collections::BTreeMap;

use manage::{DatabaseName, HostPattern, Password, ProvisionRequest, UserName};
use mysql_async::prelude::Queryable as _;

use crate::support::{server_code, TestNode};

#[tokio::test]
async fn statements_on_one_node_reach_the_other() {
    let cluster = TestNode::start_cluster(2).await;
    let first = cluster.manager_on(0);
    let second = cluster.manager_on(1);

    let report = first
        .provision(
            &ProvisionRequest {
                services: Some(vec!["keystone".to_owned()]),
                ..ProvisionRequest::default()
            },
            &BTreeMap::new(),
        )
        .await
        .unwrap();
    let password = report.services[0].password.clone();
    let known = BTreeMap::from([("keystone".to_owned(), password.clone())]);
    // The other node has the database, the accounts, the grants and the password.
    let mut conn = cluster
        .login_on(1, "keystone", password.expose(), Some("keystone"))
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    drop(conn);
    let drift = second
        .drift(
            &[manage::catalog::resolve("keystone").unwrap()],
            &known,
            true,
        )
        .await
        .unwrap();
    assert!(drift.clean, "{drift:?}");
    let again = second
        .provision(
            &ProvisionRequest {
                services: Some(vec!["keystone".to_owned()]),
                ..ProvisionRequest::default()
            },
            &known,
        )
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");

    // Changes made through the second node are seen through the first.
    let database = DatabaseName::parse("made_on_two").unwrap();
    let user = UserName::parse("app").unwrap();
    let host = HostPattern::any();
    let app_password = Password::generate();
    second.create_database(&database, None, None).await.unwrap();
    second
        .create_user(&user, &host, &app_password)
        .await
        .unwrap();
    let listed = first.databases().await.unwrap();
    assert!(listed.iter().any(|d| d.name == "made_on_two"), "{listed:?}");
    let keystone = listed.iter().find(|d| d.name == "keystone").unwrap();
    assert_eq!(keystone.tables, 1);
    cluster
        .login_on(0, "app", app_password.expose(), None)
        .await
        .unwrap();
    first.drop_user(&user, &host).await.unwrap();
    assert_eq!(
        server_code(
            cluster
                .login_on(1, "app", app_password.expose(), None)
                .await
        ),
        1045
    );
    first.drop_database(&database).await.unwrap();
    assert!(second.database(&database).await.is_err());
}
