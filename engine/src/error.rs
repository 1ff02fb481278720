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
    #[error("too many locations; the limit is {} locations", crate::limits::LOCATIONS_MAX)]
    TooManyLocations,
    /// A UTC offset outside -12:00..=+14:00.
    #[error("location {code}: utc_offset_minutes {minutes} is not within -720..=840")]
    UtcOffsetOutOfRange {
        /// Location code.
        code: String,
        /// The offset given, in minutes.
        minutes: i16,
    },
    /// A cut-off past the end of the day.
    #[error("location {code}: {method} cutoff_minute {minute} is not within 0..=1440")]
    CutoffOutOfRange {
        /// Location code.
        code: String,
        /// The method's name.
        method: &'static str,
        /// The minute given.
        minute: u16,
    },
    /// A handling time longer than the limit.
    #[error(
        "location {code}: {method} handling_minutes {minutes} is above the limit of {}",
        crate::limits::HANDLING_MINUTES_MAX
    )]
    HandlingTooLong {
        /// Location code.
        code: String,
        /// The method's name.
        method: &'static str,
        /// The handling time given.
        minutes: u32,
    },
    /// A speed of zero kilometres per day.
    #[error("location {code}: speed_km_per_day is 0; it must be at least 1")]
    ZeroSpeed {
        /// Location code.
        code: String,
    },
    /// Transit bands not in increasing distance, or too many of them.
    #[error(
        "location {code}: transit bands must have increasing distance_km_max, at most {} bands",
        crate::limits::TRANSIT_BANDS_MAX
    )]
    TransitBands {
        /// Location code.
        code: String,
    },
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
    /// A location in the channel's list is not known.
    #[error("channel {channel}: location {location} is not known; upsert the location first")]
    UnknownLocation {
        /// Channel code.
        channel: String,
        /// Location code.
        location: String,
    },
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
    /// Fulfilment of a line promised against inbound supply.
    #[error(
        "reservation {id}: line {line} is backordered against inbound supply; adjust on hand when the receipt \
         arrives, release the backorder and reserve the units again"
    )]
    Backordered {
        /// Reservation id.
        id: String,
        /// Line index.
        line: usize,
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

/// Request-level errors of a quote or a routed reserve. Units that cannot be placed
/// are not an error but unfilled lines in the plan.
#[derive(Clone, Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum RouteError {
    /// The reservation id, lines, TTL or channel break the reserve rules.
    #[error(transparent)]
    Reserve(#[from] ReserveError),
    /// A destination latitude outside -90..=90 degrees (or not a number).
    #[error("destination latitude {lat} is not within -90..=90")]
    LatitudeOutOfRange {
        /// The latitude given.
        lat: f64,
    },
    /// A destination longitude outside -180..=180 degrees (or not a number).
    #[error("destination longitude {lon} is not within -180..=180")]
    LongitudeOutOfRange {
        /// The longitude given.
        lon: f64,
    },
    /// A postal code that is neither in the table nor under a region prefix in it.
    #[error("postal code {country}:{postal_code} is not known and no region prefix in the postal table covers it")]
    UnknownPostalCode {
        /// Country code.
        country: String,
        /// Postal code.
        postal_code: String,
    },
    /// A country code that is not two ASCII letters, or a postal code that breaks the
    /// code rules.
    #[error("postal destination {country}:{postal_code} is malformed: {reason}")]
    MalformedPostalCode {
        /// Country code given.
        country: String,
        /// Postal code given.
        postal_code: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `max_shipments` outside 1..=SHIPMENTS_MAX.
    #[error("max_shipments {max_shipments} is outside 1..={}", crate::limits::SHIPMENTS_MAX)]
    ShipmentsOutOfRange {
        /// The value given.
        max_shipments: u32,
    },
    /// More lines than routing plans at once.
    #[error("order has {count} lines; routing plans at most {} lines", crate::limits::ROUTE_LINES_MAX)]
    TooManyLines {
        /// Lines given.
        count: usize,
    },
    /// The pickup store is not a known location.
    #[error("pickup store {code} is not known")]
    UnknownPickupStore {
        /// Location code.
        code: String,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Errors of a postal-code table upsert; the index is the row's position in the
/// request.
#[derive(Clone, Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum PostalError {
    /// A country code that is not two ASCII letters.
    #[error("row {row}: country {country:?} is not a two-letter country code")]
    Country {
        /// Row index.
        row: usize,
        /// The country given.
        country: String,
    },
    /// A postal code that is empty, too long, has a control character, or a `*`
    /// anywhere but at the end.
    #[error(
        "row {row}: postal_code {postal_code:?} must be 1 to {} bytes without control characters, \
         with `*` only at the end of a region prefix",
        crate::limits::POSTAL_CODE_LEN_MAX
    )]
    PostalCode {
        /// Row index.
        row: usize,
        /// The postal code given.
        postal_code: String,
    },
    /// Coordinates out of range.
    #[error("row {row}: lat {lat}, lon {lon} are not within -90..=90 and -180..=180")]
    Coordinates {
        /// Row index.
        row: usize,
        /// Latitude given.
        lat: f64,
        /// Longitude given.
        lon: f64,
    },
    /// More rows than one upsert takes.
    #[error("{rows} rows in one postal-code upsert; the limit is {}", crate::limits::POSTAL_ROWS_PER_UPSERT_MAX)]
    TooManyRows {
        /// Rows given.
        rows: usize,
    },
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}
