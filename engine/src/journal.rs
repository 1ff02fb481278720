//! The engine's link to its write-ahead log: appending the record of each change
//! while the change's locks are held, and acknowledging a request once every record it
//! depended on is durable.
//!
//! Each thread keeps the highest LSN its current request depends on: the end of its
//! own records, and for a repeated request the end of the record of the first outcome.
//! A public mutating call clears it on entry and waits for it before returning.

use std::cell::Cell;

use crate::wal::record::Record;
use crate::wal::writer::{LogError, LogWriter};

thread_local! {
    /// LSN the current request must see durable before it is acknowledged.
    static ACK_LSN: Cell<u64> = const { Cell::new(0) };
    /// Whether an append of the current request failed.
    static APPEND_FAILED: Cell<bool> = const { Cell::new(false) };
    /// Inside `Engine::batch`: the highest LSN the batch's calls depended on so far.
    static BATCH_LSN: Cell<Option<u64>> = const { Cell::new(None) };
    /// Records this thread appended, and the LSN just past the last one; position
    /// guards stamp that LSN when the count moved while they were held.
    static APPENDED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Returns how many records this thread appended, and the LSN just past the last one.
#[inline]
pub(crate) fn appended() -> (u64, u64) {
    APPENDED.with(Cell::get)
}

/// The write-ahead log an engine writes to, if any.
#[derive(Default)]
pub(crate) struct Journal {
    log: Option<LogWriter>,
}

impl Journal {
    pub(crate) fn new(log: Option<LogWriter>) -> Self {
        Journal { log }
    }

    /// Starts a mutating request: clears what the thread's previous request left, and
    /// refuses if the log has failed, before anything changes.
    pub(crate) fn begin(&self) -> Result<(), LogError> {
        ACK_LSN.with(|lsn| lsn.set(0));
        APPEND_FAILED.with(|failed| failed.set(false));
        match &self.log {
            Some(log) => log.check_poisoned(),
            None => Ok(()),
        }
    }

    /// Appends the record `build` makes and returns the LSN just past it (0 without a
    /// log). Call it while holding the locks of what the record changed.
    #[inline]
    pub(crate) fn append(&self, build: impl FnOnce() -> Record) -> u64 {
        let Some(log) = &self.log else { return 0 };
        let record = build();
        match log.append(record.type_byte(), record.encode()) {
            Ok(end_lsn) => {
                self.depend_on(end_lsn);
                APPENDED.with(|appended| appended.set((appended.get().0 + 1, end_lsn)));
                end_lsn
            }
            Err(_) => {
                APPEND_FAILED.with(|failed| failed.set(true));
                0
            }
        }
    }

    /// Notes that the current request's outcome depends on the record ending at `lsn`.
    #[inline]
    pub(crate) fn depend_on(&self, lsn: u64) {
        ACK_LSN.with(|ack| ack.set(ack.get().max(lsn)));
    }

    /// Waits until everything the current request depended on is durable. Inside a
    /// batch, adds it to the batch's wait instead.
    pub(crate) fn acknowledge(&self) -> Result<(), LogError> {
        let Some(log) = &self.log else { return Ok(()) };
        let lsn = ACK_LSN.with(|ack| ack.replace(0));
        if APPEND_FAILED.with(|failed| failed.replace(false)) {
            log.check_poisoned()?;
            return Err(LogError::ShutDown);
        }
        if let Some(batch_lsn) = BATCH_LSN.get() {
            BATCH_LSN.set(Some(batch_lsn.max(lsn)));
            return log.check_poisoned();
        }
        log.wait_durable(lsn)
    }

    /// Runs `calls` with every acknowledgement deferred, then waits once for all of
    /// them. A batch inside a batch joins the outer one.
    pub(crate) fn batch<T>(&self, calls: impl FnOnce() -> T) -> Result<T, LogError> {
        let (value, lsn) = self.batch_deferred(calls);
        self.wait_durable(lsn).map(|()| value)
    }

    /// Runs `calls` with every acknowledgement deferred and returns the LSN they depend
    /// on, without waiting for it. Inside another batch, the outer batch waits.
    pub(crate) fn batch_deferred<T>(&self, calls: impl FnOnce() -> T) -> (T, u64) {
        if BATCH_LSN.get().is_some() {
            return (calls(), 0);
        }

        /// Ends the batch even if `calls` panics.
        struct EndBatch;
        impl Drop for EndBatch {
            fn drop(&mut self) {
                BATCH_LSN.set(None);
            }
        }
        BATCH_LSN.set(Some(0));
        let end = EndBatch;
        let value = calls();
        let lsn = BATCH_LSN.get().unwrap_or(0);
        drop(end);
        (value, lsn)
    }

    /// Waits until every record below `lsn` is durable.
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<(), LogError> {
        match &self.log {
            Some(log) => log.wait_durable(lsn),
            None => Ok(()),
        }
    }

    pub(crate) fn log(&self) -> Option<&LogWriter> {
        self.log.as_ref()
    }

    pub(crate) fn take_log(&mut self) -> Option<LogWriter> {
        self.log.take()
    }
}
