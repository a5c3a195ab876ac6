//! The agent's files and directories, written as root into directories the server's OS
//! user owns, without ever following a link.
//!
//! The OS user (`mysql`) owns the data, run and log directories and can plant anything
//! in them: a link at `my.cnf` to `/etc/shadow`, at a temporary name, or in place of the
//! directory itself. So every directory is checked before use (a real directory, owned by
//! root or the expected user, reached only through directories nobody else can change,
//! and none of the system's own), files are opened with `O_NOFOLLOW`, written to a new
//! file created with `O_EXCL` next to their target and renamed over it, and ownership and
//! modes are set on the open descriptor (fchown, fchmod), never by path.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use nix::libc;
use nix::unistd::User;

/// Why the agent will not use a path: a link, a system directory, a directory someone
/// else could swap. The operator fixes these; an I/O failure is something else.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FileError {
    let what = what.into();
    move |source| FileError::Io { what, source }
}

/// Whose directory a check is for: the agent's own uid (root, or the user a local
/// cluster runs as) and the server's OS user when the agent is root.
#[derive(Debug, Clone, Copy)]
pub struct Owners {
    pub agent: u32,
    /// (uid, gid) of the server's OS user.
    pub server: Option<(u32, u32)>,
}

impl Owners {
    pub fn new(server: Option<&User>) -> Owners {
        Owners {
            agent: nix::unistd::geteuid().as_raw(),
            server: server.map(|user| (user.uid.as_raw(), user.gid.as_raw())),
        }
    }

    /// Root or the agent itself: those may own the directories above galley's own.
    fn trusted(&self, uid: u32) -> bool {
        uid == 0 || uid == self.agent
    }
}

/// Refuses `dir` when it is a symbolic link (whether or not it exists otherwise).
pub fn refuse_link(field: &str, dir: &Path) -> Result<(), FileError> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(link_refusal(field, dir)),
        _ => Ok(()),
    }
}

fn link_refusal(field: &str, path: &Path) -> FileError {
    let target = std::fs::read_link(path)
        .map(|target| target.display().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    FileError::Refused(format!(
        "{field} {} is a symbolic link (to {target}); the agent runs as root and never follows links in its directories: remove the link and give the real directory in galley.toml",
        path.display()
    ))
}

/// Creates `dir` if needed, after checking every directory above it, and hands it to the
/// server's OS user with `mode` (or, without a mode, whatever it has minus group and
/// other write). Refuses links, system directories, directories owned by others, and
/// directories above it that anyone but root (or the agent) could change.
pub fn prepare_directory(
    field: &str,
    dir: &Path,
    owners: Owners,
    mode: Option<u32>,
) -> Result<(), FileError> {
    if let Some(reason) = spec::paths::system_directory_reason(dir) {
        return Err(FileError::Refused(format!(
            "{field} {}: {reason}; the agent will not give it to the server's OS user; {}",
            dir.display(),
            spec::paths::SYSTEM_DIRECTORY_ADVICE
        )));
    }
    if !dir.is_absolute()
        || dir
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(FileError::Refused(format!(
            "{field} {} is not an absolute path without `.` and `..`",
            dir.display()
        )));
    }
    // Where the path leads, before anything is created: a link above it (owned by root)
    // must not lead into a system directory either.
    let resolved =
        resolve_existing(dir).map_err(io(format!("cannot resolve {}", dir.display())))?;
    if let Some(reason) = spec::paths::system_directory_reason(&resolved) {
        return Err(FileError::Refused(format!(
            "{field} {} leads to {} through a symbolic link above it: {reason}; {}",
            dir.display(),
            resolved.display(),
            spec::paths::SYSTEM_DIRECTORY_ADVICE
        )));
    }
    let mut current = PathBuf::from("/");
    let components: Vec<OsString> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            _ => None,
        })
        .collect();
    for (index, name) in components.iter().enumerate() {
        let above = current.clone();
        current.push(name);
        let leaf = index + 1 == components.len();
        let metadata = match std::fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                check_above(field, dir, &above, owners)?;
                match std::fs::create_dir(&current) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(error) => {
                        return Err(io(format!("cannot create {}", current.display()))(error))
                    }
                }
                std::fs::symlink_metadata(&current)
                    .map_err(io(format!("cannot read {}", current.display())))?
            }
            Err(error) => return Err(io(format!("cannot read {}", current.display()))(error)),
        };
        if metadata.file_type().is_symlink() {
            if leaf {
                return Err(link_refusal(field, dir));
            }
            if !owners.trusted(metadata.uid()) {
                return Err(FileError::Refused(format!(
                    "{field} {} lies below {}, a symbolic link owned by uid {} (not root), who could point it anywhere; give a path without it",
                    dir.display(),
                    current.display(),
                    metadata.uid()
                )));
            }
            // A root-owned link (like /var/run -> /run): where it leads was resolved
            // and checked above; the directories it leads through are checked below.
            let target = std::fs::canonicalize(&current)
                .map_err(io(format!("cannot resolve {}", current.display())))?;
            check_chain(field, dir, &target, owners)?;
        } else if !metadata.is_dir() {
            return Err(FileError::Refused(format!(
                "{field} {}: {} is not a directory",
                dir.display(),
                current.display()
            )));
        } else if !leaf {
            check_above(field, dir, &current, owners)?;
        }
    }
    finish_directory(field, dir, owners, mode)
}

/// The path with its longest existing prefix resolved (links followed) and the rest,
/// which does not exist yet, appended.
fn resolve_existing(path: &Path) -> std::io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if std::fs::symlink_metadata(existing).is_ok() {
            break;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = match std::fs::canonicalize(existing) {
        Ok(resolved) => resolved,
        // A dangling link: refused as a link or an untrusted one further on.
        Err(_) => existing.to_path_buf(),
    };
    resolved.extend(missing.iter().rev());
    Ok(resolved)
}

/// Every directory from `/` down to `target` (a resolved path) passes [`check_above`].
fn check_chain(field: &str, dir: &Path, target: &Path, owners: Owners) -> Result<(), FileError> {
    for ancestor in target.ancestors() {
        check_above(field, dir, ancestor, owners)?;
    }
    Ok(())
}

/// A directory above one of galley's: only root (or the agent) may change what it holds,
/// or it is sticky (`/tmp`), where nobody may move another user's entries.
fn check_above(field: &str, dir: &Path, above: &Path, owners: Owners) -> Result<(), FileError> {
    let metadata =
        std::fs::metadata(above).map_err(io(format!("cannot read {}", above.display())))?;
    let mode = metadata.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    let problem = if !owners.trusted(metadata.uid()) {
        Some(format!("is owned by uid {}", metadata.uid()))
    } else if mode & 0o002 != 0 && !sticky {
        Some("is writable by everyone".to_owned())
    } else if mode & 0o020 != 0
        && !sticky
        && owners
            .server
            .is_some_and(|(_, gid)| gid == metadata.gid() && gid != 0)
    {
        Some(format!(
            "is writable by group {}, the server's OS user's group",
            metadata.gid()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(FileError::Refused(format!(
            "{field} {}: the directory above it, {}, {problem}, who could swap {} for a link; give a path whose parents only root can change (chown root and chmod go-w {})",
            dir.display(),
            above.display(),
            dir.display(),
            above.display()
        ))),
    }
}

/// Opens the checked directory itself (never through a link), checks its owner, and sets
/// owner and mode on the open descriptor.
fn finish_directory(
    field: &str,
    dir: &Path,
    owners: Owners,
    mode: Option<u32>,
) -> Result<(), FileError> {
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => link_refusal(field, dir),
            _ => io(format!("cannot open {}", dir.display()))(error),
        })?;
    let metadata = handle
        .metadata()
        .map_err(io(format!("cannot read {}", dir.display())))?;
    let expected = owners.server.is_some_and(|(uid, _)| uid == metadata.uid());
    if !owners.trusted(metadata.uid()) && !expected {
        return Err(FileError::Refused(format!(
            "{field} {} is owned by uid {}, neither root nor the server's OS user; give a directory of galley's own (or chown it)",
            dir.display(),
            metadata.uid()
        )));
    }
    if let Some((uid, gid)) = owners.server {
        std::os::unix::fs::fchown(&handle, Some(uid), Some(gid)).map_err(io(format!(
            "cannot give {} to the server's OS user",
            dir.display()
        )))?;
    }
    let current = metadata.permissions().mode() & 0o7777;
    let wanted = mode.unwrap_or(current & !0o022);
    if wanted != current {
        handle
            .set_permissions(std::fs::Permissions::from_mode(wanted))
            .map_err(io(format!("cannot restrict {}", dir.display())))?;
    }
    Ok(())
}

/// Writes `contents` to `path` in a directory already checked by [`prepare_directory`]:
/// refuses a link at `path`, writes a new file (`O_EXCL`, `O_NOFOLLOW`, a random name
/// next to it) with `mode` and `owner` set on its descriptor, then renames it over
/// `path`. A link planted anywhere on the way is never written through.
pub fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(link_refusal("the file", path))
        }
        Ok(metadata) if metadata.is_dir() => {
            return Err(FileError::Refused(format!(
                "{} is a directory; the agent writes a file there",
                path.display()
            )))
        }
        _ => {}
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(FileError::Refused(format!(
            "{} names no file",
            path.display()
        )));
    };
    let temporary = dir.join(format!(
        ".{}.galley-{:016x}",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = write_new(&temporary, contents, mode, owner).and_then(|()| {
        std::fs::rename(&temporary, path).map_err(io(format!("cannot replace {}", path.display())))
    });
    if result.is_err() {
        // Unlinking never follows a link; the name is ours (created with O_EXCL).
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_new(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), FileError> {
    let what = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(what()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(io(what()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(io(what()))
}

/// Opens `path` for reading without following a link at its last component.
pub fn open_read(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| explain_link(path, error))
}

/// Opens `path` for appending (creating it with mode 0640) without following a link.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| explain_link(path, error))
}

/// Reads `path` whole without following a link at its last component.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut open_read(path)?, &mut text)?;
    Ok(text)
}

/// ELOOP from `O_NOFOLLOW` says "too many levels of symbolic links"; say what it means.
fn explain_link(path: &Path, error: std::io::Error) -> std::io::Error {
    if error.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::other(format!(
            "{} is a symbolic link; the agent never follows links in its directories (remove it)",
            path.display()
        ))
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn owners() -> Owners {
        Owners {
            agent: nix::unistd::geteuid().as_raw(),
            server: None,
        }
    }

    fn refused(result: Result<(), FileError>) -> String {
        match result {
            Err(FileError::Refused(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_link_at_the_target_is_refused_and_its_victim_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("my.cnf");
        symlink(&victim, &target).unwrap();
        let message = refused(write_file(&target, b"[mariadbd]\n", 0o644, None));
        assert_eq!(
            message,
            format!(
                "the file {} is a symbolic link (to {}); the agent runs as root and never follows links in its directories: remove the link and give the real directory in galley.toml",
                target.display(),
                victim.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn writes_replace_the_file_whole_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("grastate.dat");
        std::fs::write(&target, "old").unwrap();
        write_file(&target, b"new", 0o600, None).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind: {left:?}");
    }

    #[test]
    fn reads_and_appends_refuse_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "secret").unwrap();
        let link = dir.path().join("mariadbd.err");
        symlink(&victim, &link).unwrap();
        let error = read_to_string(&link).unwrap_err().to_string();
        assert!(error.contains("is a symbolic link"), "{error}");
        assert!(open_append(&link).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret");
    }

    #[test]
    fn directories_are_created_checked_and_restricted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("node/data");
        prepare_directory("data_dir", &data, owners(), Some(0o700)).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Group and other write are taken away from a directory without a given mode.
        let log = dir.path().join("log");
        std::fs::create_dir(&log).unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare_directory("log_dir", &log, owners(), None).unwrap();
        let mode = std::fs::metadata(&log).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn links_and_swappable_parents_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.join("victim")).unwrap();
        symlink(root.join("victim"), root.join("data")).unwrap();
        let message = refused(prepare_directory(
            "data_dir",
            &root.join("data"),
            owners(),
            Some(0o700),
        ));
        assert!(
            message.starts_with(&format!(
                "data_dir {} is a symbolic link (to {})",
                root.join("data").display(),
                root.join("victim").display()
            )),
            "{message}"
        );
        let mode = std::fs::metadata(root.join("victim"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "the link's target was not touched");

        std::fs::create_dir(root.join("open")).unwrap();
        std::fs::set_permissions(root.join("open"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let message = refused(prepare_directory(
            "run_dir",
            &root.join("open/run"),
            owners(),
            None,
        ));
        assert!(
            message.contains(&format!(
                "the directory above it, {}, is writable by everyone",
                root.join("open").display()
            )),
            "{message}"
        );
        assert!(
            !root.join("open/run").exists(),
            "nothing was created below it"
        );

        // A link above, even root's own, that leads into a system directory.
        symlink("/etc", root.join("to-etc")).unwrap();
        let message = refused(prepare_directory(
            "log_dir",
            &root.join("to-etc/galley-log"),
            owners(),
            None,
        ));
        assert!(
            message.contains("leads to /etc/galley-log through a symbolic link above it"),
            "{message}"
        );
        assert!(!Path::new("/etc/galley-log").exists());
    }

    #[test]
    fn system_directories_are_refused_before_anything_is_touched() {
        for dir in [
            "/",
            "/etc",
            "/var/lib",
            "/usr/lib/mysql",
            "/home/alice",
            "/tmp",
        ] {
            let message = refused(prepare_directory(
                "data_dir",
                Path::new(dir),
                owners(),
                Some(0o700),
            ));
            assert!(
                message.starts_with(&format!("data_dir {dir}: `{dir}`")),
                "{message}"
            );
        }
    }
}
