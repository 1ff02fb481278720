//! Limits that are part of the protocol: a request past one is refused with
//! `ErrorCode::LimitExceeded` and a message naming the limit and its value.

/// Largest frame payload, in bytes, after the 4-byte length prefix.
pub const FRAME_BYTES_MAX: u32 = 8 << 20;

/// Maximum requests in one frame.
pub const REQUESTS_PER_FRAME_MAX: usize = 4_096;

/// Maximum lines in one reservation.
pub const LINES_PER_RESERVATION_MAX: usize = 1_000;

/// Maximum length of a SKU, location or channel code, in bytes.
pub const CODE_LEN_MAX: usize = 64;

/// Maximum length of a reservation, operation, import or receipt id, in bytes.
pub const ID_LEN_MAX: usize = 128;

/// Maximum token length, in bytes.
pub const TOKEN_LEN_MAX: usize = 256;

/// Maximum locations or SKUs named in one availability request.
pub const CODES_PER_QUERY_MAX: usize = 10_000;

/// Maximum rows in one upsert or stock request. Larger imports are sent in several.
pub const ROWS_PER_REQUEST_MAX: usize = 10_000;

/// Default maximum of requests in flight on one connection. A server may set its own.
pub const IN_FLIGHT_REQUESTS_PER_CONNECTION_DEFAULT: usize = 65_536;

/// Maximum lines in one quote or routed reserve, equal to the engine's `ROUTE_LINES_MAX`
/// (a server test checks each of these equalities).
pub const ROUTE_LINES_MAX: usize = 64;

/// Maximum rows in one postal-code upsert, equal to the engine's
/// `POSTAL_ROWS_PER_UPSERT_MAX`.
pub const POSTAL_ROWS_PER_REQUEST_MAX: usize = 20_000;

/// Maximum length of a postal code or region prefix, in bytes, equal to the engine's
/// `POSTAL_CODE_LEN_MAX`.
pub const POSTAL_CODE_LEN_MAX: usize = 16;

/// Maximum location codes in a channel's list of the locations it may route to.
pub const LOCATIONS_PER_CHANNEL_MAX: usize = 10_000;

/// Maximum transit bands of one location, equal to the engine's `TRANSIT_BANDS_MAX`.
pub const TRANSIT_BANDS_MAX: usize = 16;
