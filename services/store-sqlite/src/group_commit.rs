//! Group commit, shared by the two writers (`ballot_writer`, `sign_in_writer`). One writer
//! thread per process owns a connection and takes every operation that queued while the
//! previous commit ran; one `BEGIN IMMEDIATE` transaction applies them in order (each sees
//! what the one before it wrote), then every caller gets its answer. Nobody is answered
//! before the commit that holds their operation; a failed commit fails every operation in
//! the batch, none of which was stored.
//!
//! The queue is bounded: when it is full an operation is refused at once as unavailable
//! (503) rather than waiting without limit.

use std::path::Path;
use std::sync::mpsc;

use deadpool_sqlite::rusqlite::{self, Connection};
use tokio::sync::oneshot;
use turnout_store::StoreError;

use crate::error::copied_store_error;
use crate::metrics;

/// Operations waiting for a writer, at most.
const QUEUE: usize = 8192;
/// Operations in one transaction, at most.
const MAX_BATCH: usize = 512;

/// What one writer does: its connection, and a whole batch in one transaction.
pub(crate) trait Batch: 'static {
    type Op: Send + 'static;
    /// One operation's answer (a refusal of its own, such as "already voted", included).
    type Out: Send + 'static;
    /// The writer thread's name.
    const THREAD: &'static str;
    /// The `op` label its commits are timed under.
    const METRIC: &'static str;
    /// The refusal when the queue is full, after the queue's size ("ballots already ...").
    const FULL: &'static str;
    /// The refusal once the thread is gone.
    const STOPPED: &'static str;

    fn open(path: &Path) -> rusqlite::Result<Connection>;
    /// Every operation in one transaction, committed: an answer per operation, in order,
    /// or the error that rolled the whole batch back.
    fn apply(conn: &mut Connection, ops: &[&Self::Op]) -> rusqlite::Result<Vec<Self::Out>>;
    /// The answer for an operation whose batch failed.
    fn failed(e: StoreError) -> Self::Out;
    /// The log line of a failed batch of `n` operations.
    fn log_failed(n: usize, e: &rusqlite::Error);
}

struct Job<B: Batch> {
    op: B::Op,
    reply: oneshot::Sender<B::Out>,
}

pub(crate) struct Writer<B: Batch> {
    queue: mpsc::SyncSender<Job<B>>,
}

impl<B: Batch> Writer<B> {
    pub(crate) fn start(path: &Path) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new().name(B::THREAD.into()).spawn(move || run::<B>(&path, &jobs))?;
        Ok(Self { queue })
    }

    /// Queues `op` and waits for the commit that holds it.
    pub(crate) async fn submit(&self, op: B::Op) -> Result<B::Out, StoreError> {
        let stopped = || StoreError::Unavailable(B::STOPPED.into());
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { op, reply }).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Unavailable(format!("{QUEUE} {}", B::FULL)),
            mpsc::TrySendError::Disconnected(_) => stopped(),
        })?;
        answer.await.map_err(|_| stopped())
    }
}

/// Ends when every sender (the store) is dropped.
fn run<B: Batch>(path: &Path, jobs: &mpsc::Receiver<Job<B>>) {
    let mut conn: Option<Connection> = None;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match B::open(path) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    fail_all(batch, &e);
                    continue;
                }
            },
        };
        let ops: Vec<&B::Op> = batch.iter().map(|j| &j.op).collect();
        let started = std::time::Instant::now();
        let applied = B::apply(c, &ops);
        metrics::store_operation(B::METRIC, started.elapsed().as_secs_f64());
        match applied {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                // A broken connection is opened afresh for the next batch.
                if !matches!(copied_store_error(&e), StoreError::Unavailable(_)) {
                    conn = None;
                }
                fail_all(batch, &e);
            }
        }
    }
}

fn fail_all<B: Batch>(batch: Vec<Job<B>>, e: &rusqlite::Error) {
    B::log_failed(batch.len(), e);
    for job in batch {
        let _ = job.reply.send(B::failed(copied_store_error(e)));
    }
}

/// A writer thread's own connection, set up like every other.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    crate::configure(&conn)?;
    Ok(conn)
}
