//! Validated names for everything a caller can put into account and schema SQL, and the
//! quoting every statement applies on top of the validation.
//!
//! The rules are stricter than MariaDB's: ASCII only (a Cyrillic `а` that looks like a
//! Latin `a` is refused, so that two accounts cannot look alike), no quotes, backticks,
//! `;`, whitespace or control characters, and bounded lengths. A value that passes can
//! still only reach SQL through [`quote_identifier`] or [`quote_string`]: validation and
//! quoting are two independent defences, and either alone keeps injection out.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The schemas the server owns, and galley's own (`galley`: the proxies' shared writer
/// record, ARCHITECTURE.md "One writer for every proxy"). galley lists none of them as a
/// user database and never creates, drops or grants on them through this crate.
pub const SYSTEM_SCHEMAS: [&str; 5] = [
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "galley",
];

/// Accounts that belong to the server or to galley itself (`galley_admin`,
/// `galley_monitor`, and any other `galley_` name): never created, dropped, changed or
/// granted to through this crate, so that no API call can lock galley out of its cluster.
pub const SYSTEM_USERS: [&str; 4] = ["root", "mariadb.sys", "mysql", "PUBLIC"];

/// The prefix of galley's own accounts.
pub const GALLEY_USER_PREFIX: &str = "galley_";

/// Which kind of value a [`NameError`] is about; its `Display` is the phrase used in
/// messages ("database name", "host pattern", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// A schema name.
    Database,
    /// An account's user part.
    User,
    /// An account's host part.
    Host,
    /// One privilege of a grant.
    Privilege,
    /// A character set name.
    Charset,
    /// A collation name.
    Collation,
    /// A password (its value is never shown).
    Password,
    /// An OpenStack service name.
    Service,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Database => "database name",
            Field::User => "user name",
            Field::Host => "host pattern",
            Field::Privilege => "privilege",
            Field::Charset => "character set",
            Field::Collation => "collation",
            Field::Password => "password",
            Field::Service => "OpenStack service",
        })
    }
}

/// A refused name: which field, the value (escaped and truncated so that it is safe to
/// print and log), what is wrong with it and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The value breaks the rules of its field.
    #[error("invalid {field} {shown}: {problem}; {allowed}")]
    Invalid {
        /// The kind of value.
        field: Field,
        /// The value, quoted, escaped and truncated (`(hidden)` for a password).
        shown: String,
        /// What is wrong, e.g. "contains `;` at position 2".
        problem: String,
        /// What the field allows.
        allowed: &'static str,
    },
    /// A system schema where a user database is needed.
    #[error(
        "the database {shown} is a system schema of the server (mysql, information_schema, \
         performance_schema, sys) or galley's own (galley); galley never creates, drops or grants on it"
    )]
    SystemSchema {
        /// The name, quoted.
        shown: String,
    },
    /// An account of the server or of galley where a user account is needed.
    #[error(
        "the user {shown} is an internal account (root, mariadb.sys, mysql, PUBLIC and galley_*); \
         galley never creates, drops, changes or grants to it through this interface"
    )]
    SystemUser {
        /// The name, quoted.
        shown: String,
    },
}

impl NameError {
    /// The field the error is about.
    pub fn field(&self) -> Field {
        match self {
            NameError::Invalid { field, .. } => *field,
            NameError::SystemSchema { .. } => Field::Database,
            NameError::SystemUser { .. } => Field::User,
        }
    }
}

/// How many characters of a refused value an error message shows.
const SHOWN_CHARACTERS: usize = 40;

/// The value in double quotes, every character outside printable ASCII escaped
/// (`\u{430}`, `\n`, `\0`) and cut after 40 characters, so that a
/// message can be printed, logged and put in JSON without surprises.
pub fn shown(value: &str) -> String {
    let mut text = String::from("\"");
    for (index, character) in value.chars().enumerate() {
        if index == SHOWN_CHARACTERS {
            text.push_str(&format!("...\" ({} characters)", value.chars().count()));
            return text;
        }
        match character {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            ' '..='~' => text.push(character),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            '\0' => text.push_str("\\0"),
            other => text.push_str(&format!("\\u{{{:x}}}", other as u32)),
        }
    }
    text.push('"');
    text
}

/// A phrase naming a character, e.g. "`;`", "a space", "the non-ASCII character U+0430".
fn describe_character(character: char) -> String {
    match character {
        ' ' => "a space".to_owned(),
        '`' => "a backtick (`)".to_owned(),
        '\'' => "a single quote (')".to_owned(),
        '"' => "a double quote (\")".to_owned(),
        '\0' => "a NUL character".to_owned(),
        '\n' => "a newline".to_owned(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c if c.is_ascii() => format!("the control character U+{:04X}", c as u32),
        c if c.is_whitespace() => format!("the non-ASCII white space U+{:04X}", c as u32),
        c => format!(
            "the non-ASCII character U+{:04X} (only ASCII is allowed, so that look-alike letters cannot pass)",
            c as u32
        ),
    }
}

fn invalid(field: Field, value: &str, problem: String, allowed: &'static str) -> NameError {
    let shown = if field == Field::Password {
        "(hidden)".to_owned()
    } else {
        shown(value)
    };
    NameError::Invalid {
        field,
        shown,
        problem,
        allowed,
    }
}

/// Checks length and characters: `allowed_character` decides each character; the first
/// that fails is named with its 1-based position.
fn check_characters(
    field: Field,
    value: &str,
    max_length: usize,
    allowed_character: impl Fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(invalid(field, value, "it is empty".to_owned(), allowed));
    }
    if let Some((position, character)) = value
        .chars()
        .enumerate()
        .find(|(_, character)| !allowed_character(*character))
    {
        return Err(invalid(
            field,
            value,
            format!(
                "it contains {} at position {}",
                describe_character(character),
                position + 1
            ),
            allowed,
        ));
    }
    // Only ASCII got here, so bytes are characters.
    if value.len() > max_length {
        return Err(invalid(
            field,
            value,
            format!(
                "it is {} characters long, more than {max_length}",
                value.len()
            ),
            allowed,
        ));
    }
    Ok(())
}

/// A schema name: ASCII letters, digits and `_`, 1 to 64 characters.
///
/// Case is kept: on Linux MariaDB treats `Nova` and `nova` as two databases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DatabaseName(String);

const DATABASE_ALLOWED: &str =
    "a database name has 1 to 64 characters, each an ASCII letter, digit or `_`";

impl DatabaseName {
    /// Checks the syntax only; a system schema such as `mysql` passes (see
    /// [`DatabaseName::parse_managed`]).
    pub fn parse(value: &str) -> Result<DatabaseName, NameError> {
        check_characters(
            Field::Database,
            value,
            64,
            |c| c.is_ascii_alphanumeric() || c == '_',
            DATABASE_ALLOWED,
        )?;
        Ok(DatabaseName(value.to_owned()))
    }

    /// [`DatabaseName::parse`], and refuses the system schemas: for create, drop and grant.
    pub fn parse_managed(value: &str) -> Result<DatabaseName, NameError> {
        let name = DatabaseName::parse(value)?;
        name.ensure_not_system()?;
        Ok(name)
    }

    /// Whether this is one of [`SYSTEM_SCHEMAS`] (compared without case: the server
    /// resolves `INFORMATION_SCHEMA` in any case).
    pub fn is_system(&self) -> bool {
        SYSTEM_SCHEMAS
            .iter()
            .any(|system| system.eq_ignore_ascii_case(&self.0))
    }

    /// `Err(NameError::SystemSchema)` for a system schema.
    pub fn ensure_not_system(&self) -> Result<(), NameError> {
        if self.is_system() {
            return Err(NameError::SystemSchema {
                shown: shown(&self.0),
            });
        }
        Ok(())
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted identifier for SQL, e.g. `` `nova` ``.
    pub fn sql(&self) -> String {
        quote_identifier(&self.0)
    }

    /// The quoted database pattern for `GRANT ... ON <pattern>.*`: `_` is a wildcard
    /// there, so it is escaped (`` `nova\_api` ``) and the grant covers this database
    /// only, not `novaXapi` as well.
    pub fn grant_pattern_sql(&self) -> String {
        quote_identifier(&self.grant_pattern())
    }

    /// The pattern as the grant tables store it (`nova\_api`).
    pub fn grant_pattern(&self) -> String {
        self.0.replace('_', "\\_")
    }
}

impl fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The user part of an account: ASCII letters, digits, `_`, `.` and `-`, 1 to 80
/// characters. Case is kept (MariaDB compares user names with case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct UserName(String);

const USER_ALLOWED: &str =
    "a user name has 1 to 80 characters, each an ASCII letter, digit, `_`, `.` or `-`";

impl UserName {
    /// Checks the syntax only; internal accounts such as `root` pass (see
    /// [`UserName::parse_managed`]).
    pub fn parse(value: &str) -> Result<UserName, NameError> {
        check_characters(
            Field::User,
            value,
            80,
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
            USER_ALLOWED,
        )?;
        Ok(UserName(value.to_owned()))
    }

    /// [`UserName::parse`], and refuses the internal accounts.
    pub fn parse_managed(value: &str) -> Result<UserName, NameError> {
        let name = UserName::parse(value)?;
        name.ensure_not_system()?;
        Ok(name)
    }

    /// Whether this is an account of the server or of galley ([`SYSTEM_USERS`], or a
    /// name starting with [`GALLEY_USER_PREFIX`]); compared without case so that
    /// `ROOT` and `Galley_admin` cannot be made to confuse a reader either.
    pub fn is_system(&self) -> bool {
        is_system_user(&self.0)
    }

    /// `Err(NameError::SystemUser)` for an internal account.
    pub fn ensure_not_system(&self) -> Result<(), NameError> {
        if self.is_system() {
            return Err(NameError::SystemUser {
                shown: shown(&self.0),
            });
        }
        Ok(())
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`UserName::is_system`] for any string, e.g. a name read from `mysql.user`.
pub fn is_system_user(name: &str) -> bool {
    SYSTEM_USERS
        .iter()
        .any(|system| system.eq_ignore_ascii_case(name))
        || name
            .get(..GALLEY_USER_PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(GALLEY_USER_PREFIX))
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host part of an account, in one of the forms MariaDB matches:
/// `%` (any host), `localhost`, an IPv4 or IPv6 address, an IPv4 prefix with `%`
/// wildcards (`10.0.%`, `10.0.%.%`), an IPv4 network as `address/netmask`
/// (`10.0.0.0/255.255.255.0`), or a host name (`db1.example.org`, `%.example.org`).
///
/// Host names are lower-cased, as the server stores them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct HostPattern(String);

const HOST_ALLOWED: &str = "a host pattern is `%`, `localhost`, an IPv4 or IPv6 address, \
     an IPv4 prefix with `%` wildcards such as `10.0.%`, an IPv4 network as \
     `address/netmask` such as `10.0.0.0/255.255.255.0`, or a host name of ASCII letters, \
     digits, `-` and `.` (optionally starting with `%.`), at most 255 characters";

impl HostPattern {
    /// Checks that the value is one of the allowed forms.
    pub fn parse(value: &str) -> Result<HostPattern, NameError> {
        check_characters(
            Field::Host,
            value,
            255,
            |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '%' | ':' | '/'),
            HOST_ALLOWED,
        )?;
        let problem = |text: &str| Err(invalid(Field::Host, value, text.to_owned(), HOST_ALLOWED));
        if value == "%" {
            return Ok(HostPattern(value.to_owned()));
        }
        if value.contains(':') {
            if value.parse::<Ipv6Addr>().is_err() {
                return problem("it contains `:` but is not an IPv6 address");
            }
            return Ok(HostPattern(value.to_ascii_lowercase()));
        }
        if let Some((address, netmask)) = value.split_once('/') {
            let (Ok(address), Ok(netmask)) =
                (address.parse::<Ipv4Addr>(), netmask.parse::<Ipv4Addr>())
            else {
                return problem("`/` must join an IPv4 address and an IPv4 netmask");
            };
            let mask = u32::from(netmask);
            if mask.leading_ones() + mask.trailing_zeros() != 32 {
                return problem("the netmask is not contiguous (it must look like 255.255.255.0)");
            }
            if u32::from(address) & !mask != 0 {
                return problem(
                    "the address has bits outside the netmask, so no client would ever match",
                );
            }
            return Ok(HostPattern(value.to_owned()));
        }
        if let Some(domain) = value.strip_prefix("%.") {
            if domain.contains('%') || !is_host_name(domain) {
                return problem("after `%.` must come a host name");
            }
            return Ok(HostPattern(value.to_ascii_lowercase()));
        }
        if value.contains('%') && value.bytes().any(|b| b.is_ascii_alphabetic()) {
            return problem(
                "in a host name `%` may only start it, followed by a dot, as in `%.example.org`",
            );
        }
        if value.contains('%') {
            return match check_ipv4_wildcard(value) {
                Ok(()) => Ok(HostPattern(value.to_owned())),
                Err(text) => problem(text),
            };
        }
        if value.parse::<Ipv4Addr>().is_ok() {
            return Ok(HostPattern(value.to_owned()));
        }
        if value
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_digit()))
        {
            return problem("it looks like an IPv4 address but is not one");
        }
        if !is_host_name(value) {
            return problem(
                "a host name is labels of letters, digits and `-` joined by `.`, \
                 none empty, none starting or ending with `-`",
            );
        }
        Ok(HostPattern(value.to_ascii_lowercase()))
    }

    /// The pattern for any host.
    pub fn any() -> HostPattern {
        HostPattern("%".to_owned())
    }

    /// The pattern for local connections.
    pub fn localhost() -> HostPattern {
        HostPattern("localhost".to_owned())
    }

    /// The pattern as the server stores it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_host_name(value: &str) -> bool {
    !value.is_empty()
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `10.%`, `10.0.%`, `10.0.0.%`, `10.%.%.%`: octets, then only `%` parts, at most four.
fn check_ipv4_wildcard(value: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() > 4 {
        return Err("an IPv4 pattern has at most four parts");
    }
    let mut wildcard_seen = false;
    for (index, part) in parts.iter().enumerate() {
        if *part == "%" {
            wildcard_seen = true;
            continue;
        }
        if wildcard_seen {
            return Err("in an IPv4 pattern every part after a `%` must be `%`");
        }
        if part.contains('%') {
            return Err("`%` must be a whole part of an IPv4 pattern, such as `10.0.%`");
        }
        let octet_ok = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u16>().is_ok_and(|octet| octet <= 255);
        if !octet_ok {
            return Err("each part of an IPv4 pattern is a number from 0 to 255 or `%`");
        }
        if index == 0 && parts.len() == 1 {
            return Err("an IPv4 pattern needs a `%` part");
        }
    }
    Ok(())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One database-level privilege of MariaDB 10.11, in the server's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// `ALL PRIVILEGES`: every privilege below (never combined with another).
    All,
    /// `SELECT`
    Select,
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
    /// `CREATE`
    Create,
    /// `DROP`
    Drop,
    /// `REFERENCES`
    References,
    /// `INDEX`
    Index,
    /// `ALTER`
    Alter,
    /// `CREATE TEMPORARY TABLES`
    CreateTemporaryTables,
    /// `LOCK TABLES`
    LockTables,
    /// `EXECUTE`
    Execute,
    /// `CREATE VIEW`
    CreateView,
    /// `SHOW VIEW`
    ShowView,
    /// `CREATE ROUTINE`
    CreateRoutine,
    /// `ALTER ROUTINE`
    AlterRoutine,
    /// `EVENT`
    Event,
    /// `TRIGGER`
    Trigger,
    /// `DELETE HISTORY` (system-versioned tables)
    DeleteHistory,
}

const PRIVILEGE_ALLOWED: &str = "the database privileges are ALL (alone), SELECT, INSERT, \
     UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, CREATE TEMPORARY TABLES, \
     LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, \
     TRIGGER and DELETE HISTORY, in any case";

impl Privilege {
    /// Every privilege, `All` first.
    pub const EVERY: [Privilege; 20] = [
        Privilege::All,
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Create,
        Privilege::Drop,
        Privilege::References,
        Privilege::Index,
        Privilege::Alter,
        Privilege::CreateTemporaryTables,
        Privilege::LockTables,
        Privilege::Execute,
        Privilege::CreateView,
        Privilege::ShowView,
        Privilege::CreateRoutine,
        Privilege::AlterRoutine,
        Privilege::Event,
        Privilege::Trigger,
        Privilege::DeleteHistory,
    ];

    /// The SQL words, upper case: the canonical form.
    pub fn sql(self) -> &'static str {
        match self {
            Privilege::All => "ALL PRIVILEGES",
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Create => "CREATE",
            Privilege::Drop => "DROP",
            Privilege::References => "REFERENCES",
            Privilege::Index => "INDEX",
            Privilege::Alter => "ALTER",
            Privilege::CreateTemporaryTables => "CREATE TEMPORARY TABLES",
            Privilege::LockTables => "LOCK TABLES",
            Privilege::Execute => "EXECUTE",
            Privilege::CreateView => "CREATE VIEW",
            Privilege::ShowView => "SHOW VIEW",
            Privilege::CreateRoutine => "CREATE ROUTINE",
            Privilege::AlterRoutine => "ALTER ROUTINE",
            Privilege::Event => "EVENT",
            Privilege::Trigger => "TRIGGER",
            Privilege::DeleteHistory => "DELETE HISTORY",
        }
    }

    /// One privilege in any case; words separated by single spaces or `_`
    /// (`create temporary tables`, `CREATE_VIEW`); `ALL` and `ALL PRIVILEGES` are `All`.
    pub fn parse(value: &str) -> Result<Privilege, NameError> {
        check_characters(
            Field::Privilege,
            value,
            40,
            |c| c.is_ascii_alphabetic() || c == ' ' || c == '_',
            PRIVILEGE_ALLOWED,
        )?;
        let words: Vec<String> = value
            .split([' ', '_'])
            .map(str::to_ascii_uppercase)
            .collect();
        if words.iter().any(String::is_empty) {
            return Err(invalid(
                Field::Privilege,
                value,
                "its words must be separated by exactly one space or `_`".to_owned(),
                PRIVILEGE_ALLOWED,
            ));
        }
        let canonical = words.join(" ");
        if canonical == "ALL" {
            return Ok(Privilege::All);
        }
        Privilege::EVERY
            .into_iter()
            .find(|privilege| privilege.sql() == canonical)
            .ok_or_else(|| {
                invalid(
                    Field::Privilege,
                    value,
                    "it is not a database-level privilege".to_owned(),
                    PRIVILEGE_ALLOWED,
                )
            })
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

/// A non-empty set of database privileges: `ALL` alone, or distinct named privileges,
/// kept in the server's order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Privileges(BTreeSet<Privilege>);

impl Privileges {
    /// `ALL PRIVILEGES`.
    pub fn all() -> Privileges {
        Privileges(BTreeSet::from([Privilege::All]))
    }

    /// A list as a caller gives it (`["SELECT", "insert"]`, `["ALL"]`). Duplicates are
    /// merged; an empty list, or `ALL` together with another privilege, is refused.
    pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Result<Privileges, NameError> {
        if values.is_empty() {
            return Err(invalid(
                Field::Privilege,
                "",
                "the list is empty".to_owned(),
                PRIVILEGE_ALLOWED,
            ));
        }
        let set = values
            .iter()
            .map(|value| Privilege::parse(value.as_ref()))
            .collect::<Result<BTreeSet<Privilege>, NameError>>()?;
        if set.contains(&Privilege::All) && set.len() > 1 {
            return Err(invalid(
                Field::Privilege,
                &values
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<&str>>()
                    .join(","),
                "ALL already includes every other privilege, so it stands alone".to_owned(),
                PRIVILEGE_ALLOWED,
            ));
        }
        Ok(Privileges(set))
    }

    /// A comma-separated list (`SELECT,INSERT` or `select, insert`), as a command line
    /// gives it.
    pub fn parse(value: &str) -> Result<Privileges, NameError> {
        let parts: Vec<&str> = value.split(',').map(str::trim).collect();
        Privileges::parse_list(&parts)
    }

    /// Whether this is `ALL PRIVILEGES`.
    pub fn is_all(&self) -> bool {
        self.0.contains(&Privilege::All)
    }

    /// The privileges in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = Privilege> + '_ {
        self.0.iter().copied()
    }

    /// The canonical names, e.g. `["SELECT", "INSERT"]`.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Privilege::sql).collect()
    }
}

impl fmt::Display for Privileges {
    /// The SQL list, e.g. `SELECT, INSERT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(", "))
    }
}

/// A character set name: lower-case ASCII letters, digits and `_`, 1 to 32 characters
/// (input in any case is lower-cased). Whether it exists is the server's to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Charset(String);

const CHARSET_ALLOWED: &str =
    "a character set name has 1 to 32 characters, each an ASCII letter, digit or `_` (e.g. utf8mb4)";

impl Charset {
    /// Checks the syntax; the server checks that it exists.
    pub fn parse(value: &str) -> Result<Charset, NameError> {
        check_characters(
            Field::Charset,
            value,
            32,
            |c| c.is_ascii_alphanumeric() || c == '_',
            CHARSET_ALLOWED,
        )?;
        Ok(Charset(value.to_ascii_lowercase()))
    }

    /// `utf8mb4`: full Unicode, what OpenStack databases should use.
    pub fn utf8mb4() -> Charset {
        Charset("utf8mb4".to_owned())
    }

    /// `utf8mb3`: the three-byte UTF-8 older OpenStack guides call `utf8`.
    pub fn utf8mb3() -> Charset {
        Charset("utf8mb3".to_owned())
    }

    /// The name, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A collation name: lower-case ASCII letters, digits and `_`, 1 to 64 characters
/// (input in any case is lower-cased). Whether it exists, and fits the character set,
/// is the server's to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Collation(String);

const COLLATION_ALLOWED: &str = "a collation name has 1 to 64 characters, each an ASCII letter, \
     digit or `_` (e.g. utf8mb4_general_ci)";

impl Collation {
    /// Checks the syntax; the server checks that it exists.
    pub fn parse(value: &str) -> Result<Collation, NameError> {
        check_characters(
            Field::Collation,
            value,
            64,
            |c| c.is_ascii_alphanumeric() || c == '_',
            COLLATION_ALLOWED,
        )?;
        Ok(Collation(value.to_ascii_lowercase()))
    }

    /// The name, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A backtick-quoted identifier: backticks inside are doubled, which is the only escape
/// the server knows there (a backslash is literal inside backticks in every SQL mode).
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A single-quoted string literal: `'` is doubled and `\` and NUL are escaped. That is
/// safe in both SQL modes: with `NO_BACKSLASH_ESCAPES` a doubled backslash is two
/// characters, never an escape that could end the literal.
pub fn quote_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        match character {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            '\0' => quoted.push_str("\\0"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// An account for SQL: `'user'@'host'`.
pub fn account_sql(user: &UserName, host: &HostPattern) -> String {
    format!(
        "{}@{}",
        quote_string(user.as_str()),
        quote_string(host.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(canonical)` or `Err(fragment of the message)`.
    type Expected = Result<&'static str, &'static str>;

    fn check<T: fmt::Display>(
        parse: impl Fn(&str) -> Result<T, NameError>,
        cases: &[(&str, Expected)],
    ) {
        for (input, expected) in cases {
            match (parse(input), expected) {
                (Ok(value), Ok(canonical)) => {
                    assert_eq!(value.to_string(), *canonical, "input {input:?}")
                }
                (Err(error), Err(fragment)) => {
                    let message = error.to_string();
                    assert!(
                        message.contains(fragment),
                        "input {input:?}: {message:?} lacks {fragment:?}"
                    );
                    // The message never carries the raw value when it holds anything
                    // unprintable, and never more than the shown prefix.
                    assert!(
                        !message.contains('\n') && !message.contains('\0'),
                        "{message:?}"
                    );
                    assert!(message.len() < 700, "{message:?}");
                }
                (Ok(value), Err(_)) => panic!("input {input:?} was accepted as {value}"),
                (Err(error), Ok(_)) => panic!("input {input:?} was refused: {error}"),
            }
        }
    }

    #[test]
    fn database_names() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        let cases: Vec<(&str, Expected)> = vec![
            ("nova", Ok("nova")),
            ("nova_api", Ok("nova_api")),
            ("Nova2", Ok("Nova2")),
            ("mysql", Ok("mysql")),
            (&long, Ok(Box::leak(long.clone().into_boxed_str()))),
            (&too_long, Err("65 characters long, more than 64")),
            ("", Err("it is empty")),
            ("x; DROP DATABASE mysql", Err("contains `;` at position 2")),
            ("x;DROP", Err("contains `;`")),
            ("a`b", Err("a backtick (`) at position 2")),
            ("a'b", Err("a single quote (')")),
            ("a\"b", Err("a double quote")),
            ("a b", Err("a space at position 2")),
            ("nov\u{430}", Err("non-ASCII character U+0430")),
            ("a\0b", Err("a NUL character")),
            ("a\nb", Err("a newline")),
            ("a-b", Err("contains `-`")),
            ("a.b", Err("contains `.`")),
            ("a%", Err("contains `%`")),
            ("a\\b", Err("contains `\\`")),
        ];
        check(DatabaseName::parse, &cases);
        // Every refusal says what is allowed.
        let error = DatabaseName::parse("x; DROP DATABASE mysql").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid database name \"x; DROP DATABASE mysql\": it contains `;` at position 2; \
             a database name has 1 to 64 characters, each an ASCII letter, digit or `_`"
        );
        assert_eq!(error.field(), Field::Database);
    }

    #[test]
    fn system_schemas_are_refused_where_managed() {
        for name in [
            "mysql",
            "information_schema",
            "PERFORMANCE_SCHEMA",
            "sys",
            "Sys",
        ] {
            assert!(DatabaseName::parse(name).unwrap().is_system(), "{name}");
            let error = DatabaseName::parse_managed(name).unwrap_err();
            assert!(matches!(error, NameError::SystemSchema { .. }), "{name}");
            assert!(error.to_string().contains("system schema"), "{error}");
        }
        for name in ["mysql2", "system", "nova"] {
            assert!(DatabaseName::parse_managed(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn user_names() {
        let too_long = "u".repeat(81);
        let cases: Vec<(&str, Expected)> = vec![
            ("nova", Ok("nova")),
            ("svc.nova-1_a", Ok("svc.nova-1_a")),
            (&too_long, Err("81 characters long, more than 80")),
            ("", Err("empty")),
            ("a@b", Err("contains `@`")),
            ("a'@'%", Err("single quote")),
            ("x; DROP USER root", Err("`;`")),
            ("n\u{43e}va", Err("U+043E")),
            ("tab\there", Err("control character U+0009")),
        ];
        check(UserName::parse, &cases);
        for name in [
            "root",
            "ROOT",
            "mariadb.sys",
            "mysql",
            "PUBLIC",
            "galley_admin",
            "Galley_monitor",
            "galley_x",
        ] {
            assert!(
                matches!(
                    UserName::parse_managed(name),
                    Err(NameError::SystemUser { .. })
                ),
                "{name}"
            );
        }
        for name in ["galley", "galleyx", "rooted", "nova"] {
            assert!(UserName::parse_managed(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn host_patterns() {
        let cases: Vec<(&str, Expected)> = vec![
            ("%", Ok("%")),
            ("localhost", Ok("localhost")),
            ("LocalHost", Ok("localhost")),
            ("10.0.0.5", Ok("10.0.0.5")),
            ("::1", Ok("::1")),
            ("fe80::1:AB", Ok("fe80::1:ab")),
            ("10.%", Ok("10.%")),
            ("10.0.%", Ok("10.0.%")),
            ("10.0.%.%", Ok("10.0.%.%")),
            ("192.168.1.%", Ok("192.168.1.%")),
            ("10.0.0.0/255.255.255.0", Ok("10.0.0.0/255.255.255.0")),
            ("controller-1.example.org", Ok("controller-1.example.org")),
            ("%.example.org", Ok("%.example.org")),
            ("", Err("empty")),
            ("%%", Err("`%` must be a whole part")),
            ("%example.org", Err("may only start it, followed by a dot")),
            ("db%.example.org", Err("may only start it")),
            ("10.%.0.1", Err("every part after a `%` must be `%`")),
            ("10.0.0.1%", Err("`%` must be a whole part")),
            ("1%", Err("`%` must be a whole part")),
            ("10.0.0.256", Err("looks like an IPv4 address")),
            ("10.0.256.%", Err("number from 0 to 255")),
            ("10.0.0.0.%", Err("at most four parts")),
            ("10.0.0.1/255.255.255.0", Err("bits outside the netmask")),
            ("10.0.0.0/255.0.255.0", Err("not contiguous")),
            ("10.0.0.0/24", Err("IPv4 address and an IPv4 netmask")),
            ("::g", Err("not an IPv6 address")),
            ("a..b", Err("host name is labels")),
            ("-a.b", Err("host name is labels")),
            ("a_b", Err("contains `_`")),
            ("%.%.org", Err("after `%.` must come a host name")),
            ("x'; DROP USER root; --", Err("single quote")),
            ("h\u{43e}st", Err("U+043E")),
            ("a b", Err("a space")),
            ("a\nb", Err("a newline")),
        ];
        check(HostPattern::parse, &cases);
        let long_label = format!("{}.org", "a".repeat(64));
        assert!(HostPattern::parse(&long_label).is_err());
        let too_long = ["abcdefghi"; 26].join(".");
        assert!(HostPattern::parse(&too_long)
            .unwrap_err()
            .to_string()
            .contains("more than 255"));
    }

    #[test]
    fn privileges() {
        let cases: Vec<(&str, Expected)> = vec![
            ("ALL", Ok("ALL PRIVILEGES")),
            ("all privileges", Ok("ALL PRIVILEGES")),
            ("select", Ok("SELECT")),
            ("Create Temporary Tables", Ok("CREATE TEMPORARY TABLES")),
            ("create_view", Ok("CREATE VIEW")),
            ("delete history", Ok("DELETE HISTORY")),
            ("", Err("empty")),
            ("SUPER", Err("not a database-level privilege")),
            ("GRANT OPTION", Err("not a database-level privilege")),
            ("SELECT  INSERT", Err("exactly one space")),
            ("SELECT;DROP", Err("`;`")),
            ("SELECT\n", Err("newline")),
        ];
        check(Privilege::parse, &cases);
        let set = Privileges::parse_list(&["insert", "SELECT", "select"]).unwrap();
        assert_eq!(set.to_string(), "SELECT, INSERT");
        assert_eq!(set.names(), ["SELECT", "INSERT"]);
        assert!(!set.is_all());
        assert!(Privileges::parse("ALL").unwrap().is_all());
        assert_eq!(
            Privileges::parse("select, update").unwrap().to_string(),
            "SELECT, UPDATE"
        );
        let error = Privileges::parse_list(&["ALL", "SELECT"]).unwrap_err();
        assert!(error.to_string().contains("stands alone"), "{error}");
        let empty: [&str; 0] = [];
        assert!(Privileges::parse_list(&empty)
            .unwrap_err()
            .to_string()
            .contains("the list is empty"));
        // Every privilege's canonical name parses back to itself.
        for privilege in Privilege::EVERY {
            assert_eq!(Privilege::parse(privilege.sql()).unwrap(), privilege);
        }
    }

    #[test]
    fn charsets_and_collations() {
        check(
            Charset::parse,
            &[
                ("utf8mb4", Ok("utf8mb4")),
                ("UTF8MB4", Ok("utf8mb4")),
                ("latin1", Ok("latin1")),
                ("utf8mb4;", Err("`;`")),
                ("utf-8", Err("`-`")),
                ("", Err("empty")),
            ],
        );
        check(
            Collation::parse,
            &[
                ("utf8mb4_general_ci", Ok("utf8mb4_general_ci")),
                ("UTF8MB4_BIN", Ok("utf8mb4_bin")),
                ("x' OR '1", Err("single quote")),
            ],
        );
        assert!(Charset::parse(&"a".repeat(33)).is_err());
        assert!(Collation::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn shown_values_are_escaped_and_truncated() {
        assert_eq!(shown("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(shown("\u{430}\n\0"), "\"\\u{430}\\n\\0\"");
        let long = "x".repeat(100);
        assert_eq!(
            shown(&long),
            format!("\"{}...\" (100 characters)", "x".repeat(40))
        );
        let error = DatabaseName::parse(&format!("{long};"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("(101 characters)"), "{error}");
        assert!(!error.contains(&long), "{error}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_identifier("nova"), "`nova`");
        assert_eq!(quote_identifier("a`b"), "`a``b`");
        assert_eq!(quote_string("it's"), "'it''s'");
        assert_eq!(quote_string("a\\'b"), "'a\\\\''b'");
        assert_eq!(quote_string("a\0"), "'a\\0'");
        let user = UserName::parse("nova").unwrap();
        assert_eq!(account_sql(&user, &HostPattern::any()), "'nova'@'%'");
        let database = DatabaseName::parse("nova_api").unwrap();
        assert_eq!(database.sql(), "`nova_api`");
        assert_eq!(database.grant_pattern_sql(), "`nova\\_api`");
    }
}
