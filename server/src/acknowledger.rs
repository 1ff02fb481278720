//! One thread that waits for the log on behalf of every frame in flight: a frame
//! registers the LSN its changes depend on, and gets its response when the log's
//! durable LSN passes it. One wake-up per fdatasync group serves every frame it covered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc;

use promesa_engine::Engine;
use promesa_engine::error::LogError;
use tokio::sync::oneshot;

/// A frame waiting for its LSN.
type Waiter = (u64, oneshot::Sender<Result<(), LogError>>);

/// Hands frames' LSNs to the waiting thread.
///
/// The queue has no bound of its own: the frames in flight, and so the waiters, are
/// bounded by the connection limit times the in-flight request limit.
pub struct Acknowledger {
    waiters: Option<mpsc::Sender<Waiter>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acknowledger {
    /// Starts the waiting thread.
    pub fn start(engine: Arc<Engine>) -> std::io::Result<Self> {
        let (waiters, queued) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new().name("promesa-acknowledger".into()).spawn(move || {
            let mut pending: BTreeMap<u64, Vec<oneshot::Sender<Result<(), LogError>>>> = BTreeMap::new();
            loop {
                if pending.is_empty() {
                    match queued.recv() {
                        Ok((lsn, reply)) => pending.entry(lsn).or_default().push(reply),
                        Err(_) => return,
                    }
                }
                while let Ok((lsn, reply)) = queued.try_recv() {
                    pending.entry(lsn).or_default().push(reply);
                }

                let lowest = *pending.keys().next().expect("at least one frame waits");
                match engine.wait_durable(lowest) {
                    Ok(()) => {
                        // Every frame the same fdatasync covered gets its response too.
                        let durable = engine.durable_lsn().max(lowest);
                        let later = pending.split_off(&(durable + 1));
                        for reply in std::mem::replace(&mut pending, later).into_values().flatten() {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(failure) => {
                        for reply in std::mem::take(&mut pending).into_values().flatten() {
                            let _ = reply.send(Err(failure.clone()));
                        }
                    }
                }
            }
        })?;
        Ok(Acknowledger { waiters: Some(waiters), thread: Some(thread) })
    }

    /// Waits until every log record below `lsn` is durable.
    pub async fn wait(&self, lsn: u64) -> Result<(), LogError> {
        let (reply, replied) = oneshot::channel();
        let waiters = self.waiters.as_ref().ok_or(LogError::ShutDown)?;
        waiters.send((lsn, reply)).map_err(|_| LogError::ShutDown)?;
        replied.await.map_err(|_| LogError::ShutDown)?
    }
}

impl Drop for Acknowledger {
    fn drop(&mut self) {
        drop(self.waiters.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
