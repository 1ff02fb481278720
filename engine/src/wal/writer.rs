//! The log writer: one thread that takes every queued record, writes them with one
//! write, calls fdatasync once, and then releases the acknowledgements of everything
//! that sync covered (group commit).
//!
//! Producers take a record's LSN with one atomic add while they still hold the locks
//! of what the record changed, so LSN order agrees with the order of changes to every
//! position. They may hand records over in a different order; the writer writes only
//! the contiguous prefix of LSNs, so "durable up to LSN n" covers every record below n.
//! A request is acknowledged once the durable LSN passes the end of its own record,
//! which then covers every change it observed.
//!
//! There is no artificial delay: the writer syncs as soon as it has records, and groups
//! grow by themselves while a sync is in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use thiserror::Error;

use super::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SegmentHeader, encode_record, framed_len};
use super::scan::segment_name;
use super::storage::{Storage, StorageFile};

/// Default largest segment file, in bytes (64 MiB).
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Zeros written ahead of the records in a durable log's segment, at least.
const ZERO_AHEAD_MIN_BYTES: u64 = 256 << 10;
/// One write of zeros ahead of the records.
static ZERO_CHUNK: [u8; 1 << 20] = [0; 1 << 20];

/// Default bound on record bytes handed to the writer but not yet written (16 MiB).
/// A producer that would pass it waits for the writer.
pub const QUEUE_BYTES_MAX_DEFAULT: u64 = 16 << 20;

/// When an append is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// After the fdatasync that covers the record: survives a crash of the process or
    /// the machine.
    #[default]
    Sync,
    /// Right away, with the record written later and never synced. NOT durable: a crash
    /// loses acknowledged changes. For tests and benchmarks only.
    NotDurable,
}

/// Settings of the log writer.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Largest segment file, in bytes; the writer starts a new segment before a record
    /// would pass it.
    pub segment_bytes_max: u64,
    /// Record bytes queued but not written at most; producers wait past it.
    pub queue_bytes_max: u64,
    /// When appends are acknowledged.
    pub durability: Durability,
    /// When snapshots are taken.
    pub snapshot: crate::snapshot::SnapshotPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            queue_bytes_max: QUEUE_BYTES_MAX_DEFAULT,
            durability: Durability::Sync,
            snapshot: crate::snapshot::SnapshotPolicy::default(),
        }
    }
}

/// The log cannot take or acknowledge records.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// A write or fdatasync failed earlier. Nothing after it is acknowledged, because
    /// the kernel may have dropped the unsynced pages; recover by restarting, which
    /// replays the log.
    #[error("the write-ahead log failed ({cause}) and accepts no more changes; restart to recover from the log")]
    Poisoned {
        /// The first failure.
        cause: String,
    },
    /// The writer was shut down.
    #[error("the write-ahead log is shut down")]
    ShutDown,
}

/// Counters of the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Median fdatasync time of a group, in microseconds.
    pub sync_us_p50: u64,
    /// 99th percentile fdatasync time of a group, in microseconds.
    pub sync_us_p99: u64,
    /// Records written.
    pub records: u64,
    /// Write + fdatasync groups.
    pub groups: u64,
    /// Bytes written, headers included.
    pub bytes: u64,
    /// Maximum fdatasync time, in microseconds.
    pub sync_us_max: u64,
    /// Sum of fdatasync times, in microseconds.
    pub sync_us_total: u64,
}

struct Pending {
    lsn: u64,
    record_type: u8,
    payload: Vec<u8>,
}

struct Shared {
    /// LSN the next record gets.
    next_lsn: AtomicU64,
    /// Every record below this LSN is written, and synced under `Durability::Sync`.
    durable_lsn: AtomicU64,
    poisoned: AtomicBool,
    state: Mutex<State>,
    /// Signalled after every group and on failure.
    progress: Condvar,
}

struct State {
    cause: Option<String>,
    stats: LogStats,
    /// fdatasync times of groups, in microseconds.
    sync_us: hdrhistogram::Histogram<u64>,
}

impl Default for State {
    fn default() -> Self {
        // Three significant digits, as hdrhistogram recommends for latencies.
        let sync_us = hdrhistogram::Histogram::new(3).expect("3 significant digits is a valid precision");
        State { cause: None, stats: LogStats::default(), sync_us }
    }
}

/// Appends records to the log through a writer thread.
pub struct LogWriter {
    shared: Arc<Shared>,
    sender: Option<Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
    config: LogConfig,
}

impl LogWriter {
    /// Starts writing at `end_lsn`, the end of the log a scan found: in the segment
    /// that holds it, or in a new segment if there is none.
    pub fn open(storage: Arc<dyn Storage>, end_lsn: u64, config: LogConfig) -> std::io::Result<Self> {
        let segment = SegmentCursor::open(&*storage, end_lsn, config.segment_bytes_max)?;

        // Each queued record is at least a header, so this many slots never fill while
        // the byte bound is kept. A few more cover producers that passed the check at once.
        let capacity = (config.queue_bytes_max as usize / RECORD_HEADER_LEN).max(1) + 1_024;
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let shared = Arc::new(Shared {
            next_lsn: AtomicU64::new(end_lsn),
            durable_lsn: AtomicU64::new(end_lsn),
            poisoned: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            progress: Condvar::new(),
        });
        let writer = Writer { storage, shared: Arc::clone(&shared), receiver, segment, config: config.clone() };
        let thread = std::thread::Builder::new().name("promesa-log-writer".into()).spawn(move || writer.run())?;
        Ok(LogWriter { shared, sender: Some(sender), thread: Some(thread), config })
    }

    /// Queues a record and returns the LSN just past it: the LSN to wait for. Call it
    /// while holding the locks of what the record changed.
    ///
    /// Waits while the queue holds `queue_bytes_max` bytes.
    pub fn append(&self, record_type: u8, payload: Vec<u8>) -> Result<u64, LogError> {
        assert_ne!(record_type, 0, "record type 0 is reserved");
        let len = framed_len(payload.len()) as u64;
        self.wait_for_room()?;

        let lsn = self.shared.next_lsn.fetch_add(len, Ordering::AcqRel);
        let sender = self.sender.as_ref().ok_or(LogError::ShutDown)?;
        if sender.send(Pending { lsn, record_type, payload }).is_err() {
            // The writer stopped: after a failure, or at shutdown.
            self.check_poisoned()?;
            return Err(LogError::ShutDown);
        }
        Ok(lsn + len)
    }

    fn wait_for_room(&self) -> Result<(), LogError> {
        let queued = |shared: &Shared| {
            shared.next_lsn.load(Ordering::Acquire).saturating_sub(shared.durable_lsn.load(Ordering::Acquire))
        };
        if queued(&self.shared) < self.config.queue_bytes_max {
            return self.check_poisoned();
        }
        let mut state = self.shared.state.lock().expect("log state lock");
        loop {
            if let Some(cause) = &state.cause {
                return Err(LogError::Poisoned { cause: cause.clone() });
            }
            if queued(&self.shared) < self.config.queue_bytes_max {
                return Ok(());
            }
            state = self.shared.progress.wait(state).expect("log state lock");
        }
    }

    /// Returns the failure that poisoned the log, if any.
    pub fn check_poisoned(&self) -> Result<(), LogError> {
        if !self.shared.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let state = self.shared.state.lock().expect("log state lock");
        Err(LogError::Poisoned { cause: state.cause.clone().unwrap_or_default() })
    }

    /// Waits until every record below `lsn` is durable (or, under
    /// `Durability::NotDurable`, returns at once).
    pub fn wait_durable(&self, lsn: u64) -> Result<(), LogError> {
        if self.config.durability == Durability::NotDurable {
            return self.check_poisoned();
        }
        self.wait_written(lsn)
    }

    /// Waits until every record below `lsn` is written, and synced under
    /// `Durability::Sync`, whatever the durability mode.
    pub fn wait_written(&self, lsn: u64) -> Result<(), LogError> {
        if self.shared.durable_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let mut state = self.shared.state.lock().expect("log state lock");
        loop {
            if self.shared.durable_lsn.load(Ordering::Acquire) >= lsn {
                return Ok(());
            }
            if let Some(cause) = &state.cause {
                return Err(LogError::Poisoned { cause: cause.clone() });
            }
            state = self.shared.progress.wait(state).expect("log state lock");
        }
    }

    /// Returns the LSN the next record gets.
    pub fn next_lsn(&self) -> u64 {
        self.shared.next_lsn.load(Ordering::Acquire)
    }

    /// Returns the LSN below which every record is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.shared.durable_lsn.load(Ordering::Acquire)
    }

    /// Returns the counters so far.
    pub fn stats(&self) -> LogStats {
        let state = self.shared.state.lock().expect("log state lock");
        LogStats {
            sync_us_p50: state.sync_us.value_at_quantile(0.5),
            sync_us_p99: state.sync_us.value_at_quantile(0.99),
            ..state.stats
        }
    }

    /// Writes and syncs everything queued, then stops the writer thread.
    pub fn shutdown(mut self) -> Result<(), LogError> {
        self.stop();
        self.check_poisoned()
    }

    fn stop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the writer poisons nothing more than the log already reports.
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The segment being written and the write position in it.
struct SegmentCursor {
    file: Box<dyn StorageFile>,
    name: String,
    /// Byte offset in the file where the next record goes.
    offset: u64,
    /// Whether the segment holds any record yet.
    has_records: bool,
    /// Bytes from the start written at least once (records or zeros). Past it the
    /// preallocated blocks are still unwritten extents, whose first write makes the
    /// fdatasync also commit the file system's journal.
    written_to: u64,
}

impl SegmentCursor {
    /// Opens the segment that ends at `end_lsn`, or creates one starting there.
    fn open(storage: &dyn Storage, end_lsn: u64, segment_bytes_max: u64) -> std::io::Result<Self> {
        let mut bases: Vec<u64> = storage
            .list()?
            .iter()
            .filter_map(|name| name.strip_suffix(".log").and_then(|stem| stem.parse::<u64>().ok()))
            .filter(|&base| base <= end_lsn)
            .collect();
        bases.sort_unstable();
        if let Some(&base) = bases.last() {
            let offset = SEGMENT_HEADER_LEN as u64 + (end_lsn - base);
            if offset < segment_bytes_max {
                let name = segment_name(base);
                let file = storage.open(&name)?;
                return Ok(SegmentCursor { file, name, offset, has_records: end_lsn > base, written_to: offset });
            }
        }
        Self::create(storage, end_lsn, segment_bytes_max)
    }

    /// Creates, preallocates and syncs a new segment whose first record is `base_lsn`.
    fn create(storage: &dyn Storage, base_lsn: u64, segment_bytes_max: u64) -> std::io::Result<Self> {
        let name = segment_name(base_lsn);
        let mut file = storage.create(&name)?;
        file.preallocate(segment_bytes_max)?;
        file.write_at(0, &SegmentHeader { base_lsn }.encode())?;
        file.sync_data()?;
        storage.sync_dir()?;
        let offset = SEGMENT_HEADER_LEN as u64;
        Ok(SegmentCursor { file, name, offset, has_records: false, written_to: offset })
    }
}

struct Writer {
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    receiver: Receiver<Pending>,
    segment: SegmentCursor,
    config: LogConfig,
}

impl Writer {
    fn run(mut self) {
        let mut reorder: BTreeMap<u64, Pending> = BTreeMap::new();
        let mut buffer = Vec::new();
        let mut written_lsn = self.shared.durable_lsn.load(Ordering::Acquire);
        // Block for one record, then take everything else already queued.
        while let Ok(pending) = self.receiver.recv() {
            reorder.insert(pending.lsn, pending);
            while let Ok(pending) = self.receiver.try_recv() {
                reorder.insert(pending.lsn, pending);
            }

            if let Err(error) = self.write_prefix(&mut reorder, &mut buffer, &mut written_lsn) {
                self.poison(format!("{error} (segment {})", self.segment.name));
                return;
            }
        }
        // The queue closed: everything sent was taken. Write what is contiguous.
        if let Err(error) = self.write_prefix(&mut reorder, &mut buffer, &mut written_lsn) {
            self.poison(format!("{error} (segment {})", self.segment.name));
        }
    }

    /// Writes the records that continue the log at `written_lsn`, in as few writes as
    /// segment boundaries allow, syncs, and publishes the new durable LSN.
    fn write_prefix(
        &mut self,
        reorder: &mut BTreeMap<u64, Pending>,
        buffer: &mut Vec<u8>,
        written_lsn: &mut u64,
    ) -> std::io::Result<()> {
        let mut records = 0u64;
        let mut bytes = 0u64;
        let mut sync_us = 0u64;
        while let Some(pending) = reorder.remove(written_lsn) {
            let len = framed_len(pending.payload.len()) as u64;
            if self.segment.has_records && self.segment.offset + len > self.config.segment_bytes_max {
                sync_us += self.flush(buffer)?;
                self.segment = SegmentCursor::create(&*self.storage, pending.lsn, self.config.segment_bytes_max)?;
            }
            encode_record(pending.lsn, pending.record_type, &pending.payload, buffer);
            self.segment.has_records = true;
            *written_lsn += len;
            records += 1;
            bytes += len;
        }
        if buffer.is_empty() {
            return Ok(());
        }
        sync_us += self.flush(buffer)?;

        let mut state = self.shared.state.lock().expect("log state lock");
        self.shared.durable_lsn.store(*written_lsn, Ordering::Release);
        state.stats.records += records;
        state.stats.groups += 1;
        state.stats.bytes += bytes;
        state.stats.sync_us_total += sync_us;
        state.stats.sync_us_max = state.stats.sync_us_max.max(sync_us);
        if self.config.durability == Durability::Sync {
            state.sync_us.saturating_record(sync_us);
        }
        drop(state);
        self.shared.progress.notify_all();
        Ok(())
    }

    /// Writes `buffer` at the segment's position with one write, syncs it unless the
    /// log is not durable, and returns the sync time in microseconds.
    fn flush(&mut self, buffer: &mut Vec<u8>) -> std::io::Result<u64> {
        if buffer.is_empty() {
            return Ok(0);
        }
        self.segment.file.write_at(self.segment.offset, buffer)?;
        self.segment.offset += buffer.len() as u64;
        buffer.clear();
        if self.config.durability == Durability::NotDurable {
            return Ok(0);
        }
        self.zero_ahead()?;
        let started = Instant::now();
        self.segment.file.sync_data()?;
        Ok(started.elapsed().as_micros() as u64)
    }

    /// Keeps the segment written with zeros at least `ZERO_AHEAD_MIN_BYTES` past the
    /// records, a chunk at a time, so most syncs cover blocks already written once and
    /// need no journal commit. Zeros past the last record read as the end of the log,
    /// as the preallocated blocks do.
    fn zero_ahead(&mut self) -> std::io::Result<()> {
        let segment = &mut self.segment;
        segment.written_to = segment.written_to.max(segment.offset);
        while segment.written_to < segment.offset + ZERO_AHEAD_MIN_BYTES
            && segment.written_to < self.config.segment_bytes_max
        {
            let len = ZERO_CHUNK.len().min((self.config.segment_bytes_max - segment.written_to) as usize);
            segment.file.write_at(segment.written_to, &ZERO_CHUNK[..len])?;
            segment.written_to += len as u64;
        }
        Ok(())
    }

    fn poison(&self, cause: String) {
        let mut state = self.shared.state.lock().expect("log state lock");
        state.cause.get_or_insert(cause);
        self.shared.poisoned.store(true, Ordering::Release);
        drop(state);
        self.shared.progress.notify_all();
    }
}
