//! Framing: a 4-byte little-endian payload length, then the rkyv archive of a
//! `ClientFrame` or a `ServerFrame`. Every payload is validated (bytecheck) before use,
//! and checked against the protocol's limits.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use thiserror::Error;

use crate::limits::{
    CODE_LEN_MAX, CODES_PER_QUERY_MAX, FRAME_BYTES_MAX, ID_LEN_MAX, LINES_PER_RESERVATION_MAX,
    LOCATIONS_PER_CHANNEL_MAX, POSTAL_CODE_LEN_MAX, POSTAL_ROWS_PER_REQUEST_MAX, REQUESTS_PER_FRAME_MAX,
    ROUTE_LINES_MAX, ROWS_PER_REQUEST_MAX, TOKEN_LEN_MAX, TRANSIT_BANDS_MAX,
};
use crate::messages::{
    ArchivedClientFrame, ArchivedDestination, ArchivedRequest, ArchivedRouteMethod, ArchivedRouteOrder,
    ArchivedServerFrame, ArchivedUnits, ClientFrame, ServerFrame,
};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Alignment of a payload buffer, as rkyv access needs.
pub const PAYLOAD_ALIGNMENT: usize = 16;

/// A payload buffer aligned for access.
pub type Payload = AlignedVec<PAYLOAD_ALIGNMENT>;

/// A frame that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is above `FRAME_BYTES_MAX`.
    #[error("frame of {len} bytes is over the limit frame_bytes_max = {FRAME_BYTES_MAX}")]
    TooLarge {
        /// The length the prefix gave.
        len: u64,
    },
    /// The payload failed validation.
    #[error("frame payload is malformed: {0}")]
    Malformed(String),
    /// More requests than `REQUESTS_PER_FRAME_MAX`.
    #[error("frame has {count} requests, over the limit requests_per_frame_max = {REQUESTS_PER_FRAME_MAX}")]
    TooManyRequests {
        /// Requests in the frame.
        count: usize,
    },
}

/// A request past a protocol limit.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field} is {value}, over the limit {limit_name} = {limit}")]
pub struct LimitError {
    /// The field, such as `lines` or `sku`.
    pub field: &'static str,
    /// Its length or count.
    pub value: usize,
    /// The limit's name.
    pub limit_name: &'static str,
    /// The limit.
    pub limit: usize,
}

/// Largest encoding buffer a thread keeps between frames; a larger one is freed.
pub const ENCODE_BUFFER_KEEP_BYTES_MAX: usize = 8 << 20;

thread_local! {
    /// The buffer each thread serializes frames into, kept between frames: growing a
    /// fresh buffer for every large frame costs a page fault per new page.
    static ENCODE_BUFFER: std::cell::RefCell<Payload> = std::cell::RefCell::new(Payload::new());
}

/// Serializes a frame into this thread's buffer and returns it with its length
/// prefix, in a vector of exactly that size.
fn encode<T>(frame: &T) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<Payload, rkyv::ser::allocator::ArenaHandle<'a>, rancor::Error>,
        >,
{
    ENCODE_BUFFER.with_borrow_mut(|buffer| {
        let mut reused = std::mem::take(buffer);
        reused.clear();
        let payload =
            rkyv::api::high::to_bytes_in::<_, rancor::Error>(frame, reused).expect("serializing to memory cannot fail");
        let bytes = prefixed(&payload);
        if payload.capacity() <= ENCODE_BUFFER_KEEP_BYTES_MAX {
            *buffer = payload;
        }
        bytes
    })
}

/// Encodes a client frame with its length prefix.
pub fn encode_client_frame(frame: &ClientFrame) -> Vec<u8> {
    encode(frame)
}

/// Encodes a server frame with its length prefix.
pub fn encode_server_frame(frame: &ServerFrame) -> Vec<u8> {
    encode(frame)
}

fn prefixed(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(LENGTH_PREFIX_BYTES + payload.len());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads a length prefix, refusing one over `FRAME_BYTES_MAX` before anything is
/// buffered.
pub fn payload_len(prefix: [u8; LENGTH_PREFIX_BYTES]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix);
    if len > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge { len: u64::from(len) });
    }
    Ok(len as usize)
}

/// Validates a client frame's payload and its request count.
pub fn access_client_frame(payload: &Payload) -> Result<&ArchivedClientFrame, FrameError> {
    let frame = rkyv::access::<ArchivedClientFrame, rancor::Error>(payload)
        .map_err(|error| FrameError::Malformed(error.to_string()))?;
    if frame.requests.len() > REQUESTS_PER_FRAME_MAX {
        return Err(FrameError::TooManyRequests { count: frame.requests.len() });
    }
    Ok(frame)
}

/// Validates a server frame's payload.
pub fn access_server_frame(payload: &Payload) -> Result<&ArchivedServerFrame, FrameError> {
    rkyv::access::<ArchivedServerFrame, rancor::Error>(payload)
        .map_err(|error| FrameError::Malformed(error.to_string()))
}

/// Copies payload bytes into an aligned buffer.
pub fn payload_from(bytes: &[u8]) -> Payload {
    let mut payload = Payload::with_capacity(bytes.len());
    payload.extend_from_slice(bytes);
    payload
}

/// Checks one request against the protocol's limits on counts and lengths. Values
/// (quantities, TTLs) are the server's to check.
pub fn check_limits(request: &ArchivedRequest) -> Result<(), LimitError> {
    let code = |field: &'static str, value: &str| check(field, value.len(), "code_len_max", CODE_LEN_MAX);
    let id = |field: &'static str, value: &str| check(field, value.len(), "id_len_max", ID_LEN_MAX);
    let channel = |value: &rkyv::option::ArchivedOption<rkyv::string::ArchivedString>| match value.as_ref() {
        Some(channel) => code("channel", channel.as_str()),
        None => Ok(()),
    };
    let units = |units: &ArchivedUnits| match units {
        ArchivedUnits::All => Ok(()),
        ArchivedUnits::Lines(lines) => {
            check("lines", lines.len(), "lines_per_reservation_max", LINES_PER_RESERVATION_MAX)
        }
    };

    match request {
        ArchivedRequest::Hello { token, .. } => check("token", token.len(), "token_len_max", TOKEN_LEN_MAX),
        ArchivedRequest::Ping | ArchivedRequest::Stats => Ok(()),
        ArchivedRequest::UpsertLocations { locations } => {
            check("locations", locations.len(), "rows_per_request_max", ROWS_PER_REQUEST_MAX)?;
            locations.iter().try_for_each(|location| code("location", location.code.as_str()))
        }
        ArchivedRequest::UpsertChannel { code: channel_code, locations, .. } => {
            code("channel", channel_code.as_str())?;
            let Some(locations) = locations.as_ref() else { return Ok(()) };
            check("locations", locations.len(), "locations_per_channel_max", LOCATIONS_PER_CHANNEL_MAX)?;
            locations.iter().try_for_each(|location| code("location", location.as_str()))
        }
        ArchivedRequest::UpsertLocationsWithRouting { locations } => {
            check("locations", locations.len(), "rows_per_request_max", ROWS_PER_REQUEST_MAX)?;
            locations.iter().try_for_each(|row| {
                code("location", row.location.code.as_str())?;
                check("transit_bands", row.routing.transit_bands.len(), "transit_bands_max", TRANSIT_BANDS_MAX)
            })
        }
        ArchivedRequest::UpsertPostalCodes { rows } => {
            check("rows", rows.len(), "postal_rows_per_request_max", POSTAL_ROWS_PER_REQUEST_MAX)?;
            rows.iter().try_for_each(|row| {
                code("country", row.country.as_str())?;
                check("postal_code", row.postal_code.len(), "postal_code_len_max", POSTAL_CODE_LEN_MAX)
            })
        }
        ArchivedRequest::Quote { order } => check_order(order),
        ArchivedRequest::ReserveRouted { reservation_id, order, .. } => {
            id("reservation_id", reservation_id.as_str())?;
            check_order(order)
        }
        ArchivedRequest::SetOnHand { sku, location, .. } | ArchivedRequest::SetSafetyStock { sku, location, .. } => {
            code("sku", sku.as_str())?;
            code("location", location.as_str())
        }
        ArchivedRequest::AdjustOnHand { sku, location, op_id, .. } => {
            code("sku", sku.as_str())?;
            code("location", location.as_str())?;
            id("op_id", op_id.as_str())
        }
        ArchivedRequest::ImportRows { import_id, rows, .. } => {
            id("import_id", import_id.as_str())?;
            check("rows", rows.len(), "rows_per_request_max", ROWS_PER_REQUEST_MAX)?;
            rows.iter().try_for_each(|row| {
                code("sku", row.sku.as_str())?;
                code("location", row.location.as_str())
            })
        }
        ArchivedRequest::ImportCommit { import_id } | ArchivedRequest::ImportAbort { import_id } => {
            id("import_id", import_id.as_str())
        }
        ArchivedRequest::Availability { sku, location, channel: name } => {
            code("sku", sku.as_str())?;
            code("location", location.as_str())?;
            channel(name)
        }
        ArchivedRequest::AvailabilityMany { skus, locations, channel: name, .. } => {
            check("skus", skus.len(), "codes_per_query_max", CODES_PER_QUERY_MAX)?;
            check("locations", locations.len(), "codes_per_query_max", CODES_PER_QUERY_MAX)?;
            skus.iter().try_for_each(|sku| code("sku", sku.as_str()))?;
            locations.iter().try_for_each(|location| code("location", location.as_str()))?;
            channel(name)
        }
        ArchivedRequest::Reserve { reservation_id, channel: name, lines, .. }
        | ArchivedRequest::ReserveWithPolicy { reservation_id, channel: name, lines, .. } => {
            id("reservation_id", reservation_id.as_str())?;
            channel(name)?;
            check("lines", lines.len(), "lines_per_reservation_max", LINES_PER_RESERVATION_MAX)?;
            lines.iter().try_for_each(|line| {
                code("sku", line.sku.as_str())?;
                code("location", line.location.as_str())
            })
        }
        ArchivedRequest::Confirm { reservation_id, op_id, units: taken }
        | ArchivedRequest::Release { reservation_id, op_id, units: taken, .. }
        | ArchivedRequest::Fulfil { reservation_id, op_id, units: taken } => {
            id("reservation_id", reservation_id.as_str())?;
            id("op_id", op_id.as_str())?;
            units(taken)
        }
        ArchivedRequest::Extend { reservation_id, op_id, .. } => {
            id("reservation_id", reservation_id.as_str())?;
            id("op_id", op_id.as_str())
        }
        ArchivedRequest::Get { reservation_id } => id("reservation_id", reservation_id.as_str()),
        ArchivedRequest::AddSupply { receipt_id, sku, location, .. } => {
            id("receipt_id", receipt_id.as_str())?;
            code("sku", sku.as_str())?;
            code("location", location.as_str())
        }
        ArchivedRequest::MoveSupply { receipt_id, .. } | ArchivedRequest::CancelSupply { receipt_id } => {
            id("receipt_id", receipt_id.as_str())
        }
        ArchivedRequest::AvailabilityBy { sku, location, channel: name, .. }
        | ArchivedRequest::EarliestAvailable { sku, location, channel: name, .. } => {
            code("sku", sku.as_str())?;
            code("location", location.as_str())?;
            channel(name)
        }
    }
}

/// Checks the counts and lengths of an order to route.
fn check_order(order: &ArchivedRouteOrder) -> Result<(), LimitError> {
    let code = |field: &'static str, value: &str| check(field, value.len(), "code_len_max", CODE_LEN_MAX);
    if let Some(channel) = order.channel.as_ref() {
        code("channel", channel.as_str())?;
    }
    check("lines", order.lines.len(), "route_lines_max", ROUTE_LINES_MAX)?;
    order.lines.iter().try_for_each(|line| code("sku", line.sku.as_str()))?;
    if let ArchivedDestination::Postal { country, postal_code } = &order.destination {
        code("country", country.as_str())?;
        check("postal_code", postal_code.len(), "postal_code_len_max", POSTAL_CODE_LEN_MAX)?;
    }
    match &order.method {
        ArchivedRouteMethod::PickupAt { store, .. } => code("store", store.as_str()),
        _ => Ok(()),
    }
}

fn check(field: &'static str, value: usize, limit_name: &'static str, limit: usize) -> Result<(), LimitError> {
    if value > limit { Err(LimitError { field, value, limit_name, limit }) } else { Ok(()) }
}

/// Splits a byte stream into frame payloads. Bounded: it never buffers more than one
/// prefix and one payload of at most `FRAME_BYTES_MAX` bytes.
#[derive(Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Returns the next whole payload, `None` if more bytes are needed, or an error
    /// for a length over the limit (the stream cannot be resynchronized after it).
    pub fn next_payload(&mut self) -> Result<Option<Payload>, FrameError> {
        let Some(prefix) = self.buffer.first_chunk::<LENGTH_PREFIX_BYTES>() else { return Ok(None) };
        let len = payload_len(*prefix)?;
        let end = LENGTH_PREFIX_BYTES + len;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let payload = payload_from(&self.buffer[LENGTH_PREFIX_BYTES..end]);
        self.buffer.drain(..end);
        Ok(Some(payload))
    }

    /// Bytes received and not yet returned.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }
}
