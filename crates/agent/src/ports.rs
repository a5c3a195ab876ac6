//! Checks that a node's ports are free before it starts, and names who holds a taken one
//! (from /proc: the listening socket's inode, then the process that has it open).

use std::net::{TcpListener, ToSocketAddrs as _};

/// A port that cannot be bound, with the owner when /proc tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortTaken {
    pub field: &'static str,
    pub address: String,
    pub port: u16,
    pub owner: Option<String>,
}

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} on {} is in use",
            self.field, self.port, self.address
        )?;
        match &self.owner {
            Some(owner) => write!(f, " by {owner}"),
            None => write!(
                f,
                " (owner unknown; try `ss -ltnp 'sport = :{}'`)",
                self.port
            ),
        }
    }
}

/// Every port in `ports` that is already listened on at `address`.
pub fn taken_ports(address: &str, ports: &[(&'static str, u16)]) -> Vec<PortTaken> {
    ports
        .iter()
        .filter(|(_, port)| !can_bind(address, *port))
        .map(|(field, port)| PortTaken {
            field,
            address: address.to_owned(),
            port: *port,
            owner: owner_of_port(*port),
        })
        .collect()
}

fn can_bind(address: &str, port: u16) -> bool {
    let Ok(mut addresses) = (address, port).to_socket_addrs() else {
        return true;
    };
    addresses.all(|socket_address| TcpListener::bind(socket_address).is_ok())
}

/// `pid 1234 (mariadbd)` for the process listening on `port`, if /proc says.
pub fn owner_of_port(port: u16) -> Option<String> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let processes = std::fs::read_dir("/proc").ok()?;
    for entry in processes.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if inodes
                .iter()
                .any(|inode| target == format!("socket:[{inode}]"))
            {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", name.trim()));
            }
        }
    }
    None
}

fn listening_inodes(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is the tenth field.
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let listening_port = local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if *state == "0A" && listening_port == Some(port) {
                inodes.push((*inode).to_owned());
            }
        }
    }
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_owner_of_a_taken_port() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let taken = taken_ports("127.0.0.1", &[("client_port", port)]);
        assert_eq!(taken.len(), 1);
        let owner = taken[0].owner.clone().unwrap();
        assert!(
            owner.starts_with(&format!("pid {}", std::process::id())),
            "{owner}"
        );
        drop(listener);
        assert!(taken_ports("127.0.0.1", &[("client_port", port)]).is_empty());
    }
}
