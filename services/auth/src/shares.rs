//! The directory's connection pool, split into one share per HTTP worker thread.
//!
//! ldap3 runs each connection's reader as a task on the thread that opened the
//! connection. A sign-in served by another worker thread pays two thread wake-ups per
//! directory operation (request out, answer back), which on a two-core host shared with
//! the directory and nginx was a tenth of auth's CPU per sign-in. So each worker thread
//! claims a share of the connections and opens them itself. The shares add up to the
//! configured pool size, so the directory never holds more connections from Turnout.
//!
//! A sign-in takes, in order: an idle (or not yet opened) connection of its own share; an
//! idle connection of another share (a busy worker borrows from a quiet one); else it
//! waits on its own share, up to the pool's wait timeout.
//!
//! A thread that claimed no share (the status reporter) borrows like any other, from
//! the first share; but a connection it had to open is closed when it is done, never
//! pooled, so no worker inherits a reader on a thread that serves no sign-ins.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool::managed::{Manager, Object, Pool, PoolError, TimeoutType, Timeouts};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The share this thread claimed, per sharded pool (by id).
    static CLAIMED: RefCell<Vec<(u64, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Connections in use, open and waited for, over all shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
}

pub struct Sharded<M: Manager> {
    id: u64,
    shares: Vec<Pool<M>>,
    claims: AtomicUsize,
}

/// Sizes of `shares` shares adding up to `total`, none empty (fewer shares if needed).
pub fn split(total: usize, shares: usize) -> Vec<usize> {
    let n = shares.clamp(1, total.max(1));
    (0..n).map(|i| total / n + usize::from(i < total % n)).collect()
}

impl<M: Manager> Sharded<M> {
    /// `build(size)` makes one share's pool.
    pub fn new<E>(total: usize, shares: usize, build: impl Fn(usize) -> Result<Pool<M>, E>) -> Result<Self, E> {
        let shares = split(total, shares).into_iter().map(build).collect::<Result<Vec<_>, E>>()?;
        Ok(Self { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), shares, claims: AtomicUsize::new(0) })
    }

    /// Gives the calling thread the next share, round robin. Called once by each HTTP
    /// worker as it starts. A thread that never claims one (the status reporter) uses the
    /// first share, and what it opens is closed after use (see `Lease`).
    pub fn claim(&self) {
        let share = self.claims.fetch_add(1, Ordering::Relaxed) % self.shares.len();
        CLAIMED.with(|c| {
            let mut claimed = c.borrow_mut();
            claimed.retain(|(id, _)| *id != self.id);
            claimed.push((self.id, share));
        });
    }

    /// The share the calling thread claimed, if any.
    fn claimed(&self) -> Option<usize> {
        CLAIMED.with(|c| c.borrow().iter().find(|(id, _)| *id == self.id).map(|(_, share)| *share))
    }

    /// A connection: see the module's notes for the order. One the calling thread had to
    /// open without having claimed a share is closed when the lease ends.
    pub async fn get(&self) -> Result<Lease<M>, PoolError<M::Error>> {
        let claimed = self.claimed();
        let object = self.take(claimed.unwrap_or(0)).await?;
        let opened_now = Object::metrics(&object).recycle_count == 0;
        Ok(Lease { object: Some(object), keep: claimed.is_some() || !opened_now })
    }

    async fn take(&self, home: usize) -> Result<Object<M>, PoolError<M::Error>> {
        let own = &self.shares[home];
        let at_once = Timeouts { wait: Some(Duration::ZERO), ..own.timeouts() };
        let status = own.status();
        if status.available > 0 || status.size < status.max_size {
            match own.timeout_get(&at_once).await {
                Err(PoolError::Timeout(TimeoutType::Wait)) => {}
                taken => return taken,
            }
        }
        let n = self.shares.len();
        for other in (1..n).map(|k| &self.shares[(home + k) % n]) {
            if other.status().available > 0 {
                match other.timeout_get(&at_once).await {
                    Err(PoolError::Timeout(TimeoutType::Wait)) => {}
                    taken => return taken,
                }
            }
        }
        own.get().await
    }

    pub fn usage(&self) -> Usage {
        self.shares.iter().map(Pool::status).fold(Usage { max: 0, open: 0, idle: 0, waiting: 0 }, |u, s| Usage {
            max: u.max + s.max_size,
            open: u.open + s.size,
            idle: u.idle + s.available,
            waiting: u.waiting + s.waiting,
        })
    }

    pub fn shares(&self) -> usize {
        self.shares.len()
    }
}

/// A connection taken from the pool, back in the pool when dropped, unless it was
/// opened by a thread that claimed no share: then it is closed.
pub struct Lease<M: Manager> {
    object: Option<Object<M>>,
    keep: bool,
}

impl<M: Manager> Lease<M> {
    /// Takes the connection out of the pool for good (one that may be broken); the pool
    /// can open another in its place.
    pub fn detach(mut self) -> M::Type {
        Object::take(self.object.take().expect("a lease holds its connection until it ends"))
    }
}

impl<M: Manager> Deref for Lease<M> {
    type Target = M::Type;
    fn deref(&self) -> &M::Type {
        self.object.as_ref().expect("a lease holds its connection until it ends")
    }
}

impl<M: Manager> DerefMut for Lease<M> {
    fn deref_mut(&mut self) -> &mut M::Type {
        self.object.as_mut().expect("a lease holds its connection until it ends")
    }
}

impl<M: Manager> Drop for Lease<M> {
    fn drop(&mut self) {
        if let Some(object) = self.object.take()
            && !self.keep
        {
            drop(Object::take(object));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool::managed::{Metrics, RecycleResult};

    /// Counts objects, and records the thread each was made on.
    struct Counter(AtomicUsize);

    impl Manager for Counter {
        type Type = (usize, std::thread::ThreadId);
        type Error = std::convert::Infallible;
        async fn create(&self) -> Result<Self::Type, Self::Error> {
            Ok((self.0.fetch_add(1, Ordering::Relaxed), std::thread::current().id()))
        }
        async fn recycle(&self, _: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
            Ok(())
        }
    }

    fn sharded(total: usize, shares: usize, wait_ms: u64) -> Sharded<Counter> {
        Sharded::new(total, shares, |size| {
            Pool::builder(Counter(AtomicUsize::new(0)))
                .max_size(size)
                .timeouts(Timeouts { wait: Some(Duration::from_millis(wait_ms)), create: None, recycle: None })
                .runtime(deadpool::Runtime::Tokio1)
                .build()
        })
        .unwrap()
    }

    #[test]
    fn shares_add_up_to_the_pool_size_and_none_is_empty() {
        assert_eq!(split(16, 2), vec![8, 8]);
        assert_eq!(split(5, 2), vec![3, 2]);
        assert_eq!(split(1, 4), vec![1]);
        assert_eq!(split(3, 8), vec![1, 1, 1]);
        assert_eq!(split(7, 0), vec![7]);
        for (total, shares) in [(16, 3), (100, 7), (2, 2), (1024, 256)] {
            let sizes = split(total, shares);
            assert_eq!(sizes.iter().sum::<usize>(), total);
            assert!(sizes.iter().all(|s| *s > 0));
        }
    }

    #[tokio::test]
    async fn never_more_than_the_total_and_busy_shares_borrow_idle_ones() {
        let pool = sharded(4, 2, 50);
        // Unclaimed: share 0 (2 connections), then it borrows share 1's only once idle.
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        assert_eq!(pool.usage(), Usage { max: 4, open: 2, idle: 0, waiting: 0 });
        // Share 1 has nothing open, so nothing idle to borrow: the third waits and times out.
        let waited = pool.get().await;
        assert!(matches!(waited, Err(PoolError::Timeout(TimeoutType::Wait))), "share 0 is full");
        // Open share 1's connections from a thread that claimed it, then give them back.
        let other = std::sync::Arc::new(pool);
        let p = other.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                p.claim(); // share 0
                p.claim(); // share 1
                let c = p.get().await.unwrap();
                let d = p.get().await.unwrap();
                drop((c, d));
            })
        })
        .join()
        .unwrap();
        assert_eq!(other.usage(), Usage { max: 4, open: 4, idle: 2, waiting: 0 });
        // Share 0 is still full, so these come from share 1's idle connections.
        let c = other.get().await.unwrap();
        let d = other.get().await.unwrap();
        assert_ne!(c.1, std::thread::current().id(), "borrowed, opened on the other thread");
        assert_ne!(d.1, std::thread::current().id());
        assert!(matches!(other.get().await, Err(PoolError::Timeout(TimeoutType::Wait))), "4 in use: no fifth");
        assert_eq!(other.usage(), Usage { max: 4, open: 4, idle: 0, waiting: 0 });
        drop((a, b, c, d));
    }

    #[tokio::test]
    async fn a_thread_without_a_share_closes_what_it_opened_and_returns_what_it_borrowed() {
        let pool = std::sync::Arc::new(sharded(4, 2, 50));
        // Unclaimed: it opens a connection in share 0, and it is gone once dropped.
        let opened = pool.get().await.unwrap();
        assert_eq!(pool.usage().open, 1);
        drop(opened);
        assert_eq!(pool.usage(), Usage { max: 4, open: 0, idle: 0, waiting: 0 }, "closed, not pooled");

        // A worker claims share 0 and opens one; it stays pooled after use.
        let p = pool.clone();
        let worker_thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                p.claim();
                drop(p.get().await.unwrap());
                std::thread::current().id()
            })
        })
        .join()
        .unwrap();
        assert_eq!(pool.usage(), Usage { max: 4, open: 1, idle: 1, waiting: 0 }, "the worker's stays");

        // The unclaimed thread borrows the worker's idle connection and gives it back.
        let borrowed = pool.get().await.unwrap();
        assert_eq!(borrowed.1, worker_thread);
        drop(borrowed);
        assert_eq!(pool.usage(), Usage { max: 4, open: 1, idle: 1, waiting: 0 }, "a borrowed one goes back");
    }

    #[tokio::test]
    async fn a_detached_connection_leaves_the_pool() {
        let pool = sharded(2, 1, 50);
        pool.claim();
        let conn = pool.get().await.unwrap();
        let (n, _) = conn.detach();
        assert_eq!(n, 0);
        assert_eq!(pool.usage(), Usage { max: 2, open: 0, idle: 0, waiting: 0 });
        assert_eq!(pool.get().await.unwrap().0, 1, "a new one takes its place");
    }

    #[tokio::test]
    async fn a_claimed_share_opens_its_own_connections() {
        let pool = sharded(4, 2, 50);
        pool.claim();
        pool.claim(); // this thread now holds share 1
        let a = pool.get().await.unwrap();
        assert_eq!(pool.shares[1].status().size, 1, "opened in the claimed share");
        assert_eq!(pool.shares[0].status().size, 0);
        drop(a);
    }
}
