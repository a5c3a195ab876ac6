//! Running commands on a host with the system's OpenSSH client: keys only
//! (`BatchMode`), host keys checked against galley's own known_hosts file, new host keys
//! accepted only when the operator says so. Secrets travel on stdin, never as arguments.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// How to reach the hosts.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: String,
    pub port: u16,
    pub key: Option<PathBuf>,
    /// galley's known_hosts file for this cluster.
    pub known_hosts: PathBuf,
    /// First contact: record unknown host keys (never a changed one).
    pub accept_new_host_keys: bool,
    pub connect_timeout_s: u32,
}

/// Why a command could not run on a host (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("{address} is unreachable over SSH (port {port}): {message}")]
    Unreachable {
        address: String,
        port: u16,
        message: String,
    },
    #[error("the host key of {address} is not in galley's known_hosts ({known_hosts}); check the host, then run again with --accept-new-host-keys for this first contact")]
    UnknownHostKey {
        address: String,
        known_hosts: String,
    },
    #[error("the host key of {address} CHANGED since the last contact (see {known_hosts}); this can be an attack. If the host was reinstalled, remove its line from that file")]
    ChangedHostKey {
        address: String,
        known_hosts: String,
    },
    #[error("SSH refused the login of {user} on {address}: {message}; galley logs in with keys only (ssh_key in [deploy], or your ssh-agent)")]
    LoginRefused {
        user: String,
        address: String,
        message: String,
    },
    #[error("cannot run ssh: {0}")]
    Spawn(#[from] std::io::Error),
}

impl Ssh {
    fn command(&self, address: &str, remote: &str) -> Command {
        let mut command = Command::new("ssh");
        let checking = if self.accept_new_host_keys {
            "StrictHostKeyChecking=accept-new"
        } else {
            "StrictHostKeyChecking=yes"
        };
        command
            .arg("-o")
            .arg("BatchMode=yes")
            .arg("-o")
            .arg(checking)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-o")
            .arg("GlobalKnownHostsFile=/dev/null")
            .arg("-o")
            .arg(format!("ConnectTimeout={}", self.connect_timeout_s))
            .arg("-o")
            .arg("ServerAliveInterval=5")
            .arg("-o")
            .arg("ServerAliveCountMax=6")
            .arg("-o")
            .arg("LogLevel=ERROR")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-l")
            .arg(&self.user);
        if let Some(key) = &self.key {
            command
                .arg("-i")
                .arg(key)
                .arg("-o")
                .arg("IdentitiesOnly=yes");
        }
        command.arg("--").arg(address).arg(remote);
        command
    }

    /// Runs `remote` (a shell command line) on `address`, with `stdin` as its input.
    /// Returns its output whatever its exit status; fails only when SSH itself did.
    pub fn run(&self, address: &str, remote: &str, stdin: &[u8]) -> Result<Output, SshError> {
        let mut child = self
            .command(address, remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut input = child.stdin.take().expect("stdin is piped");
        let data = stdin.to_vec();
        // Write from another thread: a remote command that prints much before reading
        // its input would otherwise deadlock against us.
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let output = child.wait_with_output()?;
        let _ = writer.join();
        if output.status.code() == Some(255) {
            return Err(self.classify(address, &String::from_utf8_lossy(&output.stderr)));
        }
        Ok(output)
    }

    fn classify(&self, address: &str, stderr: &str) -> SshError {
        let known_hosts = self.known_hosts.display().to_string();
        let message = stderr
            .lines()
            .rfind(|line| !line.trim().is_empty())
            .unwrap_or("ssh failed without a message")
            .trim()
            .to_owned();
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            SshError::ChangedHostKey {
                address: address.to_owned(),
                known_hosts,
            }
        } else if stderr.contains("Host key verification failed")
            || stderr.contains("No ED25519 host key is known")
            || stderr.contains("host key is known")
        {
            SshError::UnknownHostKey {
                address: address.to_owned(),
                known_hosts,
            }
        } else if stderr.contains("Permission denied") {
            SshError::LoginRefused {
                user: self.user.clone(),
                address: address.to_owned(),
                message,
            }
        } else {
            SshError::Unreachable {
                address: address.to_owned(),
                port: self.port,
                message,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh() -> Ssh {
        Ssh {
            user: "ops".to_owned(),
            port: 22,
            key: None,
            known_hosts: PathBuf::from("/state/known_hosts"),
            accept_new_host_keys: false,
            connect_timeout_s: 5,
        }
    }

    /// OpenSSH's own messages (9.2) for each way a connection fails.
    #[test]
    fn classifies_what_ssh_says() {
        let cases = [
            (
                "ssh: connect to host 10.0.0.9 port 22: No route to host\r\n",
                "10.0.0.9 is unreachable over SSH (port 22): ssh: connect to host 10.0.0.9 port 22: No route to host",
            ),
            (
                "ssh: connect to host 10.0.0.9 port 22: Connection timed out\r\n",
                "10.0.0.9 is unreachable over SSH (port 22): ssh: connect to host 10.0.0.9 port 22: Connection timed out",
            ),
            (
                "No ED25519 host key is known for 10.0.0.9 and you have requested strict checking.\r\nHost key verification failed.\r\n",
                "the host key of 10.0.0.9 is not in galley's known_hosts (/state/known_hosts); check the host, then run again with --accept-new-host-keys for this first contact",
            ),
            (
                "@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.\r\n",
                "the host key of 10.0.0.9 CHANGED since the last contact (see /state/known_hosts); this can be an attack. If the host was reinstalled, remove its line from that file",
            ),
            (
                "ops@10.0.0.9: Permission denied (publickey).\r\n",
                "SSH refused the login of ops on 10.0.0.9: ops@10.0.0.9: Permission denied (publickey).; galley logs in with keys only (ssh_key in [deploy], or your ssh-agent)",
            ),
        ];
        for (stderr, expected) in cases {
            assert_eq!(
                ssh().classify("10.0.0.9", stderr).to_string(),
                expected,
                "for {stderr:?}"
            );
        }
    }

    #[test]
    fn command_checks_host_keys_and_uses_keys_only() {
        let mut ssh = ssh();
        ssh.key = Some(PathBuf::from("/keys/id_ed25519"));
        let render = |ssh: &Ssh| {
            let command = ssh.command("10.0.0.9", "sudo -n true");
            command
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let strict = render(&ssh);
        assert!(strict.contains("BatchMode=yes"), "{strict}");
        assert!(strict.contains("StrictHostKeyChecking=yes"), "{strict}");
        assert!(
            strict.contains("UserKnownHostsFile=/state/known_hosts"),
            "{strict}"
        );
        assert!(
            strict.contains("-i /keys/id_ed25519 -o IdentitiesOnly=yes"),
            "{strict}"
        );
        assert!(strict.ends_with("-- 10.0.0.9 sudo -n true"), "{strict}");
        ssh.accept_new_host_keys = true;
        assert!(render(&ssh).contains("StrictHostKeyChecking=accept-new"));
    }
}
