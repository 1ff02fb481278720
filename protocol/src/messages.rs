//! Requests and responses, in wire types of the protocol's own (separate from the
//! engine's types and from its on-disk types).
//!
//! Quantities are u64 on the wire so that a value past an engine limit reaches the
//! server and is refused with a message naming the limit, instead of wrapping.

/// The permission level of a token.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[repr(u8)]
pub enum Role {
    /// Availability, get and stats.
    Read = 0,
    /// Read, plus reserve, confirm, release, fulfil and extend.
    Reserve = 1,
    /// Everything, including locations, channels and stock.
    Admin = 2,
}

impl Role {
    /// Returns the role's name as tokens files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Reserve => "reserve",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Role::Read),
            "reserve" => Some(Role::Reserve),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A location as an upsert sends it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct LocationRow {
    /// Location code.
    pub code: String,
    /// Kind: 0 warehouse, 1 store, 2 dark store, 3 drop-ship vendor.
    pub kind: u8,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Fulfilment method bits: 1 ship, 2 pickup, 4 curbside, 8 drop-ship, 16 same day.
    pub methods: u8,
    /// Orders per day; 0 means no limit.
    pub daily_capacity: u32,
    /// Whether the location takes new reservations.
    pub active: bool,
}

/// One row of a stock import.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StockRow {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// On hand to set.
    pub on_hand: u64,
    /// Safety stock to set, if given.
    pub safety_stock: Option<u64>,
}

/// One line of a reserve.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReserveLine {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Units.
    pub quantity: u64,
}

/// A quantity on one line of a reservation.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineQuantity {
    /// Line index, 0-based, in the order of the reserve request.
    pub line: u32,
    /// Units.
    pub quantity: u64,
}

/// The units an operation on a reservation takes.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Units {
    /// Every unit of every line in the states the operation takes.
    All,
    /// These quantities of these lines.
    Lines(Vec<LineQuantity>),
}

/// A request.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub enum Request {
    /// The first request on a connection: the client's protocol version and token.
    Hello {
        /// Major version; must equal the server's.
        major: u16,
        /// Minor version. The server replies with its own.
        minor: u16,
        /// The client's token.
        token: String,
    },
    /// Checks the connection.
    Ping,
    /// Inserts or replaces locations.
    UpsertLocations {
        /// The locations, at most `ROWS_PER_REQUEST_MAX`.
        locations: Vec<LocationRow>,
    },
    /// Inserts or replaces a channel.
    UpsertChannel {
        /// Channel code.
        code: String,
        /// Whether the channel may sell safety stock.
        may_sell_safety_stock: bool,
    },
    /// Sets on hand to a count.
    SetOnHand {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// The new on hand.
        on_hand: u64,
    },
    /// Changes on hand by a delta, idempotent on the operation id.
    AdjustOnHand {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Signed change.
        delta: i64,
        /// Reason: 0 receipt, 1 damage, 2 correction, 3 return.
        reason: u8,
        /// Operation id, unique among adjustments.
        op_id: String,
    },
    /// Sets safety stock.
    SetSafetyStock {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Units.
        units: u64,
    },
    /// Stages rows of a stock import under an import id; nothing applies until commit.
    ImportRows {
        /// Import id chosen by the client.
        import_id: String,
        /// Line number of the first row in the client's file, for error reports.
        first_line: u64,
        /// Rows, at most `ROWS_PER_REQUEST_MAX`.
        rows: Vec<StockRow>,
    },
    /// Validates every staged row of an import and applies them in one step, or
    /// none of them.
    ImportCommit {
        /// Import id.
        import_id: String,
    },
    /// Availability of one position.
    Availability {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
    },
    /// Availability of SKUs at all or some locations, per location or as totals.
    AvailabilityMany {
        /// SKU codes, at most `CODES_PER_QUERY_MAX`.
        skus: Vec<String>,
        /// Location codes; empty means every location.
        locations: Vec<String>,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
        /// Whether to return each location or only totals.
        per_location: bool,
    },
    /// Holds units until a deadline.
    Reserve {
        /// Client reservation id: the idempotency key.
        reservation_id: String,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
        /// Lines, at most `LINES_PER_RESERVATION_MAX`.
        lines: Vec<ReserveLine>,
        /// Hold what is available instead of all or nothing.
        partial: bool,
        /// Time-to-live of the hold, in milliseconds.
        ttl_ms: u64,
    },
    /// Moves held units to allocated.
    Confirm {
        /// Reservation id.
        reservation_id: String,
        /// Operation id, unique within the reservation.
        op_id: String,
        /// Units to confirm.
        units: Units,
    },
    /// Releases units.
    Release {
        /// Reservation id.
        reservation_id: String,
        /// Operation id, unique within the reservation.
        op_id: String,
        /// Units to release.
        units: Units,
        /// 0 held first, 1 held only, 2 allocated only.
        from: u8,
    },
    /// Ships units: allocated first, then held, and lowers on hand.
    Fulfil {
        /// Reservation id.
        reservation_id: String,
        /// Operation id, unique within the reservation.
        op_id: String,
        /// Units to fulfil.
        units: Units,
    },
    /// Moves the deadline of held units later.
    Extend {
        /// Reservation id.
        reservation_id: String,
        /// Operation id, unique within the reservation.
        op_id: String,
        /// The new deadline, milliseconds since the Unix epoch.
        deadline_ms: u64,
    },
    /// The state of a reservation.
    Get {
        /// Reservation id.
        reservation_id: String,
    },
    /// Counters and figures of the server.
    Stats,
    /// Drops the rows staged under an import id without applying them.
    ImportAbort {
        /// Import id.
        import_id: String,
    },
}

/// A request with the id the client chose for it; the response carries the same id.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct RequestEnvelope {
    /// Client-chosen id.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// A frame from client to server: a batch of requests.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ClientFrame {
    /// At most `REQUESTS_PER_FRAME_MAX`.
    pub requests: Vec<RequestEnvelope>,
}

/// The counters of one position for one channel.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PositionAvailability {
    /// Units physically present.
    pub on_hand: u64,
    /// Units held by open reservations.
    pub reserved: u64,
    /// Units confirmed, not yet shipped.
    pub allocated: u64,
    /// Units kept back from channels that may not sell them.
    pub safety_stock: u64,
    /// Available to promise for the channel; negative in shortage.
    pub atp: i64,
    /// Whether reserved + allocated exceeds on hand.
    pub in_shortage: bool,
}

/// One location's availability of a SKU.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LocationAvailability {
    /// Location code.
    pub location: String,
    /// Its counters.
    pub availability: PositionAvailability,
}

/// A SKU's availability.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SkuAvailability {
    /// SKU code.
    pub sku: String,
    /// Whether the SKU is known.
    pub known: bool,
    /// Per location, when asked for.
    pub locations: Vec<LocationAvailability>,
    /// Sum of the positive ATP over the locations.
    pub total_atp: u64,
}

/// Outcome of one reserve line.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineOutcome {
    /// Line status code (docs/protocol.md).
    pub status: u32,
    /// Units requested.
    pub requested: u64,
    /// Units held.
    pub held: u64,
}

/// One line of a reservation as read back.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LineView {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Line status code at reserve time.
    pub status: u32,
    /// Units requested.
    pub requested: u64,
    /// Units held now.
    pub held: u64,
    /// Units allocated now.
    pub allocated: u64,
    /// Units fulfilled.
    pub fulfilled: u64,
    /// Units released, by request or expiry.
    pub released: u64,
}

/// A reservation as read back.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReservationView {
    /// Reservation id.
    pub id: String,
    /// Channel code.
    pub channel: String,
    /// Whether the partial policy applied.
    pub partial: bool,
    /// State code: 0 held, 1 confirmed, 2 fulfilled, 3 released, 4 expired.
    pub state: u8,
    /// Deadline of held units, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// Creation time.
    pub created_ms: u64,
    /// Close time, if closed.
    pub ended_ms: Option<u64>,
    /// Lines in request order.
    pub lines: Vec<LineView>,
}

/// A named counter or figure of the server.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// Name, such as `positions_in_shortage` or `reserve.latency_us.p99`.
    pub name: String,
    /// Value.
    pub value: u64,
}

/// A response.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub enum Response {
    /// The request failed and changed nothing.
    Error {
        /// `ErrorCode` number.
        code: u16,
        /// Readable reason naming the field, the value and the limit where there is one.
        message: String,
    },
    /// The server accepted the hello.
    Welcome {
        /// The server's major version.
        major: u16,
        /// The server's minor version.
        minor: u16,
        /// The token's role.
        role: Role,
    },
    /// Reply to a ping.
    Pong {
        /// The server's clock, milliseconds since the Unix epoch.
        now_ms: u64,
    },
    /// Locations or a channel inserted or replaced.
    Upserted {
        /// Rows that were new.
        created: u32,
        /// Rows that replaced existing ones.
        replaced: u32,
    },
    /// On hand or safety stock changed.
    StockChanged {
        /// On hand before (unchanged by a safety stock set).
        previous: u64,
        /// On hand after.
        current: u64,
        /// Whether reserved + allocated exceeds on hand after the change.
        in_shortage: bool,
        /// Whether this repeats an earlier adjustment with the same operation id.
        replayed: bool,
    },
    /// Rows staged for an import.
    ImportStaged {
        /// Rows staged so far under the import id.
        rows_staged: u64,
    },
    /// An import applied.
    ImportCommitted {
        /// Rows applied.
        rows: u64,
        /// Positions created.
        positions_created: u64,
    },
    /// Availability of one position.
    Availability(PositionAvailability),
    /// Availability of SKUs.
    AvailabilityMany(Vec<SkuAvailability>),
    /// Outcome of a reserve.
    Reserved {
        /// Whether this repeats an earlier reserve with the same id.
        replayed: bool,
        /// Deadline of the hold.
        deadline_ms: u64,
        /// One outcome per line.
        lines: Vec<LineOutcome>,
    },
    /// Outcome of confirm, release, fulfil or extend.
    Operated {
        /// Whether this repeats an earlier operation with the same op id.
        replayed: bool,
        /// Units moved per line.
        moved: Vec<u64>,
        /// State code after the operation.
        state: u8,
        /// Deadline of held units after the operation.
        deadline_ms: u64,
    },
    /// A reservation, or none if the id is not known.
    Reservation(Option<ReservationView>),
    /// Server counters and figures.
    Stats(Vec<Figure>),
    /// An import dropped.
    ImportAborted {
        /// Rows that were staged and are now dropped.
        rows_dropped: u64,
    },
}

/// A response with the id of its request.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct ResponseEnvelope {
    /// The request's id.
    pub id: u64,
    /// The response.
    pub response: Response,
}

/// A frame from server to client: the responses to one client frame.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ServerFrame {
    /// One response per request of the client frame, in any order.
    pub responses: Vec<ResponseEnvelope>,
}
