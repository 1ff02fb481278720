//! Tests of the scan over real files: torn tails cut at every offset, damage with
//! valid records after it refused, segment boundaries.

use super::format::{SEGMENT_HEADER_LEN, SegmentHeader, encode_record};
use super::scan::{Cut, ScanError, ScanOptions, ScanReport, scan, segment_name};
use super::storage::{FsStorage, Storage};

/// Bytes of zeros after the records, as a preallocated segment has.
const PREALLOCATED_BYTES: usize = 256;

/// Builds a segment file's bytes holding `payloads` from `base_lsn`, and returns them
/// with the end offset of each record.
fn segment_bytes(base_lsn: u64, payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = SegmentHeader { base_lsn }.encode().to_vec();
    let mut ends = Vec::new();
    let mut lsn = base_lsn;
    for (index, payload) in payloads.iter().enumerate() {
        let start = bytes.len();
        encode_record(lsn, index as u8 + 1, payload, &mut bytes);
        lsn += (bytes.len() - start) as u64;
        ends.push(bytes.len());
    }
    bytes.resize(bytes.len() + PREALLOCATED_BYTES, 0);
    (bytes, ends)
}

fn write_segment(storage: &FsStorage, base_lsn: u64, bytes: &[u8]) {
    let mut file = storage.create(&segment_name(base_lsn)).unwrap();
    file.write_at(0, bytes).unwrap();
}

fn scan_all(storage: &FsStorage, options: ScanOptions) -> Result<(ScanReport, Vec<Vec<u8>>), ScanError> {
    let mut payloads = Vec::new();
    let report = scan(storage, 0, options, |record| {
        payloads.push(record.payload.to_vec());
        Ok(())
    })?;
    Ok((report, payloads))
}

const PAYLOADS: [&[u8]; 3] = [b"reserve order-1 SKU-1@L0 x2", b"confirm order-1 c1", b"release order-1 r1"];

#[test]
fn scan_reads_every_record_of_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    write_segment(&storage, 0, &bytes);

    let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(payloads, PAYLOADS.iter().map(|payload| payload.to_vec()).collect::<Vec<_>>());
    assert_eq!(report.records, 3);
    assert_eq!(report.end_lsn, (ends[2] - SEGMENT_HEADER_LEN) as u64);
    assert_eq!(report.cut, None);
}

#[test]
fn scan_cuts_torn_tail_at_every_offset() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    for cut_at in ends[1] + 1..ends[2] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        let mut torn = bytes.clone();
        torn[cut_at..].fill(0);
        write_segment(&storage, 0, &torn);

        let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
        assert_eq!(payloads.len(), 2, "cut at {cut_at}");
        assert_eq!(report.end_lsn, (ends[1] - SEGMENT_HEADER_LEN) as u64, "cut at {cut_at}");
        let cut = report.cut.expect("a torn record is cut");
        assert_eq!(cut.offset, ends[1] as u64, "cut at {cut_at}");
        assert!(!cut.hole);

        // The cut is durable: a second scan finds a clean log.
        let (again, _) = scan_all(&storage, ScanOptions::default()).unwrap();
        assert_eq!(again.cut, None, "second scan after cut at {cut_at}");
        assert_eq!(again.records, 2);
    }
}

#[test]
fn scan_cuts_last_record_with_flipped_bit() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    for offset in ends[1]..ends[2] {
        for bit in [0, 3, 7] {
            let dir = tempfile::tempdir().unwrap();
            let storage = FsStorage::new(dir.path()).unwrap();
            let mut damaged = bytes.clone();
            damaged[offset] ^= 1 << bit;
            write_segment(&storage, 0, &damaged);

            let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
            assert_eq!(payloads.len(), 2, "bit {bit} at byte {offset}");
            let cut = report.cut.expect("a damaged last record is cut");
            assert_eq!(cut.offset, ends[1] as u64);
            assert_eq!(cut.dropped_bytes, (ends[2] - ends[1]) as u64, "bit {bit} at byte {offset}");
        }
    }
}

#[test]
fn scan_refuses_damage_followed_by_valid_records() {
    let (bytes, ends) = segment_bytes(0, &PAYLOADS);
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let mut damaged = bytes.clone();
    damaged[ends[0] + 20] ^= 0x10;
    write_segment(&storage, 0, &damaged);

    let error = scan_all(&storage, ScanOptions::default()).unwrap_err();
    let name = segment_name(0);
    assert_eq!(
        error.to_string(),
        format!(
            "log segment {name} is damaged at byte {} and valid records follow; \
             restart with the option to truncate the log there to drop them",
            ends[0]
        )
    );

    // The operator's explicit choice: cut there and lose what follows.
    let options = ScanOptions { truncate_at_corruption: true };
    let (report, payloads) = scan_all(&storage, options).unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(
        report.cut,
        Some(Cut { segment: name, offset: ends[0] as u64, dropped_bytes: (ends[2] - ends[0]) as u64, hole: true })
    );
}

#[test]
fn scan_follows_segments_and_drops_empty_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (first, ends) = segment_bytes(0, &PAYLOADS[..2]);
    write_segment(&storage, 0, &first);
    let second_base = (ends[1] - SEGMENT_HEADER_LEN) as u64;
    let (second, _) = segment_bytes(second_base, &PAYLOADS[2..]);
    write_segment(&storage, second_base, &second);
    let (report, payloads) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(payloads.len(), 3);
    assert_eq!(report.segments, 2);

    // A third segment whose header never reached the disk is dropped as a torn tail.
    let third_base = report.end_lsn;
    write_segment(&storage, third_base, &[0; 64]);
    let (report, _) = scan_all(&storage, ScanOptions::default()).unwrap();
    assert_eq!(report.end_lsn, third_base);
    assert!(!storage.list().unwrap().contains(&segment_name(third_base)));
}

#[test]
fn scan_refuses_gap_between_segments() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::new(dir.path()).unwrap();
    let (first, _) = segment_bytes(0, &PAYLOADS[..1]);
    write_segment(&storage, 0, &first);
    let (second, _) = segment_bytes(10_000, &PAYLOADS[1..]);
    write_segment(&storage, 10_000, &second);

    let error = scan_all(&storage, ScanOptions::default()).unwrap_err();
    assert!(matches!(error, ScanError::Gap { base_lsn: 10_000, .. }), "{error}");
}

mod writer {
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::super::scan::{ScanOptions, scan};
    use super::super::storage::{FsStorage, Storage, StorageFile};
    use super::super::writer::{Durability, LogConfig, LogError, LogWriter};

    /// Wraps the real file system and fails writes or syncs after a count, the way a
    /// full disk or a failing device does.
    pub(super) struct FaultyStorage {
        pub(super) inner: FsStorage,
        pub(super) faults: Arc<Faults>,
    }

    #[derive(Default)]
    pub(super) struct Faults {
        /// Writes left before every write fails with "no space left on device".
        pub(super) writes_left: AtomicU64,
        /// Syncs left before every fdatasync fails with an I/O error.
        pub(super) syncs_left: AtomicU64,
        /// Removals left before every removal fails with an I/O error.
        pub(super) removes_left: AtomicU64,
        /// Writes to snapshot files left before every one fails as on a full disk.
        pub(super) snapshot_writes_left: AtomicU64,
        /// Syncs of snapshot files left before every one fails.
        pub(super) snapshot_syncs_left: AtomicU64,
    }

    impl Faults {
        pub(super) fn unlimited() -> Arc<Self> {
            Arc::new(Faults {
                writes_left: AtomicU64::new(u64::MAX),
                syncs_left: AtomicU64::new(u64::MAX),
                removes_left: AtomicU64::new(u64::MAX),
                snapshot_writes_left: AtomicU64::new(u64::MAX),
                snapshot_syncs_left: AtomicU64::new(u64::MAX),
            })
        }

        fn take(counter: &AtomicU64) -> bool {
            counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1)).is_ok()
        }
    }

    struct FaultyFile {
        inner: Box<dyn StorageFile>,
        faults: Arc<Faults>,
        /// Whether this is a snapshot file, which has its own fault counters.
        snapshot: bool,
    }

    impl StorageFile for FaultyFile {
        fn read_all(&mut self) -> io::Result<Vec<u8>> {
            self.inner.read_all()
        }
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            let left = if self.snapshot { &self.faults.snapshot_writes_left } else { &self.faults.writes_left };
            if !Faults::take(left) {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.inner.write_at(offset, bytes)
        }
        fn sync_data(&mut self) -> io::Result<()> {
            let left = if self.snapshot { &self.faults.snapshot_syncs_left } else { &self.faults.syncs_left };
            if !Faults::take(left) {
                return Err(io::Error::other("injected fdatasync failure"));
            }
            self.inner.sync_data()
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn preallocate(&mut self, len: u64) -> io::Result<()> {
            self.inner.preallocate(len)
        }
    }

    impl Storage for FaultyStorage {
        fn list(&self) -> io::Result<Vec<String>> {
            self.inner.list()
        }
        fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            let snapshot = name.contains(".snapshot");
            Ok(Box::new(FaultyFile { inner: self.inner.open(name)?, faults: Arc::clone(&self.faults), snapshot }))
        }
        fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            let snapshot = name.contains(".snapshot");
            Ok(Box::new(FaultyFile { inner: self.inner.create(name)?, faults: Arc::clone(&self.faults), snapshot }))
        }
        fn remove(&self, name: &str) -> io::Result<()> {
            if !Faults::take(&self.faults.removes_left) {
                return Err(io::Error::other("injected removal failure"));
            }
            self.inner.remove(name)
        }
        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            self.inner.rename(from, to)
        }
        fn sync_dir(&self) -> io::Result<()> {
            self.inner.sync_dir()
        }
    }

    fn payload(thread: usize, index: usize) -> Vec<u8> {
        format!("thread {thread} record {index}").into_bytes()
    }

    fn read_back(storage: &dyn Storage) -> Vec<Vec<u8>> {
        let mut payloads = Vec::new();
        let report = scan(storage, 0, ScanOptions::default(), |record| {
            payloads.push(record.payload.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(report.cut, None);
        payloads
    }

    #[test]
    fn writer_makes_concurrent_appends_durable_in_lsn_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
        let config = LogConfig { segment_bytes_max: 4_096, ..LogConfig::default() };
        let log = LogWriter::open(Arc::clone(&storage), 0, config).unwrap();
        let threads = 4;
        let per_thread = 300;
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let log = &log;
                scope.spawn(move || {
                    for index in 0..per_thread {
                        let end_lsn = log.append(1, payload(thread, index)).unwrap();
                        log.wait_durable(end_lsn).unwrap();
                        assert!(log.durable_lsn() >= end_lsn);
                    }
                });
            }
        });
        let stats = log.stats();
        log.shutdown().unwrap();
        assert_eq!(stats.records, (threads * per_thread) as u64);
        assert!(stats.groups >= 1, "{stats:?}");
        assert!(stats.groups <= stats.records, "{stats:?}");

        // Every record is there once, each thread's in its order, across many segments.
        let payloads = read_back(&*storage);
        assert_eq!(payloads.len(), threads * per_thread);
        assert!(storage.list().unwrap().len() > 1, "small segments make several files");
        for thread in 0..threads {
            let own: Vec<_> =
                payloads.iter().filter(|p| p.starts_with(format!("thread {thread} ").as_bytes())).cloned().collect();
            let expected: Vec<_> = (0..per_thread).map(|index| payload(thread, index)).collect();
            assert_eq!(own, expected, "thread {thread}");
        }
    }

    #[test]
    fn writer_continues_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
        let log = LogWriter::open(Arc::clone(&storage), 0, LogConfig::default()).unwrap();
        let end_lsn = log.append(1, b"before restart".to_vec()).unwrap();
        log.wait_durable(end_lsn).unwrap();
        log.shutdown().unwrap();

        let report = scan(&*storage, 0, ScanOptions::default(), |_| Ok(())).unwrap();
        assert_eq!(report.end_lsn, end_lsn);
        let log = LogWriter::open(Arc::clone(&storage), report.end_lsn, LogConfig::default()).unwrap();
        let end_lsn = log.append(2, b"after restart".to_vec()).unwrap();
        log.wait_durable(end_lsn).unwrap();
        log.shutdown().unwrap();
        assert_eq!(read_back(&*storage), vec![b"before restart".to_vec(), b"after restart".to_vec()]);
    }

    #[test]
    fn writer_poisoned_by_failed_sync() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::unlimited();
        let storage: Arc<dyn Storage> =
            Arc::new(FaultyStorage { inner: FsStorage::new(dir.path()).unwrap(), faults: Arc::clone(&faults) });
        let log = LogWriter::open(storage, 0, LogConfig::default()).unwrap();
        let first = log.append(1, b"synced".to_vec()).unwrap();
        log.wait_durable(first).unwrap();

        faults.syncs_left.store(0, Ordering::Release);
        let second = log.append(1, b"never acknowledged".to_vec()).unwrap();
        let error = log.wait_durable(second).unwrap_err();
        assert!(matches!(error, LogError::Poisoned { .. }), "{error}");
        assert!(error.to_string().contains("injected fdatasync failure"), "{error}");

        // Poisoned for good: no later record is taken or acknowledged, even if the
        // device would now sync, and the durable LSN stays where it was.
        faults.syncs_left.store(u64::MAX, Ordering::Release);
        assert!(matches!(log.append(1, b"later".to_vec()), Err(LogError::Poisoned { .. })));
        assert_eq!(log.durable_lsn(), first);
    }

    #[test]
    fn writer_poisoned_by_full_disk() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::unlimited();
        let storage: Arc<dyn Storage> =
            Arc::new(FaultyStorage { inner: FsStorage::new(dir.path()).unwrap(), faults: Arc::clone(&faults) });
        let log = LogWriter::open(storage, 0, LogConfig::default()).unwrap();
        faults.writes_left.store(0, Ordering::Release);
        let end_lsn = log.append(1, b"does not fit".to_vec()).unwrap();
        let error = log.wait_durable(end_lsn).unwrap_err();
        let LogError::Poisoned { cause } = error else { panic!("expected a poisoned log") };
        assert!(cause.contains("storage space"), "{cause}");
    }

    #[test]
    fn writer_not_durable_acknowledges_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::unlimited();
        faults.syncs_left.store(1, Ordering::Release);
        let storage: Arc<dyn Storage> =
            Arc::new(FaultyStorage { inner: FsStorage::new(dir.path()).unwrap(), faults: Arc::clone(&faults) });
        // The one sync allowed goes to creating the segment; records are never synced.
        let config = LogConfig { durability: Durability::NotDurable, ..LogConfig::default() };
        let log = LogWriter::open(storage, 0, config).unwrap();
        for index in 0..100 {
            let end_lsn = log.append(1, payload(0, index)).unwrap();
            log.wait_durable(end_lsn).unwrap();
        }
        log.shutdown().unwrap();
    }
}

mod engine_on_failed_log {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::writer::{Faults, FaultyStorage};
    use crate::error::{LogError, ReserveError, StockError};
    use crate::wal::scan::ScanOptions;
    use crate::wal::storage::{FsStorage, Storage};
    use crate::wal::writer::LogConfig;
    use crate::{Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, Policy, ReserveLine};

    #[test]
    fn failed_sync_rejects_changes_and_keeps_reads() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::unlimited();
        let storage: Arc<dyn Storage> =
            Arc::new(FaultyStorage { inner: FsStorage::new(dir.path()).unwrap(), faults: Arc::clone(&faults) });
        let now_ms = 1_767_225_600_000;
        let (engine, _) =
            Engine::open(EngineConfig::default(), storage, LogConfig::default(), ScanOptions::default(), now_ms)
                .unwrap();
        let spec = LocationSpec {
            code: "L0".into(),
            kind: LocationKind::Warehouse,
            lat: 0.0,
            lon: 0.0,
            methods: FulfilmentMethods::SHIP,
            daily_capacity: 1,
            active: true,
            routing: Default::default(),
        };
        engine.upsert_location(&spec).unwrap();
        engine.set_on_hand("SKU", "L0", 5, now_ms).unwrap();

        faults.syncs_left.store(0, Ordering::Release);
        let request = crate::ReserveRequest {
            reservation_id: "order-1".into(),
            channel: None,
            lines: vec![ReserveLine { sku: "SKU".into(), location: "L0".into(), quantity: 2 }],
            policy: Policy::AllOrNothing,
            ttl_ms: 60_000,
        };
        let error = engine.reserve(&request, now_ms).unwrap_err();
        assert!(matches!(error, ReserveError::Log(LogError::Poisoned { .. })), "{error}");

        // Every later change is refused before it changes anything; reads keep working.
        let error = engine.set_on_hand("SKU", "L0", 9, now_ms).unwrap_err();
        assert!(matches!(error, StockError::Log(LogError::Poisoned { .. })), "{error}");
        let position = engine.availability("SKU", "L0", None, now_ms).unwrap();
        assert_eq!(position.on_hand, 5);
        assert!(error.to_string().contains("restart to recover from the log"), "{error}");
    }

    #[test]
    fn batch_on_a_failing_log_reports_the_failure() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::unlimited();
        let storage: Arc<dyn Storage> =
            Arc::new(FaultyStorage { inner: FsStorage::new(dir.path()).unwrap(), faults: Arc::clone(&faults) });
        let now_ms = 1_767_225_600_000;
        let (engine, _) =
            Engine::open(EngineConfig::default(), storage, LogConfig::default(), ScanOptions::default(), now_ms)
                .unwrap();
        let spec = LocationSpec {
            code: "L0".into(),
            kind: LocationKind::Warehouse,
            lat: 0.0,
            lon: 0.0,
            methods: FulfilmentMethods::SHIP,
            daily_capacity: 0,
            active: true,
            routing: Default::default(),
        };
        engine.upsert_location(&spec).unwrap();

        faults.syncs_left.store(0, Ordering::Release);
        let result = engine.batch(|| engine.set_on_hand("SKU", "L0", 5, now_ms).is_ok());
        assert!(matches!(result, Err(LogError::Poisoned { .. })), "{result:?}");
    }
}

mod snapshots_with_faults {
    //! Snapshots that fail part way, and damaged snapshots: the engine keeps serving,
    //! and recovery finds every change in the log or in an older snapshot.

    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::writer::{Faults, FaultyStorage};
    use crate::snapshot::{SnapshotError, SnapshotPolicy, parse_snapshot_name};
    use crate::wal::scan::ScanOptions;
    use crate::wal::storage::{FsStorage, Storage};
    use crate::wal::writer::LogConfig;
    use crate::{Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, Policy, ReserveLine};

    const NOW_MS: u64 = 1_767_225_600_000;

    /// Snapshots only when asked, so each test decides when they happen.
    fn log_config() -> LogConfig {
        let snapshot = SnapshotPolicy { interval_ms: 0, log_bytes: 0, on_close: false, ..SnapshotPolicy::default() };
        LogConfig { segment_bytes_max: 1_024, snapshot, ..LogConfig::default() }
    }

    fn open(storage: &Arc<dyn Storage>) -> (Engine, crate::RecoveryReport) {
        Engine::open(EngineConfig::default(), Arc::clone(storage), log_config(), ScanOptions::default(), NOW_MS)
            .unwrap()
    }

    fn faulty(dir: &std::path::Path) -> (Arc<dyn Storage>, Arc<Faults>) {
        let faults = Faults::unlimited();
        let storage = FaultyStorage { inner: FsStorage::new(dir).unwrap(), faults: Arc::clone(&faults) };
        (Arc::new(storage), faults)
    }

    /// Reserves of order-`first`.. order-`last` (exclusive), one unit each, after
    /// setting up the location and stock on the first call.
    fn reserve_range(engine: &Engine, first: u32, last: u32) {
        if first == 0 {
            let spec = LocationSpec {
                code: "L0".into(),
                kind: LocationKind::Warehouse,
                lat: 0.0,
                lon: 0.0,
                methods: FulfilmentMethods::SHIP,
                daily_capacity: 0,
                active: true,
                routing: Default::default(),
            };
            engine.upsert_location(&spec).unwrap();
            engine.set_on_hand("SKU", "L0", 1_000, NOW_MS).unwrap();
        }
        for index in first..last {
            let request = crate::ReserveRequest {
                reservation_id: format!("order-{index}"),
                channel: None,
                lines: vec![ReserveLine { sku: "SKU".into(), location: "L0".into(), quantity: 1 }],
                policy: Policy::AllOrNothing,
                ttl_ms: 3_600_000,
            };
            assert!(engine.reserve(&request, NOW_MS).unwrap().held_all());
        }
    }

    fn reserved(engine: &Engine) -> u32 {
        engine.availability("SKU", "L0", None, NOW_MS).unwrap().reserved
    }

    fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| parse_snapshot_name(name).is_some())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn full_disk_while_writing_a_snapshot_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, faults) = faulty(dir.path());
        let (engine, _) = open(&storage);
        reserve_range(&engine, 0, 20);

        faults.snapshot_writes_left.store(0, Ordering::Release);
        let error = engine.snapshot().unwrap_err();
        assert!(matches!(error, SnapshotError::Write { .. }), "{error}");
        assert!(error.to_string().contains(".snapshot"), "{error}");

        // The log is unharmed: changes go on, and recovery replays them all.
        reserve_range(&engine, 20, 30);
        engine.close().unwrap();
        let (recovered, report) = open(&storage);
        assert_eq!(report.snapshot, None);
        assert_eq!(reserved(&recovered), 30);
        assert!(snapshot_files(dir.path()).is_empty());
        assert!(
            !std::fs::read_dir(dir.path())
                .unwrap()
                .any(|entry| { entry.unwrap().file_name().to_string_lossy().ends_with(".tmp") })
        );
    }

    #[test]
    fn failed_sync_of_a_snapshot_leaves_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, faults) = faulty(dir.path());
        let (engine, _) = open(&storage);
        reserve_range(&engine, 0, 20);

        faults.snapshot_syncs_left.store(0, Ordering::Release);
        assert!(matches!(engine.snapshot().unwrap_err(), SnapshotError::Write { .. }));
        reserve_range(&engine, 20, 25);
        drop(engine);

        let (recovered, report) = open(&storage);
        assert_eq!(report.snapshot, None);
        assert_eq!(reserved(&recovered), 25);
    }

    #[test]
    fn crash_before_log_trim_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, faults) = faulty(dir.path());
        let (engine, _) = open(&storage);
        reserve_range(&engine, 0, 40);
        engine.snapshot().unwrap();
        reserve_range(&engine, 40, 80);

        // The second snapshot is renamed into place, then deleting the old files fails,
        // as if the process died right there.
        faults.removes_left.store(0, Ordering::Release);
        let error = engine.snapshot().unwrap_err();
        assert!(matches!(error, SnapshotError::Trim { .. }), "{error}");
        reserve_range(&engine, 80, 90);
        drop(engine);
        faults.removes_left.store(u64::MAX, Ordering::Release);

        let (recovered, report) = open(&storage);
        let newest = snapshot_files(dir.path()).pop().unwrap();
        assert_eq!(report.snapshot.as_deref(), Some(newest.as_str()));
        assert_eq!(reserved(&recovered), 90);

        // The next snapshot deletes what the failed one left.
        let snapshot = recovered.snapshot().unwrap();
        assert!(snapshot.snapshots_removed >= 1, "{snapshot:?}");
        assert!(snapshot.segments_removed >= 1, "{snapshot:?}");
        recovered.close().unwrap();
        let (again, _) = open(&storage);
        assert_eq!(reserved(&again), 90);
    }

    #[test]
    fn damaged_snapshot_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
        let (engine, _) = open(&storage);
        reserve_range(&engine, 0, 40);
        engine.snapshot().unwrap();
        reserve_range(&engine, 40, 80);
        engine.snapshot().unwrap();
        reserve_range(&engine, 80, 100);
        engine.close().unwrap();

        let files = snapshot_files(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        let newest = dir.path().join(&files[1]);
        let mut bytes = std::fs::read(&newest).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&newest, bytes).unwrap();

        let (recovered, report) = open(&storage);
        assert_eq!(report.snapshot.as_deref(), Some(files[0].as_str()));
        assert_eq!(report.snapshots_skipped.len(), 1, "{report:?}");
        assert_eq!(report.snapshots_skipped[0].0, files[1]);
        assert_eq!(reserved(&recovered), 100);
        assert!(recovered.get("order-99", NOW_MS).is_some());
    }

    #[test]
    fn recovery_rejects_missing_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
        let (engine, _) = open(&storage);
        reserve_range(&engine, 0, 40);
        engine.snapshot().unwrap();
        reserve_range(&engine, 40, 80);
        engine.snapshot().unwrap();
        reserve_range(&engine, 80, 120);
        let third = engine.snapshot().unwrap();
        assert!(third.segments_removed >= 1, "{third:?}");
        engine.close().unwrap();

        // Both kept snapshots damaged: the log alone no longer starts at 0.
        for name in snapshot_files(dir.path()) {
            std::fs::write(dir.path().join(name), b"damaged").unwrap();
        }
        let error = Engine::open(EngineConfig::default(), storage, log_config(), ScanOptions::default(), NOW_MS)
            .err()
            .expect("recovery must refuse a log with its start deleted");
        assert!(error.to_string().contains("starts at LSN"), "{error}");
    }
}
