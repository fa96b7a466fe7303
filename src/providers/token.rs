//! A cache for one connection's login result (access token, session id, JWT + XSRF) that
//! refreshes ahead of expiry and lets concurrent callers share one login.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::ProviderResult;
use super::http::{HttpClient, HttpRequest, HttpResponse};

/// A login result with its lifetime (when the server says).
#[derive(Clone, Debug)]
pub struct Credential<T> {
    pub value: T,
    /// How long the server said it is valid, measured from when it was received.
    pub lifetime: Option<Duration>,
}

struct Slot<T> {
    value: T,
    refresh_at: Option<Instant>,
    generation: u64,
}

/// Caches one credential. `get` logs in when there is none or it is due for refresh;
/// `invalidate` drops it after the server refused it (401), once per generation.
pub struct TokenCache<T> {
    slot: Mutex<Option<Slot<T>>>,
    next_generation: std::sync::atomic::AtomicU64,
    refresh_before_expiry: Duration,
}

/// A credential plus the generation it belongs to, for [`TokenCache::invalidate`].
#[derive(Clone, Debug)]
pub struct Lease<T> {
    pub value: T,
    pub generation: u64,
}

impl<T: Clone> TokenCache<T> {
    pub fn new(refresh_before_expiry: Duration) -> Self {
        Self {
            slot: Mutex::new(None),
            next_generation: std::sync::atomic::AtomicU64::new(1),
            refresh_before_expiry,
        }
    }

    /// The effective margin: the smaller of `refresh_before_expiry` and half the lifetime.
    pub fn margin(&self, lifetime: Duration) -> Duration {
        self.refresh_before_expiry.min(lifetime / 2)
    }

    /// Returns the cached credential, logging in first when it is missing or due. The lock is
    /// held during login, so concurrent callers wait for one login and share it.
    pub async fn get<F, Fut>(&self, login: F) -> ProviderResult<Lease<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ProviderResult<Credential<T>>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            let fresh = current.refresh_at.is_none_or(|at| Instant::now() < at);
            if fresh {
                return Ok(Lease {
                    value: current.value.clone(),
                    generation: current.generation,
                });
            }
        }
        let received = Instant::now();
        let credential = login().await?;
        let refresh_at = credential
            .lifetime
            .map(|lifetime| received + lifetime.saturating_sub(self.margin(lifetime)));
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some(Slot {
            value: credential.value.clone(),
            refresh_at,
            generation,
        });
        Ok(Lease {
            value: credential.value,
            generation,
        })
    }

    /// Drops the credential of `generation` (a newer one, from a concurrent re-login, stays).
    pub async fn invalidate(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|s| s.generation == generation) {
            *slot = None;
        }
    }

    /// Removes and returns the cached credential (to end a session).
    pub async fn take(&self) -> Option<T> {
        self.slot.lock().await.take().map(|slot| slot.value)
    }

    /// Sends the request `build` makes from the current credential. When the server refuses
    /// it (`refused`, typically a 401), drops that credential, logs in again (once, shared
    /// with concurrent callers) and sends a freshly built request once more. Returns the last
    /// response whatever its status: the caller turns a second refusal into an error.
    pub async fn send_authenticated<L, LFut, B, R>(
        &self,
        http: &HttpClient,
        login: L,
        build: B,
        refused: R,
    ) -> ProviderResult<HttpResponse>
    where
        L: Fn() -> LFut,
        LFut: Future<Output = ProviderResult<Credential<T>>>,
        B: Fn(&T) -> HttpRequest,
        R: Fn(&HttpResponse) -> bool,
    {
        let lease = self.get(&login).await?;
        let response = http.send(build(&lease.value)).await?;
        if !refused(&response) {
            return Ok(response);
        }
        tracing::debug!(
            connection = http.connection(),
            method = %response.method,
            path = %response.path,
            status = response.status,
            "credential refused; logging in again"
        );
        self.invalidate(lease.generation).await;
        let lease = self.get(&login).await?;
        http.send(build(&lease.value)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_login() {
        let cache = Arc::new(TokenCache::<String>::new(Duration::from_secs(120)));
        let logins = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let logins = logins.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        logins.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Credential {
                            value: "t".to_string(),
                            lifetime: Some(Duration::from_secs(1800)),
                        })
                    })
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn short_lifetimes_refresh_at_half_life_and_invalidate_is_per_generation() {
        let cache = TokenCache::<u32>::new(Duration::from_secs(120));
        assert_eq!(
            cache.margin(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(
            cache.margin(Duration::from_secs(1800)),
            Duration::from_secs(120)
        );
        let first = cache
            .get(|| async {
                Ok(Credential {
                    value: 1,
                    lifetime: None,
                })
            })
            .await
            .unwrap();
        cache.invalidate(first.generation + 1).await;
        let same = cache
            .get(|| async {
                Ok(Credential {
                    value: 2,
                    lifetime: None,
                })
            })
            .await
            .unwrap();
        assert_eq!(same.value, 1);
        cache.invalidate(first.generation).await;
        let next = cache
            .get(|| async {
                Ok(Credential {
                    value: 3,
                    lifetime: None,
                })
            })
            .await
            .unwrap();
        assert_eq!(next.value, 3);
    }
}
