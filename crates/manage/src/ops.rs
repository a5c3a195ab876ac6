//! The operations: databases, accounts, grants, and OpenStack provisioning and drift,
//! as SQL against one node through a connection pool.
//!
//! Every name reaching SQL here is a validated newtype and is quoted again when the
//! statement is built. Passwords travel only as `mysql_native_password` hashes
//! (`IDENTIFIED BY PASSWORD '*...'`). Reads of the grant tables use bound parameters.
//! Galera runs the DDL and account statements in total order isolation, so they run on
//! the one node the caller chose and replicate from there.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts, OptsBuilder, Pool};

use crate::catalog::{self, Endpoint, Service};
use crate::error::ManageError;
use crate::names::{
    account_sql, is_system_user, quote_string, shown, Charset, Collation, DatabaseName,
    HostPattern, Privileges, UserName, SYSTEM_SCHEMAS,
};
use crate::password::{redact_hashes, Password};

/// How long getting a connection from the pool may take before the node counts as
/// unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Session settings of every connection:
/// - `wsrep_sync_wait = 1`: reads (SELECT, SHOW) first wait until this node has applied
///   everything the cluster committed before them, so a listing or a provision check
///   sees a change just made through another node.
/// - `lock_wait_timeout = 60`: a DDL statement that waits for a metadata lock (a long
///   transaction on the table) fails after a minute instead of the server's default of a
///   day, which would hang the caller.
pub const SESSION_SETTINGS: [&str; 2] = [
    "SET SESSION wsrep_sync_wait = 1",
    "SET SESSION lock_wait_timeout = 60",
];

/// The hosts every provisioned OpenStack user gets: any host, and local socket or
/// loopback logins (which a `'%'` account does not cover when the server has other
/// `localhost` accounts).
pub fn service_hosts() -> [HostPattern; 2] {
    [HostPattern::any(), HostPattern::localhost()]
}

/// A database, as `databases` reads it (the API answers it as `controller_api::Database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The schema name.
    pub name: String,
    /// Data and index bytes of its tables, as information_schema.TABLES estimates them.
    pub size_bytes: u64,
    /// The default character set.
    pub charset: String,
    /// The default collation.
    pub collation: String,
    /// The number of tables (views not counted).
    pub tables: u64,
}

/// An account, as `users` reads it (the API answers it as `controller_api::User`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user part.
    pub user: String,
    /// The host part.
    pub host: String,
    /// `SHOW GRANTS` lines, with any password hash replaced by `<hash hidden>`.
    pub grants: Vec<String>,
    /// An internal account (root, mariadb.sys, mysql, PUBLIC, galley_*) or the one the
    /// manager logs in as: galley refuses to drop, change or grant to it.
    pub system: bool,
}

/// What `provision` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    /// Service names or aliases; `None` for the default set.
    pub services: Option<Vec<String>>,
    /// Give every provisioned user a new password, even when the current one is known.
    pub rotate: bool,
    /// Create missing databases with `utf8mb4` (`true`, the recommendation) or `utf8mb3`.
    pub utf8mb4: bool,
}

impl Default for ProvisionRequest {
    fn default() -> ProvisionRequest {
        ProvisionRequest {
            services: None,
            rotate: false,
            utf8mb4: true,
        }
    }
}

impl ProvisionRequest {
    /// The character set new databases get.
    pub fn charset(&self) -> Charset {
        charset_for(self.utf8mb4)
    }
}

fn charset_for(utf8mb4: bool) -> Charset {
    if utf8mb4 {
        Charset::utf8mb4()
    } else {
        Charset::utf8mb3()
    }
}

/// What `provision` did for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvision {
    /// The canonical service name.
    pub service: &'static str,
    /// Its database user.
    pub user: &'static str,
    /// Its databases.
    pub databases: Vec<&'static str>,
    /// What changed, in order, e.g. "created database nova"; empty when nothing did.
    pub changes: Vec<String>,
    /// The service's password after the run (the known one, or a new one).
    pub password: Password,
    /// Whether `password` is new: the caller must store it before anything else.
    pub password_changed: bool,
    /// The character set the config URLs ask for.
    pub charset: Charset,
    /// The catalog entry.
    pub catalog: &'static Service,
}

impl ServiceProvision {
    /// The config lines for this service (see [`catalog::config_text`]).
    pub fn config(&self, endpoint: &Endpoint) -> String {
        catalog::config_text(self.catalog, &self.password, endpoint, &self.charset)
    }
}

/// What `provision` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    /// One entry per service, in catalog order.
    pub services: Vec<ServiceProvision>,
    /// Whether anything changed.
    pub changed: bool,
}

/// How one service differs from what `provision` would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDrift {
    /// The canonical service name.
    pub service: &'static str,
    /// What is missing: "database nova_api", "user 'nova'@'%'", "grant ALL PRIVILEGES
    /// on nova to 'nova'@'%'".
    pub missing: Vec<String>,
    /// What exists but differs: a password that is not the stored one, a database with
    /// another character set.
    pub differs: Vec<String>,
}

/// Drift of several services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    /// One entry per service, in catalog order.
    pub services: Vec<ServiceDrift>,
    /// Whether nothing is missing or differs.
    pub clean: bool,
}

/// Runs the operations against one node. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Manager {
    pool: Pool,
    /// The account the pool logs in as: protected like the internal accounts, so that
    /// no call can drop or change the account galley itself works through (an imported
    /// cluster's administrative account may have any name).
    own_user: Option<String>,
}

/// The privilege columns of `mysql.db` that `ALL PRIVILEGES` sets (every one but
/// `Grant_priv`).
const ALL_PRIVILEGE_COLUMNS: [&str; 19] = [
    "Select_priv",
    "Insert_priv",
    "Update_priv",
    "Delete_priv",
    "Create_priv",
    "Drop_priv",
    "References_priv",
    "Index_priv",
    "Alter_priv",
    "Create_tmp_table_priv",
    "Lock_tables_priv",
    "Create_view_priv",
    "Show_view_priv",
    "Create_routine_priv",
    "Alter_routine_priv",
    "Execute_priv",
    "Event_priv",
    "Trigger_priv",
    "Delete_history_priv",
];

/// Server error numbers this module branches on.
mod code {
    pub const DB_CREATE_EXISTS: u16 = 1007;
    pub const DB_DROP_EXISTS: u16 = 1008;
    pub const UNKNOWN_COM_ERROR: u16 = 1047;
    pub const SERVER_SHUTDOWN: u16 = 1053;
    pub const UNKNOWN_CHARACTER_SET: u16 = 1115;
    pub const PASSWORD_NO_MATCH: u16 = 1133;
    pub const NONEXISTING_GRANT: u16 = 1141;
    pub const COLLATION_CHARSET_MISMATCH: u16 = 1253;
    pub const UNKNOWN_COLLATION: u16 = 1273;
    pub const CANNOT_USER: u16 = 1396;
    pub const CONNECTION_KILLED: u16 = 1927;
}

/// A failed statement: the server's code and message, or `None` when the connection
/// itself failed.
fn server_code(error: &mysql_async::Error) -> Option<u16> {
    match error {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}

/// The general mapping: connection trouble and a node that is not ready are
/// `Unavailable`, anything else the server says is `Server`.
fn classify(context: &str, error: mysql_async::Error) -> ManageError {
    match error {
        mysql_async::Error::Server(server) => match server.code {
            code::UNKNOWN_COM_ERROR | code::SERVER_SHUTDOWN | code::CONNECTION_KILLED => {
                ManageError::Unavailable(format!(
                    "{context}: the database node is not ready for SQL: {} (error {})",
                    redact_hashes(&server.message),
                    server.code
                ))
            }
            _ => ManageError::Server {
                context: context.to_owned(),
                code: server.code,
                message: redact_hashes(&server.message),
            },
        },
        other => ManageError::Unavailable(format!(
            "{context}: no working connection to the database node: {}",
            redact_hashes(&other.to_string())
        )),
    }
}

impl Manager {
    /// A manager for the node the options point at (the caller picks a Synced node and
    /// builds the options with an account that may create databases, users and grants,
    /// such as galley_admin). Connects lazily.
    ///
    /// The account in the options is protected like the internal accounts: refused for
    /// drop, password, grant and revoke, and flagged `system` in [`Manager::users`].
    ///
    /// Every connection first runs [`SESSION_SETTINGS`] (after the options' own `init`).
    pub fn new(options: Opts) -> Manager {
        let own_user = options.user().map(str::to_owned);
        let mut init = options.init().to_vec();
        init.extend(SESSION_SETTINGS.iter().map(|setting| setting.to_string()));
        let options = OptsBuilder::from_opts(options).init(init);
        Manager {
            own_user,
            pool: Pool::new(options),
        }
    }

    /// Whether the account is internal or the one this manager logs in as.
    pub fn is_protected_user(&self, user: &str) -> bool {
        is_system_user(user) || self.own_user.as_deref() == Some(user)
    }

    /// Refuses internal accounts and the manager's own.
    fn ensure_unprotected(&self, user: &UserName) -> Result<(), ManageError> {
        user.ensure_not_system()?;
        if self.own_user.as_deref() == Some(user.as_str()) {
            return Err(ManageError::Invalid(format!(
                "the user {} is the account galley manages this cluster through; galley \
                 never creates, drops, changes or grants to it through this interface",
                shown(user.as_str())
            )));
        }
        Ok(())
    }

    /// Closes the pool's connections.
    pub async fn disconnect(self) -> Result<(), ManageError> {
        self.pool
            .disconnect()
            .await
            .map_err(|error| classify("cannot close the connections", error))
    }

    async fn conn(&self, context: &str) -> Result<Conn, ManageError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(classify(context, error)),
            Err(_) => Err(ManageError::Unavailable(format!(
                "{context}: no connection to the database node within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The user databases with size, character set, collation and table count, by name.
    /// The system schemas are left out.
    pub async fn databases(&self) -> Result<Vec<DatabaseInfo>, ManageError> {
        let context = "cannot list the databases";
        let mut conn = self.conn(context).await?;
        let all = query_databases(&mut conn, None)
            .await
            .map_err(|error| classify(context, error))?;
        Ok(all
            .into_iter()
            .filter(|database| {
                !SYSTEM_SCHEMAS
                    .iter()
                    .any(|system| system.eq_ignore_ascii_case(&database.name))
            })
            .collect())
    }

    /// One database, `NotFound` when it does not exist.
    pub async fn database(&self, name: &DatabaseName) -> Result<DatabaseInfo, ManageError> {
        let context = format!("cannot read the database {name}");
        let mut conn = self.conn(&context).await?;
        query_databases(&mut conn, Some(name))
            .await
            .map_err(|error| classify(&context, error))?
            .pop()
            .ok_or_else(|| database_not_found(name))
    }

    /// `CREATE DATABASE`, with the server's defaults for what is not given.
    /// `AlreadyExists` when it exists; `Invalid` for an unknown character set or
    /// collation, or a collation of another character set.
    pub async fn create_database(
        &self,
        name: &DatabaseName,
        charset: Option<&Charset>,
        collation: Option<&Collation>,
    ) -> Result<DatabaseInfo, ManageError> {
        name.ensure_not_system()?;
        let context = format!("cannot create the database {name}");
        let mut conn = self.conn(&context).await?;
        create_database_on(&mut conn, name, charset, collation, &context).await?;
        query_databases(&mut conn, Some(name))
            .await
            .map_err(|error| classify(&context, error))?
            .pop()
            .ok_or_else(|| database_not_found(name))
    }

    /// `DROP DATABASE` with all its tables. `NotFound` when it does not exist.
    pub async fn drop_database(&self, name: &DatabaseName) -> Result<(), ManageError> {
        name.ensure_not_system()?;
        let context = format!("cannot drop the database {name}");
        let mut conn = self.conn(&context).await?;
        match conn
            .query_drop(format!("DROP DATABASE {}", name.sql()))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if server_code(&error) == Some(code::DB_DROP_EXISTS) => {
                Err(database_not_found(name))
            }
            Err(error) => Err(classify(&context, error)),
        }
    }

    /// Every account (roles and the anonymous account left out) with its grants, by user
    /// and host. Internal accounts are included and flagged `system`.
    pub async fn users(&self) -> Result<Vec<UserInfo>, ManageError> {
        let context = "cannot list the users";
        let mut conn = self.conn(context).await?;
        let accounts: Vec<(String, String)> = conn
            .query(
                "SELECT User, Host FROM mysql.user WHERE is_role = 'N' AND User <> '' \
                 ORDER BY User, Host",
            )
            .await
            .map_err(|error| classify(context, error))?;
        let mut users = Vec::with_capacity(accounts.len());
        for (user, host) in accounts {
            let grants = match show_grants(&mut conn, &user, &host).await {
                Ok(grants) => grants,
                // Dropped since the list was read (by another client, or replicated).
                Err(error) if server_code(&error) == Some(code::NONEXISTING_GRANT) => continue,
                Err(error) => return Err(classify(context, error)),
            };
            users.push(UserInfo {
                system: self.is_protected_user(&user),
                user,
                host,
                grants,
            });
        }
        Ok(users)
    }

    /// One account with its grants; `NotFound` when it does not exist.
    pub async fn user(&self, user: &UserName, host: &HostPattern) -> Result<UserInfo, ManageError> {
        let context = format!("cannot read the user {}", account_sql(user, host));
        let mut conn = self.conn(&context).await?;
        if account_hash(&mut conn, user, host)
            .await
            .map_err(|error| classify(&context, error))?
            .is_none()
        {
            return Err(user_not_found(user, host));
        }
        let grants = show_grants(&mut conn, user.as_str(), host.as_str())
            .await
            .map_err(|error| classify(&context, error))?;
        Ok(UserInfo {
            user: user.to_string(),
            host: host.to_string(),
            grants,
            system: self.is_protected_user(user.as_str()),
        })
    }

    /// `CREATE USER ... IDENTIFIED BY PASSWORD '<hash>'`. `AlreadyExists` when the
    /// account exists; internal accounts are refused.
    pub async fn create_user(
        &self,
        user: &UserName,
        host: &HostPattern,
        password: &Password,
    ) -> Result<(), ManageError> {
        self.ensure_unprotected(user)?;
        let context = format!("cannot create the user {}", account_sql(user, host));
        let mut conn = self.conn(&context).await?;
        match create_user_on(&mut conn, user, host, password).await {
            Ok(()) => Ok(()),
            Err(error) if server_code(&error) == Some(code::CANNOT_USER) => {
                Err(ManageError::AlreadyExists(format!(
                    "the user {} exists already",
                    account_sql(user, host)
                )))
            }
            Err(error) => Err(classify(&context, error)),
        }
    }

    /// `DROP USER`. `NotFound` when the account does not exist; internal accounts are
    /// refused.
    pub async fn drop_user(&self, user: &UserName, host: &HostPattern) -> Result<(), ManageError> {
        self.ensure_unprotected(user)?;
        let context = format!("cannot drop the user {}", account_sql(user, host));
        let mut conn = self.conn(&context).await?;
        let result = conn
            .query_drop(format!("DROP USER {}", account_sql(user, host)))
            .await;
        on_existing_account(result, &context, user, host)
    }

    /// `ALTER USER ... IDENTIFIED BY PASSWORD '<hash>'`. `NotFound` when the account does
    /// not exist; internal accounts are refused.
    pub async fn set_password(
        &self,
        user: &UserName,
        host: &HostPattern,
        password: &Password,
    ) -> Result<(), ManageError> {
        self.ensure_unprotected(user)?;
        let context = format!("cannot set the password of {}", account_sql(user, host));
        let mut conn = self.conn(&context).await?;
        let result = alter_password_on(&mut conn, user, host, password).await;
        on_existing_account(result, &context, user, host)
    }

    /// `GRANT <privileges> ON <database>.* TO <account>`; returns the account's grants
    /// afterwards. The database and the account must exist (`NotFound` otherwise, rather
    /// than a grant on a misspelt name); system schemas and internal accounts are
    /// refused. `_` in the database name is escaped, so the grant covers that database
    /// only.
    pub async fn grant(
        &self,
        user: &UserName,
        host: &HostPattern,
        database: &DatabaseName,
        privileges: &Privileges,
    ) -> Result<Vec<String>, ManageError> {
        self.ensure_unprotected(user)?;
        database.ensure_not_system()?;
        let context = format!(
            "cannot grant {privileges} on {database} to {}",
            account_sql(user, host)
        );
        let mut conn = self.conn(&context).await?;
        self.require_account_and_database(&mut conn, user, host, database, &context)
            .await?;
        let statement = format!(
            "GRANT {privileges} ON {}.* TO {}",
            database.grant_pattern_sql(),
            account_sql(user, host)
        );
        match conn.query_drop(statement).await {
            Ok(()) => {}
            Err(error) if server_code(&error) == Some(code::PASSWORD_NO_MATCH) => {
                return Err(user_not_found(user, host))
            }
            Err(error) => return Err(classify(&context, error)),
        }
        show_grants(&mut conn, user.as_str(), host.as_str())
            .await
            .map_err(|error| classify(&context, error))
    }

    /// `REVOKE <privileges> ON <database>.* FROM <account>`; returns the account's grants
    /// afterwards. `NotFound` when the account does not exist or holds no grant on the
    /// database. A grant made by hand without escaping `_` is revoked too.
    pub async fn revoke(
        &self,
        user: &UserName,
        host: &HostPattern,
        database: &DatabaseName,
        privileges: &Privileges,
    ) -> Result<Vec<String>, ManageError> {
        self.ensure_unprotected(user)?;
        database.ensure_not_system()?;
        let context = format!(
            "cannot revoke {privileges} on {database} from {}",
            account_sql(user, host)
        );
        let mut conn = self.conn(&context).await?;
        if account_hash(&mut conn, user, host)
            .await
            .map_err(|error| classify(&context, error))?
            .is_none()
        {
            return Err(user_not_found(user, host));
        }
        let mut patterns = vec![database.grant_pattern_sql()];
        if database.as_str().contains('_') {
            patterns.push(database.sql());
        }
        let mut revoked_any = false;
        for pattern in patterns {
            let statement = format!(
                "REVOKE {privileges} ON {pattern}.* FROM {}",
                account_sql(user, host)
            );
            match conn.query_drop(statement).await {
                Ok(()) => revoked_any = true,
                Err(error) if server_code(&error) == Some(code::NONEXISTING_GRANT) => {}
                Err(error) => return Err(classify(&context, error)),
            }
        }
        if !revoked_any {
            return Err(ManageError::NotFound(format!(
                "the user {} holds no grant on the database {database}",
                account_sql(user, host)
            )));
        }
        show_grants(&mut conn, user.as_str(), host.as_str())
            .await
            .map_err(|error| classify(&context, error))
    }

    async fn require_account_and_database(
        &self,
        conn: &mut Conn,
        user: &UserName,
        host: &HostPattern,
        database: &DatabaseName,
        context: &str,
    ) -> Result<(), ManageError> {
        if account_hash(conn, user, host)
            .await
            .map_err(|error| classify(context, error))?
            .is_none()
        {
            return Err(user_not_found(user, host));
        }
        if query_databases(conn, Some(database))
            .await
            .map_err(|error| classify(context, error))?
            .is_empty()
        {
            return Err(ManageError::NotFound(format!(
                "the database {database} does not exist; create it first"
            )));
        }
        Ok(())
    }

    /// Provisions OpenStack services: creates missing databases (with the request's
    /// character set), creates the service user at `'%'` and `'localhost'`, sets its
    /// password where it is not the known one, and grants ALL on each database.
    ///
    /// `known` holds the passwords galley stored earlier, by canonical service name. A
    /// password changes only when `rotate` is set, when galley holds none for the
    /// service, or when an account's stored hash is not the known password's. A second
    /// run with the same `known` changes nothing. The caller must persist every
    /// `password_changed` password.
    pub async fn provision(
        &self,
        request: &ProvisionRequest,
        known: &BTreeMap<String, Password>,
    ) -> Result<ProvisionReport, ManageError> {
        let services = catalog::resolve_list(request.services.as_deref())?;
        let charset = request.charset();
        let mut conn = self
            .conn("cannot provision the OpenStack databases")
            .await?;
        let mut report = ProvisionReport {
            services: Vec::with_capacity(services.len()),
            changed: false,
        };
        for service in services {
            let provision =
                provision_service(&mut conn, service, request.rotate, known, &charset).await?;
            report.changed |= !provision.changes.is_empty();
            report.services.push(provision);
        }
        Ok(report)
    }

    /// How the given services differ from what `provision` would make, with `known`
    /// holding galley's stored passwords and `utf8mb4` the expected character set.
    pub async fn drift(
        &self,
        services: &[&'static Service],
        known: &BTreeMap<String, Password>,
        utf8mb4: bool,
    ) -> Result<DriftReport, ManageError> {
        let context = "cannot check the OpenStack databases for drift";
        let mut conn = self.conn(context).await?;
        let charset = charset_for(utf8mb4);
        let mut report = DriftReport {
            services: Vec::with_capacity(services.len()),
            clean: true,
        };
        for service in services {
            let state = inspect_service(&mut conn, service)
                .await
                .map_err(|error| classify(context, error))?;
            let drift = state.drift(service, known.get(service.name), &charset);
            report.clean &= drift.missing.is_empty() && drift.differs.is_empty();
            report.services.push(drift);
        }
        Ok(report)
    }
}

fn database_not_found(name: &DatabaseName) -> ManageError {
    ManageError::NotFound(format!("the database {name} does not exist"))
}

fn user_not_found(user: &UserName, host: &HostPattern) -> ManageError {
    ManageError::NotFound(format!(
        "the user {} does not exist",
        account_sql(user, host)
    ))
}

/// The result of a statement on an account that must exist: the server's "operation
/// failed" for the account (1396) means it does not.
fn on_existing_account(
    result: Result<(), mysql_async::Error>,
    context: &str,
    user: &UserName,
    host: &HostPattern,
) -> Result<(), ManageError> {
    match result {
        Ok(()) => Ok(()),
        Err(error) if server_code(&error) == Some(code::CANNOT_USER) => {
            Err(user_not_found(user, host))
        }
        Err(error) => Err(classify(context, error)),
    }
}

/// Databases with their sizes, all or one.
async fn query_databases(
    conn: &mut Conn,
    only: Option<&DatabaseName>,
) -> Result<Vec<DatabaseInfo>, mysql_async::Error> {
    // Views are rows of TABLES too; they have no size and do not count as tables.
    let mut statement = String::from(
        "SELECT s.SCHEMA_NAME, s.DEFAULT_CHARACTER_SET_NAME, s.DEFAULT_COLLATION_NAME, \
         CAST(COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS UNSIGNED), \
         CAST(COALESCE(SUM(t.TABLE_TYPE <> 'VIEW'), 0) AS UNSIGNED) \
         FROM information_schema.SCHEMATA s \
         LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME ",
    );
    let rows: Vec<(String, String, String, u64, u64)> = match only {
        Some(name) => {
            statement.push_str("WHERE s.SCHEMA_NAME = ? GROUP BY s.SCHEMA_NAME");
            conn.exec(statement, (name.as_str(),)).await?
        }
        None => {
            statement.push_str("GROUP BY s.SCHEMA_NAME ORDER BY s.SCHEMA_NAME");
            conn.query(statement).await?
        }
    };
    Ok(rows
        .into_iter()
        .map(
            |(name, charset, collation, size_bytes, tables)| DatabaseInfo {
                name,
                size_bytes,
                charset,
                collation,
                tables,
            },
        )
        .collect())
}

async fn create_database_on(
    conn: &mut Conn,
    name: &DatabaseName,
    charset: Option<&Charset>,
    collation: Option<&Collation>,
    context: &str,
) -> Result<(), ManageError> {
    let mut statement = format!("CREATE DATABASE {}", name.sql());
    if let Some(charset) = charset {
        statement.push_str(&format!(
            " CHARACTER SET {}",
            quote_string(charset.as_str())
        ));
    }
    if let Some(collation) = collation {
        statement.push_str(&format!(" COLLATE {}", quote_string(collation.as_str())));
    }
    let error = match conn.query_drop(statement).await {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    let charset_name = charset.map_or("the server's default", Charset::as_str);
    let collation_name = collation.map_or("", Collation::as_str);
    Err(match server_code(&error) {
        Some(code::DB_CREATE_EXISTS) => {
            ManageError::AlreadyExists(format!("the database {name} exists already"))
        }
        Some(code::UNKNOWN_CHARACTER_SET) => ManageError::Invalid(format!(
            "the server knows no character set {charset_name}; `SHOW CHARACTER SET` lists \
             those it has (utf8mb4 is the one to use for OpenStack)"
        )),
        Some(code::UNKNOWN_COLLATION) => ManageError::Invalid(format!(
            "the server knows no collation {collation_name}; `SHOW COLLATION` lists those it has"
        )),
        Some(code::COLLATION_CHARSET_MISMATCH) => ManageError::Invalid(format!(
            "the collation {collation_name} does not belong to the character set {charset_name}; \
             a collation's name starts with its character set's"
        )),
        _ => classify(context, error),
    })
}

async fn create_user_on(
    conn: &mut Conn,
    user: &UserName,
    host: &HostPattern,
    password: &Password,
) -> Result<(), mysql_async::Error> {
    identified_by(conn, "CREATE USER", user, host, password).await
}

async fn alter_password_on(
    conn: &mut Conn,
    user: &UserName,
    host: &HostPattern,
    password: &Password,
) -> Result<(), mysql_async::Error> {
    identified_by(conn, "ALTER USER", user, host, password).await
}

/// `<statement> 'user'@'host' IDENTIFIED BY PASSWORD '*hash'`: the clear-text password
/// never reaches the server.
async fn identified_by(
    conn: &mut Conn,
    statement: &'static str,
    user: &UserName,
    host: &HostPattern,
    password: &Password,
) -> Result<(), mysql_async::Error> {
    conn.query_drop(format!(
        "{statement} {} IDENTIFIED BY PASSWORD {}",
        account_sql(user, host),
        quote_string(&password.native_hash())
    ))
    .await
}

/// The account's stored native hash (empty when it authenticates otherwise), or `None`
/// when the account does not exist.
async fn account_hash(
    conn: &mut Conn,
    user: &UserName,
    host: &HostPattern,
) -> Result<Option<String>, mysql_async::Error> {
    let row: Option<(String, String)> = conn
        .exec_first(
            "SELECT plugin, authentication_string FROM mysql.user \
             WHERE User = ? AND Host = ? AND is_role = 'N'",
            (user.as_str(), host.as_str()),
        )
        .await?;
    Ok(row.map(|(plugin, hash)| {
        if plugin == "mysql_native_password" || plugin.is_empty() {
            hash
        } else {
            String::new()
        }
    }))
}

async fn show_grants(
    conn: &mut Conn,
    user: &str,
    host: &str,
) -> Result<Vec<String>, mysql_async::Error> {
    let grants: Vec<String> = conn
        .query(format!(
            "SHOW GRANTS FOR {}@{}",
            quote_string(user),
            quote_string(host)
        ))
        .await?;
    Ok(grants.iter().map(|grant| redact_hashes(grant)).collect())
}

/// Whether the account holds every privilege of ALL on exactly this database (granted
/// with `_` escaped, as galley does, or by hand without).
async fn has_all_on(
    conn: &mut Conn,
    user: &UserName,
    host: &HostPattern,
    database: &DatabaseName,
) -> Result<bool, mysql_async::Error> {
    let every = ALL_PRIVILEGE_COLUMNS
        .iter()
        .map(|column| format!("{column} = 'Y'"))
        .collect::<Vec<String>>()
        .join(" AND ");
    let found: Option<String> = conn
        .exec_first(
            format!(
                "SELECT Db FROM mysql.db WHERE User = ? AND Host = ? AND Db IN (?, ?) AND {every}"
            ),
            (
                user.as_str(),
                host.as_str(),
                database.grant_pattern(),
                database.as_str(),
            ),
        )
        .await?;
    Ok(found.is_some())
}

/// What exists of one service.
struct ServiceState {
    /// Each database and its character set when it exists.
    databases: Vec<(DatabaseName, Option<String>)>,
    /// Each host's account: its stored hash (`None`: no account) and, per database,
    /// whether it holds ALL.
    accounts: Vec<(HostPattern, Option<String>, Vec<bool>)>,
}

fn catalog_names(service: &Service) -> (UserName, Vec<DatabaseName>) {
    // The catalog's names are constants that the catalog's tests validate.
    let user = UserName::parse(service.user).expect("catalog user names are valid");
    let databases = service
        .databases
        .iter()
        .map(|database| {
            DatabaseName::parse(database.name).expect("catalog database names are valid")
        })
        .collect();
    (user, databases)
}

async fn inspect_service(
    conn: &mut Conn,
    service: &Service,
) -> Result<ServiceState, mysql_async::Error> {
    let (user, databases) = catalog_names(service);
    let mut state = ServiceState {
        databases: Vec::new(),
        accounts: Vec::new(),
    };
    for database in &databases {
        let charset = query_databases(conn, Some(database))
            .await?
            .pop()
            .map(|info| info.charset);
        state.databases.push((database.clone(), charset));
    }
    for host in service_hosts() {
        let hash = account_hash(conn, &user, &host).await?;
        let mut grants = Vec::new();
        if hash.is_some() {
            for database in &databases {
                grants.push(has_all_on(conn, &user, &host, database).await?);
            }
        }
        state.accounts.push((host, hash, grants));
    }
    Ok(state)
}

impl ServiceState {
    fn drift(
        &self,
        service: &'static Service,
        known: Option<&Password>,
        charset: &Charset,
    ) -> ServiceDrift {
        let user = UserName::parse(service.user).expect("catalog user names are valid");
        let mut drift = ServiceDrift {
            service: service.name,
            missing: Vec::new(),
            differs: Vec::new(),
        };
        for (database, found_charset) in &self.databases {
            match found_charset {
                None => drift.missing.push(format!("database {database}")),
                Some(found) if !found.eq_ignore_ascii_case(charset.as_str()) => drift.differs.push(
                    format!("database {database} has the character set {found}, not {charset}"),
                ),
                Some(_) => {}
            }
        }
        for (host, hash, grants) in &self.accounts {
            let account = account_sql(&user, host);
            let Some(hash) = hash else {
                drift.missing.push(format!("user {account}"));
                continue;
            };
            match known {
                None => drift.differs.push(format!(
                    "the password of {account} is not one galley stored (galley holds none for {})",
                    service.name
                )),
                Some(password) if !password.matches_native_hash(hash) => drift.differs.push(
                    format!("the password of {account} is not the one galley stored"),
                ),
                Some(_) => {}
            }
            for ((database, found_charset), granted) in self.databases.iter().zip(grants) {
                // A grant on a missing database is not reported twice.
                if !granted && found_charset.is_some() {
                    drift
                        .missing
                        .push(format!("grant ALL PRIVILEGES on {database} to {account}"));
                }
            }
        }
        drift
    }
}

async fn provision_service(
    conn: &mut Conn,
    service: &'static Service,
    rotate: bool,
    known: &BTreeMap<String, Password>,
    charset: &Charset,
) -> Result<ServiceProvision, ManageError> {
    let context = format!("cannot provision {}", service.name);
    let state = inspect_service(conn, service)
        .await
        .map_err(|error| classify(&context, error))?;
    let (user, databases) = catalog_names(service);
    let mut changes = Vec::new();

    for (database, found_charset) in &state.databases {
        if found_charset.is_none() {
            match create_database_on(conn, database, Some(charset), None, &context).await {
                Ok(()) => changes.push(format!("created database {database}")),
                // Another client created it since the look: it is there, as wanted.
                Err(ManageError::AlreadyExists(_)) => {}
                Err(error) => return Err(error),
            }
        }
    }

    let (password, password_changed) = match known.get(service.name) {
        Some(password) if !rotate => (password.clone(), false),
        _ => (Password::generate(), true),
    };
    for (host, hash, _) in &state.accounts {
        let account = account_sql(&user, host);
        match hash {
            None => {
                create_user_on(conn, &user, host, &password)
                    .await
                    .map_err(|error| classify(&context, error))?;
                changes.push(format!("created user {account}"));
            }
            Some(hash) if !password.matches_native_hash(hash) => {
                alter_password_on(conn, &user, host, &password)
                    .await
                    .map_err(|error| classify(&context, error))?;
                changes.push(format!("set the password of {account}"));
            }
            Some(_) => {}
        }
        for database in &databases {
            // Checked again rather than taken from the state: the account or the
            // database may have just been created.
            if !has_all_on(conn, &user, host, database)
                .await
                .map_err(|error| classify(&context, error))?
            {
                conn.query_drop(format!(
                    "GRANT ALL PRIVILEGES ON {}.* TO {account}",
                    database.grant_pattern_sql()
                ))
                .await
                .map_err(|error| classify(&context, error))?;
                changes.push(format!("granted ALL PRIVILEGES on {database} to {account}"));
            }
        }
    }

    Ok(ServiceProvision {
        service: service.name,
        user: service.user,
        databases: service.database_names(),
        changes,
        password,
        password_changed,
        charset: charset.clone(),
        catalog: service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state of nova (nova_api, nova, nova_cell0): each database's character set, and
    /// per host the stored hash and the grants held.
    fn nova_state(
        charsets: [Option<&str>; 3],
        accounts: [Option<(&str, [bool; 3])>; 2],
    ) -> ServiceState {
        let service = catalog::resolve("nova").unwrap();
        let (_, databases) = catalog_names(service);
        ServiceState {
            databases: databases
                .into_iter()
                .zip(charsets)
                .map(|(name, charset)| (name, charset.map(str::to_owned)))
                .collect(),
            accounts: service_hosts()
                .into_iter()
                .zip(accounts)
                .map(|(host, account)| match account {
                    Some((hash, grants)) => (host, Some(hash.to_owned()), grants.to_vec()),
                    None => (host, None, Vec::new()),
                })
                .collect(),
        }
    }

    #[test]
    fn drift_names_what_is_missing_and_what_differs() {
        let nova = catalog::resolve("nova").unwrap();
        let known = Password::parse("password").unwrap();
        let hash = known.native_hash();
        let other = Password::parse("other").unwrap().native_hash();
        let utf8mb4 = Some("utf8mb4");
        let all = [true; 3];
        let check = |state: ServiceState,
                     password: Option<&Password>,
                     missing: &[&str],
                     differs: &[&str]| {
            let drift = state.drift(nova, password, &Charset::utf8mb4());
            assert_eq!(drift.missing, missing);
            assert_eq!(drift.differs, differs);
        };
        check(
            nova_state([utf8mb4; 3], [Some((&hash, all)), Some((&hash, all))]),
            Some(&known),
            &[],
            &[],
        );
        check(
            nova_state([None; 3], [None, None]),
            Some(&known),
            &[
                "database nova_api",
                "database nova",
                "database nova_cell0",
                "user 'nova'@'%'",
                "user 'nova'@'localhost'",
            ],
            &[],
        );
        check(
            nova_state(
                [utf8mb4, Some("latin1"), None],
                [Some((&other, [false, true, false])), Some((&hash, all))],
            ),
            Some(&known),
            &[
                "database nova_cell0",
                "grant ALL PRIVILEGES on nova_api to 'nova'@'%'",
            ],
            &[
                "database nova has the character set latin1, not utf8mb4",
                "the password of 'nova'@'%' is not the one galley stored",
            ],
        );
        check(
            nova_state([utf8mb4; 3], [Some(("", all)), None]),
            None,
            &["user 'nova'@'localhost'"],
            &["the password of 'nova'@'%' is not one galley stored (galley holds none for nova)"],
        );
    }
}
