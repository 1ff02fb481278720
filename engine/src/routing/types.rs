//! Requests, plans and outcomes of routing: where each order ships from.

use crate::catalog::FulfilmentMethods;

/// A way an order reaches the shopper, offered by some locations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Method {
    /// The location ships a parcel to the shopper.
    Ship = 0,
    /// The shopper picks the order up inside the store.
    Pickup = 1,
    /// The shopper picks the order up at the curb.
    Curbside = 2,
    /// The vendor ships its own stock to the shopper.
    DropShip = 3,
    /// Delivered to the shopper on the day of the order.
    SameDay = 4,
}

/// How many fulfilment methods there are; `MethodTerms` arrays have one entry each.
pub const METHOD_COUNT: usize = 5;

impl Method {
    /// Every method, in code order.
    pub const ALL: [Method; METHOD_COUNT] =
        [Method::Ship, Method::Pickup, Method::Curbside, Method::DropShip, Method::SameDay];

    /// Returns the method with this number, if there is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Method::Ship),
            1 => Some(Method::Pickup),
            2 => Some(Method::Curbside),
            3 => Some(Method::DropShip),
            4 => Some(Method::SameDay),
            _ => None,
        }
    }

    /// Returns the bit of this method in a location's `FulfilmentMethods`.
    pub const fn bit(self) -> FulfilmentMethods {
        match self {
            Method::Ship => FulfilmentMethods::SHIP,
            Method::Pickup => FulfilmentMethods::PICKUP,
            Method::Curbside => FulfilmentMethods::CURBSIDE,
            Method::DropShip => FulfilmentMethods::DROP_SHIP,
            Method::SameDay => FulfilmentMethods::SAME_DAY,
        }
    }

    /// Returns the lowercase name used in messages and by the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Method::Ship => "ship",
            Method::Pickup => "pickup",
            Method::Curbside => "curbside",
            Method::DropShip => "drop-ship",
            Method::SameDay => "same-day",
        }
    }

    /// True for the methods where the shopper comes to the location.
    pub const fn is_pickup(self) -> bool {
        matches!(self, Method::Pickup | Method::Curbside)
    }
}

/// Minute of the local day that means "no cut-off": orders are handled the same day
/// at any hour.
pub const NO_CUTOFF_MINUTE: u16 = 24 * 60;

/// The handling terms of one method at one location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodTerms {
    /// Minutes from the start of handling until the order is ready to leave or to
    /// be picked up.
    pub handling_minutes: u32,
    /// Minute of the local day (0..=1440) after which an order starts handling the
    /// next local day; `NO_CUTOFF_MINUTE` for none.
    pub cutoff_minute: u16,
}

impl Default for MethodTerms {
    fn default() -> Self {
        MethodTerms { handling_minutes: 0, cutoff_minute: NO_CUTOFF_MINUTE }
    }
}

/// Transit time for shipments up to a distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransitBand {
    /// Shipments up to this distance, in kilometres, take `days`.
    pub distance_km_max: u32,
    /// Days in transit.
    pub days: u16,
}

/// The routing parameters of a location: its clock, its handling terms per method and
/// what its shipments cost and take.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationRouting {
    /// Offset of the location's local time from UTC, in minutes (-720..=840). Daily
    /// capacity and cut-offs follow the local day.
    pub utc_offset_minutes: i16,
    /// A pickup-only location's stock is never used for orders that ship.
    pub pickup_only: bool,
    /// Handling terms per method, indexed by `Method as usize`.
    pub terms: [MethodTerms; METHOD_COUNT],
    /// Cost of one shipment from here, in cents, before distance.
    pub shipment_cost_cents: u32,
    /// Cost per kilometre of great-circle distance, in cents.
    pub km_cost_cents: u32,
    /// Distance a shipment covers per day in transit, in kilometres; used past the
    /// last transit band.
    pub speed_km_per_day: u32,
    /// Transit days by distance, sorted by `distance_km_max`; may be empty.
    pub transit_bands: Vec<TransitBand>,
}

impl Default for LocationRouting {
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

/// The destination of an order.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    /// Coordinates in degrees.
    Point {
        /// Latitude, -90 to 90.
        lat: f64,
        /// Longitude, -180 to 180.
        lon: f64,
    },
    /// A postal code looked up in the postal-code table.
    Postal {
        /// ISO 3166-1 alpha-2 country code, such as `MX`.
        country: String,
        /// The postal code as the shopper gives it.
        postal_code: String,
    },
}

/// The source of a destination's coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationSource {
    /// Given as coordinates.
    Point,
    /// The postal code's own point.
    PostalCode,
    /// The postal code is not in the table; the point of the region whose prefix it
    /// starts with was used.
    PostalRegion {
        /// The region's prefix.
        prefix: String,
    },
}

/// A destination as coordinates, with how they were found.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedDestination {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// The source of the coordinates.
    pub source: DestinationSource,
}

/// The fulfilment method the shopper chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteLine {
    /// SKU code.
    pub sku: String,
    /// Units, 1..=`LINE_QUANTITY_MAX`.
    pub quantity: u64,
}

/// A quote request: plan where an order would ship from, changing nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct QuoteRequest {
    /// Channel code; `None` means the channel `default`.
    pub channel: Option<String>,
    /// The destination.
    pub destination: Destination,
    /// Lines in request order.
    pub lines: Vec<RouteLine>,
    /// The fulfilment method.
    pub method: RouteMethod,
    /// Most shipments the order may split into, 1..=`SHIPMENTS_MAX`; 1 means no split.
    /// Pickup orders never split.
    pub max_shipments: u32,
    /// Plan what can be filled and report the rest, instead of refusing the order.
    pub allow_partial: bool,
    /// Units no eligible location has in stock may be promised against a location's
    /// inbound supply (a pre-order); they are held as backordered.
    pub allow_backorder: bool,
}

/// A routed reserve: plan the order and hold the plan's units in one atomic step.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedReserveRequest {
    /// Client reservation id: the idempotency key.
    pub reservation_id: String,
    /// Time-to-live of the hold, `TTL_MS_MIN..=TTL_MS_MAX` milliseconds.
    pub ttl_ms: u64,
    /// The order.
    pub order: QuoteRequest,
}

/// One line of a shipment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipmentLine {
    /// Index of the order line (0-based, request order).
    pub line: u32,
    /// SKU code.
    pub sku: String,
    /// Units from this location.
    pub quantity: u32,
    /// Index of the reservation line holding them, for confirm, release and fulfil;
    /// `None` in a quote.
    pub reservation_line: Option<u32>,
}

/// The units one location sends.
#[derive(Clone, Debug, PartialEq)]
pub struct Shipment {
    /// Location code.
    pub location: String,
    /// The fulfilment method of the units.
    pub method: Method,
    /// Lines from this location.
    pub lines: Vec<ShipmentLine>,
    /// Great-circle distance to the destination, in kilometres.
    pub distance_km: f64,
    /// Cost of the shipment, in cents.
    pub cost_cents: u64,
    /// When the shopper gets the units (delivery, or ready for pickup), milliseconds
    /// since the Unix epoch.
    pub promise_ms: u64,
    /// The units are backordered against the location's inbound supply, and the
    /// promise counts from the receipt that brings them.
    pub backorder: bool,
}

/// The reason some units of a line have no location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum UnfilledReason {
    /// The SKU code is not known.
    UnknownSku = 1,
    /// No eligible location has the units (inactive, excluded, full for the day or
    /// without the method count as not eligible).
    InsufficientAtp = 2,
    /// The units exist, but only in more shipments than the order allows.
    ShipmentLimit = 3,
    /// The requested pickup store is not known, does not offer pickup, or cannot
    /// fill the whole order.
    PickupStoreCannotFill = 4,
}

impl UnfilledReason {
    /// Returns the reason with this number, if there is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(UnfilledReason::UnknownSku),
            2 => Some(UnfilledReason::InsufficientAtp),
            3 => Some(UnfilledReason::ShipmentLimit),
            4 => Some(UnfilledReason::PickupStoreCannotFill),
            _ => None,
        }
    }

    /// Returns a short phrase for messages.
    pub const fn describe(self) -> &'static str {
        match self {
            UnfilledReason::UnknownSku => "unknown SKU",
            UnfilledReason::InsufficientAtp => "not enough available at eligible locations",
            UnfilledReason::ShipmentLimit => "available only in more shipments than allowed",
            UnfilledReason::PickupStoreCannotFill => "no pickup store can fill the order",
        }
    }
}

/// Units of a line the plan could not place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnfilledLine {
    /// Index of the order line.
    pub line: u32,
    /// SKU code.
    pub sku: String,
    /// Units requested on the line.
    pub requested: u32,
    /// Units without a location.
    pub unfilled: u32,
    /// Why.
    pub reason: UnfilledReason,
}

/// The shipments of an order, and the units left without a location.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The destination's coordinates and how they were found.
    pub destination: ResolvedDestination,
    /// Shipments, at most the order's `max_shipments`.
    pub shipments: Vec<Shipment>,
    /// Lines with units left without a location. A routed reserve of a plan with
    /// unfilled lines reserves nothing unless the order allows partial fills.
    pub unfilled: Vec<UnfilledLine>,
    /// Per order line, why its location(s) won, for example "L2: nearest with 3
    /// available; L7 nearer but full for today". Empty for a repeated reserve.
    pub explanations: Vec<String>,
    /// Total cost of the shipments, in cents.
    pub cost_cents: u64,
}

impl Plan {
    /// True if and only if every unit of every line has a location.
    pub fn fills_all(&self) -> bool {
        self.unfilled.is_empty()
    }
}

/// Result of a routed reserve.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutedReserveOutcome {
    /// True when this repeats an earlier routed reserve with the same id and content,
    /// returned with the first outcome.
    pub replayed: bool,
    /// True if and only if the plan's units are held (the reservation exists).
    pub held: bool,
    /// Deadline of the hold, milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// The plan that was held, or that was refused.
    pub plan: Plan,
    /// Plans made: more than one when other requests took stock or capacity between
    /// planning and holding.
    pub attempts: u32,
}

/// A row of the postal-code table.
#[derive(Clone, Debug, PartialEq)]
pub struct PostalCodeRow {
    /// ISO 3166-1 alpha-2 country code, uppercase.
    pub country: String,
    /// The postal code, or a region prefix ending in `*` (such as `06*`): codes not
    /// in the table that start with the prefix get the region's point.
    pub postal_code: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}
