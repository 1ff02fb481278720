//! Synthetic catalogues: SKU and location codes computed from a position number, and
//! engines loaded with every position of a catalogue.
//!
//! Position `p` is SKU `p / LOCATIONS` at location `p % LOCATIONS`, so a workload
//! picks a random position by number and writes its codes without a lookup table,
//! which keeps a 10,000,000-position catalogue's working set inside the engine.

use promesa_engine::{Engine, FulfilmentMethods, LocationKind, LocationSpec, PositionRow};

/// Locations in every catalogue. Each SKU has one position at each location, except
/// the last SKU when the position count is not a multiple of this.
pub const LOCATIONS: u64 = 10;

/// On hand of every loaded position: far more units than a benchmark holds at once,
/// so no reserve fails for lack of stock.
pub const ON_HAND: u64 = 1_000_000_000;

/// Rows passed to one `Engine::load_positions` call while building a catalogue.
pub const LOAD_BATCH_ROWS: usize = 100_000;

/// Digits of a SKU code's number, zero-padded: codes stay the same length for up to
/// 10^8 SKUs (10^9 positions).
const SKU_DIGITS: usize = 8;

/// Digits of a location code's number, zero-padded.
const LOCATION_DIGITS: usize = 4;

/// A catalogue of `positions` positions over [`LOCATIONS`] locations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Catalogue {
    /// Positions, numbered `0..positions`.
    pub positions: u64,
}

impl Catalogue {
    /// Creates a catalogue of `positions` positions. Panics if `positions` is 0.
    pub fn new(positions: u64) -> Self {
        assert!(positions > 0, "a catalogue needs at least one position");
        Catalogue { positions }
    }

    /// SKUs, numbered `0..skus()`.
    pub fn skus(&self) -> u64 {
        self.positions.div_ceil(LOCATIONS)
    }

    /// Locations that have at least one position.
    pub fn locations(&self) -> u64 {
        self.positions.min(LOCATIONS)
    }

    /// Replaces the contents of `sku` and `location` with the codes of `position`.
    pub fn write_position_codes(&self, position: u64, sku: &mut String, location: &mut String) {
        debug_assert!(position < self.positions);
        sku.clear();
        write_sku_code(sku, position / LOCATIONS);
        location.clear();
        write_location_code(location, position % LOCATIONS);
    }
}

/// Appends the code of SKU number `sku`, such as `SKU-00000042`.
pub fn write_sku_code(out: &mut String, sku: u64) {
    out.push_str("SKU-");
    push_decimal(out, sku, SKU_DIGITS);
}

/// Appends the code of location number `location`, such as `LOC-0003`.
pub fn write_location_code(out: &mut String, location: u64) {
    out.push_str("LOC-");
    push_decimal(out, location, LOCATION_DIGITS);
}

/// Appends `value` in decimal, zero-padded to at least `width` digits, without
/// allocating beyond `out`'s own growth.
pub fn push_decimal(out: &mut String, value: u64, width: usize) {
    const DIGITS_MAX: usize = 20;
    let mut digits = [b'0'; DIGITS_MAX];
    let mut rest = value;
    let mut start = DIGITS_MAX;
    while rest > 0 {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = start.min(DIGITS_MAX - width.clamp(1, DIGITS_MAX));
    // Pushing ASCII chars one by one is cheaper here than validating the digits as
    // UTF-8 for `push_str`, and the read benchmarks format two codes per read.
    out.reserve(DIGITS_MAX - start);
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// Builds an engine with the default configuration holding every position of
/// `catalogue`, each with [`ON_HAND`] units (see [`load_catalogue`]).
pub fn build_engine(catalogue: &Catalogue, now_ms: u64) -> Engine {
    let engine = Engine::default();
    load_catalogue(&engine, catalogue, now_ms);
    engine
}

/// Adds the [`LOCATIONS`] locations and every position of `catalogue` to `engine`,
/// each position with [`ON_HAND`] units. Makes room for all SKUs and positions up
/// front, then loads them in batches of [`LOAD_BATCH_ROWS`].
pub fn load_catalogue(engine: &Engine, catalogue: &Catalogue, now_ms: u64) {
    let mut code = String::new();
    for location in 0..LOCATIONS {
        code.clear();
        write_location_code(&mut code, location);
        let spec = LocationSpec {
            code: code.clone(),
            kind: LocationKind::Warehouse,
            lat: 0.0,
            lon: 0.0,
            methods: FulfilmentMethods::SHIP,
            daily_capacity: 1_000_000,
            active: true,
            routing: Default::default(),
        };
        engine.upsert_location(&spec).expect("a generated location is valid");
    }

    engine.reserve_capacity(catalogue.skus() as usize, catalogue.positions as usize);
    let mut rows = Vec::with_capacity(LOAD_BATCH_ROWS.min(catalogue.positions as usize));
    let mut start = 0;
    while start < catalogue.positions {
        let end = (start + LOAD_BATCH_ROWS as u64).min(catalogue.positions);
        rows.clear();
        for position in start..end {
            let mut row = PositionRow {
                sku: String::with_capacity(4 + SKU_DIGITS),
                location: String::with_capacity(4 + LOCATION_DIGITS),
                on_hand: ON_HAND,
                safety_stock: None,
            };
            catalogue.write_position_codes(position, &mut row.sku, &mut row.location);
            rows.push(row);
        }
        engine.load_positions(&rows, now_ms).expect("generated rows are valid");
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(value: u64, width: usize) -> String {
        let mut out = String::new();
        push_decimal(&mut out, value, width);
        out
    }

    #[test]
    fn push_decimal_pads_and_widens() {
        assert_eq!(decimal(0, 1), "0");
        assert_eq!(decimal(0, 4), "0000");
        assert_eq!(decimal(42, 4), "0042");
        assert_eq!(decimal(123_456, 4), "123456");
        assert_eq!(decimal(u64::MAX, 1), u64::MAX.to_string());
        assert_eq!(decimal(7, 0), "7");
    }

    #[test]
    fn position_codes_split_by_location() {
        let catalogue = Catalogue::new(25);
        let (mut sku, mut location) = (String::new(), String::new());
        catalogue.write_position_codes(23, &mut sku, &mut location);
        assert_eq!(sku, "SKU-00000002");
        assert_eq!(location, "LOC-0003");
        assert_eq!(catalogue.skus(), 3);
        assert_eq!(catalogue.locations(), 10);
    }

    #[test]
    fn build_engine_loads_every_position() {
        let catalogue = Catalogue::new(25);
        let engine = build_engine(&catalogue, 1_000);
        let stats = engine.stats();
        assert_eq!(stats.positions, 25);
        assert_eq!(stats.skus, 3);
        let availability = engine.availability("SKU-00000002", "LOC-0004", None, 1_000).expect("position exists");
        assert_eq!(availability.on_hand as u64, ON_HAND);
    }
}
