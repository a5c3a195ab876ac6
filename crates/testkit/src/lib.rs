//! What the integration tests of several crates share (a dev-dependency only): ports to
//! start servers on, and temporary state directories that mariadbd may enter.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicU32, Ordering};

/// Ports that were free a moment ago, each checked by binding it.
///
/// They come from below the kernel's ephemeral range (32768 and up): a port taken from
/// there could be handed to some outgoing connection before the server binds it (an IST
/// or SST receiver binds late), which hangs a joiner. Each test binary starts at a place
/// spread by its pid, so that binaries running side by side do not race for the same
/// ports.
pub fn free_ports(count: usize) -> Vec<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 600) * 20;
    let mut ports = Vec::new();
    while ports.len() < count {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = 20_000 + offset as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

/// A new directory under /tmp, removed when the returned value drops, with mode 0755:
/// mariadbd runs as `mysql` and must pass through it to its data directory.
pub fn state_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("a directory under /tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755 of the test directory");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_below_the_ephemeral_range_and_bindable() {
        let ports = free_ports(20);
        let unique: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(unique.len(), 20);
        for port in ports {
            assert!((20_000..32_000).contains(&port), "{port}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }

    #[test]
    fn state_dirs_let_other_users_through() {
        let dir = state_dir("testkit-");
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(dir.path().starts_with("/tmp"));
    }
}
