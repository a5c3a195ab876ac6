//! Keeping the lease through a long round (docs/safety-rules.md, rule 2: one actor acts
//! at a time). A tick takes the lease for a few seconds, but one of its steps can take
//! minutes: a start that waits for an SST, a `--wsrep-recover` over a large data dir. A
//! lease that expired in the middle would let `galley recover --yes` (or a second
//! controller) act on the same nodes at the same time, so the round renews it while it
//! runs, and stops at once if it ever finds the lease taken.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use store::Store;

/// The lease went to another actor while a round was acting.
#[derive(Debug, thiserror::Error)]
#[error(
    "the controller's lease was lost in the middle of a round ({why}); the round was cut short so that two actors never act at once, and the next round starts from a fresh observation"
)]
pub struct LeaseLost {
    why: String,
}

/// Runs `work` while renewing `owner`'s lease every third of `ttl_ms`. `now_ms` is the
/// clock the lease is measured by. Returns `work`'s output, or `LeaseLost` (with `work`
/// dropped, that is cut short at its next await) when a renewal finds another holder,
/// or when no renewal has succeeded for a whole `ttl_ms`.
pub async fn keeping<T>(
    store: &Mutex<Store>,
    owner: &str,
    ttl_ms: i64,
    now_ms: impl Fn() -> i64,
    work: impl Future<Output = T>,
) -> Result<T, LeaseLost> {
    let every = Duration::from_millis((ttl_ms / 3).max(1) as u64);
    let renewals = async {
        let mut renewed_at = now_ms();
        loop {
            tokio::time::sleep(every).await;
            let now = now_ms();
            let renewal = store
                .lock()
                .expect("store lock")
                .acquire_lease(owner, now, ttl_ms);
            match renewal {
                Ok(true) => renewed_at = now,
                Ok(false) => {
                    return LeaseLost {
                        why: "another actor holds it now".to_owned(),
                    }
                }
                Err(error) if now - renewed_at >= ttl_ms => {
                    return LeaseLost {
                        why: format!("it could not be renewed for {ttl_ms} ms: {error}"),
                    }
                }
                Err(error) => tracing::warn!("cannot renew the controller's lease: {error}"),
            }
        }
    };
    tokio::select! {
        output = work => Ok(output),
        lost = renewals => Err(lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL_MS: i64 = 5_000;

    /// The store with the lease held by "controller", and a clock that follows tokio's
    /// (paused) time.
    fn setup() -> (tempfile::TempDir, Mutex<Store>, impl Fn() -> i64 + Clone) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("galley.db")).unwrap();
        let start = tokio::time::Instant::now();
        let clock = move || 1_000_000 + start.elapsed().as_millis() as i64;
        assert!(store.acquire_lease("controller", clock(), TTL_MS).unwrap());
        (dir, Mutex::new(store), clock)
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_longer_than_the_lease_keeps_it_until_it_ends() {
        let (_dir, store, clock) = setup();
        let step = async {
            // A minute-long step, and another actor trying to take over midway.
            tokio::time::sleep(Duration::from_secs(30)).await;
            let taken = store
                .lock()
                .unwrap()
                .acquire_lease("recover", clock(), TTL_MS)
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            taken
        };
        let taken = keeping(&store, "controller", TTL_MS, clock.clone(), step)
            .await
            .unwrap();
        assert!(!taken, "another actor took the lease during the step");
        let holder = store.lock().unwrap().lease_holder(clock()).unwrap();
        assert_eq!(
            holder.map(|(owner, _)| owner).as_deref(),
            Some("controller")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_that_finds_the_lease_taken_is_cut_short() {
        let (_dir, store, clock) = setup();
        // As if the controller had been paused past its lease and another actor took it.
        let late = clock() + TTL_MS;
        assert!(store
            .lock()
            .unwrap()
            .acquire_lease("recover", late, TTL_MS * 100)
            .unwrap());
        let finished = std::sync::atomic::AtomicBool::new(false);
        let step = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            finished.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let error = keeping(&store, "controller", TTL_MS, clock, step)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("another actor holds it"),
            "{error}"
        );
        assert!(!finished.load(std::sync::atomic::Ordering::Relaxed));
    }
}
