//! The schema and its migrations, versioned by `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes a database from version `i` to `i + 1`. A new version appends a
//! migration; released ones never change.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // Version 1. AUTOINCREMENT keeps ids unique for the life of the file, so an id
    // handed out (an approval to consume, say) never names a different row after a prune.
    "
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        kind TEXT NOT NULL,
        node TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX events_at ON events (at_ms);
    CREATE INDEX events_node_at ON events (node, at_ms);

    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        rule TEXT NOT NULL,
        action TEXT NOT NULL,
        node TEXT,
        reason TEXT NOT NULL,
        evidence TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX decisions_at ON decisions (at_ms);

    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        node TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL
    );
    CREATE INDEX transitions_at ON transitions (at_ms);
    CREATE INDEX transitions_node_at ON transitions (node, at_ms);

    -- The rates are nullable because SQLite stores a NaN as NULL.
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        node TEXT NOT NULL,
        last_committed INTEGER NOT NULL,
        queries_per_second REAL,
        flow_control_paused REAL,
        recv_queue INTEGER NOT NULL,
        send_queue INTEGER NOT NULL,
        cert_failures INTEGER NOT NULL,
        bf_aborts INTEGER NOT NULL,
        connections INTEGER NOT NULL,
        replicated INTEGER NOT NULL
    );
    CREATE INDEX samples_at ON samples (at_ms);
    CREATE INDEX samples_node_at ON samples (node, at_ms);

    -- Single-row tables: the CHECK keeps them single.
    CREATE TABLE high_water_mark (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        uuid TEXT NOT NULL,
        seqno INTEGER NOT NULL,
        node TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );

    CREATE TABLE lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );

    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        step TEXT NOT NULL,
        force INTEGER NOT NULL CHECK (force IN (0, 1)),
        consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1))
    );
    CREATE INDEX approvals_step_at ON approvals (step, at_ms);
    ",
    // Version 2: nodes an operator stopped on purpose, which the controller leaves down.
    "
    CREATE TABLE desired (
        node TEXT PRIMARY KEY,
        running INTEGER NOT NULL CHECK (running IN (0, 1)),
        at_ms INTEGER NOT NULL
    );
    ",
    // Version 3: the API's accounts (console users, sessions, API tokens), the
    // passwords of provisioned OpenStack services, and the replication rate sample.
    // Session ids and tokens are stored as hashes only.
    "
    CREATE TABLE console_users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );

    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX sessions_expires ON sessions (expires_ms);

    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        last_used_ms INTEGER
    );

    CREATE TABLE service_credentials (
        service TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        password TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );

    ALTER TABLE samples ADD COLUMN replication_bytes_per_second REAL;
    ALTER TABLE decisions ADD COLUMN situation TEXT;
    ",
    // Version 4: one high-water mark per cluster history (rule 10), the history the
    // cluster accepted, and every change of the accepted history or lowering of a mark,
    // kept for good (events are pruned). The single mark of version 3 becomes the
    // accepted history's.
    "
    CREATE TABLE history_marks (
        uuid TEXT PRIMARY KEY,
        seqno INTEGER NOT NULL,
        node TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    INSERT INTO history_marks (uuid, seqno, node, at_ms)
        SELECT uuid, seqno, node, at_ms FROM high_water_mark;

    CREATE TABLE accepted_history (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        uuid TEXT NOT NULL REFERENCES history_marks (uuid),
        at_ms INTEGER NOT NULL
    );
    INSERT INTO accepted_history (id, uuid, at_ms)
        SELECT 1, uuid, at_ms FROM high_water_mark;

    CREATE TABLE mark_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        uuid TEXT NOT NULL,
        from_seqno INTEGER,
        to_seqno INTEGER NOT NULL,
        previous_history TEXT,
        reason TEXT NOT NULL
    );
    INSERT INTO mark_changes (at_ms, uuid, from_seqno, to_seqno, previous_history, reason)
        SELECT at_ms, uuid, NULL, seqno, NULL,
            'the high-water mark of schema version 3 becomes the accepted history''s'
        FROM high_water_mark;

    DROP TABLE high_water_mark;
    ",
    // Version 5: API tokens get a scope (what they may do), an expiry and an owner (the
    // console user whose password change or removal revokes them; NULL for a token made
    // with the cluster token). Tokens of an older file keep the powers they had
    // (`admin`), belong to the console's `admin` when it exists (the only console user
    // galley creates), and expire 90 days after their creation but no sooner than 14
    // days after this migration, so that an upgrade does not cut off a script at once.
    "
    ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
        CHECK (scope IN ('read', 'manage', 'admin'));
    ALTER TABLE api_tokens ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE api_tokens ADD COLUMN owner TEXT
        REFERENCES console_users (name) ON DELETE CASCADE;
    UPDATE api_tokens SET
        expires_ms = MAX(created_ms + 90 * 86400000,
            CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 14 * 86400000),
        owner = (SELECT name FROM console_users WHERE name = 'admin');
    CREATE INDEX api_tokens_owner ON api_tokens (owner);
    ",
];

pub(crate) fn version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// What `migrate` found.
pub(crate) enum Migration {
    /// The schema is current (now, possibly after migrating).
    Current,
    /// The file is newer than this build; nothing was changed.
    TooNew { found: i64 },
}

/// Brings the schema to [`SCHEMA_VERSION`] in one immediate transaction, reading the
/// version inside it so that two processes opening a new file at once migrate it once.
pub(crate) fn migrate(connection: &Connection) -> rusqlite::Result<Migration> {
    let transaction = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
    let found = version(&transaction)?;
    // A negative version was not written by galley; treat it like a newer one.
    let applied = match usize::try_from(found) {
        Ok(applied) if found <= SCHEMA_VERSION => applied,
        _ => return Ok(Migration::TooNew { found }),
    };
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", from as i64 + 1)?;
    }
    transaction.commit()?;
    Ok(Migration::Current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let connection = Connection::open_in_memory().unwrap();
        assert_eq!(version(&connection).unwrap(), 0);
        assert!(matches!(migrate(&connection).unwrap(), Migration::Current));
        assert_eq!(version(&connection).unwrap(), SCHEMA_VERSION);
        assert!(matches!(migrate(&connection).unwrap(), Migration::Current));
        assert_eq!(version(&connection).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_2_file_keeps_its_samples_and_gains_the_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("galley.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection.execute_batch(MIGRATIONS[1]).unwrap();
            connection.pragma_update(None, "user_version", 2).unwrap();
            connection
                .execute(
                    "INSERT INTO samples (at_ms, node, last_committed, queries_per_second,
                         flow_control_paused, recv_queue, send_queue, cert_failures, bf_aborts,
                         connections, replicated)
                     VALUES (5, 'node1', 7, 1.5, 0.0, 0, 0, 0, 0, 3, 9)",
                    [],
                )
                .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(version(&store.connection).unwrap(), SCHEMA_VERSION);
        let samples = store.samples(None, 0, 10).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].replicated, 9);
        assert!(samples[0].replication_bytes_per_second.is_nan());
        store
            .create_api_token(&crate::NewApiToken {
                name: "ci".to_owned(),
                token_hash: "hash".to_owned(),
                scope: "read".to_owned(),
                owner: None,
                created_ms: 1,
                expires_ms: 2,
            })
            .unwrap();
        assert_eq!(store.api_tokens().unwrap().len(), 1);
    }

    #[test]
    fn the_tokens_of_a_version_4_file_keep_their_powers_and_gain_an_owner_and_an_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("galley.db");
        let day_ms = 86_400_000;
        // Made now, and a year ago.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..4] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 4).unwrap();
            connection
                .execute_batch(&format!(
                    "INSERT INTO console_users (name, password_hash, updated_ms)
                         VALUES ('admin', 'hash', 1);
                     INSERT INTO api_tokens (name, token_hash, created_ms)
                         VALUES ('fresh', 'h1', {now_ms}), ('old', 'h2', {});",
                    now_ms - 365 * day_ms
                ))
                .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        let tokens = store.api_tokens().unwrap();
        assert_eq!(tokens.len(), 2);
        for token in &tokens {
            assert_eq!(token.scope, "admin", "{token:?}");
            assert_eq!(token.owner.as_deref(), Some("admin"), "{token:?}");
        }
        assert_eq!(tokens[0].expires_ms, now_ms + 90 * day_ms);
        // The old one is not cut off by the upgrade: it has two weeks (give or take
        // the seconds this test takes).
        let grace = tokens[1].expires_ms - now_ms;
        assert!(
            (14 * day_ms - 60_000..=14 * day_ms + 60_000).contains(&grace),
            "{grace}"
        );
        // A password change now revokes them.
        store.set_console_user("admin", "new", 2).unwrap();
        assert!(store.api_tokens().unwrap().is_empty());
    }

    /// A file of schema version 3, with its single high-water mark when given.
    fn version_3_file(path: &std::path::Path, mark: Option<(&str, i64)>) {
        let connection = Connection::open(path).unwrap();
        for migration in &MIGRATIONS[..3] {
            connection.execute_batch(migration).unwrap();
        }
        connection.pragma_update(None, "user_version", 3).unwrap();
        if let Some((uuid, seqno)) = mark {
            connection
                .execute(
                    "INSERT INTO high_water_mark (id, uuid, seqno, node, at_ms)
                     VALUES (1, ?1, ?2, 'node2', 42)",
                    rusqlite::params![uuid, seqno],
                )
                .unwrap();
        }
    }

    #[test]
    fn the_single_mark_of_version_3_becomes_the_accepted_historys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("galley.db");
        version_3_file(&path, Some(("u1", 77)));
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(version(&store.connection).unwrap(), SCHEMA_VERSION);
        let marks = store.high_water_marks().unwrap();
        let expected = crate::HighWaterMark {
            uuid: "u1".to_owned(),
            seqno: 77,
            node: "node2".to_owned(),
            at_ms: 42,
        };
        assert_eq!(marks.accepted, Some(expected));
        assert!(marks.others.is_empty());
        let changes = store.mark_changes().unwrap();
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0].reason.contains("schema version 3"),
            "{changes:?}"
        );
        // The migrated history is the accepted one: another is only recorded beside it.
        let other = crate::HighWaterMark {
            uuid: "u2".to_owned(),
            seqno: 5,
            node: "node1".to_owned(),
            at_ms: 50,
        };
        assert_eq!(
            store.raise_high_water_mark(&other).unwrap(),
            crate::MarkRaise::NewHistory
        );
        assert_eq!(
            store.high_water_marks().unwrap().accepted.unwrap().uuid,
            "u1"
        );
    }

    #[test]
    fn a_version_3_file_without_a_mark_adopts_the_first_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("galley.db");
        version_3_file(&path, None);
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(
            store.high_water_marks().unwrap(),
            crate::HighWaterMarks::default()
        );
        assert!(store.mark_changes().unwrap().is_empty());
        let first = crate::HighWaterMark {
            uuid: "u1".to_owned(),
            seqno: 5,
            node: "node1".to_owned(),
            at_ms: 50,
        };
        assert_eq!(
            store.raise_high_water_mark(&first).unwrap(),
            crate::MarkRaise::Adopted
        );
    }

    #[test]
    fn a_newer_schema_is_left_alone() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        match migrate(&connection).unwrap() {
            Migration::TooNew { found } => assert_eq!(found, SCHEMA_VERSION + 1),
            Migration::Current => panic!("a newer schema was accepted"),
        }
    }
}
