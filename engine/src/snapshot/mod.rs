//! Snapshots: the engine's state written to one file, so that recovery replays only
//! the log after it and old log segments can be deleted.
//!
//! A snapshot is taken while requests run. It copies the catalog's sizes under the
//! catalog writer lock, then the adjustment ledger and every reservation shard a few
//! pages per lock, then every position with a lock-free read. Each reservation carries
//! the LSN just past its last record and each position its LSN stamp, so recovery
//! applies a later record only to the objects that do not reflect it yet. Reservations
//! are copied before positions, which is what makes a record with an effect on both
//! consistent: a record already in a reservation's copy is in its positions' copies.
//!
//! The file is written only once the log is durable up to the last LSN the copy could
//! have seen, so it never contains a change the log could lose. It is written to a
//! temporary name, synced, renamed and the folder synced. The two newest snapshots are
//! kept; log segments wholly before the older of the two are deleted, so that a damaged
//! newest snapshot can fall back to the previous one and still find its log.

pub(crate) mod image;

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use thiserror::Error;

use crate::Engine;
use crate::catalog::{FulfilmentMethods, LocationKind, LocationSpec};
use crate::journal::Journal;
use crate::wal::scan::parse_segment_name;
use crate::wal::storage::Storage;
use crate::wal::writer::LogError;
use image::{ArchivedEngineImage, ChannelImage, EngineImage, LocationImage, PositionImage, PostalImage, ReceiptImage};

pub use image::{ImageError, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC};

/// Snapshots kept on disk: the newest, and the previous one to fall back to.
pub const SNAPSHOTS_KEPT: usize = 2;

/// Default time between two checks of whether a snapshot is due, in milliseconds.
pub const SNAPSHOT_CHECK_INTERVAL_MS_DEFAULT: u64 = 100;

/// Default time between periodic snapshots: 5 minutes.
pub const SNAPSHOT_INTERVAL_MS_DEFAULT: u64 = 5 * 60 * 1_000;

/// Default log growth that triggers a snapshot: 512 MiB, about ten million reserve
/// and release records at about 50 bytes each (an estimate), which replay in seconds.
pub const SNAPSHOT_LOG_BYTES_DEFAULT: u64 = 512 << 20;

/// Suffix of snapshot files.
const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Suffix of a snapshot being written.
const TEMPORARY_SUFFIX: &str = ".snapshot.tmp";

/// Returns the file name of the snapshot whose replay starts at `start_lsn`.
pub fn snapshot_name(start_lsn: u64) -> String {
    format!("{start_lsn:020}{SNAPSHOT_SUFFIX}")
}

/// Returns the start LSN a snapshot file name carries, if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The outcome of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The file written.
    pub file: String,
    /// Replay after this snapshot starts at this LSN.
    pub start_lsn: u64,
    /// Bytes of the file.
    pub size_bytes: u64,
    /// Positions copied.
    pub positions: u64,
    /// Reservations copied, open and ended.
    pub reservations: u64,
    /// Time to copy the state while requests ran.
    pub copy_elapsed: Duration,
    /// Maximum time the copy held any lock that requests take.
    pub longest_lock_hold: Duration,
    /// Time from the start to the folder sync after the rename.
    pub elapsed: Duration,
    /// Older snapshot files deleted.
    pub snapshots_removed: usize,
    /// Log segments deleted.
    pub segments_removed: usize,
}

/// A snapshot could not be taken. The engine keeps serving, and the log still contains
/// every change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The engine writes no log, so it has nowhere to keep snapshots.
    #[error("the engine has no write-ahead log, so it takes no snapshots")]
    NoLog,
    /// The log failed, so the state may hold changes it could not make durable.
    #[error("no snapshot while the write-ahead log has failed: {0}")]
    Log(#[from] LogError),
    /// Writing the file, renaming it or syncing the folder failed.
    #[error("writing snapshot {file} failed: {error}")]
    Write {
        /// The snapshot file.
        file: String,
        /// The file system error.
        error: io::Error,
    },
    /// The snapshot was written, but deleting what it replaced failed.
    #[error("snapshot {file} was written, but deleting older files failed: {error}")]
    Trim {
        /// The snapshot file.
        file: String,
        /// The file system error.
        error: io::Error,
    },
}

/// When snapshots are taken, besides on a clean shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Time between snapshots, in milliseconds; 0 turns the timer off.
    pub interval_ms: u64,
    /// Log growth since the last snapshot that triggers one, in bytes; 0 turns it off.
    pub log_bytes: u64,
    /// Whether a clean shutdown ([`Engine::close`]) writes a snapshot.
    pub on_close: bool,
    /// Time between two checks of the triggers by [`SnapshotScheduler`], in
    /// milliseconds.
    pub check_interval_ms: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            interval_ms: SNAPSHOT_INTERVAL_MS_DEFAULT,
            log_bytes: SNAPSHOT_LOG_BYTES_DEFAULT,
            on_close: true,
            check_interval_ms: SNAPSHOT_CHECK_INTERVAL_MS_DEFAULT,
        }
    }
}

/// When the last snapshot was taken.
struct LastSnapshot {
    at: Instant,
    start_lsn: u64,
    /// The report of this process's last snapshot, if it took one.
    report: Option<SnapshotReport>,
}

/// The snapshot side of a durable engine.
pub(crate) struct Snapshots {
    storage: Arc<dyn Storage>,
    policy: SnapshotPolicy,
    /// Serializes snapshots and remembers the last one.
    last: Mutex<LastSnapshot>,
}

impl Snapshots {
    pub(crate) fn new(storage: Arc<dyn Storage>, policy: SnapshotPolicy, start_lsn: u64) -> Self {
        Snapshots { storage, policy, last: Mutex::new(LastSnapshot { at: Instant::now(), start_lsn, report: None }) }
    }
}

/// Lock holds measured while copying.
#[derive(Default)]
struct HoldTimer {
    longest: Duration,
}

impl HoldTimer {
    fn hold<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = work();
        self.longest = self.longest.max(started.elapsed());
        value
    }
}

impl Engine {
    /// Writes a snapshot now, then deletes the snapshots and log segments it makes
    /// unnecessary. Requests keep running while it copies.
    pub fn snapshot(&self) -> Result<SnapshotReport, SnapshotError> {
        let snapshots = self.snapshots.as_ref().ok_or(SnapshotError::NoLog)?;
        let log = self.journal.log().ok_or(SnapshotError::NoLog)?;
        let mut last = snapshots.last.lock();
        log.check_poisoned()?;
        let started = Instant::now();

        let (image, longest_lock_hold) = self.copy_image();
        let copy_elapsed = started.elapsed();

        // Never write a change the log could still lose (or, with `NotDurable`, has
        // not written yet).
        log.wait_written(image.end_lsn)?;

        let file = snapshot_name(image.start_lsn);
        let bytes = image::encode(&image);
        write_file(&*snapshots.storage, &file, &bytes)
            .map_err(|error| SnapshotError::Write { file: file.clone(), error })?;
        *last = LastSnapshot { at: started, start_lsn: image.start_lsn, report: None };
        let elapsed = started.elapsed();

        let (snapshots_removed, segments_removed) =
            trim(&*snapshots.storage).map_err(|error| SnapshotError::Trim { file: file.clone(), error })?;
        let report = SnapshotReport {
            file: file.clone(),
            start_lsn: image.start_lsn,
            size_bytes: bytes.len() as u64,
            positions: image.positions.len() as u64,
            reservations: image.reservations.len() as u64,
            copy_elapsed,
            longest_lock_hold,
            elapsed,
            snapshots_removed,
            segments_removed,
        };
        last.report = Some(report.clone());
        tracing::info!(
            file = %file,
            size_bytes = bytes.len(),
            positions = image.positions.len(),
            reservations = image.reservations.len(),
            elapsed_ms = elapsed.as_millis() as u64,
            longest_lock_hold_us = longest_lock_hold.as_micros() as u64,
            segments_removed,
            "snapshot written"
        );
        Ok(report)
    }

    /// Returns what the last snapshot this process took did, if it took one.
    pub fn last_snapshot(&self) -> Option<SnapshotReport> {
        self.snapshots.as_ref().and_then(|snapshots| snapshots.last.lock().report.clone())
    }

    /// Returns whether the policy calls for a snapshot now.
    pub fn snapshot_due(&self) -> bool {
        let (Some(snapshots), Some(log)) = (&self.snapshots, self.journal.log()) else { return false };
        let policy = snapshots.policy;
        let last = snapshots.last.lock();
        let by_time = policy.interval_ms > 0 && last.at.elapsed() >= Duration::from_millis(policy.interval_ms);
        let by_size = policy.log_bytes > 0 && log.next_lsn().saturating_sub(last.start_lsn) >= policy.log_bytes;
        by_time || by_size
    }

    pub(crate) fn snapshot_on_close(&self) -> bool {
        self.snapshots.as_ref().is_some_and(|snapshots| snapshots.policy.on_close)
    }

    /// Copies the state into an image while requests run, and returns it with the
    /// longest lock hold.
    fn copy_image(&self) -> (EngineImage, Duration) {
        let log = self.journal.log().expect("only a durable engine takes snapshots");
        let mut timer = HoldTimer::default();
        let swept_until_ms = self.swept_until_ms();
        // Every expiry logged below the start is counted, and none above it.
        let (start_lsn, holds_expired) = timer.hold(|| {
            let _counted = self.expiry.counted.lock();
            (log.next_lsn(), self.counters.holds_expired.load(Ordering::Relaxed))
        });

        // The catalog's sizes and its small tables, under the writer lock.
        let (catalog_lsn, locations, channels, sku_count, position_count) = timer.hold(|| {
            let _writer = self.catalog.writer_lock();
            let locations: Vec<LocationImage> = (0..self.catalog.location_count() as u32)
                .map(|id| {
                    let info = self.catalog.location(id).and_then(|location| location.info.read().clone());
                    let info = info.expect("a location's record is filled under the writer lock");
                    LocationImage {
                        code: info.code,
                        kind: info.kind as u8,
                        lat: info.lat,
                        lon: info.lon,
                        methods: info.methods.bits(),
                        daily_capacity: info.daily_capacity,
                        active: info.active,
                        routing: crate::wal::record::encode_location_routing(&info.routing),
                    }
                })
                .collect();
            let channels: Vec<ChannelImage> = (0..self.catalog.channel_count() as u32)
                .map(|id| ChannelImage {
                    code: self.catalog.channels.code(id).unwrap_or_default().to_owned(),
                    may_sell_safety_stock: self
                        .catalog
                        .channel(id)
                        .is_some_and(|channel| channel.may_sell_safety_stock.load(Ordering::Acquire)),
                    locations: self
                        .catalog
                        .channel(id)
                        .and_then(|channel| channel.locations.read().as_ref().map(|locations| locations.to_vec())),
                })
                .collect();
            (log.next_lsn(), locations, channels, self.catalog.sku_count(), self.catalog.position_count())
        });
        // Postal upserts take the writer lock too, but the table can be large, so it
        // is copied after; replaying an upsert the copy already has changes nothing.
        let postal_codes = self
            .postal
            .rows()
            .into_iter()
            .map(|row| PostalImage { country: row.country, postal_code: row.postal_code, lat: row.lat, lon: row.lon })
            .collect();
        // Receipt records are logged under the ledger's lock, so the LSN read under it
        // splits them into those the copy holds and those replay applies.
        let (supply_lsn, receipts) = timer.hold(|| {
            let ledger = self.supply.ledger.lock();
            let receipts: Vec<ReceiptImage> = ledger
                .receipts
                .iter()
                .map(|(id, receipt)| ReceiptImage {
                    receipt_id: id.to_string(),
                    position: receipt.position,
                    quantity: receipt.quantity,
                    arrival_ms: receipt.arrival_ms,
                })
                .collect();
            (log.next_lsn(), receipts)
        });
        // Codes and position keys never change once published.
        let skus: Vec<String> =
            (0..sku_count as u32).map(|id| self.catalog.skus.code(id).unwrap_or_default().to_owned()).collect();

        let adjustments = timer.hold(|| self.adjustment_images());
        let mut reservations = Vec::new();
        for shard in 0..self.reservations.shard_count() {
            timer.longest = timer.longest.max(self.reservations.copy_shard(shard, &mut reservations));
        }
        let reservations_lsn = log.next_lsn();

        // Positions last: see the module comment.
        let positions: Vec<PositionImage> = (0..position_count as u32)
            .map(|index| {
                let position = self.catalog.position(index);
                let (counters, lsn) = position.read_stamped(self.catalog.position_lsn(index));
                PositionImage {
                    sku: position.sku(),
                    location: position.location(),
                    on_hand: counters.on_hand,
                    reserved: counters.reserved,
                    allocated: counters.allocated,
                    safety_stock: counters.safety_stock,
                    hold_deadline_floor_s: counters.hold_deadline_floor_s,
                    lsn,
                }
            })
            .collect();

        let image = EngineImage {
            start_lsn,
            catalog_lsn,
            reservations_lsn,
            end_lsn: log.next_lsn(),
            now_ms: self.clock.high_water_mark(),
            swept_until_ms,
            holds_expired,
            oversold: self.counters.oversold.load(Ordering::Relaxed),
            locations,
            channels,
            postal_codes,
            supply_lsn,
            receipts,
            skus,
            positions,
            reservations,
            adjustments,
        };
        (image, timer.longest)
    }

    /// Fills a new engine from a snapshot image.
    pub(crate) fn restore_image(&self, image: &ArchivedEngineImage) -> Result<(), String> {
        let disabled = Journal::default();
        self.clock.observe(image.now_ms.to_native());
        self.expiry.swept_until_ms.store(image.swept_until_ms.to_native(), Ordering::Release);
        self.counters.holds_expired.store(image.holds_expired.to_native(), Ordering::Relaxed);
        self.counters.oversold.store(image.oversold.to_native(), Ordering::Relaxed);

        for (id, channel) in image.channels.iter().enumerate() {
            let locations =
                channel.locations.as_ref().map(|locations| locations.iter().map(|id| id.to_native()).collect());
            self.catalog
                .upsert_channel(channel.code.as_str(), channel.may_sell_safety_stock, locations, &disabled, 0)
                .map_err(|error| error.to_string())?;
            check_restored_id("channel", self.catalog.channels.get(channel.code.as_str()), id)?;
        }
        for (id, location) in image.locations.iter().enumerate() {
            let kind = LocationKind::from_code(location.kind)
                .ok_or_else(|| format!("location kind {} is not known", location.kind))?;
            let methods = FulfilmentMethods::from_bits(location.methods)
                .ok_or_else(|| format!("methods {:#x} are not known", location.methods))?;
            let spec = LocationSpec {
                code: location.code.to_string(),
                kind,
                lat: location.lat.to_native(),
                lon: location.lon.to_native(),
                methods,
                daily_capacity: location.daily_capacity.to_native(),
                active: location.active,
                routing: crate::wal::record::decode_location_routing(&location.routing)
                    .map_err(|error| format!("location {}: routing parameters: {error}", location.code))?,
            };
            self.catalog.upsert_location(&spec, &disabled, 0).map_err(|error| error.to_string())?;
            check_restored_id("location", self.catalog.locations.get(&spec.code), id)?;
        }

        // Reservations only name positions by index, so they are restored on a second
        // thread while this one rebuilds the catalog's positions.
        std::thread::scope(|scope| {
            let reservations = scope.spawn(|| self.reservations.restore_images(&image.reservations));
            let positions = self.restore_positions(image);
            let reservations = reservations.join().map_err(|_| "restoring the reservations panicked".to_owned())?;
            positions.and(reservations)
        })?;
        self.restore_adjustments(&image.adjustments);
        let postal_codes: Vec<_> = image
            .postal_codes
            .iter()
            .map(|row| crate::routing::PostalCodeRow {
                country: row.country.to_string(),
                postal_code: row.postal_code.to_string(),
                lat: row.lat.to_native(),
                lon: row.lon.to_native(),
            })
            .collect();
        self.postal.upsert(&postal_codes);
        let mut ledger = self.supply.ledger.lock();
        for receipt in image.receipts.iter() {
            let restored = crate::supply::Receipt {
                position: receipt.position.to_native(),
                quantity: receipt.quantity.to_native(),
                arrival_ms: receipt.arrival_ms.to_native(),
            };
            ledger.insert(receipt.receipt_id.as_str(), restored);
        }
        Ok(())
    }
}

impl Engine {
    /// Restores the SKUs and positions of an image, in id and index order.
    fn restore_positions(&self, image: &ArchivedEngineImage) -> Result<(), String> {
        self.catalog.reserve(image.skus.len(), image.positions.len());
        let _writer = self.catalog.writer_lock();
        for (id, code) in image.skus.iter().enumerate() {
            let restored = self.catalog.intern_sku_locked(code.as_str()).map_err(|error| error.to_string())?;
            check_restored_id("SKU", Some(restored), id)?;
        }
        for (index, position) in image.positions.iter().enumerate() {
            let (sku, location) = (position.sku.to_native(), position.location.to_native());
            let real_location = location & !crate::supply::INBOUND_LOCATION_BIT;
            if sku as usize >= image.skus.len() || real_location as usize >= image.locations.len() {
                return Err(format!("position {index} names SKU {sku} or location {location}, which do not exist"));
            }
            let created = self.catalog.create_position_locked(sku, location).map_err(|error| error.to_string())?;
            check_restored_id("position", Some(created), index)?;
            let mut guard = self.catalog.lock_position(created, &self.counters.positions_in_shortage);
            guard.counters.on_hand = position.on_hand.to_native();
            guard.counters.reserved = position.reserved.to_native();
            guard.counters.allocated = position.allocated.to_native();
            guard.counters.safety_stock = position.safety_stock.to_native();
            guard.counters.hold_deadline_floor_s = position.hold_deadline_floor_s.to_native();
            guard.replayed_lsn = position.lsn.to_native();
        }
        Ok(())
    }
}

fn check_restored_id(kind: &str, actual: Option<u32>, expected: usize) -> Result<(), String> {
    if actual.map(|id| id as usize) == Some(expected) {
        Ok(())
    } else {
        Err(format!("{kind} {expected} got id {actual:?} when restored from the snapshot"))
    }
}

/// Writes a file under a temporary name, syncs it, renames it into place and syncs the
/// folder.
fn write_file(storage: &dyn Storage, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temporary = format!("{name}.tmp");
    if storage.list()?.contains(&temporary) {
        storage.remove(&temporary)?;
    }
    let mut file = storage.create(&temporary)?;
    file.write_at(0, bytes)?;
    file.sync_data()?;
    drop(file);
    storage.rename(&temporary, name)?;
    storage.sync_dir()
}

/// Snapshot files in the folder, newest first.
pub(crate) fn list_snapshots(storage: &dyn Storage) -> io::Result<Vec<(u64, String)>> {
    let mut snapshots: Vec<(u64, String)> =
        storage.list()?.into_iter().filter_map(|name| parse_snapshot_name(&name).map(|lsn| (lsn, name))).collect();
    snapshots.sort_by(|a, b| b.cmp(a));
    Ok(snapshots)
}

/// Removes snapshots being written when a process stopped.
pub(crate) fn remove_temporary_files(storage: &dyn Storage) -> io::Result<()> {
    for name in storage.list()? {
        if name.ends_with(TEMPORARY_SUFFIX) {
            storage.remove(&name)?;
        }
    }
    Ok(())
}

/// Deletes snapshots older than the `SNAPSHOTS_KEPT` newest, and the log segments
/// wholly before the oldest kept one. Returns how many of each it deleted.
fn trim(storage: &dyn Storage) -> io::Result<(usize, usize)> {
    let snapshots = list_snapshots(storage)?;
    if snapshots.len() < SNAPSHOTS_KEPT {
        return Ok((0, 0));
    }
    let keep_from_lsn = snapshots[SNAPSHOTS_KEPT - 1].0;
    let mut removed_snapshots = 0;
    for (_, name) in &snapshots[SNAPSHOTS_KEPT..] {
        storage.remove(name)?;
        removed_snapshots += 1;
    }

    // A segment ends where the next begins; the last one is being written.
    let mut segments: Vec<(u64, String)> =
        storage.list()?.into_iter().filter_map(|name| parse_segment_name(&name).map(|lsn| (lsn, name))).collect();
    segments.sort();
    let mut removed_segments = 0;
    for pair in segments.windows(2) {
        let (next_base_lsn, (_, name)) = (pair[1].0, &pair[0]);
        if next_base_lsn > keep_from_lsn {
            break;
        }
        storage.remove(name)?;
        removed_segments += 1;
    }
    if removed_snapshots + removed_segments > 0 {
        storage.sync_dir()?;
    }
    Ok((removed_snapshots, removed_segments))
}

/// A snapshot that passed its checks: the image bytes and the file name.
pub(crate) type LoadedSnapshot = (rkyv::util::AlignedVec<16>, String);

/// Snapshots that failed their checks, with the reason.
pub(crate) type SkippedSnapshots = Vec<(String, ImageError)>;

/// Loads the newest snapshot that passes its checks. Damaged ones are logged and
/// skipped. Returns it and the snapshots skipped.
pub(crate) fn load_newest(storage: &dyn Storage) -> io::Result<(Option<LoadedSnapshot>, SkippedSnapshots)> {
    let mut skipped = Vec::new();
    for (_, name) in list_snapshots(storage)? {
        let bytes = storage.open(&name)?.read_all()?;
        match image::decode(&bytes) {
            Ok(aligned) => return Ok((Some((aligned, name)), skipped)),
            Err(error) => {
                tracing::warn!(file = %name, %error, "snapshot is damaged; trying the previous one");
                skipped.push((name, error));
            }
        }
    }
    Ok((None, skipped))
}

/// Takes snapshots on a background thread when the policy calls for one.
pub struct SnapshotScheduler {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SnapshotScheduler {
    /// Starts checking the engine's snapshot policy every `check_interval_ms`.
    pub fn start(engine: Arc<Engine>) -> io::Result<Self> {
        let check_interval_ms = engine
            .snapshots
            .as_ref()
            .map_or(SNAPSHOT_CHECK_INTERVAL_MS_DEFAULT, |snapshots| snapshots.policy.check_interval_ms.max(1));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new().name("promesa-snapshots".into()).spawn(move || {
            let check = Duration::from_millis(check_interval_ms);
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(check) {
                if !engine.snapshot_due() {
                    continue;
                }
                if let Err(error) = engine.snapshot() {
                    tracing::warn!(%error, "periodic snapshot failed; the log still contains every change");
                }
            }
        })?;
        Ok(SnapshotScheduler { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the thread, waiting for a snapshot in progress.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SnapshotScheduler {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_round_trip() {
        assert_eq!(snapshot_name(42), "00000000000000000042.snapshot");
        assert_eq!(parse_snapshot_name(&snapshot_name(42)), Some(42));
        assert_eq!(parse_snapshot_name("00000000000000000042.snapshot.tmp"), None);
        assert_eq!(parse_snapshot_name("00000000000000000042.log"), None);
        assert_eq!(parse_snapshot_name("42.snapshot"), None);
    }
}
