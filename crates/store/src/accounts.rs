//! Who may use the controller's API and what it provisioned: console users (argon2
//! hashes), console sessions, API tokens (hashes, with a scope, an expiry and the console
//! user they belong to), and the passwords of provisioned OpenStack service accounts.
//!
//! A console user's sessions and API tokens end with its password (a change or a reset)
//! and with the user itself: whoever knew the old password may have made them.
//!
//! The store keeps only what it is given: hashing is the caller's job, so that the
//! store needs no crypto crate and a hash never has to be recomputed here. Session ids
//! and API tokens arrive already hashed; a row never holds the secret a client presents.
//! Service passwords are stored in the clear because the API must hand them back in
//! the services' config lines; the file's mode (0600) protects them.

use std::fmt;

use rusqlite::{params, OptionalExtension};

use crate::{Result, Store};

/// A console session as stored: the user it belongs to, its CSRF token and expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub username: String,
    pub csrf_token: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("username", &self.username)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// An API token as listed: never its secret, which only its creator saw once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `read`, `manage` or `admin` (a CHECK constraint keeps it to these); the
    /// controller gives them their meaning.
    pub scope: String,
    /// The console user whose password change or removal revokes the token; None for a
    /// token made with the cluster token.
    pub owner: Option<String>,
    pub created_ms: i64,
    /// The token is refused from this time on.
    pub expires_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// A token to record: the hash of its secret and what [`ApiToken`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub name: String,
    pub token_hash: String,
    pub scope: String,
    pub owner: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// What a new password (or a removed user) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndedCredentials {
    pub sessions: usize,
    pub tokens: usize,
}

const TOKEN_COLUMNS: &str = "id, name, scope, owner, created_ms, expires_ms, last_used_ms";

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        name: row.get(1)?,
        scope: row.get(2)?,
        owner: row.get(3)?,
        created_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        last_used_ms: row.get(6)?,
    })
}

/// The account of a provisioned OpenStack service.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceCredential {
    pub service: String,
    pub user: String,
    pub password: String,
}

impl fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCredential")
            .field("service", &self.service)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates the console user or replaces its password hash. A new password ends
    /// every session and revokes every API token of that user, in one transaction:
    /// whoever knew the old password is logged out and keeps no token made with it.
    pub fn set_console_user(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<EndedCredentials> {
        let transaction = rusqlite::Transaction::new_unchecked(
            self.writable()?,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        transaction.execute(
            "INSERT INTO console_users (name, password_hash, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                 updated_ms = excluded.updated_ms",
            params![name, password_hash, now_ms],
        )?;
        let ended = EndedCredentials {
            sessions: transaction.execute("DELETE FROM sessions WHERE username = ?1", [name])?,
            tokens: transaction.execute("DELETE FROM api_tokens WHERE owner = ?1", [name])?,
        };
        transaction.commit()?;
        Ok(ended)
    }

    /// Removes a console user with its sessions and API tokens (the foreign keys
    /// cascade); returns whether it existed.
    pub fn delete_console_user(&self, name: &str) -> Result<bool> {
        Ok(self
            .writable()?
            .execute("DELETE FROM console_users WHERE name = ?1", [name])?
            > 0)
    }

    /// The stored password hash of a console user, if the user exists.
    pub fn console_user_hash(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .connection
            .query_row(
                "SELECT password_hash FROM console_users WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn create_session(&self, id_hash: &str, session: &SessionRecord) -> Result<()> {
        self.writable()?.execute(
            "INSERT INTO sessions (id_hash, username, csrf_token, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id_hash,
                session.username,
                session.csrf_token,
                session.created_ms,
                session.expires_ms
            ],
        )?;
        Ok(())
    }

    /// The session with this hashed id, unless it expired at or before `now_ms`.
    pub fn session(&self, id_hash: &str, now_ms: i64) -> Result<Option<SessionRecord>> {
        Ok(self
            .connection
            .query_row(
                "SELECT username, csrf_token, created_ms, expires_ms FROM sessions
                 WHERE id_hash = ?1 AND expires_ms > ?2",
                params![id_hash, now_ms],
                |row| {
                    Ok(SessionRecord {
                        username: row.get(0)?,
                        csrf_token: row.get(1)?,
                        created_ms: row.get(2)?,
                        expires_ms: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ends a session; returns whether it existed.
    pub fn delete_session(&self, id_hash: &str) -> Result<bool> {
        Ok(self
            .writable()?
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?
            > 0)
    }

    /// Forgets sessions that expired at or before `now_ms`; returns how many.
    pub fn delete_expired_sessions(&self, now_ms: i64) -> Result<usize> {
        Ok(self
            .writable()?
            .execute("DELETE FROM sessions WHERE expires_ms <= ?1", [now_ms])?)
    }

    /// Records a new API token by the hash of its secret; returns its id. The owner,
    /// when given, must be a console user.
    pub fn create_api_token(&self, token: &NewApiToken) -> Result<i64> {
        let connection = self.writable()?;
        connection.execute(
            "INSERT INTO api_tokens (name, token_hash, scope, owner, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.name,
                token.token_hash,
                token.scope,
                token.owner,
                token.created_ms,
                token.expires_ms
            ],
        )?;
        Ok(connection.last_insert_rowid())
    }

    /// Every API token, oldest first (expired ones too, until revoked).
    pub fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        ))?;
        let rows = statement.query_map([], token_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The token with this hash, if any, expired or not. Only reads: a request with a
    /// made-up token must not cost a write (or wait for the write lock).
    pub fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        Ok(self
            .connection
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?1"),
                [token_hash],
                token_from_row,
            )
            .optional()?)
    }

    /// Records that a token was used at `now_ms`. The caller decides how often (not on
    /// every request).
    pub fn record_api_token_use(&self, id: i64, now_ms: i64) -> Result<()> {
        self.writable()?.execute(
            "UPDATE api_tokens SET last_used_ms = ?2 WHERE id = ?1",
            params![id, now_ms],
        )?;
        Ok(())
    }

    /// Revokes a token; returns whether it existed.
    pub fn revoke_api_token(&self, id: i64) -> Result<bool> {
        Ok(self
            .writable()?
            .execute("DELETE FROM api_tokens WHERE id = ?1", [id])?
            > 0)
    }

    /// Records (or replaces) the account of a provisioned service.
    pub fn set_service_credential(
        &self,
        credential: &ServiceCredential,
        now_ms: i64,
    ) -> Result<()> {
        self.writable()?.execute(
            "INSERT INTO service_credentials (service, user, password, updated_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (service) DO UPDATE SET user = excluded.user,
                 password = excluded.password, updated_ms = excluded.updated_ms",
            params![
                credential.service,
                credential.user,
                credential.password,
                now_ms
            ],
        )?;
        Ok(())
    }

    pub fn service_credential(&self, service: &str) -> Result<Option<ServiceCredential>> {
        Ok(self
            .connection
            .query_row(
                "SELECT service, user, password FROM service_credentials WHERE service = ?1",
                [service],
                |row| {
                    Ok(ServiceCredential {
                        service: row.get(0)?,
                        user: row.get(1)?,
                        password: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every provisioned service's account, by service name.
    pub fn service_credentials(&self) -> Result<Vec<ServiceCredential>> {
        let mut statement = self
            .connection
            .prepare("SELECT service, user, password FROM service_credentials ORDER BY service")?;
        let rows = statement.query_map([], |row| {
            Ok(ServiceCredential {
                service: row.get(0)?,
                user: row.get(1)?,
                password: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("galley.db")).unwrap();
        (dir, store)
    }

    fn session(user: &str, expires_ms: i64) -> SessionRecord {
        SessionRecord {
            username: user.to_owned(),
            csrf_token: format!("csrf-{user}"),
            created_ms: 0,
            expires_ms,
        }
    }

    fn token(name: &str, hash: &str, owner: Option<&str>, created_ms: i64) -> NewApiToken {
        NewApiToken {
            name: name.to_owned(),
            token_hash: hash.to_owned(),
            scope: "read".to_owned(),
            owner: owner.map(str::to_owned),
            created_ms,
            expires_ms: created_ms + 1000,
        }
    }

    #[test]
    fn console_user_password_replaces_and_ends_sessions_and_tokens() {
        let (_dir, store) = store();
        assert_eq!(store.console_user_hash("admin").unwrap(), None);
        assert_eq!(
            store.set_console_user("admin", "hash-1", 10).unwrap(),
            EndedCredentials::default()
        );
        store.set_console_user("ops", "hash-ops", 10).unwrap();
        store
            .create_session("session-a", &session("admin", 1000))
            .unwrap();
        store
            .create_api_token(&token("ci", "hash-ci", Some("admin"), 11))
            .unwrap();
        store
            .create_api_token(&token("ops", "hash-ops", Some("ops"), 11))
            .unwrap();
        store
            .create_api_token(&token("root", "hash-root", None, 11))
            .unwrap();
        assert!(store.session("session-a", 20).unwrap().is_some());
        let ended = store.set_console_user("admin", "hash-2", 30).unwrap();
        assert_eq!(
            ended,
            EndedCredentials {
                sessions: 1,
                tokens: 1
            }
        );
        assert_eq!(
            store.console_user_hash("admin").unwrap().as_deref(),
            Some("hash-2")
        );
        assert_eq!(store.session("session-a", 40).unwrap(), None);
        assert_eq!(store.api_token("hash-ci").unwrap(), None);
        // Another user's tokens and the cluster token's stay.
        assert!(store.api_token("hash-ops").unwrap().is_some());
        assert!(store.api_token("hash-root").unwrap().is_some());
    }

    #[test]
    fn removing_a_console_user_ends_its_sessions_and_tokens() {
        let (_dir, store) = store();
        store.set_console_user("ops", "hash", 1).unwrap();
        store.create_session("s", &session("ops", 100)).unwrap();
        store
            .create_api_token(&token("ci", "hash-ci", Some("ops"), 2))
            .unwrap();
        assert!(store.delete_console_user("ops").unwrap());
        assert!(!store.delete_console_user("ops").unwrap());
        assert_eq!(store.session("s", 3).unwrap(), None);
        assert_eq!(store.api_token("hash-ci").unwrap(), None);
        assert_eq!(store.console_user_hash("ops").unwrap(), None);
    }

    #[test]
    fn a_token_needs_a_known_scope_and_an_existing_owner() {
        let (_dir, store) = store();
        let mut bad = token("ci", "hash", None, 1);
        bad.scope = "root".to_owned();
        assert!(store.create_api_token(&bad).is_err());
        assert!(store
            .create_api_token(&token("ci", "hash", Some("nobody"), 1))
            .is_err());
    }

    #[test]
    fn looking_a_token_up_only_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("galley.db");
        let store = Store::open(&path).unwrap();
        store
            .create_api_token(&token("ci", "hash-ci", None, 5))
            .unwrap();
        // A read-only handle can look tokens up: the lookup writes nothing.
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.api_token("made-up").unwrap(), None);
        assert_eq!(reader.api_token("hash-ci").unwrap().unwrap().name, "ci");
        assert!(reader.record_api_token_use(1, 6).is_err());
    }

    #[test]
    fn sessions_expire_and_end() {
        let (_dir, store) = store();
        store.set_console_user("admin", "hash", 0).unwrap();
        store
            .create_session("live", &session("admin", 100))
            .unwrap();
        store.create_session("old", &session("admin", 50)).unwrap();
        assert_eq!(
            store.session("live", 99).unwrap(),
            Some(session("admin", 100))
        );
        assert_eq!(store.session("live", 100).unwrap(), None, "expired at 100");
        assert_eq!(store.delete_expired_sessions(60).unwrap(), 1);
        assert!(store.delete_session("live").unwrap());
        assert!(!store.delete_session("live").unwrap());
        assert_eq!(store.session("live", 0).unwrap(), None);
    }

    #[test]
    fn a_session_needs_an_existing_user() {
        let (_dir, store) = store();
        assert!(store
            .create_session("orphan", &session("nobody", 100))
            .is_err());
    }

    #[test]
    fn api_tokens_are_found_by_hash_marked_used_and_revoked() {
        let (_dir, store) = store();
        store.set_console_user("admin", "hash", 1).unwrap();
        let first = store
            .create_api_token(&token("ci", "hash-ci", Some("admin"), 5))
            .unwrap();
        let second = store
            .create_api_token(&token("ops", "hash-ops", None, 6))
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(store.api_token("unknown").unwrap(), None);
        store.record_api_token_use(first, 8).unwrap();
        let used = store.api_token("hash-ci").unwrap().unwrap();
        assert_eq!(
            used,
            ApiToken {
                id: first,
                name: "ci".to_owned(),
                scope: "read".to_owned(),
                owner: Some("admin".to_owned()),
                created_ms: 5,
                expires_ms: 1005,
                last_used_ms: Some(8)
            }
        );
        let listed = store.api_tokens().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].last_used_ms, None);
        assert!(store.revoke_api_token(first).unwrap());
        assert!(!store.revoke_api_token(first).unwrap());
        assert_eq!(store.api_token("hash-ci").unwrap(), None);
        // Ids are never reused, so a revoked id never names a newer token.
        let third = store
            .create_api_token(&token("ci", "hash-ci-2", None, 10))
            .unwrap();
        assert!(third > second);
    }

    #[test]
    fn two_tokens_cannot_share_a_hash() {
        let (_dir, store) = store();
        store
            .create_api_token(&token("a", "same", None, 1))
            .unwrap();
        assert!(store
            .create_api_token(&token("b", "same", None, 2))
            .is_err());
    }

    #[test]
    fn service_credentials_round_trip_and_hide_the_password() {
        let (_dir, store) = store();
        let nova = ServiceCredential {
            service: "nova".to_owned(),
            user: "nova".to_owned(),
            password: "s3cret-value".to_owned(),
        };
        store.set_service_credential(&nova, 1).unwrap();
        assert_eq!(
            store.service_credential("nova").unwrap(),
            Some(nova.clone())
        );
        let rotated = ServiceCredential {
            password: "other".to_owned(),
            ..nova.clone()
        };
        store.set_service_credential(&rotated, 2).unwrap();
        assert_eq!(store.service_credentials().unwrap(), vec![rotated]);
        assert_eq!(store.service_credential("glance").unwrap(), None);
        assert!(!format!("{nova:?}").contains("s3cret"));
    }
}
