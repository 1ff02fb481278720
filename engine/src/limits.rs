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

/// Maximum number of positions in the engine (position indexes are 32-bit, and one value is
/// reserved as "none").
pub const POSITIONS_MAX: u32 = u32::MAX - 1;

/// Maximum number of locations in the filter of one availability request.
pub const LOCATIONS_PER_QUERY_MAX: usize = 10_000;

/// Most SKUs in one batch availability request.
pub const SKUS_PER_QUERY_MAX: usize = 10_000;

/// Maximum number of rows in one bulk position load.
pub const LOAD_ROWS_MAX: usize = 50_000_000;
