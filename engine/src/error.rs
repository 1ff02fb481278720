//! Errors of the engine's operations. Each error names the field, the value and the
//! limit involved, and every operation that returns one has changed nothing.

use thiserror::Error;

pub use crate::wal::writer::LogError;

use crate::limits::{
    LINE_QUANTITY_MAX, LINES_PER_RESERVATION_MAX, LOCATIONS_PER_QUERY_MAX, POSITION_UNITS_MAX, SKUS_PER_QUERY_MAX,
    TTL_MS_MAX, TTL_MS_MIN,
};

/// A client code or id that breaks the code rules.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeError {
    /// The value has no bytes.
    #[error("{field} is empty; it must have 1 to {len_max} bytes")]
    Empty {
        /// Which field.
        field: &'static str,
        /// The limit in bytes.
        len_max: usize,
    },
    /// The value is longer than its limit.
    #[error("{field} is {len} bytes long; the limit is {len_max} bytes")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        len_max: usize,
    },
    /// The value contains a control character such as a newline.
    #[error("{field} \"{value}\" contains a control character")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
        /// The value, escaped.
        value: String,
    },
    /// Every 32-bit id of this kind is in use.
    #[error("too many {field} codes; the limit is {} codes", crate::limits::CODES_MAX)]
    TooMany {
        /// Which field.
        field: &'static str,
    },
}

/// Errors of a location upsert.
#[derive(Clone, Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum LocationError {
    /// The code breaks the code rules.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Latitude outside -90..=90 degrees (or not a number).
    #[error("location {code}: latitude {lat} is not within -90..=90")]
    LatitudeOutOfRange {
        /// Location code.
        code: String,
        /// The latitude given.
        lat: f64,
    },
    /// Longitude outside -180..=180 degrees (or not a number).
    #[error("location {code}: longitude {lon} is not within -180..=180")]
    LongitudeOutOfRange {
        /// Location code.
        code: String,
        /// The longitude given.
        lon: f64,
    },
    /// Every location id is in use.
    #[error("too many locations; the limit is {} locations", crate::limits::CODES_MAX)]
    TooManyLocations,
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors of a channel upsert.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The code breaks the code rules.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors of stock changes (set on hand, adjust, safety stock, bulk load).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StockError {
    /// A code or operation id breaks the code rules.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The location is not in the catalog; upsert it first.
    #[error("location {code} is not known; upsert the location first")]
    UnknownLocation {
        /// Location code.
        code: String,
    },
    /// The SKU has no stock anywhere yet (adjustments need an existing position).
    #[error("position {sku}@{location} does not exist; set its on hand first")]
    UnknownPosition {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
    },
    /// A new on hand above the counter's limit.
    #[error("{field} {value} for {sku}@{location} is above the limit of {POSITION_UNITS_MAX} units")]
    AboveLimit {
        /// Which quantity.
        field: &'static str,
        /// The resulting value (saturated at `u64::MAX`).
        value: u64,
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
    },
    /// An adjustment that would take on hand below zero.
    #[error("adjusting on hand of {sku}@{location} by {delta} would leave {result} units; on hand cannot go below 0")]
    BelowZero {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// The delta given.
        delta: i64,
        /// The on hand it would leave.
        result: i64,
    },
    /// An adjustment of zero units.
    #[error("adjustment of {sku}@{location} has delta 0; a delta is a non-zero number of units")]
    ZeroDelta {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
    },
    /// The operation id was used before for a different adjustment.
    #[error("operation id {op_id} was already used for a different adjustment")]
    OperationIdReused {
        /// The operation id.
        op_id: String,
    },
    /// Every SKU id is in use.
    #[error("too many SKUs; the limit is {} SKUs", crate::limits::CODES_MAX)]
    TooManySkus,
    /// Every position index is in use.
    #[error("too many positions; the limit is {} positions", crate::limits::POSITIONS_MAX)]
    TooManyPositions,
    /// A bulk load with more rows than allowed.
    #[error("bulk load has {rows} rows; the limit is {} rows", crate::limits::LOAD_ROWS_MAX)]
    TooManyRows {
        /// Rows given.
        rows: usize,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A bulk load that was not applied.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// Some rows are invalid, so nothing was applied.
    #[error("bulk load rejected: {} invalid rows, first at row {}: {}", .rows.len(), .rows[0].0, .rows[0].1)]
    InvalidRows {
        /// Every invalid row: its index in the load (0-based) and the error.
        rows: Vec<(usize, StockError)>,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors of availability reads.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AvailabilityError {
    /// The SKU code was never given stock.
    #[error("SKU {code} is not known; it has no stock at any location")]
    UnknownSku {
        /// SKU code.
        code: String,
    },
    /// The location is not in the catalog.
    #[error("location {code} is not known; check the code or upsert the location")]
    UnknownLocation {
        /// Location code.
        code: String,
    },
    /// The channel is not registered.
    #[error("channel {code} is not known; upsert the channel first")]
    UnknownChannel {
        /// Channel code.
        code: String,
    },
    /// Too many locations in the filter.
    #[error("{count} locations in one availability request; the limit is {LOCATIONS_PER_QUERY_MAX}")]
    TooManyLocations {
        /// Locations given.
        count: usize,
    },
    /// Too many SKUs in one batch.
    #[error("{count} SKUs in one availability request; the limit is {SKUS_PER_QUERY_MAX}")]
    TooManySkus {
        /// SKUs given.
        count: usize,
    },
}

/// Request-level errors of a reserve. A line that cannot be held is not an error but a
/// line status in the outcome.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReserveError {
    /// The reservation id breaks the id rules (1 to 128 bytes, no control characters).
    #[error(transparent)]
    ReservationId(CodeError),
    /// A line's SKU or location code breaks the code rules.
    #[error("line {line}: {error}")]
    LineCode {
        /// Line index.
        line: usize,
        /// The problem with the code.
        error: CodeError,
    },
    /// The channel is not registered.
    #[error("channel {code} is not known; upsert the channel first")]
    UnknownChannel {
        /// Channel code.
        code: String,
    },
    /// A reservation needs at least one line.
    #[error("reservation {id} has no lines; a reservation has 1 to {LINES_PER_RESERVATION_MAX} lines")]
    NoLines {
        /// Reservation id.
        id: String,
    },
    /// Too many lines.
    #[error("reservation {id} has {count} lines; the limit is {LINES_PER_RESERVATION_MAX}")]
    TooManyLines {
        /// Reservation id.
        id: String,
        /// Lines given.
        count: usize,
    },
    /// A line quantity outside 1..=LINE_QUANTITY_MAX.
    #[error("line {line}: quantity {quantity} is outside 1..={LINE_QUANTITY_MAX}")]
    QuantityOutOfRange {
        /// Line index.
        line: usize,
        /// Quantity given.
        quantity: u64,
    },
    /// A time-to-live outside the allowed range.
    #[error("ttl_ms {ttl_ms} is outside {TTL_MS_MIN}..={TTL_MS_MAX} (1 s to 7 days)")]
    TtlOutOfRange {
        /// TTL given, in milliseconds.
        ttl_ms: u64,
    },
    /// The id names an existing reservation with different content.
    #[error("reservation id {id} already names a reservation with different channel, lines, policy or TTL")]
    IdReusedWithDifferentContent {
        /// Reservation id.
        id: String,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors of confirm, release, fulfil, extend and get on an existing reservation.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReservationError {
    /// The reservation id breaks the id rules.
    #[error(transparent)]
    ReservationId(CodeError),
    /// The operation id breaks the id rules.
    #[error(transparent)]
    OperationId(CodeError),
    /// No reservation has this id (never made, refused, or forgotten after its retention).
    #[error("reservation {id} is not known (never held, or ended and past its retention)")]
    UnknownReservation {
        /// Reservation id.
        id: String,
    },
    /// The operation id was used before on this reservation for a different request.
    #[error("operation id {op_id} was already used on reservation {id} for a different request")]
    OperationIdReused {
        /// Reservation id.
        id: String,
        /// Operation id.
        op_id: String,
    },
    /// A line index past the reservation's lines.
    #[error("reservation {id}: line {line} does not exist; its lines are numbered 0 to {}", .line_count - 1)]
    LineOutOfRange {
        /// Reservation id.
        id: String,
        /// Line index given.
        line: usize,
        /// Lines in the reservation.
        line_count: usize,
    },
    /// The same line named twice in one request.
    #[error("reservation {id}: line {line} is named twice")]
    DuplicateLine {
        /// Reservation id.
        id: String,
        /// Line index.
        line: usize,
    },
    /// A quantity of zero on a named line.
    #[error("reservation {id}: line {line} has quantity 0; a quantity is 1 or more")]
    ZeroQuantity {
        /// Reservation id.
        id: String,
        /// Line index.
        line: usize,
    },
    /// A quantity more than the line has in the needed state.
    #[error("reservation {id}: line {line} has {available} units {state}; the request names {requested}")]
    QuantityExceeds {
        /// Reservation id.
        id: String,
        /// Line index.
        line: usize,
        /// Quantity requested.
        requested: u64,
        /// Units in the needed state.
        available: u32,
        /// The state the units must be in ("held", "held or allocated", ...).
        state: &'static str,
    },
    /// The reservation has no units in a state this operation takes.
    #[error("reservation {id} has no units {state}")]
    NothingToChange {
        /// Reservation id.
        id: String,
        /// The state needed.
        state: &'static str,
    },
    /// The hold expired before this request: expiry won the race.
    #[error("reservation {id} expired at {deadline_ms} ms; now is {now_ms} ms")]
    Expired {
        /// Reservation id.
        id: String,
        /// Its deadline.
        deadline_ms: u64,
        /// The time of the request.
        now_ms: u64,
    },
    /// Fulfilment of units that are not on hand at the position.
    #[error("reservation {id}: line {line} needs {requested} units on hand at {sku}@{location}, which has {on_hand}")]
    NotOnHand {
        /// Reservation id.
        id: String,
        /// Line index.
        line: usize,
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Units to fulfil.
        requested: u32,
        /// Units on hand.
        on_hand: u32,
    },
    /// An extend to a deadline not later than the current one.
    #[error("reservation {id}: new deadline {deadline_ms} ms is not later than the current {current_ms} ms")]
    DeadlineNotLater {
        /// Reservation id.
        id: String,
        /// Deadline given.
        deadline_ms: u64,
        /// Current deadline.
        current_ms: u64,
    },
    /// An extend past now + 7 days.
    #[error("reservation {id}: new deadline {deadline_ms} ms is more than {TTL_MS_MAX} ms after now ({now_ms} ms)")]
    DeadlineTooFar {
        /// Reservation id.
        id: String,
        /// Deadline given.
        deadline_ms: u64,
        /// The time of the request.
        now_ms: u64,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}
