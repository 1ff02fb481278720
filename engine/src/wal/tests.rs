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
    }

    impl Faults {
        pub(super) fn unlimited() -> Arc<Self> {
            Arc::new(Faults {
                writes_left: AtomicU64::new(u64::MAX),
                syncs_left: AtomicU64::new(u64::MAX),
                removes_left: AtomicU64::new(u64::MAX),
            })
        }

        fn take(counter: &AtomicU64) -> bool {
            counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1)).is_ok()
        }
    }

    struct FaultyFile {
        inner: Box<dyn StorageFile>,
        faults: Arc<Faults>,
    }

    impl StorageFile for FaultyFile {
        fn read_all(&mut self) -> io::Result<Vec<u8>> {
            self.inner.read_all()
        }
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            if !Faults::take(&self.faults.writes_left) {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.inner.write_at(offset, bytes)
        }
        fn sync_data(&mut self) -> io::Result<()> {
            if !Faults::take(&self.faults.syncs_left) {
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
            Ok(Box::new(FaultyFile { inner: self.inner.open(name)?, faults: Arc::clone(&self.faults) }))
        }
        fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(FaultyFile { inner: self.inner.create(name)?, faults: Arc::clone(&self.faults) }))
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
}
