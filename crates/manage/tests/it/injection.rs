//! Hostile names never reach the server: validation refuses them before any SQL, and the
//! quoting alone (tried here directly against the server) already keeps them literal.

use manage::names::{quote_identifier, quote_string};
use manage::{DatabaseName, HostPattern, UserName};
use mysql_async::prelude::Queryable as _;

use crate::support::TestNode;

const HOSTILE: [&str; 8] = [
    "x; DROP DATABASE mysql",
    "x`; DROP DATABASE mysql; --",
    "x'; DROP USER 'galley_admin'@'%'; --",
    "mysql`.`user",
    "nov\u{430}",
    "a\0b",
    "a\nDROP DATABASE mysql",
    "",
];

#[tokio::test]
async fn hostile_names_are_refused_and_quoting_keeps_them_literal() {
    let node = TestNode::start().await;
    let mut admin = node.admin_conn().await;
    admin
        .query_drop("CREATE DATABASE keepme; CREATE TABLE keepme.t (id INT PRIMARY KEY)")
        .await
        .unwrap();

    for hostile in HOSTILE {
        assert!(DatabaseName::parse(hostile).is_err(), "{hostile:?}");
        assert!(UserName::parse(hostile).is_err(), "{hostile:?}");
        assert!(HostPattern::parse(hostile).is_err(), "{hostile:?}");
    }
    // The only way to reach a Manager operation is a validated name, so none of the above
    // can run; the server is as it was.
    let manager = node.manager();
    let names: Vec<String> = manager
        .databases()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["keepme"]);

    // Defence in depth: even unvalidated, a quoted name is one literal identifier.
    let sneaky = "x`; DROP DATABASE keepme; --";
    admin
        .query_drop(format!("CREATE DATABASE {}", quote_identifier(sneaky)))
        .await
        .unwrap();
    let found: Option<String> = admin
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (sneaky,),
        )
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some(sneaky));
    admin
        .query_drop(format!("DROP DATABASE {}", quote_identifier(sneaky)))
        .await
        .unwrap();
    let sneaky_user = "u'@'%' IDENTIFIED BY 'x'; DROP DATABASE keepme; --\\";
    let selected: String = admin
        .query_first(format!("SELECT {}", quote_string(sneaky_user)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        selected, sneaky_user,
        "a quoted string comes back unchanged"
    );

    let still: Vec<String> = admin.query("SHOW DATABASES").await.unwrap();
    for expected in ["mysql", "keepme", "information_schema"] {
        assert!(
            still.iter().any(|d| d == expected),
            "{expected} is gone: {still:?}"
        );
    }
    let accounts: u64 = admin
        .query_first("SELECT COUNT(*) FROM mysql.user WHERE User = 'galley_admin'")
        .await
        .unwrap()
        .unwrap();
    assert!(accounts >= 1);
}
