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
    /// Availability (also by a time, and earliest), quote, get and stats.
    Read = 0,
    /// Read, plus reserve, routed reserve, confirm, release, fulfil and extend.
    Reserve = 1,
    /// Everything, including locations, channels, stock, inbound supply and postal codes.
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

/// Number of fulfilment methods. Methods are numbered 0 ship, 1 pickup, 2 curbside,
/// 3 drop-ship, 4 same day, in `Shipment.method` and in `LocationRouting.terms`.
pub const METHOD_COUNT: usize = 5;

/// The name of each method, indexed by its number.
pub const METHOD_NAMES: [&str; METHOD_COUNT] = ["ship", "pickup", "curbside", "drop-ship", "same-day"];

/// Minute of the local day that means "no cut-off" in `MethodTerms.cutoff_minute`.
pub const NO_CUTOFF_MINUTE: u16 = 24 * 60;

/// The handling terms of one method at one location.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodTerms {
    /// Minutes from the start of handling until the order is ready to leave or to be
    /// picked up.
    pub handling_minutes: u32,
    /// Minute of the local day (0 to 1440) after which an order starts handling the
    /// next local day; `NO_CUTOFF_MINUTE` for none.
    pub cutoff_minute: u16,
}

impl Default for MethodTerms {
    fn default() -> Self {
        MethodTerms { handling_minutes: 0, cutoff_minute: NO_CUTOFF_MINUTE }
    }
}

/// Transit time for shipments up to a distance.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitBand {
    /// Shipments up to this distance, in kilometres, take `days`.
    pub distance_km_max: u32,
    /// Days in transit.
    pub days: u16,
}

/// The routing parameters of a location: its clock, its handling terms per method,
/// and what its shipments cost and take.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LocationRouting {
    /// Offset of the location's local time from UTC, in minutes (-720 to 840). Daily
    /// capacity and cut-offs follow the local day.
    pub utc_offset_minutes: i16,
    /// A pickup-only location's stock is never used for orders that ship.
    pub pickup_only: bool,
    /// Handling terms per method, indexed by the method's number.
    pub terms: [MethodTerms; METHOD_COUNT],
    /// Cost of one shipment from here, in cents, before distance.
    pub shipment_cost_cents: u32,
    /// Cost per kilometre of great-circle distance, in cents.
    pub km_cost_cents: u32,
    /// Distance a shipment covers per day in transit, in kilometres (at least 1);
    /// used past the last transit band.
    pub speed_km_per_day: u32,
    /// Transit days by distance, in increasing `distance_km_max`; may be empty. At most
    /// `TRANSIT_BANDS_MAX`.
    pub transit_bands: Vec<TransitBand>,
}

impl Default for LocationRouting {
    /// Returns the parameters of a location upserted without them: UTC, no handling
    /// time or cut-off, 500 cents per shipment plus 1 cent per km, 500 km per day in
    /// transit.
    fn default() -> Self {
        LocationRouting {
            utc_offset_minutes: 0,
            pickup_only: false,
            terms: [MethodTerms::default(); METHOD_COUNT],
            shipment_cost_cents: 500,
            km_cost_cents: 1,
            speed_km_per_day: 500,
            transit_bands: Vec::new(),
        }
    }
}

/// A location with its routing parameters, as `UpsertLocationsWithRouting` sends it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct LocationWithRouting {
    /// The location.
    pub location: LocationRow,
    /// Its routing parameters.
    pub routing: LocationRouting,
}

/// A row of the postal-code table.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct PostalCodeRow {
    /// ISO 3166-1 alpha-2 country code, such as `MX`; stored in uppercase.
    pub country: String,
    /// The postal code, or a region prefix ending in `*` (such as `06*`): codes not in
    /// the table that start with the prefix get the region's point.
    pub postal_code: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// The destination of an order.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub enum Destination {
    /// Coordinates in degrees.
    Point {
        /// Latitude, -90 to 90.
        lat: f64,
        /// Longitude, -180 to 180.
        lon: f64,
    },
    /// A postal code, looked up in the postal-code table.
    Postal {
        /// ISO 3166-1 alpha-2 country code.
        country: String,
        /// The postal code as the shopper gives it.
        postal_code: String,
    },
}

/// The fulfilment method an order requests.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum RouteMethod {
    /// Ship (or drop-ship) at the lowest cost.
    ShipCheapest,
    /// Ship (or drop-ship) to arrive soonest.
    ShipFastest,
    /// Deliver today, from a location near enough.
    SameDay,
    /// Pick up at this store.
    PickupAt {
        /// Store code.
        store: String,
        /// Curbside instead of inside the store.
        curbside: bool,
    },
    /// Pick up at the nearest store that can fill the whole order.
    PickupNearest {
        /// Curbside instead of inside the store.
        curbside: bool,
    },
}

/// One line of an order to route.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RouteLine {
    /// SKU code.
    pub sku: String,
    /// Units.
    pub quantity: u64,
}

/// An order to route: its destination, its lines and its fulfilment method.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct RouteOrder {
    /// Channel code; `None` is `default`. A channel with a list of locations routes
    /// only to them.
    pub channel: Option<String>,
    /// The destination.
    pub destination: Destination,
    /// Lines in request order, at most `ROUTE_LINES_MAX`.
    pub lines: Vec<RouteLine>,
    /// The fulfilment method.
    pub method: RouteMethod,
    /// Maximum number of shipments the order may split into (1 to 8); 1 means no
    /// split. Pickup orders never split.
    pub max_shipments: u32,
    /// Plan what can be filled and report the rest, instead of refusing the order.
    pub allow_partial: bool,
    /// Units no eligible location has in stock may be promised against a location's
    /// inbound supply; they are held as backordered (line status 7).
    pub allow_backorder: bool,
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

/// Number of reserve policies. Policies are numbered 0 all or nothing, 1 partial,
/// 2 backorder, in `ReserveWithPolicy.policy` and in `ReservationView.policy`.
pub const POLICY_COUNT: usize = 3;

/// The name of each reserve policy, indexed by its number.
pub const POLICY_NAMES: [&str; POLICY_COUNT] = ["all_or_nothing", "partial", "backorder"];

/// Policy number of all or nothing: hold every line in full, or nothing.
pub const POLICY_ALL_OR_NOTHING: u8 = 0;

/// Policy number of partial: hold what is available, earlier lines first.
pub const POLICY_PARTIAL: u8 = 1;

/// Policy number of backorder: all or nothing, and a line that ATP now cannot fill is
/// backordered against the location's free inbound supply.
pub const POLICY_BACKORDER: u8 = 2;

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
        /// Location codes the channel may route orders to, at most
        /// `LOCATIONS_PER_CHANNEL_MAX`; `None` for every location.
        locations: Option<Vec<String>>,
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
    /// Inserts or replaces locations with their routing parameters. `UpsertLocations`
    /// gives a location `LocationRouting::default()`.
    UpsertLocationsWithRouting {
        /// The locations, at most `ROWS_PER_REQUEST_MAX`.
        locations: Vec<LocationWithRouting>,
    },
    /// Inserts or replaces rows of the postal-code table, all or none.
    UpsertPostalCodes {
        /// Rows, at most `POSTAL_ROWS_PER_REQUEST_MAX`.
        rows: Vec<PostalCodeRow>,
    },
    /// Plans where an order would ship from, changing nothing.
    Quote {
        /// The order.
        order: RouteOrder,
    },
    /// Plans an order and holds the plan's units in one atomic step.
    ReserveRouted {
        /// Client reservation id: the idempotency key.
        reservation_id: String,
        /// Time-to-live of the hold, in milliseconds.
        ttl_ms: u64,
        /// The order.
        order: RouteOrder,
    },
    /// Holds units until a deadline, like `Reserve`, under a policy given by its
    /// number, which can also backorder lines against inbound supply.
    ReserveWithPolicy {
        /// Client reservation id: the idempotency key.
        reservation_id: String,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
        /// Lines, at most `LINES_PER_RESERVATION_MAX`.
        lines: Vec<ReserveLine>,
        /// 0 all or nothing, 1 partial, 2 backorder (all or nothing, and a line that
        /// ATP now cannot fill is backordered against the location's free inbound
        /// supply).
        policy: u8,
        /// Time-to-live of the hold, in milliseconds.
        ttl_ms: u64,
    },
    /// Adds an expected receipt of units at a location. Idempotent on the receipt id.
    AddSupply {
        /// Receipt id, such as a purchase order or transfer number: the idempotency key.
        receipt_id: String,
        /// SKU code; a SKU not known yet is created.
        sku: String,
        /// Location code where the units arrive.
        location: String,
        /// Units expected, 1 to 4,294,967,295.
        quantity: u64,
        /// Expected arrival, milliseconds since the Unix epoch.
        arrival_ms: u64,
    },
    /// Moves the expected arrival of a receipt.
    MoveSupply {
        /// Receipt id.
        receipt_id: String,
        /// The new expected arrival, milliseconds since the Unix epoch.
        arrival_ms: u64,
    },
    /// Cancels a receipt, unless backorders need its units.
    CancelSupply {
        /// Receipt id.
        receipt_id: String,
    },
    /// Units of a SKU at a location that can be promised by a time, counting the
    /// receipts that arrive by then.
    AvailabilityBy {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
        /// The time, milliseconds since the Unix epoch.
        by_ms: u64,
    },
    /// The earliest time a quantity of a SKU at a location can be promised.
    EarliestAvailable {
        /// SKU code.
        sku: String,
        /// Location code.
        location: String,
        /// Channel code; `None` is `default`.
        channel: Option<String>,
        /// Units.
        quantity: u64,
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
    /// Whether the partial policy applied (`policy` is 1).
    pub partial: bool,
    /// Reserve policy: 0 all or nothing, 1 partial, 2 backorder.
    pub policy: u8,
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

/// A destination as coordinates, and how they were found.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct ResolvedDestination {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// The source of the coordinates.
    pub source: DestinationSource,
}

/// The source of a destination's coordinates.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum DestinationSource {
    /// Given as coordinates.
    Point,
    /// The postal code's own row in the postal-code table.
    PostalCode,
    /// The postal code is not in the table; the row of the longest region prefix it
    /// starts with was used.
    PostalRegion {
        /// The region's prefix, without the `*`.
        prefix: String,
    },
}

/// One line of a shipment.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ShipmentLine {
    /// Index of the order line, 0-based, in request order.
    pub line: u32,
    /// SKU code.
    pub sku: String,
    /// Units from this location.
    pub quantity: u64,
    /// Index of the reservation line that holds them, for confirm, release and fulfil;
    /// `None` in a quote and in a plan that was not held.
    pub reservation_line: Option<u32>,
}

/// The units one location sends.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct Shipment {
    /// Location code.
    pub location: String,
    /// Method number: 0 ship, 1 pickup, 2 curbside, 3 drop-ship, 4 same day.
    pub method: u8,
    /// Lines from this location.
    pub lines: Vec<ShipmentLine>,
    /// Great-circle distance to the destination, in kilometres.
    pub distance_km: f64,
    /// Cost of the shipment, in cents.
    pub cost_cents: u64,
    /// When the shopper gets the units (delivery, or ready for pickup), milliseconds
    /// since the Unix epoch.
    pub promise_ms: u64,
    /// The units are backordered against the location's inbound supply; the promise
    /// counts from the receipt that brings them.
    pub backorder: bool,
}

/// Units of an order line that the plan could not place.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UnfilledLine {
    /// Index of the order line.
    pub line: u32,
    /// SKU code.
    pub sku: String,
    /// Units requested on the line.
    pub requested: u64,
    /// Units without a location.
    pub unfilled: u64,
    /// Reason code: 1 unknown SKU, 2 not enough available at eligible locations,
    /// 3 available only in more shipments than allowed, 4 no pickup store can fill
    /// the order.
    pub reason: u8,
}

/// The plan of an order: the locations it ships from, and the lines they cannot fill.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct Plan {
    /// The destination's coordinates and how they were found.
    pub destination: ResolvedDestination,
    /// Shipments, at most the order's `max_shipments`. Empty when the order is refused.
    pub shipments: Vec<Shipment>,
    /// Lines with units left without a location.
    pub unfilled: Vec<UnfilledLine>,
    /// Per order line, why its location won. Empty for a repeated routed reserve.
    pub explanations: Vec<String>,
    /// Total cost of the shipments, in cents.
    pub cost_cents: u64,
}

/// Outcome of a routed reserve.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug, PartialEq)]
pub struct RoutedReserveOutcome {
    /// Whether this repeats an earlier routed reserve with the same id and content,
    /// which returns the first outcome.
    pub replayed: bool,
    /// Whether the plan's units are held (the reservation exists).
    pub held: bool,
    /// Deadline of the hold, milliseconds since the Unix epoch; meaningless when
    /// nothing is held.
    pub deadline_ms: u64,
    /// The plan that was held, or that was refused.
    pub plan: Plan,
    /// Plans made: more than one when other requests took the planned stock or
    /// capacity between planning and holding.
    pub attempts: u32,
}

/// The inbound supply of one position (a SKU at a location) after a receipt change.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplyOutcome {
    /// Whether this repeats an earlier add with the same receipt id and content.
    pub replayed: bool,
    /// Units of every open receipt of the position.
    pub inbound: u64,
    /// Units backordered against them.
    pub backordered: u64,
}

/// Availability of a SKU at a location by a time, counting inbound supply.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedAvailability {
    /// ATP now for the channel; negative in shortage.
    pub atp: i64,
    /// Units of the receipts arriving at or before the time.
    pub inbound_by: u64,
    /// Units backordered against inbound supply.
    pub backordered: u64,
    /// Units that can be promised by the time: ATP now when positive, plus the units
    /// the receipts by then bring beyond the backorders, which take the earliest
    /// receipts first.
    pub available: u64,
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
    /// Rows of the postal-code table inserted or replaced.
    PostalCodesUpserted {
        /// Rows in the table after the upsert.
        rows_in_table: u64,
    },
    /// The plan of a quote. Boxed, like the next one, so that every response does not
    /// take the size of a plan.
    Quoted(Box<Plan>),
    /// Outcome of a routed reserve.
    ReservedRouted(Box<RoutedReserveOutcome>),
    /// A receipt added, moved or cancelled: the inbound supply of its position after
    /// the change.
    SupplyChanged(SupplyOutcome),
    /// Availability by a time.
    AvailabilityBy(TimedAvailability),
    /// The earliest time a quantity can be promised.
    EarliestAvailable {
        /// Milliseconds since the Unix epoch: the server's time now if ATP covers the
        /// quantity, else the arrival of the receipt that makes it available; `None`
        /// if the known receipts never do.
        at_ms: Option<u64>,
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
