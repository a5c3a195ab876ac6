//! The command lines `galley deploy` runs on a host over SSH, and the one quoting
//! function every value goes through on its way to a shell.
//!
//! The remote login shell parses each line; `sudo` then runs `sh -c SCRIPT`. The
//! scripts are constant text: every path and name reaches them as a positional argument
//! (`"$1"`, `"$2"`), quoted once by [`quote`] for the login shell and never interpolated
//! into a script. The spec allows no shell metacharacter in a path anyway
//! (`spec::paths`); this is the second line of defense, for a value that bypassed it.

use std::path::Path;

/// `value` as one word for a POSIX shell: in single quotes, each `'` written as `'\''`.
/// Nothing inside single quotes is special (no `$`, backtick, `\`, newline or `;`).
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `sudo -n sh -c SCRIPT galley ARGS...`: SCRIPT sees ARGS as `$1`, `$2`, ...
fn sudo_script(script: &str, args: &[&str]) -> String {
    let mut line = format!("sudo -n sh -c {} galley", quote(script));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// Prints `present` when `path` exists.
pub fn exists(path: &Path) -> String {
    sudo_script(
        "if test -e \"$1\" || test -L \"$1\"; then echo present; fi",
        &[&text(path)],
    )
}

/// Prints the sha256sum line of `path`, or nothing when it cannot be read.
pub fn checksum(path: &Path) -> String {
    sudo_script("sha256sum -- \"$1\" 2>/dev/null || true", &[&text(path)])
}

/// Unpacks the tar archive on stdin as `INSTALL_DIR/bundle`, replacing the old one whole.
pub fn install_bundle(install_dir: &Path) -> String {
    sudo_script(
        "set -e; rm -rf -- \"$1/bundle.new\"; mkdir -p -- \"$1/bundle.new\"; \
         tar -xf - -C \"$1/bundle.new\"; rm -rf -- \"$1/bundle\"; mv -- \"$1/bundle.new\" \"$1/bundle\"",
        &[&text(install_dir)],
    )
}

/// Marks every galley service for a restart (a new binary or secrets file).
const RESTART_ALL: &str = "mkdir -p -- \"$1/state\"; \
     touch -- \"$1/state/restart-galley-agent\" \"$1/state/restart-galley-proxy\" \"$1/state/restart-galley-controller\"";

/// Installs the galley binary from stdin as `INSTALL_DIR/bin/galley` (mode 0755).
pub fn install_binary(install_dir: &Path) -> String {
    sudo_script(
        &format!(
            "set -e; mkdir -p -- \"$1/bin\"; rm -f -- \"$1/bin/galley.upload\"; \
             (set -C; cat > \"$1/bin/galley.upload\"); chmod 755 -- \"$1/bin/galley.upload\"; \
             mv -f -- \"$1/bin/galley.upload\" \"$1/bin/galley\"; {RESTART_ALL}; \
             echo \"changed: installed $1/bin/galley\""
        ),
        &[&text(install_dir)],
    )
}

/// Where `galley deploy` puts galley's Debian package on a host, for step 10 to install
/// (`install = "package"`).
pub fn package_path(install_dir: &Path) -> std::path::PathBuf {
    install_dir.join("package/galley.deb")
}

/// Stores the Debian package from stdin as `INSTALL_DIR/package/galley.deb` (mode 0644);
/// step 10 installs it with apt-get and restarts the services.
pub fn upload_package(install_dir: &Path) -> String {
    sudo_script(
        "set -e; mkdir -p -- \"$1/package\"; rm -f -- \"$1/package/galley.deb.upload\"; \
         (set -C; cat > \"$1/package/galley.deb.upload\"); chmod 644 -- \"$1/package/galley.deb.upload\"; \
         mv -f -- \"$1/package/galley.deb.upload\" \"$1/package/galley.deb\"; \
         echo \"changed: copied the galley package to $1/package/galley.deb\"",
        &[&text(install_dir)],
    )
}

/// Installs the secrets file from stdin at `target` (mode 0600 before any byte is
/// written; a stale upload or a link in its place is removed first, never followed).
pub fn install_secrets(install_dir: &Path, target: &Path) -> String {
    let parent = target.parent().unwrap_or(Path::new("/"));
    sudo_script(
        &format!(
            "set -e; umask 077; mkdir -p -- \"$2\"; rm -f -- \"$3.upload\"; \
             (set -C; cat > \"$3.upload\"); chmod 600 -- \"$3.upload\"; mv -f -- \"$3.upload\" \"$3\"; \
             {RESTART_ALL}; echo \"changed: installed the secrets file $3\""
        ),
        &[&text(install_dir), &text(parent), &text(target)],
    )
}

/// Runs one step of the bundle on the host (as root).
pub fn run_step(install_dir: &Path, step: &str) -> String {
    format!(
        "sudo -n bash -- {}",
        quote(&format!("{}/bundle/{step}", install_dir.display()))
    )
}

/// Waits until the node's agent reports it Synced and prints its state; `galley` is
/// where the binary is on the host.
pub fn wait_synced(galley: &Path, config: &str, node: &str) -> String {
    format!(
        "sudo -n {} host wait-synced --config {} --node {}",
        quote(&text(galley)),
        quote(config),
        quote(node)
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;
    use std::process::{Command, Output, Stdio};

    use super::*;

    /// Strings that would run a command, or split into words, if a quote were wrong.
    const HOSTILE: &[&str] = &[
        "",
        "plain",
        "$(touch PWNED)",
        "${IFS}$(touch${IFS}PWNED)",
        "`touch PWNED`",
        "x; touch PWNED",
        "x\ntouch PWNED",
        "x && touch PWNED",
        "x | touch PWNED",
        "'; touch PWNED; '",
        "'$(touch PWNED)'",
        "\"$(touch PWNED)\"",
        "\\'$(touch PWNED)\\'",
        "'\\''",
        "''''",
        "a b\tc",
        "*",
        "~",
        "-n",
        "--",
        "x > PWNED",
        "#",
        "!",
        "%s%n",
        "\u{7f}\u{1b}[31m",
        "é ü 漢字",
    ];

    /// Runs `line` as the remote login shell would (`sh -c LINE`), in `dir`, with a
    /// `sudo` that only drops `-n` (the real one may ask for nothing here: we are root
    /// or not, and either way the quoting is what is tested).
    fn remote_shell(dir: &Path, line: &str, stdin: &[u8]) -> Output {
        let bin = dir.join("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let sudo = bin.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n").unwrap();
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .env("PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// No file named PWNED anywhere under `dir`.
    fn assert_nothing_ran(dir: &Path, context: &str) {
        let found: Vec<PathBuf> = walk(dir)
            .into_iter()
            .filter(|path| path.file_name().is_some_and(|name| name == "PWNED"))
            .collect();
        assert!(found.is_empty(), "{context}: a command ran: {found:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
        out
    }

    #[test]
    fn quoted_values_round_trip_through_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        for value in HOSTILE {
            let output = remote_shell(dir.path(), &format!("printf '%s' {}", quote(value)), b"");
            assert!(output.status.success(), "{value:?}: {output:?}");
            assert_eq!(String::from_utf8_lossy(&output.stdout), *value);
            // Twice quoted, as for `sh -c` inside the login shell: still one word.
            let nested = format!(
                "sh -c {} galley {}",
                quote("printf '%s' \"$1\""),
                quote(value)
            );
            let output = remote_shell(dir.path(), &nested, b"");
            assert_eq!(String::from_utf8_lossy(&output.stdout), *value);
            assert_nothing_ran(dir.path(), value);
        }
    }

    #[test]
    fn quoting_holds_for_every_byte_sequence_of_metacharacters() {
        // Every string of up to three characters from the shell's special ones.
        let alphabet = [
            '\'', '"', '$', '`', '\\', ';', '\n', ' ', '(', ')', '&', '|', 'x',
        ];
        let mut values = vec![String::new()];
        for length in 1..=3 {
            let mut next = Vec::new();
            for prefix in values.iter().filter(|v| v.chars().count() == length - 1) {
                for c in alphabet {
                    next.push(format!("{prefix}{c}"));
                }
            }
            values.extend(next);
        }
        // One shell run for all of them: printf each, NUL-separated.
        let line = values
            .iter()
            .map(|value| format!("printf '%s\\0' {}", quote(value)))
            .collect::<Vec<_>>()
            .join("; ");
        let dir = tempfile::tempdir().unwrap();
        let output = remote_shell(dir.path(), &line, b"");
        assert!(output.status.success(), "{output:?}");
        let printed: Vec<String> = output
            .stdout
            .split(|byte| *byte == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect();
        assert_eq!(&printed[..values.len()], &values[..]);
    }

    /// Each command the deployer sends, with a hostile install dir and secrets path
    /// (as if the spec's rule were bypassed), run through a real shell: the value is
    /// used as one literal path, and nothing it holds runs.
    #[test]
    fn hostile_paths_in_every_remote_command_run_nothing() {
        for hostile in HOSTILE.iter().filter(|v| !v.is_empty()) {
            let dir = tempfile::tempdir().unwrap();
            let base = dir.path().join("x");
            std::fs::create_dir(&base).unwrap();
            let install_dir = base.join(hostile.replace('/', "_"));
            let secrets = install_dir.join("etc").join("secrets.toml");
            let tar = Command::new("tar")
                .arg("-C")
                .arg(dir.path())
                .args(["-cf", "-", "--files-from", "/dev/null"])
                .output()
                .unwrap()
                .stdout;
            let commands: Vec<(String, Vec<u8>)> = vec![
                (exists(&secrets), Vec::new()),
                (install_bundle(&install_dir), tar),
                (install_binary(&install_dir), b"#!/bin/sh\n".to_vec()),
                (checksum(&install_dir.join("bin/galley")), Vec::new()),
                (install_secrets(&install_dir, &secrets), b"secret".to_vec()),
                (exists(&secrets), Vec::new()),
                (run_step(&install_dir, "00-check.sh"), Vec::new()),
                (
                    wait_synced(
                        &install_dir.join("bin/galley"),
                        "/etc/galley/galley.toml",
                        hostile,
                    ),
                    Vec::new(),
                ),
                (upload_package(&install_dir), b"!<arch>\n".to_vec()),
            ];
            let mut outputs = Vec::new();
            for (line, stdin) in &commands {
                outputs.push(remote_shell(dir.path(), line, stdin));
                assert_nothing_ran(dir.path(), &format!("{hostile:?} in {line}"));
            }
            let context = format!("{hostile:?}: {outputs:#?}");
            assert!(outputs[1].status.success(), "{context}");
            assert!(install_dir.join("bundle").is_dir(), "{context}");
            assert!(outputs[2].status.success(), "{context}");
            assert_eq!(
                std::fs::read(install_dir.join("bin/galley")).unwrap(),
                b"#!/bin/sh\n",
                "{context}"
            );
            assert!(
                install_dir.join("state/restart-galley-agent").is_file(),
                "{context}"
            );
            assert!(
                String::from_utf8_lossy(&outputs[3].stdout).contains("galley"),
                "{context}"
            );
            assert_eq!(std::fs::read(&secrets).unwrap(), b"secret", "{context}");
            let mode = std::fs::metadata(&secrets).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{context}");
            assert_eq!(String::from_utf8_lossy(&outputs[0].stdout), "", "{context}");
            assert_eq!(
                String::from_utf8_lossy(&outputs[5].stdout),
                "present\n",
                "{context}"
            );
            // The step and the wait fail (no such script, no real galley) without
            // running anything: each got the hostile value as one word.
            assert!(!outputs[6].status.success(), "{context}");
            assert!(outputs[8].status.success(), "{context}");
            assert_eq!(
                std::fs::read(package_path(&install_dir)).unwrap(),
                b"!<arch>\n",
                "{context}"
            );
        }
    }

    #[test]
    fn a_planted_link_at_the_upload_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let install_dir = dir.path().join("galley");
        let secrets = dir.path().join("etc/secrets.toml");
        std::fs::create_dir_all(secrets.parent().unwrap()).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("etc/secrets.toml.upload")).unwrap();
        let output = remote_shell(
            dir.path(),
            &install_secrets(&install_dir, &secrets),
            b"secret",
        );
        assert!(output.status.success(), "{output:?}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::read_to_string(&secrets).unwrap(), "secret");
    }
}
