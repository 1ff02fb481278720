//! Shared helpers of Promesa's integration tests: engines set up with a few
//! locations and positions, and request builders.

use promesa_engine::{
    Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, Policy, ReserveLine, ReserveRequest,
};

/// A fixed start time for tests: 2026-01-01T00:00:00Z in milliseconds.
pub const T0_MS: u64 = 1_767_225_600_000;

/// Fifteen minutes, a usual checkout hold, in milliseconds.
pub const TTL_15_MIN_MS: u64 = 15 * 60 * 1_000;

/// Returns a warehouse location spec with the given code.
pub fn warehouse(code: &str) -> LocationSpec {
    LocationSpec {
        code: code.to_owned(),
        kind: LocationKind::Warehouse,
        lat: 19.43,
        lon: -99.13,
        methods: FulfilmentMethods::SHIP,
        daily_capacity: 10_000,
        active: true,
        routing: Default::default(),
    }
}

/// Creates an engine with warehouses `L0`..`L{locations-1}`.
pub fn engine_with_locations(locations: usize) -> Engine {
    let engine = Engine::new(EngineConfig::default());
    for index in 0..locations {
        engine.upsert_location(&warehouse(&format!("L{index}"))).expect("valid location");
    }
    engine
}

/// Builds a reserve request for one line, all-or-nothing, 15 minutes.
pub fn reserve_one(id: &str, sku: &str, location: &str, quantity: u64) -> ReserveRequest {
    ReserveRequest {
        reservation_id: id.to_owned(),
        channel: None,
        lines: vec![line(sku, location, quantity)],
        policy: Policy::AllOrNothing,
        ttl_ms: TTL_15_MIN_MS,
    }
}

/// Builds one reserve line.
pub fn line(sku: &str, location: &str, quantity: u64) -> ReserveLine {
    ReserveLine { sku: sku.to_owned(), location: location.to_owned(), quantity }
}

/// Reads a seed from `PROMESA_TEST_SEED` (a decimal number), or takes `default`, and
/// prints it so a failing run can be replayed.
///
/// # Panics
/// If `PROMESA_TEST_SEED` is set but is not a decimal number.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = match std::env::var("PROMESA_TEST_SEED") {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("PROMESA_TEST_SEED={value:?} is not a decimal number")),
        Err(_) => default,
    };
    eprintln!("{test}: seed {seed} (replay with PROMESA_TEST_SEED={seed})");
    seed
}

/// A log folder on the real file system that moves deleted log segments to an archive
/// folder instead of removing them, so that a test can still read the whole log after
/// snapshots deleted its oldest segments.
pub struct ArchivingStorage {
    inner: promesa_engine::wal::storage::FsStorage,
    dir: std::path::PathBuf,
    archive: std::path::PathBuf,
}

impl ArchivingStorage {
    /// Uses `dir` for the log and `archive` for deleted segments, creating both.
    pub fn new(dir: &std::path::Path, archive: &std::path::Path) -> std::io::Result<Self> {
        let inner = promesa_engine::wal::storage::FsStorage::new(dir)?;
        std::fs::create_dir_all(archive)?;
        Ok(ArchivingStorage { inner, dir: dir.to_owned(), archive: archive.to_owned() })
    }
}

impl promesa_engine::wal::storage::Storage for ArchivingStorage {
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str) -> std::io::Result<Box<dyn promesa_engine::wal::storage::StorageFile>> {
        self.inner.open(name)
    }
    fn create(&self, name: &str) -> std::io::Result<Box<dyn promesa_engine::wal::storage::StorageFile>> {
        self.inner.create(name)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        if name.ends_with(".log") {
            std::fs::rename(self.dir.join(name), self.archive.join(name))
        } else {
            self.inner.remove(name)
        }
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> std::io::Result<()> {
        self.inner.sync_dir()
    }
}
