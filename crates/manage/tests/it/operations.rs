//! Databases, users, grants and passwords against the real server: each operation, its
//! refusals, and what the server shows afterwards (SHOW GRANTS, logins).

use manage::{
    Charset, Collation, DatabaseName, ErrorKind, HostPattern, ManageError, Password, Privileges,
    UserName,
};
use mysql_async::prelude::Queryable as _;

use crate::support::{server_code, TestNode};

fn kind<T: std::fmt::Debug>(result: Result<T, ManageError>) -> (ErrorKind, String) {
    let error = result.unwrap_err();
    (error.kind(), error.to_string())
}

#[tokio::test]
async fn databases_create_list_and_drop() {
    let node = TestNode::start().await;
    let manager = node.manager();
    let listed = manager.databases().await.unwrap();
    assert!(
        listed.is_empty(),
        "a fresh node has only system schemas, which are not listed: {listed:?}"
    );

    let name = DatabaseName::parse("app_one").unwrap();
    let created = manager
        .create_database(
            &name,
            Some(&Charset::utf8mb4()),
            Some(&Collation::parse("utf8mb4_bin").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            created.name.as_str(),
            created.charset.as_str(),
            created.collation.as_str()
        ),
        ("app_one", "utf8mb4", "utf8mb4_bin")
    );
    assert_eq!((created.tables, created.size_bytes), (0, 0));
    let defaults = manager
        .create_database(&DatabaseName::parse("app_two").unwrap(), None, None)
        .await
        .unwrap();
    assert_eq!(defaults.charset, "utf8mb4", "galley's server default");

    let mut admin = node.admin_conn().await;
    admin
        .query_drop(
            "CREATE TABLE app_one.t (id INT PRIMARY KEY, v TEXT); \
             INSERT INTO app_one.t VALUES (1, 'a'), (2, 'b'); \
             CREATE VIEW app_one.v AS SELECT id FROM app_one.t",
        )
        .await
        .unwrap();
    let listed = manager.databases().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["app_one", "app_two"]);
    assert_eq!(listed[0].tables, 1, "the view does not count as a table");
    assert!(listed[0].size_bytes > 0, "{:?}", listed[0]);

    let (error_kind, message) = kind(manager.create_database(&name, None, None).await);
    assert_eq!(error_kind, ErrorKind::AlreadyExists);
    assert_eq!(error_kind.http_status(), 409);
    assert!(message.contains("app_one exists already"), "{message}");

    let other = DatabaseName::parse("app_three").unwrap();
    let (error_kind, message) = kind(
        manager
            .create_database(&other, Some(&Charset::parse("nosuchset").unwrap()), None)
            .await,
    );
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(message.contains("no character set nosuchset"), "{message}");
    let (error_kind, message) = kind(
        manager
            .create_database(
                &other,
                Some(&Charset::parse("latin1").unwrap()),
                Some(&Collation::parse("utf8mb4_bin").unwrap()),
            )
            .await,
    );
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(
        message.contains("utf8mb4_bin does not belong to the character set latin1"),
        "{message}"
    );
    let (error_kind, message) = kind(
        manager
            .create_database(&other, None, Some(&Collation::parse("no_such_ci").unwrap()))
            .await,
    );
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(message.contains("no collation no_such_ci"), "{message}");
    assert!(
        manager.database(&other).await.is_err(),
        "nothing was created"
    );

    // System schemas are refused before any SQL.
    let mysql = DatabaseName::parse("mysql").unwrap();
    let (error_kind, message) = kind(manager.drop_database(&mysql).await);
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(message.contains("system schema"), "{message}");
    let (error_kind, _) = kind(
        manager
            .create_database(&DatabaseName::parse("sys").unwrap(), None, None)
            .await,
    );
    assert_eq!(error_kind, ErrorKind::Invalid);

    manager.drop_database(&name).await.unwrap();
    let (error_kind, message) = kind(manager.drop_database(&name).await);
    assert_eq!(error_kind, ErrorKind::NotFound);
    assert!(message.contains("app_one does not exist"), "{message}");
    let (error_kind, _) = kind(manager.database(&name).await);
    assert_eq!(error_kind, ErrorKind::NotFound);
    let names: Vec<String> = manager
        .databases()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["app_two"]);
}

#[tokio::test]
async fn users_grants_revokes_and_passwords() {
    let node = TestNode::start().await;
    let manager = node.manager();
    let database = DatabaseName::parse("app_data").unwrap();
    manager
        .create_database(&database, None, None)
        .await
        .unwrap();
    let user = UserName::parse("app.user-1").unwrap();
    let any = HostPattern::any();
    let first = Password::parse("first 'pass' $word\\").unwrap();

    manager.create_user(&user, &any, &first).await.unwrap();
    let (error_kind, message) = kind(manager.create_user(&user, &any, &first).await);
    assert_eq!(error_kind, ErrorKind::AlreadyExists);
    assert!(
        message.contains("'app.user-1'@'%' exists already"),
        "{message}"
    );

    // The password works, through the real protocol; without a grant the database is
    // closed to it.
    node.login("app.user-1", first.expose(), None)
        .await
        .unwrap();
    assert_eq!(
        server_code(
            node.login("app.user-1", first.expose(), Some("app_data"))
                .await
        ),
        1044,
        "access denied to the database"
    );

    let grants = manager
        .grant(
            &user,
            &any,
            &database,
            &Privileges::parse_list(&["insert", "SELECT"]).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        grants.contains(&"GRANT SELECT, INSERT ON `app\\_data`.* TO `app.user-1`@`%`".to_owned()),
        "{grants:?}"
    );
    let mut conn = node
        .login("app.user-1", first.expose(), Some("app_data"))
        .await
        .unwrap();
    let mut admin = node.admin_conn().await;
    admin
        .query_drop("CREATE TABLE app_data.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let count: u64 = conn
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        server_code(conn.query_drop("DROP TABLE t").await),
        1142,
        "DROP was not granted"
    );
    // The escaped `_` keeps the grant to this one database.
    admin.query_drop("CREATE DATABASE appXdata").await.unwrap();
    assert_eq!(
        server_code(conn.query_drop("CREATE TABLE appXdata.t (id INT)").await),
        1142
    );

    let grants = manager
        .revoke(
            &user,
            &any,
            &database,
            &Privileges::parse("INSERT").unwrap(),
        )
        .await
        .unwrap();
    assert!(
        grants.contains(&"GRANT SELECT ON `app\\_data`.* TO `app.user-1`@`%`".to_owned()),
        "{grants:?}"
    );
    // Database-level changes reach a session at its next USE, so log in again.
    drop(conn);
    let mut conn = node
        .login("app.user-1", first.expose(), Some("app_data"))
        .await
        .unwrap();
    assert_eq!(
        server_code(conn.query_drop("INSERT INTO t VALUES (2)").await),
        1142
    );
    drop(conn);

    // ALL, then revoking ALL leaves only USAGE.
    manager
        .grant(&user, &any, &database, &Privileges::all())
        .await
        .unwrap();
    let info = manager.user(&user, &any).await.unwrap();
    assert!(
        info.grants
            .contains(&"GRANT ALL PRIVILEGES ON `app\\_data`.* TO `app.user-1`@`%`".to_owned()),
        "{info:?}"
    );
    let grants = manager
        .revoke(&user, &any, &database, &Privileges::all())
        .await
        .unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert!(grants[0].starts_with("GRANT USAGE ON *.*"), "{grants:?}");
    let (error_kind, message) = kind(
        manager
            .revoke(&user, &any, &database, &Privileges::all())
            .await,
    );
    assert_eq!(error_kind, ErrorKind::NotFound);
    assert!(
        message.contains("holds no grant on the database app_data"),
        "{message}"
    );

    // Grants need an existing database and account.
    let missing_database = DatabaseName::parse("nowhere").unwrap();
    let (error_kind, message) = kind(
        manager
            .grant(&user, &any, &missing_database, &Privileges::all())
            .await,
    );
    assert_eq!(error_kind, ErrorKind::NotFound);
    assert!(
        message.contains("nowhere does not exist; create it first"),
        "{message}"
    );
    let stranger = UserName::parse("stranger").unwrap();
    let (error_kind, message) = kind(
        manager
            .grant(&stranger, &any, &database, &Privileges::all())
            .await,
    );
    assert_eq!(error_kind, ErrorKind::NotFound);
    assert!(
        message.contains("'stranger'@'%' does not exist"),
        "{message}"
    );

    // A new password: the old one stops working, the new one works; neither was sent.
    let second = Password::generate();
    manager.set_password(&user, &any, &second).await.unwrap();
    assert_eq!(
        server_code(node.login("app.user-1", first.expose(), None).await),
        1045
    );
    node.login("app.user-1", second.expose(), None)
        .await
        .unwrap();
    let (error_kind, _) = kind(manager.set_password(&stranger, &any, &second).await);
    assert_eq!(error_kind, ErrorKind::NotFound);

    // The listing flags internal accounts and never shows a password hash.
    let users = manager.users().await.unwrap();
    let find = |name: &str| users.iter().find(|u| u.user == name);
    let listed = find("app.user-1").unwrap();
    assert!(!listed.system);
    assert_eq!(listed.host, "%");
    let admin_account = find(agent::secrets::ADMIN_USER).unwrap();
    assert!(admin_account.system);
    let all_grants = users
        .iter()
        .flat_map(|u| u.grants.iter())
        .cloned()
        .collect::<Vec<String>>()
        .join("\n");
    assert!(all_grants.contains("<hash hidden>"), "{all_grants}");
    assert!(!all_grants.contains(&second.native_hash()), "{all_grants}");
    assert!(
        !all_grants.contains(&manage::native_password_hash(node.admin_password())),
        "{all_grants}"
    );
    assert!(find("root").is_some_and(|root| root.system));
    assert!(users.iter().all(|u| !u.user.is_empty()));

    // Internal accounts are refused before any SQL.
    let root = UserName::parse("root").unwrap();
    let (error_kind, message) = kind(manager.drop_user(&root, &HostPattern::localhost()).await);
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(message.contains("internal account"), "{message}");
    let galley = UserName::parse(agent::secrets::ADMIN_USER).unwrap();
    let (error_kind, _) = kind(manager.set_password(&galley, &any, &second).await);
    assert_eq!(error_kind, ErrorKind::Invalid);
    node.admin_conn().await;

    manager.drop_user(&user, &any).await.unwrap();
    let (error_kind, message) = kind(manager.drop_user(&user, &any).await);
    assert_eq!(error_kind, ErrorKind::NotFound);
    assert!(
        message.contains("'app.user-1'@'%' does not exist"),
        "{message}"
    );
    assert_eq!(
        server_code(node.login("app.user-1", second.expose(), None).await),
        1045
    );

    // A manager working through another administrative account (an imported cluster's)
    // protects that account too.
    let mut admin = node.admin_conn().await;
    admin
        .query_drop(
            "CREATE USER 'ops_admin'@'%' IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'; \
             GRANT ALL PRIVILEGES ON *.* TO 'ops_admin'@'%' WITH GRANT OPTION",
        )
        .await
        .unwrap();
    let operator = manage::Manager::new(node.options("ops_admin", "password", None));
    let ops_admin = UserName::parse("ops_admin").unwrap();
    let (error_kind, message) = kind(operator.drop_user(&ops_admin, &any).await);
    assert_eq!(error_kind, ErrorKind::Invalid);
    assert!(
        message.contains("the account galley manages this cluster through"),
        "{message}"
    );
    let listed = operator.users().await.unwrap();
    assert!(listed.iter().any(|u| u.user == "ops_admin" && u.system));
    // The first manager does not work through it, so for that one it is an ordinary account.
    manager.drop_user(&ops_admin, &any).await.unwrap();

    // Other host forms are real accounts on the server.
    for host in ["10.0.%", "10.1.0.0/255.255.0.0", "%.example.org", "::1"] {
        let host = HostPattern::parse(host).unwrap();
        manager.create_user(&user, &host, &second).await.unwrap();
        let info = manager.user(&user, &host).await.unwrap();
        assert_eq!(info.host, host.as_str());
        manager.drop_user(&user, &host).await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_node_is_unavailable() {
    // A port that was free a moment ago, and nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("galley_admin"))
        .pass(Some("not-shown-anywhere"))
        .prefer_socket(false);
    let manager = manage::Manager::new(options.into());
    let (error_kind, message) = kind(manager.databases().await);
    assert_eq!(error_kind, ErrorKind::Unavailable);
    assert_eq!(error_kind.http_status(), 503);
    assert!(
        message.starts_with("cannot list the databases: no working connection"),
        "{message}"
    );
    assert!(!message.contains("not-shown-anywhere"), "{message}");
}
