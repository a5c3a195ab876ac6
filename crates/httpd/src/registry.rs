//! The connections one server holds: the total and per-source caps, which connection
//! gives way when a cap is reached, the counters, and the rate-limited log of refusals.
//!
//! The rule, the same for both caps: a new connection over a cap takes the place of the
//! connection under that cap that has been idle longest (waiting for its first request
//! head, or kept alive between requests), which is closed; when every connection under
//! the cap is busy with a request, the new one is closed at once instead. So idle
//! connections, however many and from however many sources, never keep a new client out:
//! an operator's request gets in as long as some connection is idle, and a connection is
//! never evicted while a request runs on it. Nothing is queued: accepting costs one
//! lock and at most one scan of the open connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Where a connection comes from, for the per-source cap: an IPv4 address, or the /64
/// of an IPv6 one (a single host is routinely given a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(address: IpAddr) -> Source {
        match address {
            IpAddr::V4(v4) => Source(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Source(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// What a server has done with connections since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections held now.
    pub open: usize,
    pub accepted: u64,
    /// Closed at once on arrival: over a cap with no idle connection to evict.
    pub refused: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// Closed for not sending a first request head within `header_read_timeout`.
    pub header_timeouts: u64,
}

#[derive(Debug)]
struct Entry {
    source: Source,
    /// When the connection last became idle; `None` while a request runs on it.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    connections: HashMap<u64, Entry>,
    per_source: HashMap<Source, usize>,
    log: RefusalLog,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.connections.remove(&id)?;
        if let Some(count) = self.per_source.get_mut(&entry.source) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&entry.source);
            }
        }
        Some(entry)
    }

    /// The connection idle longest, among all or among one source's.
    fn longest_idle(&self, source: Option<Source>) -> Option<u64> {
        self.connections
            .iter()
            .filter(|(_, entry)| source.is_none_or(|source| entry.source == source))
            .filter_map(|(id, entry)| entry.idle_since.map(|since| (since, *id)))
            .min()
            .map(|(_, id)| id)
    }
}

/// At most one line per this interval about refused or evicted connections, with how
/// many there were since the last line: a flood must not flood the log too.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

#[derive(Debug)]
pub struct Registry {
    name: &'static str,
    max_connections: usize,
    max_per_source: usize,
    open: Mutex<Open>,
    accepted: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    header_timeouts: AtomicU64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    Total,
    Source,
}

impl Registry {
    pub fn new(name: &'static str, max_connections: usize, max_per_source: usize) -> Registry {
        Registry {
            name,
            max_connections: max_connections.max(1),
            max_per_source: max_per_source.max(1),
            open: Mutex::new(Open::default()),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // A panic while holding this lock leaves counts that are still consistent
        // enough to go on with: every update is a few integer operations.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `address`, evicting the longest idle one when a cap is
    /// reached; `None` when it must be closed at once.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Admitted> {
        let source = Source::of(address);
        let mut open = self.lock();
        let now = Instant::now();
        for cap in [Cap::Source, Cap::Total] {
            let full = match cap {
                Cap::Source => {
                    open.per_source.get(&source).copied().unwrap_or(0) >= self.max_per_source
                }
                Cap::Total => open.connections.len() >= self.max_connections,
            };
            if !full {
                continue;
            }
            let within = (cap == Cap::Source).then_some(source);
            match open.longest_idle(within) {
                Some(id) => {
                    let evicted = open.remove(id).expect("found above");
                    evicted.close.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                    self.log_refusal(
                        &mut open,
                        now,
                        source,
                        cap,
                        "closed the longest idle connection to make room",
                    );
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    self.log_refusal(
                        &mut open,
                        now,
                        source,
                        cap,
                        "every connection is busy, so the new one was closed",
                    );
                    return None;
                }
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let close = Arc::new(Notify::new());
        open.connections.insert(
            id,
            Entry {
                source,
                idle_since: Some(now),
                close: Arc::clone(&close),
            },
        );
        *open.per_source.entry(source).or_insert(0) += 1;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            registry: Arc::clone(self),
            id,
            close,
        })
    }

    fn log_refusal(&self, open: &mut Open, now: Instant, source: Source, cap: Cap, what: &str) {
        let due = open
            .log
            .last
            .is_none_or(|last| now.duration_since(last) >= LOG_INTERVAL);
        if !due {
            open.log.unlogged += 1;
            return;
        }
        let cap = match cap {
            Cap::Total => format!("{} connections in all", self.max_connections),
            Cap::Source => format!("{} connections from {source}", self.max_per_source),
        };
        let unlogged = std::mem::take(&mut open.log.unlogged);
        tracing::warn!(
            server = self.name,
            "a connection from {source} reached the cap of {cap}: {what} ({unlogged} more since the last such line; at most one every {} s)",
            LOG_INTERVAL.as_secs()
        );
        open.log.last = Some(now);
    }

    pub fn stats(&self) -> Stats {
        let open = self.lock().connections.len();
        Stats {
            open,
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
        }
    }

    pub fn count_header_timeout(&self) {
        self.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Some(entry) = self.lock().connections.get_mut(&id) {
            entry.idle_since = idle.then(Instant::now);
        }
    }
}

/// One admitted connection: leaves the registry when dropped.
#[derive(Debug)]
pub struct Admitted {
    registry: Arc<Registry>,
    id: u64,
    close: Arc<Notify>,
}

impl Admitted {
    /// Resolves when the registry evicted this connection.
    pub async fn evicted(&self) {
        self.close.notified().await
    }

    /// Marks the connection busy until the returned guard is dropped (the end of a
    /// request, or its cancellation).
    pub fn busy(&self) -> Busy {
        self.registry.set_idle(self.id, false);
        Busy {
            registry: Arc::clone(&self.registry),
            id: self.id,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.registry.lock().remove(self.id);
    }
}

/// A request in flight on a connection; the connection is idle again when dropped.
#[derive(Debug)]
pub struct Busy {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.registry.set_idle(self.id, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_sources_are_grouped_by_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:10.0.0.1")),
            Source::of(ip("10.0.0.1"))
        );
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[tokio::test]
    async fn a_full_source_evicts_its_own_longest_idle_and_refuses_when_all_are_busy() {
        let registry = Arc::new(Registry::new("test", 100, 2));
        let first = registry.admit(ip("10.0.0.1")).unwrap();
        let second = registry.admit(ip("10.0.0.1")).unwrap();
        let other = registry.admit(ip("10.0.0.2")).unwrap();
        let _busy = second.busy();
        // The source is full: its idle one (the first) gives way, not the other source's.
        let third = registry.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(registry.stats().evicted, 1);
        tokio::time::timeout(Duration::from_secs(5), first.evicted())
            .await
            .expect("the first connection is told to close");
        drop(first);
        let _busy_third = third.busy();
        // Both of the source's connections are busy now: refused at once.
        assert!(registry.admit(ip("10.0.0.1")).is_none());
        let stats = registry.stats();
        assert_eq!((stats.open, stats.refused, stats.evicted), (3, 1, 1));
        drop(other);
        assert_eq!(registry.stats().open, 2);
    }

    #[tokio::test]
    async fn the_total_cap_evicts_the_longest_idle_of_any_source() {
        let registry = Arc::new(Registry::new("test", 2, 10));
        let old = registry.admit(ip("10.0.0.1")).unwrap();
        let _newer = registry.admit(ip("10.0.0.2")).unwrap();
        let _third = registry.admit(ip("10.0.0.3")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), old.evicted())
            .await
            .expect("the oldest idle connection is told to close");
        assert_eq!(registry.stats().open, 2);
    }
}
