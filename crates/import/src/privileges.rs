//! The global privileges galley needs on an imported cluster, and which of them an
//! account's `SHOW GRANTS` lines lack.

use std::collections::BTreeSet;

/// Global privileges galley uses: databases and accounts for OpenStack (granting ALL on
/// a database needs every database privilege plus GRANT OPTION), and status reading.
pub const REQUIRED_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
    "REFERENCES",
    "CREATE USER",
    "RELOAD",
    "PROCESS",
    "GRANT OPTION",
];

/// The required privileges that the `SHOW GRANTS` lines do not give on `*.*`.
/// Only global grants count; the lines may carry password hashes, so they are never
/// echoed back.
pub fn missing_privileges(grant_lines: &[String]) -> Vec<&'static str> {
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut all = false;
    for line in grant_lines {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privileges, after)) = rest.split_once(" ON *.* TO ") else {
            continue;
        };
        if after.contains("WITH GRANT OPTION") {
            held.insert("GRANT OPTION".to_owned());
        }
        for privilege in privileges.split(", ") {
            let privilege = privilege.trim().to_ascii_uppercase();
            if privilege == "ALL PRIVILEGES" || privilege == "ALL" {
                all = true;
            }
            held.insert(privilege);
        }
    }
    REQUIRED_PRIVILEGES
        .iter()
        .copied()
        .filter(|privilege| {
            let granted_by_all = all && *privilege != "GRANT OPTION";
            !granted_by_all && !held.contains(*privilege)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn all_privileges_with_grant_option_is_enough() {
        let grants = lines(&["GRANT ALL PRIVILEGES ON *.* TO `dba`@`%` IDENTIFIED BY PASSWORD '*ABC' WITH GRANT OPTION"]);
        assert!(missing_privileges(&grants).is_empty());
    }

    #[test]
    fn missing_privileges_are_named() {
        let without_grant_option =
            lines(&["GRANT ALL PRIVILEGES ON *.* TO `dba`@`%` IDENTIFIED BY PASSWORD '*ABC'"]);
        assert_eq!(missing_privileges(&without_grant_option), ["GRANT OPTION"]);
        let monitor = lines(&["GRANT PROCESS, REPLICATION CLIENT ON *.* TO `mon`@`%`"]);
        let missing = missing_privileges(&monitor);
        assert!(missing.contains(&"CREATE USER") && missing.contains(&"GRANT OPTION"));
        assert!(!missing.contains(&"PROCESS"));
        // Database-level grants do not count: galley creates new databases.
        let one_database = lines(&["GRANT ALL PRIVILEGES ON `nova`.* TO `nova`@`%`"]);
        assert_eq!(
            missing_privileges(&one_database).len(),
            REQUIRED_PRIVILEGES.len()
        );
    }
}
