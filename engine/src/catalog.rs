//! Locations, channels, SKUs and the positions that join SKUs to locations.
//!
//! Everything here is append-only: codes are interned once and positions are never
//! removed, so readers use plain references without locks. One writer lock serializes
//! the few changes that add entries (a new code, a new position, a location upsert).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::chunked::{ChunkElement, ChunkedVec};
use crate::code_index::{CodeIndex, GrowableTable};
use crate::error::CodeError;
use crate::journal::Journal;
use crate::position::{Position, PositionGuard};
use crate::routing::LocationRouting;
use crate::routing::table::RoutingTable;
use crate::wal::record::Record;

/// Generation of the next routing table built in this process; 0 is the empty table
/// every catalog starts with.
static NEXT_ROUTING_GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The routing table this thread used last, with its generation.
    static ROUTING_TABLE_CACHE: std::cell::RefCell<Option<(u64, Arc<RoutingTable>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Index meaning "no position" in position links.
pub(crate) const NO_POSITION: u32 = u32::MAX;

/// The channel that a request without a channel uses. It always exists.
pub const DEFAULT_CHANNEL: &str = "default";

/// Id of the channel `default`, the first channel every catalog creates.
pub(crate) const DEFAULT_CHANNEL_ID: u32 = 0;

/// The kind of fulfilment node a location is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LocationKind {
    /// A distribution centre or warehouse.
    Warehouse = 0,
    /// A physical store.
    Store = 1,
    /// A store closed to shoppers that fulfils online orders.
    DarkStore = 2,
    /// A vendor that ships its own stock to the customer.
    DropShipVendor = 3,
}

impl LocationKind {
    /// Returns the kind with this number, if there is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(LocationKind::Warehouse),
            1 => Some(LocationKind::Store),
            2 => Some(LocationKind::DarkStore),
            3 => Some(LocationKind::DropShipVendor),
            _ => None,
        }
    }
}

/// The fulfilment methods a location offers, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FulfilmentMethods(u8);

impl FulfilmentMethods {
    /// Ship to the customer from this location.
    pub const SHIP: Self = Self(1);
    /// The customer picks up in store.
    pub const PICKUP: Self = Self(1 << 1);
    /// The customer picks up at the curb.
    pub const CURBSIDE: Self = Self(1 << 2);
    /// The vendor ships directly.
    pub const DROP_SHIP: Self = Self(1 << 3);
    /// Delivery the same day.
    pub const SAME_DAY: Self = Self(1 << 4);

    /// Returns the empty set.
    pub const fn none() -> Self {
        Self(0)
    }

    /// Returns the set of both operands' methods.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// True if and only if every method in `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns the raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds a set from raw bits, or `None` if unknown bits are set.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        if bits & !0b1_1111 == 0 { Some(Self(bits)) } else { None }
    }
}

/// A location upsert: the full description of a fulfilment node.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationSpec {
    /// Client code, 1 to 64 bytes, no control characters.
    pub code: String,
    /// Kind of node.
    pub kind: LocationKind,
    /// Latitude in degrees, -90 to 90.
    pub lat: f64,
    /// Longitude in degrees, -180 to 180.
    pub lon: f64,
    /// Fulfilment methods offered.
    pub methods: FulfilmentMethods,
    /// Orders the location can fulfil per day; routing consumes it.
    pub daily_capacity: u32,
    /// Whether the location takes new reservations.
    pub active: bool,
    /// Clock, handling terms, costs and transit times for routing.
    pub routing: LocationRouting,
}

/// The stored attributes of a location, as returned by reads.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationInfo {
    /// Client code.
    pub code: String,
    /// Kind of node.
    pub kind: LocationKind,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Fulfilment methods offered.
    pub methods: FulfilmentMethods,
    /// Orders per day.
    pub daily_capacity: u32,
    /// Whether the location takes new reservations.
    pub active: bool,
    /// Clock, handling terms, costs and transit times for routing.
    pub routing: LocationRouting,
}

#[derive(Default)]
pub(crate) struct Location {
    pub active: AtomicBool,
    pub info: RwLock<Option<LocationInfo>>,
    /// Orders routed here on one local day: the day number in the high 32 bits, the
    /// count in the low 32 (see `routing::capacity`).
    pub capacity_used: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Channel {
    pub may_sell_safety_stock: AtomicBool,
    /// Location ids the channel may route to, sorted; `None` for every location.
    pub locations: RwLock<Option<Box<[u32]>>>,
}

/// Per SKU: the first of its positions, linked through `Catalog::next_position`.
#[derive(Default)]
pub(crate) struct Sku {
    first_position: AtomicU32,
    /// The end of the SKU's list, so that a new position links without a walk.
    last_position: AtomicU32,
    /// Positions of the SKU, inbound twins included.
    position_count: AtomicU32,
}

// SAFETY: a location record is only ever built by `Default`.
unsafe impl ChunkElement for Location {}
// SAFETY: as above.
unsafe impl ChunkElement for Channel {}
// SAFETY: a SKU record is three AtomicU32, for which all-zero bytes are 0, their default.
unsafe impl ChunkElement for Sku {
    const ALL_ZEROS_IS_DEFAULT: bool = true;
}
// SAFETY: all-zero bytes are an AtomicU32 of 0, its default.
unsafe impl ChunkElement for AtomicU32 {
    const ALL_ZEROS_IS_DEFAULT: bool = true;
}
// SAFETY: all-zero bytes are an AtomicU64 of 0, its default.
unsafe impl ChunkElement for AtomicU64 {
    const ALL_ZEROS_IS_DEFAULT: bool = true;
}

/// Locations, channels, SKUs and positions.
pub(crate) struct Catalog {
    pub locations: CodeIndex,
    location_records: ChunkedVec<Location>,
    pub channels: CodeIndex,
    channel_records: ChunkedVec<Channel>,
    pub skus: CodeIndex,
    sku_records: ChunkedVec<Sku>,
    positions: ChunkedVec<Position>,
    /// Per position, the LSN just past the last log record applied to it (see
    /// `PositionGuard`). Kept apart so that a position stays 32 bytes.
    position_lsns: ChunkedVec<AtomicU64>,
    /// Next position of the same SKU, `NO_POSITION` at the end of the list.
    next_position: ChunkedVec<AtomicU32>,
    /// (SKU id, location id) to position index.
    position_table: GrowableTable<AtomicU32>,
    position_hasher: foldhash::fast::RandomState,
    writer: Mutex<()>,
    /// What routing reads about every location and channel, rebuilt after a change,
    /// with its generation.
    routing_table: RwLock<(u64, Arc<RoutingTable>)>,
    /// Generation of `routing_table`.
    routing_generation: AtomicU64,
    /// Set by every location or channel change; the next routing call rebuilds.
    routing_stale: AtomicBool,
}

impl Catalog {
    pub(crate) fn new(expected_skus: usize, expected_positions: usize) -> Self {
        let catalog = Catalog {
            locations: CodeIndex::with_capacity(0),
            location_records: ChunkedVec::new(),
            channels: CodeIndex::with_capacity(0),
            channel_records: ChunkedVec::new(),
            skus: CodeIndex::with_capacity(expected_skus),
            sku_records: ChunkedVec::new(),
            positions: ChunkedVec::new(),
            position_lsns: ChunkedVec::new(),
            next_position: ChunkedVec::new(),
            position_table: GrowableTable::with_entries(expected_positions),
            position_hasher: foldhash::fast::RandomState::default(),
            writer: Mutex::new(()),
            routing_table: RwLock::new((0, Arc::new(RoutingTable::default()))),
            routing_generation: AtomicU64::new(0),
            routing_stale: AtomicBool::new(false),
        };
        // Every catalog starts with it, so it is not logged.
        catalog
            .upsert_channel(DEFAULT_CHANNEL, false, None, &Journal::default(), 0)
            .expect("the default channel code is valid");
        debug_assert_eq!(catalog.channels.get(DEFAULT_CHANNEL), Some(DEFAULT_CHANNEL_ID));
        catalog
    }

    // Locations.

    /// Inserts or replaces a location. Returns whether it was new.
    pub(crate) fn upsert_location(
        &self,
        spec: &LocationSpec,
        journal: &Journal,
        now_ms: u64,
    ) -> Result<bool, crate::error::LocationError> {
        validate_location(spec)?;
        let _writer = self.writer.lock();

        if self.locations.get(&spec.code).is_none() && self.location_count() as u32 >= crate::limits::LOCATIONS_MAX {
            return Err(crate::error::LocationError::TooManyLocations);
        }
        let (id, new) = self.locations.intern(&spec.code).ok_or(crate::error::LocationError::TooManyLocations)?;
        if new {
            self.location_records.push_with(|_| {}).expect("location ids and records grow together");
        }
        let record = self.location(id).expect("interned location has a record");
        *record.info.write() = Some(LocationInfo {
            code: spec.code.clone(),
            kind: spec.kind,
            lat: spec.lat,
            lon: spec.lon,
            methods: spec.methods,
            daily_capacity: spec.daily_capacity,
            active: spec.active,
            routing: spec.routing.clone(),
        });
        record.active.store(spec.active, Ordering::Release);
        self.routing_stale.store(true, Ordering::Release);
        journal.append(|| Record::LocationUpserted {
            now_ms,
            location: id,
            code: spec.code.clone(),
            kind: spec.kind as u8,
            lat: spec.lat,
            lon: spec.lon,
            methods: spec.methods.bits(),
            daily_capacity: spec.daily_capacity,
            active: spec.active,
            routing: spec.routing.clone(),
        });
        Ok(new)
    }

    /// Returns the routing table, rebuilding it first if a location or channel
    /// changed since it was built.
    ///
    /// Each thread keeps the last table it used with the table's generation, a number
    /// unique in the process, so that the common call is one atomic load of a line
    /// no thread writes, not a lock and a reference count shared by every thread.
    pub(crate) fn routing_table(&self) -> Arc<RoutingTable> {
        if self.routing_stale.load(Ordering::Acquire) {
            // Changes set the flag under the writer lock, and it is cleared only once
            // the new table is published, so no thread reads an older table after
            // seeing the flag clear.
            let _writer = self.writer.lock();
            if self.routing_stale.load(Ordering::Acquire) {
                let table = Arc::new(RoutingTable::build(self));
                let generation = NEXT_ROUTING_GENERATION.fetch_add(1, Ordering::Relaxed);
                *self.routing_table.write() = (generation, table);
                self.routing_generation.store(generation, Ordering::Release);
                self.routing_stale.store(false, Ordering::Release);
            }
        }
        let generation = self.routing_generation.load(Ordering::Acquire);
        ROUTING_TABLE_CACHE.with_borrow_mut(|cached| {
            if let Some((cached_generation, table)) = cached
                && *cached_generation == generation
            {
                return Arc::clone(table);
            }
            let (generation, table) = self.routing_table.read().clone();
            *cached = Some((generation, Arc::clone(&table)));
            table
        })
    }

    #[inline]
    pub(crate) fn location(&self, id: u32) -> Option<&Location> {
        self.location_records.get(id as usize)
    }

    pub(crate) fn location_count(&self) -> usize {
        self.location_records.len()
    }

    // Channels.

    /// Inserts or replaces a channel. Returns whether it was new.
    /// `locations` are location ids the channel may route to (`None` for all); the
    /// caller resolved them from codes.
    pub(crate) fn upsert_channel(
        &self,
        code: &str,
        may_sell_safety_stock: bool,
        locations: Option<Vec<u32>>,
        journal: &Journal,
        now_ms: u64,
    ) -> Result<bool, CodeError> {
        validate_code("channel", code)?;
        let _writer = self.writer.lock();
        let (id, new) = self.channels.intern(code).ok_or(CodeError::TooMany { field: "channel" })?;
        if new {
            self.channel_records.push_with(|_| {}).expect("channel ids and records grow together");
        }
        let record = self.channel(id).expect("interned channel has a record");
        record.may_sell_safety_stock.store(may_sell_safety_stock, Ordering::Release);
        let locations = locations.map(|mut ids| {
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        *record.locations.write() = locations.clone().map(Vec::into_boxed_slice);
        self.routing_stale.store(true, Ordering::Release);
        journal.append(|| Record::ChannelUpserted {
            now_ms,
            channel: id,
            code: code.to_owned(),
            may_sell_safety_stock,
            locations,
        });
        Ok(new)
    }

    #[inline]
    pub(crate) fn channel(&self, id: u32) -> Option<&Channel> {
        self.channel_records.get(id as usize)
    }

    // SKUs and positions.

    #[inline]
    fn position_hash(&self, sku: u32, location: u32) -> u64 {
        self.position_hasher.hash_one((u64::from(sku) << 32) | u64::from(location))
    }

    /// Hashes a stored position's key again, for growing the position table.
    fn rehash_position(&self, index: u32) -> u64 {
        let position = self.position(index);
        self.position_hash(position.sku(), position.location())
    }

    /// Returns the index of the position of `sku` at `location`, if it exists.
    #[inline]
    pub(crate) fn find_position(&self, sku: u32, location: u32) -> Option<u32> {
        let hash = self.position_hash(sku, location);
        self.position_table.load().find(hash, |index| {
            // SAFETY: indexes in the table were published after their position.
            let position = unsafe { self.positions.get_unchecked(index as usize) };
            position.sku() == sku && position.location() == location
        })
    }

    #[inline]
    pub(crate) fn position(&self, index: u32) -> &Position {
        self.positions.get(index as usize).expect("position indexes come from the catalog")
    }

    /// Returns a position's LSN stamp.
    #[inline]
    pub(crate) fn position_lsn(&self, index: u32) -> &AtomicU64 {
        self.position_lsns.get(index as usize).expect("position indexes come from the catalog")
    }

    /// Claims a position for writing (see `Position::lock`).
    #[inline]
    pub(crate) fn lock_position<'a>(&'a self, index: u32, shortage_count: &'a AtomicI64) -> PositionGuard<'a> {
        self.position(index).lock(shortage_count, self.position_lsn(index))
    }

    /// Returns how many positions `sku` has (inbound twins included).
    pub(crate) fn sku_position_count(&self, sku: u32) -> u32 {
        self.sku_records.get(sku as usize).map_or(0, |record| record.position_count.load(Ordering::Relaxed))
    }

    /// Calls `visit` with every position of `sku`, in the order they were created.
    pub(crate) fn for_each_position(&self, sku: u32, mut visit: impl FnMut(u32, &Position)) {
        let Some(record) = self.sku_records.get(sku as usize) else { return };
        let mut index = record.first_position.load(Ordering::Acquire);
        while index != NO_POSITION {
            // SAFETY: a position and its link are pushed before the position's index is
            // published in a link, which this thread read with Acquire ordering.
            let (position, next) = unsafe { self.positions.get_pair_unchecked(&self.next_position, index as usize) };
            visit(index, position);
            index = next.load(Ordering::Acquire);
        }
    }

    /// Returns the position of (`sku`, `location`), creating the SKU and the position
    /// as needed. The location must exist and the SKU code must be valid.
    pub(crate) fn ensure_position(
        &self,
        sku_code: &str,
        location: u32,
        journal: &Journal,
        now_ms: u64,
    ) -> Result<u32, crate::error::StockError> {
        if let Some(sku) = self.skus.get(sku_code)
            && let Some(index) = self.find_position(sku, location)
        {
            return Ok(index);
        }
        let _writer = self.writer.lock();
        self.ensure_position_locked(sku_code, location, journal, now_ms)
    }

    /// As `ensure_position`, for a caller holding the writer lock (see `writer_lock`).
    pub(crate) fn ensure_position_locked(
        &self,
        sku_code: &str,
        location: u32,
        journal: &Journal,
        now_ms: u64,
    ) -> Result<u32, crate::error::StockError> {
        let sku = self.intern_sku_locked(sku_code)?;
        if let Some(index) = self.find_position(sku, location) {
            return Ok(index);
        }
        let index = self.create_position_locked(sku, location)?;

        // Logged under the writer lock, so replay creates SKUs and positions in the
        // same order and gets the same ids.
        journal.append(|| Record::PositionCreated { now_ms, position: index, sku_code: sku_code.to_owned(), location });
        Ok(index)
    }

    /// Interns a SKU code, adding its record if it is new. The caller holds the writer
    /// lock.
    pub(crate) fn intern_sku_locked(&self, sku_code: &str) -> Result<u32, crate::error::StockError> {
        let (sku, new_sku) = self.skus.intern(sku_code).ok_or(crate::error::StockError::TooManySkus)?;
        if new_sku {
            self.sku_records
                .push_with(|record| {
                    record.first_position.store(NO_POSITION, Ordering::Relaxed);
                    record.last_position.store(NO_POSITION, Ordering::Relaxed);
                })
                .expect("SKU ids and records grow together");
        }
        Ok(sku)
    }

    /// Adds the position of (`sku`, `location`), which must not exist, and returns its
    /// index. The caller holds the writer lock.
    pub(crate) fn create_position_locked(&self, sku: u32, location: u32) -> Result<u32, crate::error::StockError> {
        let count = self.positions.len();
        if count >= crate::limits::POSITIONS_MAX as usize {
            return Err(crate::error::StockError::TooManyPositions);
        }
        self.position_table.reserve(count + 1, |index| self.rehash_position(index));
        let index =
            self.positions.push_with(|position| position.init(sku, location)).expect("below POSITIONS_MAX") as u32;
        self.next_position
            .push_with(|next| next.store(NO_POSITION, Ordering::Relaxed))
            .expect("positions and links grow together");
        self.position_lsns.push_with(|_| {}).expect("positions and stamps grow together");

        // Publish: first in the (SKU, location) table, then at the end of the SKU's list.
        self.position_table.load().insert(self.position_hash(sku, location), index);
        let record = self.sku_records.get(sku as usize).expect("SKU record exists");
        let last = record.last_position.load(Ordering::Relaxed);
        let link = match last {
            NO_POSITION => &record.first_position,
            last => self.next_position.get(last as usize).expect("linked position exists"),
        };
        link.store(index, Ordering::Release);
        record.last_position.store(index, Ordering::Relaxed);
        record.position_count.fetch_add(1, Ordering::Relaxed);
        Ok(index)
    }

    /// Takes the writer lock, for callers that add many positions in one go.
    pub(crate) fn writer_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.writer.lock()
    }

    /// Makes room for this many SKUs and positions without growing tables again.
    pub(crate) fn reserve(&self, skus: usize, positions: usize) {
        let _writer = self.writer.lock();
        self.skus.reserve(skus);
        self.position_table.reserve(positions, |index| self.rehash_position(index));
    }

    pub(crate) fn channel_count(&self) -> usize {
        self.channel_records.len()
    }

    pub(crate) fn sku_count(&self) -> usize {
        self.sku_records.len()
    }

    pub(crate) fn position_count(&self) -> usize {
        self.positions.len()
    }

    /// Bytes used by positions and the indexes that find them, excluding code strings.
    pub(crate) fn position_bytes(&self) -> usize {
        self.positions.allocated_bytes()
            + self.position_lsns.allocated_bytes()
            + self.next_position.allocated_bytes()
            + self.position_table.allocated_bytes()
            + self.sku_records.allocated_bytes()
            + self.skus.index_bytes()
    }

    /// Bytes used by code strings.
    pub(crate) fn code_bytes(&self) -> usize {
        self.skus.code_bytes() + self.locations.code_bytes() + self.channels.code_bytes()
    }
}

/// Checks a client code: 1 to `CODE_LEN_MAX` bytes, no control characters.
pub(crate) fn validate_code(field: &'static str, code: &str) -> Result<(), CodeError> {
    validate_id(field, code, crate::limits::CODE_LEN_MAX)
}

/// Checks an id: 1 to `len_max` bytes, no control characters.
pub(crate) fn validate_id(field: &'static str, value: &str, len_max: usize) -> Result<(), CodeError> {
    if value.is_empty() {
        return Err(CodeError::Empty { field, len_max });
    }
    if value.len() > len_max {
        return Err(CodeError::TooLong { field, len: value.len(), len_max });
    }
    // ASCII control characters are single bytes below 0x20 or 0x7f; only non-ASCII
    // text needs the full Unicode check (C1 controls, U+0080 to U+009F).
    let has_control = if value.is_ascii() {
        value.bytes().any(|byte| byte < 0x20 || byte == 0x7f)
    } else {
        value.chars().any(char::is_control)
    };
    if has_control {
        return Err(CodeError::ControlCharacter { field, value: value.escape_debug().to_string() });
    }
    Ok(())
}

pub(crate) fn validate_location(spec: &LocationSpec) -> Result<(), crate::error::LocationError> {
    use crate::error::LocationError;
    validate_code("location", &spec.code)?;
    if !(-90.0..=90.0).contains(&spec.lat) {
        return Err(LocationError::LatitudeOutOfRange { code: spec.code.clone(), lat: spec.lat });
    }
    if !(-180.0..=180.0).contains(&spec.lon) {
        return Err(LocationError::LongitudeOutOfRange { code: spec.code.clone(), lon: spec.lon });
    }
    validate_routing(&spec.code, &spec.routing)
}

fn validate_routing(code: &str, routing: &LocationRouting) -> Result<(), crate::error::LocationError> {
    use crate::error::LocationError;
    use crate::routing::{Method, NO_CUTOFF_MINUTE};
    if !(-720..=840).contains(&routing.utc_offset_minutes) {
        return Err(LocationError::UtcOffsetOutOfRange { code: code.to_owned(), minutes: routing.utc_offset_minutes });
    }
    for (method, terms) in Method::ALL.iter().zip(&routing.terms) {
        if terms.cutoff_minute > NO_CUTOFF_MINUTE {
            return Err(LocationError::CutoffOutOfRange {
                code: code.to_owned(),
                method: method.name(),
                minute: terms.cutoff_minute,
            });
        }
        if terms.handling_minutes > crate::limits::HANDLING_MINUTES_MAX {
            return Err(LocationError::HandlingTooLong {
                code: code.to_owned(),
                method: method.name(),
                minutes: terms.handling_minutes,
            });
        }
    }
    if routing.speed_km_per_day == 0 {
        return Err(LocationError::ZeroSpeed { code: code.to_owned() });
    }
    let bands = &routing.transit_bands;
    if bands.len() > crate::limits::TRANSIT_BANDS_MAX
        || bands.windows(2).any(|pair| pair[0].distance_km_max >= pair[1].distance_km_max)
    {
        return Err(LocationError::TransitBands { code: code.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_code(code: &str, expected: Result<(), &str>) {
        let actual = validate_code("sku", code).map_err(|error| error.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned), "code {code:?}");
    }

    #[test]
    fn code_validation() {
        check_code("A", Ok(()));
        check_code(&"x".repeat(64), Ok(()));
        check_code("camisa-azul-M", Ok(()));
        check_code("", Err("sku is empty; it must have 1 to 64 bytes"));
        check_code(&"x".repeat(65), Err("sku is 65 bytes long; the limit is 64 bytes"));
        check_code("a\nb", Err("sku \"a\\nb\" contains a control character"));
    }

    #[test]
    fn positions_of_a_sku_keep_creation_order() {
        let catalog = Catalog::new(0, 0);
        for code in ["L1", "L2", "L3"] {
            let spec = LocationSpec {
                code: code.into(),
                kind: LocationKind::Warehouse,
                lat: 19.4,
                lon: -99.1,
                methods: FulfilmentMethods::SHIP,
                daily_capacity: 100,
                active: true,
                routing: LocationRouting::default(),
            };
            catalog.upsert_location(&spec, &Journal::default(), 0).unwrap();
        }
        let p2 = catalog.ensure_position("SKU", 2, &Journal::default(), 0).unwrap();
        let p0 = catalog.ensure_position("SKU", 0, &Journal::default(), 0).unwrap();
        assert_eq!(catalog.ensure_position("SKU", 2, &Journal::default(), 0).unwrap(), p2);
        let mut seen = Vec::new();
        catalog.for_each_position(0, |index, position| seen.push((index, position.location())));
        assert_eq!(seen, vec![(p2, 2), (p0, 0)]);
        assert_eq!(catalog.find_position(0, 0), Some(p0));
        assert_eq!(catalog.find_position(0, 1), None);
    }

    #[test]
    fn location_rejects_bad_coordinates() {
        let mut spec = LocationSpec {
            code: "CDMX-1".into(),
            kind: LocationKind::Store,
            lat: 91.0,
            lon: 0.0,
            methods: FulfilmentMethods::PICKUP,
            daily_capacity: 10,
            active: true,
            routing: LocationRouting::default(),
        };
        let catalog = Catalog::new(0, 0);
        assert_eq!(
            catalog.upsert_location(&spec, &Journal::default(), 0).unwrap_err().to_string(),
            "location CDMX-1: latitude 91 is not within -90..=90"
        );
        spec.lat = 0.0;
        spec.lon = -180.5;
        assert_eq!(
            catalog.upsert_location(&spec, &Journal::default(), 0).unwrap_err().to_string(),
            "location CDMX-1: longitude -180.5 is not within -180..=180"
        );
        assert_eq!(catalog.location_count(), 0);
    }
}
