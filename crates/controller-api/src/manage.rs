//! The bodies and queries of the management routes: databases, accounts, grants and
//! OpenStack provisioning. Names are sent as typed by the operator; the controller
//! validates them (and says what is allowed) before any SQL is built.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user database (`GET /databases`, `POST /databases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Database::example())]
pub struct Database {
    pub name: String,
    /// Data and index bytes of its tables, as information_schema estimates them.
    pub size_bytes: u64,
    /// The default character set.
    pub charset: String,
    /// The default collation.
    pub collation: String,
    /// The number of tables (views not counted).
    pub tables: u64,
}

impl Database {
    fn example() -> Database {
        Database {
            name: "nova_api".to_owned(),
            size_bytes: 1_622_016,
            charset: "utf8mb4".to_owned(),
            collation: "utf8mb4_general_ci".to_owned(),
            tables: 34,
        }
    }
}

/// `POST /databases`. Without a character set or collation, the server's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = NewDatabase::example())]
pub struct NewDatabase {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
}

impl NewDatabase {
    fn example() -> NewDatabase {
        NewDatabase {
            name: "app".to_owned(),
            charset: Some("utf8mb4".to_owned()),
            collation: None,
        }
    }
}

/// `DELETE /databases/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DropDatabaseQuery {
    /// Must repeat the database's name: a drop deletes all its tables.
    pub confirm: Option<String>,
}

/// An account with its grants (`GET /users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = User::example())]
pub struct User {
    pub user: String,
    pub host: String,
    /// `SHOW GRANTS` lines, with any password hash replaced by `<hash hidden>`.
    pub grants: Vec<String>,
    /// An account of the server or of galley itself (root, galley_admin, ...), which
    /// galley refuses to drop, change or grant to.
    pub system: bool,
}

impl User {
    fn example() -> User {
        User {
            user: "nova".to_owned(),
            host: "%".to_owned(),
            grants: vec![
                "GRANT USAGE ON *.* TO `nova`@`%` IDENTIFIED BY PASSWORD '<hash hidden>'"
                    .to_owned(),
                "GRANT ALL PRIVILEGES ON `nova`.* TO `nova`@`%`".to_owned(),
            ],
            system: false,
        }
    }
}

/// `POST /users`. Without a password the controller generates one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = NewUser::example())]
pub struct NewUser {
    pub user: String,
    /// The host pattern the account may connect from, like `%` or `10.0.0.%`.
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl NewUser {
    fn example() -> NewUser {
        NewUser {
            user: "app".to_owned(),
            host: "10.0.0.%".to_owned(),
            password: None,
        }
    }
}

/// Hides the password.
impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("user", &self.user)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A created account; `password` only when the controller generated it (shown once).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = CreatedUser::example())]
pub struct CreatedUser {
    pub user: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl CreatedUser {
    fn example() -> CreatedUser {
        CreatedUser {
            user: "app".to_owned(),
            host: "10.0.0.%".to_owned(),
            password: Some("Vb7kQ2xZ9mW4pL8rT3nY6cH1".to_owned()),
        }
    }
}

/// Hides the password.
impl fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedUser")
            .field("user", &self.user)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// `POST /users/{user}/{host}/password`, both ways: the request's password (left out, or
/// no body at all, to generate one), and the answer's generated password (left out when
/// it was given).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = NewPassword::example())]
pub struct NewPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl NewPassword {
    fn example() -> NewPassword {
        NewPassword {
            password: Some("Vb7kQ2xZ9mW4pL8rT3nY6cH1".to_owned()),
        }
    }
}

/// Hides the password.
impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewPassword").finish_non_exhaustive()
    }
}

/// A privilege change: `POST /grants` and `POST /revokes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = GrantRequest::example())]
pub struct GrantRequest {
    pub user: String,
    pub host: String,
    pub database: String,
    /// `ALL`, or privileges such as `SELECT`, `INSERT`.
    pub privileges: Vec<String>,
}

impl GrantRequest {
    fn example() -> GrantRequest {
        GrantRequest {
            user: "app".to_owned(),
            host: "10.0.0.%".to_owned(),
            database: "app".to_owned(),
            privileges: vec!["SELECT".to_owned(), "INSERT".to_owned()],
        }
    }
}

/// An account's grants after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Grants::example())]
pub struct Grants {
    pub grants: Vec<String>,
}

impl Grants {
    fn example() -> Grants {
        Grants {
            grants: vec!["GRANT SELECT, INSERT ON `app`.* TO `app`@`10.0.0.%`".to_owned()],
        }
    }
}

/// An OpenStack service galley knows (`GET /openstack/catalog`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = CatalogEntry::example())]
pub struct CatalogEntry {
    /// The canonical name.
    pub service: String,
    pub databases: Vec<String>,
    /// Not in the default set.
    pub optional: bool,
    /// Other accepted names (`quantum` for neutron).
    pub aliases: Vec<String>,
    /// In the default set.
    pub default: bool,
}

impl CatalogEntry {
    fn example() -> CatalogEntry {
        CatalogEntry {
            service: "nova".to_owned(),
            databases: vec![
                "nova_api".to_owned(),
                "nova".to_owned(),
                "nova_cell0".to_owned(),
            ],
            optional: false,
            aliases: Vec::new(),
            default: true,
        }
    }
}

/// `POST /openstack/provision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(example = ProvisionRequest::example())]
pub struct ProvisionRequest {
    /// Service names or aliases; null (or left out) for the catalog's default set.
    pub services: Option<Vec<String>>,
    /// Give every provisioned account a new password, even when the current one is known.
    #[serde(default)]
    pub rotate: bool,
    /// Create missing databases with utf8mb4 (the default) or, with false, utf8mb3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utf8mb4: Option<bool>,
}

impl ProvisionRequest {
    fn example() -> ProvisionRequest {
        ProvisionRequest {
            services: Some(vec!["keystone".to_owned(), "nova".to_owned()]),
            rotate: false,
            utf8mb4: None,
        }
    }
}

/// One provisioned service and its config lines.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceConfig {
    pub service: String,
    pub databases: Vec<String>,
    /// Its database account's user name.
    pub user: String,
    /// What this provision changed, in order; empty when nothing did.
    pub changes: Vec<String>,
    /// The lines for the service's configuration file (`[database] connection = ...`).
    pub config: String,
}

/// Hides the config lines: they hold the service's password.
impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("service", &self.service)
            .field("databases", &self.databases)
            .field("user", &self.user)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

/// What a provision did, or what is provisioned (`GET /openstack`: `changed` false).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Provisioned::example())]
pub struct Provisioned {
    /// In catalog order.
    pub services: Vec<ServiceConfig>,
    pub changed: bool,
}

impl Provisioned {
    fn example() -> Provisioned {
        Provisioned {
            services: vec![ServiceConfig {
                service: "glance".to_owned(),
                databases: vec!["glance".to_owned()],
                user: "glance".to_owned(),
                changes: vec![
                    "created database glance".to_owned(),
                    "created user 'glance'@'%'".to_owned(),
                ],
                config: "[database]\nconnection = mysql+pymysql://glance:Vb7kQ2xZ9mW4pL8r@10.0.0.10:3306/glance?charset=utf8mb4\n".to_owned(),
            }],
            changed: true,
        }
    }
}

/// `GET /openstack/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceConfigQuery {
    /// The service, like nova.
    pub service: Option<String>,
}

/// How one service differs from what provision would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceDrift {
    pub service: String,
    /// What is missing: "database nova_api", "user 'nova'@'%'", a grant.
    pub missing: Vec<String>,
    /// What exists but differs: a password that is not the stored one, a database with
    /// another character set.
    pub differs: Vec<String>,
}

/// `GET /openstack/drift`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(example = Drift::example())]
pub struct Drift {
    /// In catalog order.
    pub services: Vec<ServiceDrift>,
    /// Whether nothing is missing or differs.
    pub clean: bool,
}

impl Drift {
    fn example() -> Drift {
        Drift {
            services: vec![ServiceDrift {
                service: "nova".to_owned(),
                missing: vec!["user 'nova'@'localhost'".to_owned()],
                differs: Vec::new(),
            }],
            clean: false,
        }
    }
}
