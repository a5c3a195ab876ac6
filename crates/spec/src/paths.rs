//! The one rule for every path and name in galley.toml that reaches a shell, a systemd
//! unit, my.cnf or a command line, and the system directories galley never takes as its
//! own.
//!
//! Paths are checked against a strict character set instead of being escaped wherever
//! they go: a path is copied into shell scripts, systemd units, my.cnf and ssh command
//! lines, and each has its own quoting rules. The deployer quotes them as well (defense
//! in depth), and the agent refuses system directories again before it creates, chowns
//! or chmods anything.

use std::path::Path;

/// The longest path galley.toml may hold (bytes).
pub const MAX_PATH_LENGTH: usize = 255;

/// What a path may consist of, for error messages.
pub const PATH_ALLOWED: &str = "an absolute path of letters, digits and `.` `_` `-` `+` `@` `/`, \
     without empty, `.` or `..` components, at most 255 bytes";

/// Whether `c` may appear in a path: `[A-Za-z0-9._+@/-]`. Nothing a shell, systemd or
/// my.cnf gives a meaning to (no space, quote, `$`, backtick, `;`, `%`, `\`, `#`, `=`,
/// newline or other control character).
pub fn is_path_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@' | '/')
}

/// Checks one path from galley.toml; the error says what is wrong with it (the caller
/// adds the field and [`PATH_ALLOWED`]).
pub fn check_path(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if !value.starts_with('/') {
        return Err(format!(
            "`{}` is relative; give an absolute path",
            value.escape_debug()
        ));
    }
    if let Some((index, c)) = value.char_indices().find(|(_, c)| !is_path_character(*c)) {
        return Err(format!(
            "`{}` holds {} at byte {}, which galley does not allow in paths",
            value.escape_debug(),
            describe_character(c),
            index + 1
        ));
    }
    if value.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "is {} bytes long; the limit is {MAX_PATH_LENGTH}",
            value.len()
        ));
    }
    if value != "/" {
        for component in value[1..].split('/') {
            match component {
                "" => {
                    return Err(format!(
                        "`{value}` has an empty component (`//` or a trailing `/`)"
                    ))
                }
                "." | ".." => {
                    return Err(format!(
                        "`{value}` has a `{component}` component; write the path without it"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A character for an error message: printable ones in backticks, others by name.
fn describe_character(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\n' => "a newline".to_owned(),
        '\t' => "a tab".to_owned(),
        '`' => "a backtick".to_owned(),
        c if c.is_control() || !c.is_ascii() => format!("`{}`", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}

/// Directories that are never a data, run, log, state or install directory (galley
/// creates, chowns and chmods those, or replaces what is inside): the roots of the
/// system's trees and the system directories right below them.
pub const SYSTEM_DIRECTORIES: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/dev/shm",
    "/etc",
    "/etc/galley",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/lost+found",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/run/galley",
    "/run/lock",
    "/run/user",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Trees that hold the system itself: nothing at or below them is a data, run, log or
/// state directory (the agent gives those to the server's OS user). An install dir may
/// sit below them (`/usr/local/galley`), since nothing is chowned there.
pub const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin",
    "/sys", "/usr",
];

/// Why `path` cannot be a directory galley gives to the server's OS user (data, run,
/// log or state directory), or None when it can: a system directory, anything inside a
/// system tree, or a user's home directory (`/home/NAME`, `/root`).
pub fn system_directory_reason(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if SYSTEM_DIRECTORIES.contains(&text) {
        return Some(format!("`{text}` is a system directory"));
    }
    if let Some(tree) = SYSTEM_TREES.iter().find(|tree| path.starts_with(tree)) {
        return Some(format!("`{text}` is inside the system tree {tree}"));
    }
    if path.parent() == Some(Path::new("/home")) {
        return Some(format!("`{text}` is a user's home directory"));
    }
    None
}

/// Why `path` cannot be galley's install directory, or None when it can: only the system
/// directories themselves are refused (galley writes `bin/`, `bundle/` and `state/`
/// there and replaces `bundle/` on every deploy).
pub fn install_directory_reason(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    SYSTEM_DIRECTORIES
        .contains(&text)
        .then(|| format!("`{text}` is a system directory"))
}

/// What a system directory refusal tells the operator to do instead.
pub const SYSTEM_DIRECTORY_ADVICE: &str =
    "give a directory of galley's own, like /var/lib/mysql, /srv/galley/db1 or /opt/galley";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_plain_and_bounded() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LENGTH));
        let cases: &[(&str, Result<(), &str>)] = &[
            ("/var/lib/mysql", Ok(())),
            ("/", Ok(())),
            ("/srv/db-1/data_2.d/x+y@z", Ok(())),
            ("/opt/.galley", Ok(())),
            ("", Err("is empty")),
            ("var/lib", Err("`var/lib` is relative; give an absolute path")),
            (
                "/opt/$(id>/tmp/pwn)",
                Err("`/opt/$(id>/tmp/pwn)` holds `$` at byte 6, which galley does not allow in paths"),
            ),
            (
                "/opt/`id`",
                Err("`/opt/`id`` holds a backtick at byte 6, which galley does not allow in paths"),
            ),
            (
                "/opt/a;id",
                Err("`/opt/a;id` holds `;` at byte 7, which galley does not allow in paths"),
            ),
            (
                "/opt/a\nid",
                Err("`/opt/a\\nid` holds a newline at byte 7, which galley does not allow in paths"),
            ),
            (
                "/opt/my dir",
                Err("`/opt/my dir` holds a space at byte 8, which galley does not allow in paths"),
            ),
            (
                "/opt/it's",
                Err("`/opt/it\\'s` holds `'` at byte 8, which galley does not allow in paths"),
            ),
            (
                "/opt/\"x\"",
                Err("`/opt/\\\"x\\\"` holds `\"` at byte 6, which galley does not allow in paths"),
            ),
            (
                "/opt/é",
                Err("`/opt/é` holds `\\u{e9}` at byte 6, which galley does not allow in paths"),
            ),
            (
                "/var/lib/../../etc",
                Err("`/var/lib/../../etc` has a `..` component; write the path without it"),
            ),
            (
                "/var/./lib",
                Err("`/var/./lib` has a `.` component; write the path without it"),
            ),
            (
                "/var//lib",
                Err("`/var//lib` has an empty component (`//` or a trailing `/`)"),
            ),
            (
                "/var/lib/",
                Err("`/var/lib/` has an empty component (`//` or a trailing `/`)"),
            ),
            (&long, Err("is 256 bytes long; the limit is 255")),
        ];
        for (path, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            assert_eq!(check_path(path), expected, "for {path:?}");
        }
    }

    #[test]
    fn system_directories_and_trees_are_refused() {
        for path in [
            "/",
            "/etc",
            "/etc/mysql",
            "/usr",
            "/usr/lib/x",
            "/bin",
            "/boot",
            "/dev/shm",
            "/proc/1",
            "/sys",
            "/var",
            "/var/lib",
            "/var/log",
            "/root",
            "/home",
            "/home/alice",
            "/tmp",
            "/run",
            "/opt",
            "/etc/galley",
        ] {
            assert!(
                system_directory_reason(Path::new(path)).is_some(),
                "{path} was accepted"
            );
        }
        for path in [
            "/var/lib/mysql",
            "/srv/galley/db1",
            "/run/galley/db1",
            "/var/log/galley/db1",
            "/tmp/galley-test/data",
            "/home/alice/galley/data",
            "/opt/galley",
        ] {
            assert_eq!(system_directory_reason(Path::new(path)), None, "{path}");
        }
        assert_eq!(
            install_directory_reason(Path::new("/usr/local/galley")),
            None
        );
        assert_eq!(
            install_directory_reason(Path::new("/usr/bin")).as_deref(),
            Some("`/usr/bin` is a system directory")
        );
    }
}
