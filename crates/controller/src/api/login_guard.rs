//! What stands between a login request and argon2: a rate limit per source address, a
//! limit per (user name, source address), and a small pool of hashing threads with a
//! bounded queue. Without them, 300 concurrent wrong logins ran 300 argon2 hashes at
//! once (19 MiB each: the controller grew by about 930 MiB), and five wrong passwords
//! for `admin` from anywhere locked the real admin out everywhere.
//!
//! The order of the checks, each answering before the next costs anything:
//!
//! 1. The user name and password are checked for length and characters (auth.rs).
//! 2. [`LoginLimiter`]: every attempt takes a token from its source's bucket
//!    ([`SOURCE_BURST`] at once, one back every [`SOURCE_REFILL_MS`]) and from the
//!    bucket of its (user name, source) pair ([`PAIR_BURST`], one back every
//!    [`PAIR_REFILL_MS`]); a success gives both back. The pair's limit is what protects
//!    one user from guessing: it applies only to the source that failed, so a stranger
//!    cannot lock a user out from other addresses. IPv6 sources count by /64 (what one
//!    host usually has). Each table holds at most [`MAX_TRACKED`] entries; when full,
//!    idle entries are dropped first, then the one with the most credit left.
//! 3. [`PasswordChecker`]: a fixed number of threads (the cores, at most 4) verify
//!    passwords, each with one argon2 work area that it reuses, so hashing memory is
//!    bounded by threads × 19 MiB whatever the load. At most [`QUEUE_LENGTH`] checks
//!    wait; beyond that a login is answered 503 with `Retry-After: 1` at once.
//!
//! A login for an unknown user verifies against [`DUMMY_HASH`], which has the same
//! parameters as a real one, through the same pool: it takes as long, so timing does
//! not tell which users exist.
//!
//! The hash parameters are argon2's defaults (`argon2::Params::DEFAULT`, OWASP's
//! recommendation): argon2id, version 0x13, m = 19456 KiB, t = 2, p = 1, a 16-byte
//! random salt and a 32-byte output, stored as a PHC string. A stored hash is verified
//! with the parameters it names, up to [`MAX_MEMORY_KIB`].

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Attempts one source address may make at once.
pub const SOURCE_BURST: i64 = 10;
/// A source gets one attempt back this often (10 a minute).
pub const SOURCE_REFILL_MS: i64 = 6_000;
/// Failed attempts for one user name from one source, at once.
pub const PAIR_BURST: i64 = 5;
/// A (user name, source) pair gets one attempt back this often (5 a minute).
pub const PAIR_REFILL_MS: i64 = 12_000;
/// Entries each table of the limiter holds at most.
pub const MAX_TRACKED: usize = 4_096;
/// Password checks that may wait for a hashing thread.
pub const QUEUE_LENGTH: usize = 16;
/// The largest argon2 memory cost a stored hash may ask for (64 MiB).
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;

/// What a login is verified against when its user does not exist: argon2's default
/// parameters, a fixed salt and an output no password produces (in practice).
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Z2FsbGV5IGR1bW15IDE2Yg$\
                              AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Where an attempt comes from, as the limiter counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKey {
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl SourceKey {
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey::V4(v4),
            IpAddr::V6(v6) => SourceKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

impl std::fmt::Display for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceKey::V4(v4) => write!(f, "{v4}"),
            SourceKey::V6Prefix(prefix) => {
                write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64))
            }
        }
    }
}

/// Token buckets kept as the time each bucket will be full again (the "theoretical
/// arrival time" of GCRA): one number per key, and a key whose time has passed is
/// the same as no key.
#[derive(Debug)]
struct Buckets<K> {
    full_at_ms: HashMap<K, i64>,
    burst: i64,
    refill_ms: i64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(burst: i64, refill_ms: i64) -> Buckets<K> {
        Buckets {
            full_at_ms: HashMap::new(),
            burst,
            refill_ms,
        }
    }

    /// `Err(ms to wait)` when the bucket of `key` is empty.
    fn check(&self, key: &K, now_ms: i64) -> Result<(), i64> {
        let full_at = self
            .full_at_ms
            .get(key)
            .copied()
            .unwrap_or(now_ms)
            .max(now_ms);
        // Taking one more would leave it more than `burst` refills from full.
        let over = full_at + self.refill_ms - now_ms - self.burst * self.refill_ms;
        if over > 0 {
            Err(over)
        } else {
            Ok(())
        }
    }

    fn take(&mut self, key: &K, now_ms: i64) {
        if !self.full_at_ms.contains_key(key) && self.full_at_ms.len() >= MAX_TRACKED {
            self.make_room(now_ms);
        }
        let full_at = self.full_at_ms.entry(key.clone()).or_insert(now_ms);
        *full_at = (*full_at).max(now_ms) + self.refill_ms;
    }

    fn give_back(&mut self, key: &K, now_ms: i64) {
        if let Some(full_at) = self.full_at_ms.get_mut(key) {
            *full_at -= self.refill_ms;
            if *full_at <= now_ms {
                self.full_at_ms.remove(key);
            }
        }
    }

    /// Drops the full buckets; if none was, the one nearest to full (the least
    /// information lost: that source had the most attempts left anyway).
    fn make_room(&mut self, now_ms: i64) {
        self.full_at_ms.retain(|_, full_at| *full_at > now_ms);
        if self.full_at_ms.len() >= MAX_TRACKED {
            let nearest = self
                .full_at_ms
                .iter()
                .min_by_key(|(_, full_at)| **full_at)
                .map(|(key, _)| key.clone());
            if let Some(key) = nearest {
                self.full_at_ms.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.full_at_ms.len()
    }
}

/// Why a login was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Too many attempts from this source, whatever the user names.
    Source { retry_after_s: u64 },
    /// Too many failed attempts for this user name from this source.
    UserFromSource { retry_after_s: u64 },
}

impl Limited {
    pub fn retry_after_s(self) -> u64 {
        match self {
            Limited::Source { retry_after_s } | Limited::UserFromSource { retry_after_s } => {
                retry_after_s
            }
        }
    }
}

fn seconds_rounded_up(ms: i64) -> u64 {
    // A client that waits this long is let in.
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

/// The per-source and per-(user, source) limits of logins. Time is passed in, so that
/// tests need no clock.
#[derive(Debug)]
pub struct LoginLimiter {
    sources: Buckets<SourceKey>,
    pairs: Buckets<(String, SourceKey)>,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter {
            sources: Buckets::new(SOURCE_BURST, SOURCE_REFILL_MS),
            pairs: Buckets::new(PAIR_BURST, PAIR_REFILL_MS),
        }
    }
}

impl LoginLimiter {
    /// Admits an attempt (taking from both buckets) or says why not (taking nothing).
    pub fn admit(&mut self, source: IpAddr, user: &str, now_ms: i64) -> Result<(), Limited> {
        let source = SourceKey::of(source);
        if let Err(wait_ms) = self.sources.check(&source, now_ms) {
            return Err(Limited::Source {
                retry_after_s: seconds_rounded_up(wait_ms),
            });
        }
        let pair = (user.to_owned(), source);
        if let Err(wait_ms) = self.pairs.check(&pair, now_ms) {
            return Err(Limited::UserFromSource {
                retry_after_s: seconds_rounded_up(wait_ms),
            });
        }
        self.sources.take(&source, now_ms);
        self.pairs.take(&pair, now_ms);
        Ok(())
    }

    /// A right password gives back what its attempt took, and nothing more.
    pub fn succeeded(&mut self, source: IpAddr, user: &str, now_ms: i64) {
        let source = SourceKey::of(source);
        self.sources.give_back(&source, now_ms);
        self.pairs.give_back(&(user.to_owned(), source), now_ms);
    }

    /// An attempt that was admitted but never checked (the hashing queue was full)
    /// gives back what it took: the client did not get to try.
    pub fn not_checked(&mut self, source: IpAddr, user: &str, now_ms: i64) {
        self.succeeded(source, user, now_ms);
    }

    /// How many sources and pairs are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        (self.sources.len(), self.pairs.len())
    }
}

/// The hashing pool is full: answer 503 with `Retry-After: 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HasherBusy;

struct Job {
    password: String,
    /// None: the user does not exist (verified against [`DUMMY_HASH`]).
    stored: Option<String>,
    answer: tokio::sync::oneshot::Sender<bool>,
}

#[derive(Debug, Default)]
struct Counters {
    running: AtomicUsize,
    peak: AtomicUsize,
    checked: AtomicU64,
}

/// A fixed pool of threads that verify console passwords. Dropping it ends the threads
/// once the queue is empty.
#[derive(Debug)]
pub struct PasswordChecker {
    jobs: SyncSender<Job>,
    threads: usize,
    counters: Arc<Counters>,
}

impl PasswordChecker {
    /// One thread per core, at most 4.
    pub fn new() -> PasswordChecker {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        PasswordChecker::with_threads(cores.clamp(1, 4), QUEUE_LENGTH)
    }

    pub fn with_threads(threads: usize, queue: usize) -> PasswordChecker {
        let (jobs, receiver) = mpsc::sync_channel(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let counters = Arc::new(Counters::default());
        for index in 0..threads {
            let receiver = receiver.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name(format!("galley-argon2-{index}"))
                .spawn(move || work(&receiver, &counters))
                .expect("the OS starts a password-checking thread");
        }
        PasswordChecker {
            jobs,
            threads,
            counters,
        }
    }

    /// Whether `password` matches `stored` (a PHC string; None for an unknown user,
    /// which never matches but costs the same), or [`HasherBusy`] at once when
    /// [`QUEUE_LENGTH`] checks already wait.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HasherBusy> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            password,
            stored,
            answer,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                return Err(HasherBusy)
            }
        }
        answered.await.map_err(|_| HasherBusy)
    }

    /// How many threads hash.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The most hashes that ever ran at once.
    pub fn peak_running(&self) -> usize {
        self.counters.peak.load(Ordering::SeqCst)
    }

    /// How many passwords were checked.
    pub fn checked(&self) -> u64 {
        self.counters.checked.load(Ordering::SeqCst)
    }
}

impl Default for PasswordChecker {
    fn default() -> PasswordChecker {
        PasswordChecker::new()
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, counters: &Counters) {
    // This thread's argon2 work area, grown once to what the hashes need and reused.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // The guard is dropped at the end of the statement: others may take the next.
        let job = receiver.lock().expect("password queue lock").recv();
        let Ok(job) = job else {
            return; // The checker was dropped.
        };
        let running = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak.fetch_max(running, Ordering::SeqCst);
        let matches = match &job.stored {
            Some(stored) => verify_with_memory(&job.password, stored, &mut memory),
            None => {
                verify_with_memory(&job.password, DUMMY_HASH, &mut memory);
                false
            }
        };
        counters.running.fetch_sub(1, Ordering::SeqCst);
        counters.checked.fetch_add(1, Ordering::SeqCst);
        // The client may have gone; nobody is left to tell.
        let _ = job.answer.send(matches);
    }
}

/// Whether `password` matches the PHC string `stored`, hashing in `memory` (grown to
/// the parameters' size when smaller). A malformed hash, or one asking for more than
/// [`MAX_MEMORY_KIB`], matches nothing.
pub fn verify_with_memory(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut output = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut output,
        &mut memory[..],
    );
    hashed.is_ok() && super::auth::constant_time_eq(&output, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "10.0.0.1";
    const B: &str = "10.0.0.2";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_source_is_limited_and_another_is_not() {
        let mut limiter = LoginLimiter::default();
        // Wrong passwords for many user names from A: the source's burst, then 429.
        for n in 0..SOURCE_BURST {
            assert_eq!(limiter.admit(ip(A), &format!("user{n}"), 0), Ok(()));
        }
        assert_eq!(
            limiter.admit(ip(A), "admin", 0),
            Err(Limited::Source { retry_after_s: 6 })
        );
        // B, the real admin, is not affected.
        assert_eq!(limiter.admit(ip(B), "admin", 0), Ok(()));
        // A gets one attempt back every 6 s.
        assert_eq!(
            limiter
                .admit(ip(A), "admin", 5_999)
                .map_err(|l| l.retry_after_s()),
            Err(1)
        );
        assert_eq!(limiter.admit(ip(A), "admin", 6_000), Ok(()));
    }

    #[test]
    fn wrong_passwords_for_a_user_lock_only_the_source_that_sent_them() {
        let mut limiter = LoginLimiter::default();
        for _ in 0..PAIR_BURST {
            assert_eq!(limiter.admit(ip(A), "admin", 0), Ok(()));
        }
        assert_eq!(
            limiter.admit(ip(A), "admin", 0),
            Err(Limited::UserFromSource { retry_after_s: 12 })
        );
        // Another user from A still may (the source has attempts left) ...
        assert_eq!(limiter.admit(ip(A), "ops", 0), Ok(()));
        // ... and admin from B may: no lockout from other addresses.
        assert_eq!(limiter.admit(ip(B), "admin", 0), Ok(()));
    }

    #[test]
    fn a_success_gives_back_its_attempt() {
        let mut limiter = LoginLimiter::default();
        for _ in 0..20 {
            assert_eq!(limiter.admit(ip(A), "admin", 0), Ok(()));
            limiter.succeeded(ip(A), "admin", 0);
        }
        assert_eq!(limiter.tracked(), (0, 0), "nothing is left to remember");
        // A success gives back one attempt, not every failure before it.
        for _ in 0..PAIR_BURST {
            limiter.admit(ip(A), "admin", 0).unwrap();
        }
        limiter.admit(ip(A), "ops", 0).unwrap();
        limiter.succeeded(ip(A), "ops", 0);
        assert!(limiter.admit(ip(A), "admin", 0).is_err());
    }

    #[test]
    fn ipv6_sources_count_by_64_bit_prefix() {
        let mut limiter = LoginLimiter::default();
        for n in 0..SOURCE_BURST {
            let address = format!("2001:db8:1:2::{n:x}");
            assert_eq!(limiter.admit(ip(&address), &format!("u{n}"), 0), Ok(()));
        }
        assert!(limiter.admit(ip("2001:db8:1:2:ffff::1"), "x", 0).is_err());
        assert_eq!(limiter.admit(ip("2001:db8:1:3::1"), "x", 0), Ok(()));
        // An IPv4-mapped address is the IPv4 source.
        for n in 0..SOURCE_BURST {
            limiter.admit(ip("192.0.2.7"), &format!("u{n}"), 0).unwrap();
        }
        assert!(limiter.admit(ip("::ffff:192.0.2.7"), "x", 0).is_err());
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2::5")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn the_tables_stay_bounded_and_keep_the_most_limited_sources() {
        let mut limiter = LoginLimiter::default();
        // One source used up at time 0 ...
        for n in 0..SOURCE_BURST {
            limiter.admit(ip(A), &format!("u{n}"), 0).unwrap();
        }
        // ... then more sources than the table holds, each with one attempt.
        for n in 0..(MAX_TRACKED as u32 + 500) {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + n));
            limiter.admit(source, "admin", 1).unwrap();
        }
        let (sources, pairs) = limiter.tracked();
        assert!(
            sources <= MAX_TRACKED && pairs <= MAX_TRACKED,
            "{sources} {pairs}"
        );
        // The spent source was kept: the others had more credit left.
        assert!(limiter.admit(ip(A), "admin", 2).is_err());
        // Long after, idle entries are dropped to make room.
        let later = 1_000_000;
        limiter.admit(ip(B), "admin", later).unwrap();
        assert!(limiter.tracked().0 < 10, "{:?}", limiter.tracked());
    }

    #[test]
    fn verification_reuses_its_memory_and_matches_argon2() {
        let stored = super::super::auth::hash_password("correct horse battery");
        let mut memory = Vec::new();
        assert!(verify_with_memory(
            "correct horse battery",
            &stored,
            &mut memory
        ));
        let size = memory.len();
        assert_eq!(size, Params::DEFAULT.block_count());
        assert!(!verify_with_memory(
            "correct horse batterx",
            &stored,
            &mut memory
        ));
        assert_eq!(memory.len(), size, "the work area is reused, not grown");
        assert!(!verify_with_memory("x", "not a PHC string", &mut memory));
        // A hash that asks for more memory than allowed matches nothing.
        let greedy = stored.replace("m=19456", "m=1048576");
        assert!(!verify_with_memory(
            "correct horse battery",
            &greedy,
            &mut memory
        ));
        assert_eq!(memory.len(), size);
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(params.m_cost(), Params::DEFAULT.m_cost());
        assert_eq!(params.t_cost(), Params::DEFAULT.t_cost());
        assert_eq!(params.p_cost(), Params::DEFAULT.p_cost());
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        let real = super::super::auth::hash_password("anything at all");
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(parsed.hash.unwrap().len(), real.hash.unwrap().len());
        assert_eq!(
            parsed.salt.unwrap().as_str().len(),
            real.salt.unwrap().as_str().len()
        );
        let mut memory = Vec::new();
        assert!(!verify_with_memory("", DUMMY_HASH, &mut memory));
        assert_eq!(memory.len(), Params::DEFAULT.block_count(), "it was hashed");
    }

    #[tokio::test]
    async fn the_pool_never_runs_more_than_its_threads_and_refuses_beyond_its_queue() {
        let stored = super::super::auth::hash_password("correct horse battery");
        let checker = Arc::new(PasswordChecker::with_threads(2, 3));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let checker = checker.clone();
            let stored = stored.clone();
            tasks.push(tokio::spawn(async move {
                checker.verify("wrong".to_owned(), Some(stored)).await
            }));
        }
        let mut refused = 0;
        let mut checked = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(matches) => {
                    assert!(!matches);
                    checked += 1;
                }
                Err(HasherBusy) => refused += 1,
            }
        }
        assert!(
            refused > 0,
            "20 at once cannot all fit 2 threads and 3 places"
        );
        assert!(checked >= 1);
        assert!(checker.peak_running() <= 2, "{}", checker.peak_running());
        assert_eq!(checker.checked(), checked);
        assert_eq!(
            checker
                .verify("correct horse battery".to_owned(), Some(stored))
                .await,
            Ok(true)
        );
        assert_eq!(checker.verify("x".to_owned(), None).await, Ok(false));
    }
}
