//! Requests and outcomes of the reservation operations.

use smallvec::SmallVec;

/// The rule a reserve applies to lines that cannot be held in full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Policy {
    /// Hold every line in full, or nothing.
    #[default]
    AllOrNothing = 0,
    /// Hold what is available, earlier lines first, and report each line's quantity.
    Partial = 1,
    /// All-or-nothing, and a line that current ATP cannot fill is backordered against
    /// the location's free inbound supply (a pre-order), reported per line.
    Backorder = 2,
}

/// One line of a reserve request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReserveLine {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Units, 1..=`LINE_QUANTITY_MAX`.
    pub quantity: u64,
}

/// A reserve request: hold units of one or more positions until a deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveRequest {
    /// Client reservation id, 1..=128 bytes: the idempotency key.
    pub reservation_id: String,
    /// Channel code; `None` means the channel `default`.
    pub channel: Option<String>,
    /// Lines in request order; later requests name them by index.
    pub lines: Vec<ReserveLine>,
    /// All-or-nothing or partial.
    pub policy: Policy,
    /// Time-to-live of the hold, `TTL_MS_MIN..=TTL_MS_MAX` milliseconds.
    pub ttl_ms: u64,
}

/// Outcome of one reservation line, with stable numeric codes.
///
/// Listed in precedence order: a line that fails several checks reports the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum LineStatus {
    /// The full quantity is held.
    Held = 0,
    /// Partial policy: some units are held, fewer than requested.
    PartiallyHeld = 1,
    /// The SKU code is not known.
    UnknownSku = 2,
    /// The location code is not known.
    UnknownLocation = 3,
    /// The location is inactive and takes no new reservations.
    InactiveLocation = 4,
    /// Not enough ATP for the channel (counting other lines on the same position).
    InsufficientAtp = 5,
    /// All-or-nothing policy: this line could be held, but another line could not.
    NotAttempted = 6,
    /// Backorder policy: the full quantity is promised against inbound supply and
    /// counted as backordered, not reserved.
    Backordered = 7,
}

impl LineStatus {
    /// Returns the stable numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Result of one reserve line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineOutcome {
    /// The line's status.
    pub status: LineStatus,
    /// Units requested.
    pub requested: u32,
    /// Units held.
    pub held: u32,
}

/// Result of a reserve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// True when this is a repeat of an earlier reserve with the same id and content,
    /// returned with the first outcome.
    pub replayed: bool,
    /// Deadline of the hold, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// One outcome per request line, in request order.
    pub lines: SmallVec<[LineOutcome; 4]>,
}

impl ReserveOutcome {
    /// True if and only if at least one unit is held (the reservation exists).
    pub fn held_any(&self) -> bool {
        self.lines.iter().any(|line| line.held > 0)
    }

    /// True if and only if every line is held in full.
    pub fn held_all(&self) -> bool {
        self.lines.iter().all(|line| line.status == LineStatus::Held)
    }
}

/// A quantity on one line of an existing reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineQuantity {
    /// Line index, 0-based, in the order of the reserve request.
    pub line: u32,
    /// Units.
    pub quantity: u64,
}

/// The units an operation takes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Units {
    /// Every unit of every line in the states the operation takes.
    #[default]
    All,
    /// These quantities on these lines.
    Lines(Vec<LineQuantity>),
}

/// The units a release takes, when a quantity could come from either state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReleaseFrom {
    /// Held units first, then allocated ones.
    #[default]
    HeldFirst = 0,
    /// Held units only.
    Held = 1,
    /// Allocated units only.
    Allocated = 2,
}

/// Confirm: move held units to allocated; allocated units never expire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmRequest {
    /// Reservation id.
    pub reservation_id: String,
    /// Operation id, unique within the reservation.
    pub op_id: String,
    /// Units to confirm.
    pub units: Units,
}

/// Release: return units to ATP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRequest {
    /// Reservation id.
    pub reservation_id: String,
    /// Operation id, unique within the reservation.
    pub op_id: String,
    /// Units to release.
    pub units: Units,
    /// The state a quantity takes its units from.
    pub from: ReleaseFrom,
}

/// Fulfil: ship units, which leave on hand. Allocated units go first, then held ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FulfilRequest {
    /// Reservation id.
    pub reservation_id: String,
    /// Operation id, unique within the reservation.
    pub op_id: String,
    /// Units to fulfil.
    pub units: Units,
}

/// Extend: set a later deadline for the held units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendRequest {
    /// Reservation id.
    pub reservation_id: String,
    /// Operation id, unique within the reservation.
    pub op_id: String,
    /// New deadline, milliseconds since the Unix epoch; later than the current one and
    /// at most 7 days after now.
    pub deadline_ms: u64,
}

/// The stage of a reservation's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReservationState {
    /// Some units are held (and may expire); others may be allocated.
    Held = 0,
    /// Nothing is held; some units are allocated.
    Confirmed = 1,
    /// Closed, with at least one unit fulfilled.
    Fulfilled = 2,
    /// Closed by release, nothing fulfilled.
    Released = 3,
    /// Closed, nothing fulfilled, and the last held units expired.
    Expired = 4,
}

impl ReservationState {
    /// True if and only if the reservation still has held or allocated units.
    pub fn is_open(self) -> bool {
        matches!(self, ReservationState::Held | ReservationState::Confirmed)
    }
}

/// Result of confirm, release, fulfil or extend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationOutcome {
    /// True when this repeats an earlier request with the same operation id and content.
    pub replayed: bool,
    /// Units moved on each line, in line order.
    pub moved: SmallVec<[u32; 4]>,
    /// State after the operation.
    pub state: ReservationState,
    /// Deadline of held units after the operation.
    pub deadline_ms: u64,
}

/// Quantities of one reservation line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineView {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Status at reserve time.
    pub status: LineStatus,
    /// Units requested.
    pub requested: u32,
    /// Units held now.
    pub held: u32,
    /// Units allocated (confirmed, not shipped).
    pub allocated: u32,
    /// Units fulfilled (shipped).
    pub fulfilled: u32,
    /// Units released, including expired ones.
    pub released: u32,
}

/// The state of one reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationView {
    /// Reservation id.
    pub id: String,
    /// Channel code.
    pub channel: String,
    /// Policy of the reserve.
    pub policy: Policy,
    /// The stage of the reservation's life.
    pub state: ReservationState,
    /// Deadline of held units, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// When the reservation was made.
    pub created_ms: u64,
    /// When it closed, if closed.
    pub ended_ms: Option<u64>,
    /// Lines in request order.
    pub lines: Vec<LineView>,
}

/// A hold released by expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryEvent {
    /// Reservation id.
    pub reservation_id: String,
    /// The deadline that passed.
    pub deadline_ms: u64,
    /// The time the engine expired it (at or after the deadline).
    pub expired_at_ms: u64,
    /// Units released per line, in line order.
    pub released: SmallVec<[u32; 4]>,
}
