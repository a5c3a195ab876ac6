//! OpenStack provisioning against the real server: idempotence, the service accounts
//! really working, drift after changes made by hand, repair, and rotation.

use std::collections::BTreeMap;

use manage::catalog::{self, Endpoint};
use manage::{ErrorKind, Password, ProvisionReport, ProvisionRequest};
use mysql_async::prelude::Queryable as _;

use crate::support::{server_code, TestNode};

fn request(services: &[&str]) -> ProvisionRequest {
    ProvisionRequest {
        services: Some(services.iter().map(|s| s.to_string()).collect()),
        ..ProvisionRequest::default()
    }
}

/// The passwords to persist, as the controller's store would keep them.
fn remember(known: &mut BTreeMap<String, Password>, report: &ProvisionReport) {
    for service in &report.services {
        if service.password_changed {
            known.insert(service.service.to_owned(), service.password.clone());
        }
    }
}

fn changes(report: &ProvisionReport, service: &str) -> Vec<String> {
    report
        .services
        .iter()
        .find(|s| s.service == service)
        .unwrap()
        .changes
        .clone()
}

#[tokio::test]
async fn provision_is_idempotent_works_for_the_services_and_repairs_drift() {
    let node = TestNode::start().await;
    let manager = node.manager();
    let services = ["keystone", "nova", "quantum", "octavia"];
    let mut known = BTreeMap::new();

    let first = manager
        .provision(&request(&services), &known)
        .await
        .unwrap();
    assert!(first.changed);
    let names: Vec<&str> = first.services.iter().map(|s| s.service).collect();
    assert_eq!(names, ["keystone", "nova", "neutron", "octavia"]);
    assert_eq!(
        changes(&first, "nova"),
        [
            "created database nova_api",
            "created database nova",
            "created database nova_cell0",
            "created user 'nova'@'%'",
            "granted ALL PRIVILEGES on nova_api to 'nova'@'%'",
            "granted ALL PRIVILEGES on nova to 'nova'@'%'",
            "granted ALL PRIVILEGES on nova_cell0 to 'nova'@'%'",
            "created user 'nova'@'localhost'",
            "granted ALL PRIVILEGES on nova_api to 'nova'@'localhost'",
            "granted ALL PRIVILEGES on nova to 'nova'@'localhost'",
            "granted ALL PRIVILEGES on nova_cell0 to 'nova'@'localhost'",
        ]
    );
    assert!(first.services.iter().all(|s| s.password_changed));
    remember(&mut known, &first);
    let databases = manager.databases().await.unwrap();
    assert!(
        databases.iter().all(|d| d.charset == "utf8mb4"),
        "{databases:?}"
    );
    assert_eq!(databases.len(), 7, "{databases:?}");

    // A second run with the stored passwords changes nothing.
    let second = manager
        .provision(&request(&services), &known)
        .await
        .unwrap();
    assert!(!second.changed, "{:?}", second.services);
    for service in &second.services {
        assert!(service.changes.is_empty(), "{service:?}");
        assert!(!service.password_changed);
        assert_eq!(&service.password, known.get(service.service).unwrap());
    }
    let drift = manager
        .drift(
            &catalog::resolve_list(Some(&services[..])).unwrap(),
            &known,
            true,
        )
        .await
        .unwrap();
    assert!(drift.clean, "{drift:?}");

    // The credentials work: each service creates and drops a table in each database,
    // through the URL's user and password.
    let endpoint = Endpoint {
        host: "127.0.0.1".to_owned(),
        port: node.port(),
    };
    for service in &second.services {
        let config = service.config(&endpoint);
        assert!(
            config.contains(&format!(
                "{}:{}@127.0.0.1:{}/",
                service.user,
                service.password.expose(),
                node.port()
            )),
            "{config}"
        );
        for database in &service.databases {
            let mut conn = node
                .login(service.user, service.password.expose(), Some(database))
                .await
                .unwrap();
            conn.query_drop("CREATE TABLE probe (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO probe VALUES (1, '\u{1F600}')")
                .await
                .unwrap();
            let note: String = conn
                .query_first("SELECT note FROM probe")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(note, "\u{1F600}", "utf8mb4 keeps four-byte characters");
            conn.query_drop("DROP TABLE probe").await.unwrap();
            // And nothing beyond its own databases.
            assert_eq!(
                server_code(conn.query_drop("CREATE DATABASE not_mine").await),
                1044
            );
        }
    }
    let nova_config = second.services[1].config(&endpoint);
    assert!(nova_config.contains("[api_database]\nconnection = mysql+pymysql://nova:"));
    assert!(nova_config.contains("#   mysql+pymysql://nova:"));

    // Changes by hand: a lost grant, a dropped account, a foreign password, a database
    // recreated with another character set.
    let mut admin = node.admin_conn().await;
    admin
        .query_drop(
            "REVOKE ALL PRIVILEGES ON `nova\\_api`.* FROM 'nova'@'%'; \
             DROP USER 'keystone'@'localhost'; \
             ALTER USER 'neutron'@'%' IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'; \
             DROP DATABASE octavia_persistence; \
             CREATE DATABASE octavia_persistence CHARACTER SET latin1",
        )
        .await
        .unwrap();
    let drift = manager
        .drift(
            &catalog::resolve_list(Some(&services[..])).unwrap(),
            &known,
            true,
        )
        .await
        .unwrap();
    assert!(!drift.clean);
    let by_service = |name: &str| drift.services.iter().find(|s| s.service == name).unwrap();
    assert_eq!(
        by_service("keystone").missing,
        ["user 'keystone'@'localhost'"]
    );
    assert_eq!(
        by_service("nova").missing,
        ["grant ALL PRIVILEGES on nova_api to 'nova'@'%'"]
    );
    assert_eq!(
        by_service("neutron").differs,
        ["the password of 'neutron'@'%' is not the one galley stored"]
    );
    assert_eq!(
        by_service("octavia").differs,
        ["database octavia_persistence has the character set latin1, not utf8mb4"]
    );
    assert!(
        by_service("octavia").missing.is_empty(),
        "grants outlive a dropped database: {:?}",
        by_service("octavia")
    );
    // The drift report never carries a password or a hash.
    let text = format!("{drift:?}");
    for password in known.values() {
        assert!(!text.contains(password.expose()));
        assert!(!text.contains(&password.native_hash()));
    }

    // Provisioning again repairs what it owns and keeps the stored passwords; it does not
    // convert an existing database's character set (that is the operator's call).
    let repair = manager
        .provision(&request(&services), &known)
        .await
        .unwrap();
    assert!(repair.changed);
    assert_eq!(
        changes(&repair, "keystone"),
        [
            "created user 'keystone'@'localhost'",
            "granted ALL PRIVILEGES on keystone to 'keystone'@'localhost'"
        ]
    );
    assert_eq!(
        changes(&repair, "nova"),
        ["granted ALL PRIVILEGES on nova_api to 'nova'@'%'"]
    );
    assert_eq!(
        changes(&repair, "neutron"),
        ["set the password of 'neutron'@'%'"]
    );
    assert!(repair.services.iter().all(|s| !s.password_changed));
    node.login("neutron", known["neutron"].expose(), Some("neutron"))
        .await
        .unwrap();
    let drift = manager
        .drift(
            &catalog::resolve_list(Some(&services[..])).unwrap(),
            &known,
            true,
        )
        .await
        .unwrap();
    let remaining: Vec<&String> = drift
        .services
        .iter()
        .flat_map(|s| s.missing.iter().chain(s.differs.iter()))
        .collect();
    assert_eq!(
        remaining,
        ["database octavia_persistence has the character set latin1, not utf8mb4"]
    );

    // Rotation gives a new password to both accounts; the old one stops working.
    let old = known["keystone"].clone();
    let rotated = manager
        .provision(
            &ProvisionRequest {
                rotate: true,
                ..request(&["keystone"])
            },
            &known,
        )
        .await
        .unwrap();
    let keystone = &rotated.services[0];
    assert!(keystone.password_changed);
    assert_ne!(keystone.password, old);
    assert_eq!(
        keystone.changes,
        [
            "set the password of 'keystone'@'%'",
            "set the password of 'keystone'@'localhost'"
        ]
    );
    assert_eq!(
        server_code(node.login("keystone", old.expose(), Some("keystone")).await),
        1045
    );
    node.login("keystone", keystone.password.expose(), Some("keystone"))
        .await
        .unwrap();
    remember(&mut known, &rotated);

    // Drift with no stored password says so.
    let mut forgotten = known.clone();
    forgotten.remove("keystone");
    let drift = manager
        .drift(&[catalog::resolve("keystone").unwrap()], &forgotten, true)
        .await
        .unwrap();
    assert!(drift.services[0].differs[0].contains("galley holds none for keystone"));

    // An unknown service is refused before anything runs, listing the valid ones.
    let error = manager
        .provision(&request(&["swift"]), &known)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert!(error.to_string().contains("keystone, glance"), "{error}");
}

#[tokio::test]
async fn default_set_provisions_every_default_service() {
    let node = TestNode::start().await;
    let manager = node.manager();
    let report = manager
        .provision(&ProvisionRequest::default(), &BTreeMap::new())
        .await
        .unwrap();
    let names: Vec<&str> = report.services.iter().map(|s| s.service).collect();
    assert_eq!(
        names,
        [
            "keystone",
            "glance",
            "placement",
            "nova",
            "neutron",
            "cinder",
            "heat"
        ]
    );
    let databases: Vec<String> = manager
        .databases()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        databases,
        [
            "cinder",
            "glance",
            "heat",
            "keystone",
            "neutron",
            "nova",
            "nova_api",
            "nova_cell0",
            "placement"
        ]
    );
    let users = manager.users().await.unwrap();
    for service in names {
        for host in ["%", "localhost"] {
            assert!(
                users
                    .iter()
                    .any(|u| u.user == service && u.host == host && !u.system),
                "{service}@{host}"
            );
        }
    }
}
