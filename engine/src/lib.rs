//! Promesa's inventory engine: every inventory position and every reservation in
//! memory, answered and changed correctly by many threads at once.
//!
//! The engine has no clock and no threads of its own. Every call takes `now_ms`, the
//! caller's wall-clock time in milliseconds since the Unix epoch; the engine keeps a
//! high-water mark so that time never goes backwards, and a now below the mark counts
//! as the mark.
//!
//! NOTE: the engine cannot tell a wrong unit from a late time: a `now_ms` given in
//! microseconds or nanoseconds moves the mark thousands of years ahead, expires every
//! hold, and stays. Callers pass milliseconds from one clock; the server does so from
//! its own clock.
//!
//! - [`Engine`]: the entry point. Catalog: [`Engine::upsert_location`],
//!   [`Engine::upsert_channel`]. Stock: [`Engine::set_on_hand`], [`Engine::adjust_on_hand`],
//!   [`Engine::set_safety_stock`], [`Engine::load_positions`]. Availability:
//!   [`Engine::availability`], [`Engine::sku_availability`], [`Engine::availability_batch`].
//!   Reservations: [`Engine::reserve`], [`Engine::confirm`], [`Engine::release`],
//!   [`Engine::fulfil`], [`Engine::extend`], [`Engine::get`], [`Engine::sweep`].
//! - Domain outcomes (a line that cannot be held) are values with stable numeric codes,
//!   [`LineStatus`]; invalid requests are typed errors in [`error`] that name the field,
//!   the value and the limit, and change nothing.
//!
//! ATP = on hand − reserved − allocated − safety stock, without the last term for a
//! channel that may sell safety stock. The ATP a read returns is the number a reserve
//! checks, and holds past their deadline count as free in both, before any sweep.

mod availability;
mod catalog;
mod chunked;
mod clock;
mod code_index;
pub mod error;
mod journal;
pub mod limits;
mod position;
mod recovery;
mod reservation;
pub mod routing;
pub mod snapshot;
mod stats;
mod stock;
pub mod supply;
pub mod wal;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

pub use availability::{LocationAvailability, LocationFilter, PositionAvailability, SkuAvailability};
pub use catalog::{DEFAULT_CHANNEL, FulfilmentMethods, LocationInfo, LocationKind, LocationSpec};
pub use recovery::{RecoveryError, RecoveryReport};
pub use reservation::types::*;
pub use stats::Stats;
pub use stock::{AdjustReason, AdjustRequest, LoadSummary, PositionRow, StockChange};

use catalog::Catalog;
use clock::Clock;
use error::{ChannelError, LocationError};
use journal::Journal;
use reservation::ReservationTable;
use stock::AdjustmentLedger;

/// Engine settings. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long ended reservations and their operation ids are kept for retries, in
    /// milliseconds.
    pub retention_ms: u64,
    /// Most ended reservations kept; past it the oldest are forgotten first.
    pub ended_reservations_max: u64,
    /// Most adjustment operation ids kept; past it the oldest are forgotten first.
    pub adjustment_ids_max: u64,
    /// SKUs to make room for up front, so the SKU index does not grow while loading.
    pub expected_skus: usize,
    /// Positions to make room for up front.
    pub expected_positions: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retention_ms: limits::RETENTION_MS_DEFAULT,
            ended_reservations_max: limits::ENDED_RESERVATIONS_MAX_DEFAULT,
            adjustment_ids_max: limits::ADJUSTMENT_IDS_MAX_DEFAULT,
            expected_skus: 0,
            expected_positions: 0,
        }
    }
}

/// Event counters shared by all threads. Each sits on its own cache line.
#[derive(Default)]
struct Counters {
    /// Positions whose reserved + allocated exceeds on hand now.
    positions_in_shortage: CachePadded<AtomicI64>,
    /// Reserves that left a position with reserved + allocated above on hand. Stays 0
    /// unless the no-oversell invariant is broken.
    oversold: CachePadded<AtomicU64>,
    /// Holds released by expiry.
    holds_expired: CachePadded<AtomicU64>,
    /// Expiry events dropped because the pending buffer was full.
    expiry_events_dropped: CachePadded<AtomicU64>,
}

/// Most expiry events kept between two calls of [`Engine::sweep`]; past it the oldest
/// events are dropped and counted in [`Stats::expiry_events_dropped`]. The holds
/// themselves are always released.
pub const PENDING_EXPIRY_EVENTS_MAX: usize = 1 << 20;

/// Expiry bookkeeping: holds with a deadline at or before `swept_until_ms` are
/// released; later ones may be due and unswept.
struct ExpiryState {
    swept_until_ms: CachePadded<AtomicU64>,
    /// Serializes sweeps.
    sweep: Mutex<()>,
    /// Expiry events not yet returned by [`Engine::sweep`], oldest first.
    pending: Mutex<std::collections::VecDeque<ExpiryEvent>>,
    /// Held across an expiry's log append and its count in `holds_expired`, so that a
    /// snapshot reads a count that matches the log below its start.
    counted: Mutex<()>,
}

/// The in-memory inventory engine. Share it between threads by reference or `Arc`.
pub struct Engine {
    config: EngineConfig,
    catalog: Catalog,
    clock: Clock,
    reservations: ReservationTable,
    expiry: ExpiryState,
    adjustments: AdjustmentLedger,
    counters: Counters,
    journal: Journal,
    postal: routing::postal::PostalTable,
    supply: supply::Supply,
    /// Set for an engine opened on a log.
    snapshots: Option<snapshot::Snapshots>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineConfig::default())
    }
}

impl Engine {
    /// Creates an empty engine with the channel `default` (which may not sell safety
    /// stock).
    pub fn new(config: EngineConfig) -> Self {
        let catalog = Catalog::new(config.expected_skus, config.expected_positions);
        let adjustments = AdjustmentLedger::new(config.retention_ms, config.adjustment_ids_max);
        let reservations = ReservationTable::new(config.retention_ms, config.ended_reservations_max);
        Engine {
            config,
            catalog,
            clock: Clock::default(),
            reservations,
            expiry: ExpiryState {
                swept_until_ms: CachePadded::new(AtomicU64::new(0)),
                sweep: Mutex::new(()),
                pending: Mutex::new(std::collections::VecDeque::new()),
                counted: Mutex::new(()),
            },
            adjustments,
            counters: Counters::default(),
            journal: Journal::default(),
            postal: routing::postal::PostalTable::default(),
            supply: supply::Supply::default(),
            snapshots: None,
        }
    }

    /// Returns the settings the engine was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Inserts or replaces a location. Returns true if the location is new.
    pub fn upsert_location(&self, spec: &LocationSpec) -> Result<bool, LocationError> {
        self.durably(|| self.catalog.upsert_location(spec, &self.journal, self.clock.high_water_mark()))
    }

    /// Inserts or replaces many locations. Every spec is checked first, so a bad one
    /// changes nothing; the error carries its index. Returns how many were new and how
    /// many replaced.
    pub fn upsert_locations(&self, specs: &[LocationSpec]) -> Result<(u32, u32), (usize, LocationError)> {
        for (index, spec) in specs.iter().enumerate() {
            catalog::validate_location(spec).map_err(|error| (index, error))?;
        }
        let (mut created, mut replaced) = (0, 0);
        for (index, spec) in specs.iter().enumerate() {
            match self.upsert_location(spec) {
                Ok(true) => created += 1,
                Ok(false) => replaced += 1,
                Err(error) => return Err((index, error)),
            }
        }
        Ok((created, replaced))
    }

    /// Returns the stored attributes of a location.
    pub fn location(&self, code: &str) -> Option<LocationInfo> {
        let id = self.catalog.locations.get(code)?;
        self.catalog.location(id)?.info.read().clone()
    }

    /// Inserts or replaces a channel. Returns true if the channel is new.
    pub fn upsert_channel(&self, code: &str, may_sell_safety_stock: bool) -> Result<bool, ChannelError> {
        self.durably(|| {
            let now_ms = self.clock.high_water_mark();
            Ok(self.catalog.upsert_channel(code, may_sell_safety_stock, None, &self.journal, now_ms)?)
        })
    }

    /// Runs several mutating calls and acknowledges them together: inside `calls`,
    /// each call applies its change and returns its outcome without waiting for the
    /// log; `batch` then waits once until every record they depended on is durable.
    ///
    /// This is how a server answers a frame of requests with one wait. Outcomes seen
    /// inside `calls` are not acknowledged yet: hand them to clients only after
    /// `batch` returns `Ok`. On `Err` the log has failed and none of them is durable
    /// for sure. Reads inside `calls` see the applied changes, as they would anyway.
    pub fn batch<T>(&self, calls: impl FnOnce() -> T) -> Result<T, error::LogError> {
        self.journal.batch(calls)
    }

    /// As [`Engine::batch`], without the wait: returns the outcomes and the LSN they
    /// depend on. Hand the outcomes out only after [`Engine::wait_durable`] of that
    /// LSN returns `Ok` (an LSN of 0 needs no wait). This lets one thread wait for
    /// the batches of many callers.
    pub fn batch_deferred<T>(&self, calls: impl FnOnce() -> T) -> (T, u64) {
        self.journal.batch_deferred(calls)
    }

    /// Returns the LSN below which every log record is durable (0 without a log).
    pub fn durable_lsn(&self) -> u64 {
        self.journal.log().map_or(0, |log| log.durable_lsn())
    }

    /// Waits until every log record below `lsn` is durable (at once without a log or
    /// under `Durability::NotDurable`).
    pub fn wait_durable(&self, lsn: u64) -> Result<(), error::LogError> {
        self.journal.wait_durable(lsn)
    }

    /// Returns the engine's time: the highest `now_ms` it has seen.
    pub fn now_ms(&self) -> u64 {
        self.clock.high_water_mark()
    }

    /// Runs a mutating request: refuses it before any change if the log has failed,
    /// applies it, and returns once every log record it depended on is durable.
    fn durably<T, E: From<error::LogError>>(&self, apply: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.journal.begin()?;
        let value = apply()?;
        self.journal.acknowledge()?;
        Ok(value)
    }

    /// Resolves a channel code (`None` is `default`) to its id and whether it may sell
    /// safety stock.
    fn resolve_channel(&self, code: Option<&str>) -> Option<(u32, bool)> {
        let id = match code {
            // The default channel is the first one the catalog creates.
            None => catalog::DEFAULT_CHANNEL_ID,
            Some(code) => self.catalog.channels.get(code)?,
        };
        let channel = self.catalog.channel(id)?;
        Some((id, channel.may_sell_safety_stock.load(Ordering::Acquire)))
    }
}
