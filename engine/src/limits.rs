//! Named limits of the engine. Every request field that has a bound is checked
//! against one of these constants, and the error names the constant's value.

/// Longest SKU, location or channel code, in bytes (UTF-8). Codes are 1 to this many
/// bytes long and contain no control characters.
pub const CODE_LEN_MAX: usize = 64;

/// Maximum length of a reservation id, in bytes. A reservation id is the client's idempotency key.
pub const RESERVATION_ID_LEN_MAX: usize = 128;

/// Maximum length of an operation id, in bytes, for confirm, release, fulfil, extend and adjustments.
pub const OPERATION_ID_LEN_MAX: usize = 128;

/// Largest quantity of one reservation line.
pub const LINE_QUANTITY_MAX: u32 = 1_000_000_000;

/// Maximum number of lines in one reservation. The wire protocol may set a lower limit.
pub const LINES_PER_RESERVATION_MAX: usize = 1_000;

/// Largest count a position counter (on hand, reserved, allocated, safety stock) holds.
/// Counters are 32-bit so that a position fits in 32 bytes.
pub const POSITION_UNITS_MAX: u32 = u32::MAX;

/// Shortest time-to-live of a hold, in milliseconds.
pub const TTL_MS_MIN: u64 = 1_000;

/// Maximum time-to-live of a hold, and the maximum time an extend may set a deadline
/// past now, in milliseconds (7 days).
pub const TTL_MS_MAX: u64 = 7 * 24 * 60 * 60 * 1_000;

/// Default retention of ended reservations and their operation ids, in milliseconds (24 h).
pub const RETENTION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1_000;

/// Default bound on ended reservations kept for idempotent retries. Past it the oldest
/// ended reservations are forgotten first.
pub const ENDED_RESERVATIONS_MAX_DEFAULT: u64 = 10_000_000;

/// Default bound on remembered adjustment operation ids. Past it the oldest are
/// forgotten first.
pub const ADJUSTMENT_IDS_MAX_DEFAULT: u64 = 10_000_000;

/// Most SKU, location or channel codes the engine interns (ids are 32-bit, and one
/// value is reserved as "none").
pub const CODES_MAX: u32 = u32::MAX - 1;

/// Most locations: location ids stay below the bit that marks inbound supply positions.
pub const LOCATIONS_MAX: u32 = crate::supply::INBOUND_LOCATION_BIT;

/// Maximum number of positions in the engine (position indexes are 32-bit, and one value is
/// reserved as "none").
pub const POSITIONS_MAX: u32 = u32::MAX - 1;

/// Maximum number of locations in the filter of one availability request.
pub const LOCATIONS_PER_QUERY_MAX: usize = 10_000;

/// Most SKUs in one batch availability request.
pub const SKUS_PER_QUERY_MAX: usize = 10_000;

/// Maximum number of rows in one bulk position load.
pub const LOAD_ROWS_MAX: usize = 50_000_000;

/// Most shipments one routed order may split into.
pub const SHIPMENTS_MAX: u32 = 8;

/// Most lines one quote or routed reserve plans at once.
pub const ROUTE_LINES_MAX: usize = 64;

/// Most locations a quote weighs for one order; locations past it (in catalog order)
/// are not considered.
pub const ROUTE_CANDIDATES_MAX: usize = 4_096;

/// Plans a routed reserve makes before giving up when other requests keep taking the
/// planned stock or capacity first.
pub const ROUTE_ATTEMPTS_MAX: u32 = 4;

/// Longest handling time of a method at a location, in minutes (30 days).
pub const HANDLING_MINUTES_MAX: u32 = 30 * 24 * 60;

/// Most transit bands per location.
pub const TRANSIT_BANDS_MAX: usize = 16;

/// Farthest a same-day delivery goes, in kilometres.
pub const SAME_DAY_RADIUS_KM: f64 = 50.0;

/// Longest postal code or region prefix, in bytes.
pub const POSTAL_CODE_LEN_MAX: usize = 16;

/// Most rows in one postal-code upsert (one log record of at most 1 MiB).
pub const POSTAL_ROWS_PER_UPSERT_MAX: usize = 20_000;
