//! Routing: which locations fulfil an order, with promise dates, planned from the
//! applied state and held atomically together with each location's daily capacity.
//!
//! [`Engine::quote`] plans without changing anything. [`Engine::reserve_routed`]
//! plans and reserves the plan's units as one all-or-nothing reserve, claiming one order
//! of capacity per location for the location's local day. If another request takes
//! the stock or the capacity in between, it plans again, up to `ROUTE_ATTEMPTS_MAX`
//! times. The cost model is in ARCHITECTURE.md.
//!
//! Capacity counts are not logged: they follow from the routed reservations, so
//! recovery counts them again from the reservations it restored.

pub(crate) mod geo;
mod plan;
pub(crate) mod postal;
pub(crate) mod table;
mod types;

use std::hash::BuildHasher;
use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use crate::Engine;
use crate::Policy;
use crate::catalog::{Catalog, NO_POSITION, validate_id};
use crate::error::{ChannelError, PostalError, ReserveError, RouteError};
use crate::limits::{
    LINE_QUANTITY_MAX, POSTAL_ROWS_PER_UPSERT_MAX, RESERVATION_ID_LEN_MAX, ROUTE_ATTEMPTS_MAX, ROUTE_LINES_MAX,
    SHIPMENTS_MAX, TTL_MS_MAX, TTL_MS_MIN,
};
use crate::reservation::table::Reservation;
use crate::reservation::{Hold, HoldOutcome, ResolvedLine};
use crate::wal::record::{Record, RoutedRecord, RoutedShipment};

pub use geo::EARTH_RADIUS_KM;
pub use plan::LATE_DAY_COST_CENTS;
pub use types::*;

/// A channel upsert with the locations the channel may route to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Channel code.
    pub code: String,
    /// Whether the channel may sell safety stock (a store's POS may).
    pub may_sell_safety_stock: bool,
    /// Location codes the channel may route orders to; `None` for every location.
    pub locations: Option<Vec<String>>,
}

fn pack(day: u32, used: u32) -> u64 {
    (u64::from(day) << 32) | u64::from(used)
}

/// Orders routed to a location on its local day `day`.
pub(crate) fn capacity_used_on(catalog: &Catalog, location: u32, day: u32) -> u32 {
    let packed = catalog.location(location).map_or(0, |record| record.capacity_used.load(Ordering::Acquire));
    if (packed >> 32) as u32 == day { packed as u32 } else { 0 }
}

impl Engine {
    /// Inserts or replaces a channel with the set of locations it may route to.
    /// Returns true if the channel is new.
    pub fn upsert_channel_spec(&self, spec: &ChannelSpec) -> Result<bool, ChannelError> {
        let locations = match &spec.locations {
            None => None,
            Some(codes) => Some(
                codes
                    .iter()
                    .map(|code| {
                        self.catalog.locations.get(code).ok_or_else(|| ChannelError::UnknownLocation {
                            channel: spec.code.clone(),
                            location: code.clone(),
                        })
                    })
                    .collect::<Result<Vec<u32>, _>>()?,
            ),
        };
        self.durably(|| {
            let now_ms = self.clock.high_water_mark();
            Ok(self.catalog.upsert_channel(&spec.code, spec.may_sell_safety_stock, locations, &self.journal, now_ms)?)
        })
    }

    /// Inserts or replaces rows of the postal-code table. Every row is checked first,
    /// so a bad one changes nothing. Returns the number of rows in the table.
    pub fn upsert_postal_codes(&self, rows: &[PostalCodeRow]) -> Result<usize, PostalError> {
        if rows.len() > POSTAL_ROWS_PER_UPSERT_MAX {
            return Err(PostalError::TooManyRows { rows: rows.len() });
        }
        let rows = rows
            .iter()
            .enumerate()
            .map(|(index, row)| postal::validate_row(index, row))
            .collect::<Result<Vec<_>, _>>()?;
        self.durably(|| {
            let _writer = self.catalog.writer_lock();
            self.postal.upsert(&rows);
            let now_ms = self.clock.high_water_mark();
            self.journal.append(|| Record::PostalCodesUpserted { now_ms, rows });
            Ok(self.postal.len())
        })
    }

    /// Returns the coordinates of a destination, looking postal codes up in the
    /// postal-code table.
    pub fn resolve_destination(&self, destination: &Destination) -> Result<ResolvedDestination, RouteError> {
        match destination {
            Destination::Point { lat, lon } => {
                if !(-90.0..=90.0).contains(lat) {
                    return Err(RouteError::LatitudeOutOfRange { lat: *lat });
                }
                if !(-180.0..=180.0).contains(lon) {
                    return Err(RouteError::LongitudeOutOfRange { lon: *lon });
                }
                Ok(ResolvedDestination { lat: *lat, lon: *lon, source: DestinationSource::Point })
            }
            Destination::Postal { country, postal_code } => self.postal.resolve(country, postal_code),
        }
    }

    /// Plans where an order would ship from, changing nothing.
    pub fn quote(&self, request: &QuoteRequest, now_ms: u64) -> Result<Plan, RouteError> {
        let now_ms = self.clock.observe(now_ms);
        let context = self.route_context(request)?;
        let draft = self.plan_order(request, &context, now_ms);
        Ok(self.named_plan(request, draft.plan))
    }

    /// Plans an order and reserves the plan's units in one atomic step, claiming a day
    /// of capacity at each location it ships from. Idempotent on the reservation id,
    /// like [`Engine::reserve`]: a repeat with the same content returns the first
    /// outcome and plan (without explanations). A plan that does not fill the order
    /// holds nothing unless the order allows partial fills; if other requests keep
    /// taking the planned stock or capacity, the last plan is returned unheld.
    pub fn reserve_routed(
        &self,
        request: &RoutedReserveRequest,
        now_ms: u64,
    ) -> Result<RoutedReserveOutcome, RouteError> {
        self.durably(|| self.apply_reserve_routed(request, now_ms))
    }

    fn apply_reserve_routed(
        &self,
        request: &RoutedReserveRequest,
        now_ms: u64,
    ) -> Result<RoutedReserveOutcome, RouteError> {
        validate_id("reservation_id", &request.reservation_id, RESERVATION_ID_LEN_MAX)
            .map_err(ReserveError::ReservationId)?;
        if !(TTL_MS_MIN..=TTL_MS_MAX).contains(&request.ttl_ms) {
            return Err(ReserveError::TtlOutOfRange { ttl_ms: request.ttl_ms }.into());
        }
        let order = &request.order;
        let context = self.route_context(order)?;
        let fingerprint = routed_fingerprint(request);

        let mut attempts = 0;
        loop {
            attempts += 1;
            let now_ms = self.clock.observe(now_ms);
            let draft = self.plan_order(order, &context, now_ms);
            let fills = draft.plan.fills_all();
            let empty = draft.shipments.is_empty();

            // Resolve the plan's lines to positions; a position is never removed, so
            // each one the planner read still exists.
            let mut lines: SmallVec<[ResolvedLine; 4]> = SmallVec::new();
            let mut order_lines = Vec::new();
            for shipment in &draft.shipments {
                let location = match shipment.backorder {
                    true => shipment.location | crate::supply::INBOUND_LOCATION_BIT,
                    false => shipment.location,
                };
                for &(line, sku, _, units) in &shipment.lines {
                    let position = self.catalog.find_position(sku, location).unwrap_or(NO_POSITION);
                    lines.push(ResolvedLine {
                        status: None,
                        sku,
                        location: shipment.location,
                        position,
                        quantity: units,
                        backordered: shipment.backorder,
                    });
                    order_lines.push(line);
                }
            }
            let routed = routed_record(&draft, order_lines);
            let mut plan = self.named_plan(order, draft.plan);
            let hold = Hold {
                reservation_id: &request.reservation_id,
                fingerprint,
                channel: context.channel,
                may_sell_safety_stock: context.may_sell_safety_stock,
                policy: Policy::AllOrNothing,
                ttl_ms: request.ttl_ms,
                lines: &lines,
                unresolved: Vec::new(),
                routed: Some(routed),
                routing_table: Some(self.catalog.routing_table()),
            };

            // A plan that places nothing still checks the id: a retry of a routed
            // reserve that held gets its first outcome back.
            let last_attempt = attempts >= ROUTE_ATTEMPTS_MAX;
            let unheld = |plan: Plan, deadline_ms| RoutedReserveOutcome {
                replayed: false,
                held: false,
                deadline_ms,
                plan,
                attempts,
            };
            match self.hold(hold, now_ms)? {
                HoldOutcome::Existing(first, routed) => {
                    let plan = self.replayed_plan(order, &first, routed.as_deref());
                    return Ok(RoutedReserveOutcome {
                        replayed: true,
                        held: first.held_any(),
                        deadline_ms: first.deadline_ms,
                        plan,
                        attempts,
                    });
                }
                HoldOutcome::New(outcome) if outcome.held_any() => {
                    debug_assert!(fills || order.allow_partial);
                    number_reservation_lines(&mut plan);
                    return Ok(RoutedReserveOutcome {
                        replayed: false,
                        held: true,
                        deadline_ms: outcome.deadline_ms,
                        plan,
                        attempts,
                    });
                }
                HoldOutcome::New(outcome) if empty || last_attempt => {
                    if !empty {
                        plan.shipments.clear();
                    }
                    return Ok(unheld(plan, outcome.deadline_ms));
                }
                HoldOutcome::CapacityTaken if last_attempt => {
                    plan.shipments.clear();
                    return Ok(unheld(plan, 0));
                }
                // Another request took planned stock or capacity: plan again.
                HoldOutcome::New(_) | HoldOutcome::CapacityTaken => continue,
            }
        }
    }

    /// Claims one order of capacity at each location of a routed plan, for the day
    /// the plan names. Claims nothing and returns false if one is full.
    pub(crate) fn claim_capacity(&self, table: &table::RoutingTable, routed: &RoutedRecord) -> bool {
        for (index, shipment) in routed.shipments.iter().enumerate() {
            let capacity = table.locations[shipment.location as usize].as_ref().map_or(0, |route| route.daily_capacity);
            let record = self.catalog.location(shipment.location).expect("planned locations exist");
            let claimed = record.capacity_used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
                let used = if (packed >> 32) as u32 == shipment.capacity_day { packed as u32 } else { 0 };
                (capacity == 0 || used < capacity).then(|| pack(shipment.capacity_day, used + 1))
            });
            if claimed.is_err() {
                for earlier in &routed.shipments[..index] {
                    self.give_back_capacity(earlier.location, earlier.capacity_day);
                }
                return false;
            }
        }
        true
    }

    fn give_back_capacity(&self, location: u32, day: u32) {
        let record = self.catalog.location(location).expect("planned locations exist");
        let _ = record.capacity_used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            ((packed >> 32) as u32 == day && packed as u32 > 0).then(|| packed - 1)
        });
    }

    /// Gives back the capacity of each shipment of a routed reservation whose lines
    /// were all released (or expired) with nothing fulfilled, once.
    pub(crate) fn return_capacity(&self, reservation: &mut Reservation) {
        let Some(routed) = reservation.routed.as_deref() else { return };
        let mut first_line = 0usize;
        for (index, shipment) in routed.shipments.iter().enumerate() {
            let lines = &reservation.lines[first_line..first_line + shipment.line_count as usize];
            first_line += shipment.line_count as usize;
            let bit = 1u8 << index;
            let released = lines.iter().all(|line| line.held + line.allocated + line.fulfilled == 0);
            if released && reservation.capacity_returned & bit == 0 {
                reservation.capacity_returned |= bit;
                self.give_back_capacity(shipment.location, shipment.capacity_day);
            }
        }
    }

    /// Counts every location's capacity used today again from the routed
    /// reservations, after recovery restored them.
    pub(crate) fn recount_capacity(&self) {
        let table = self.catalog.routing_table();
        let now_ms = self.clock.high_water_mark();
        let today: Vec<u32> = table
            .locations
            .iter()
            .map(|route| route.as_ref().map_or(0, |route| plan::local_day(route, now_ms)))
            .collect();
        let mut used = vec![0u32; today.len()];
        for mut shard in self.reservations.shards() {
            shard.for_each_mut(|reservation| {
                let Some(routed) = reservation.routed.as_deref() else { return };
                let mut first_line = 0usize;
                for (index, shipment) in routed.shipments.iter().enumerate() {
                    let lines = &reservation.lines[first_line..first_line + shipment.line_count as usize];
                    first_line += shipment.line_count as usize;
                    if lines.iter().all(|line| line.held + line.allocated + line.fulfilled == 0) {
                        reservation.capacity_returned |= 1 << index;
                    } else if today.get(shipment.location as usize) == Some(&shipment.capacity_day) {
                        used[shipment.location as usize] += 1;
                    }
                }
            });
        }
        for (location, (&day, &used)) in today.iter().zip(&used).enumerate() {
            if let Some(record) = self.catalog.location(location as u32) {
                record.capacity_used.store(pack(day, used), Ordering::Release);
            }
        }
    }

    /// Orders routed to a location on its current local day, and its daily capacity
    /// (0 for no limit). `None` if the location is not known.
    pub fn capacity_used(&self, location: &str) -> Option<(u32, u32)> {
        let id = self.catalog.locations.get(location)?;
        let table = self.catalog.routing_table();
        let route = table.locations.get(id as usize)?.as_ref()?;
        let day = plan::local_day(route, self.clock.high_water_mark());
        Some((capacity_used_on(&self.catalog, id, day), route.daily_capacity))
    }

    fn route_context(&self, order: &QuoteRequest) -> Result<RouteContext, RouteError> {
        if order.lines.is_empty() {
            return Err(ReserveError::NoLines { id: String::new() }.into());
        }
        if order.lines.len() > ROUTE_LINES_MAX {
            return Err(RouteError::TooManyLines { count: order.lines.len() });
        }
        if !(1..=SHIPMENTS_MAX).contains(&order.max_shipments) {
            return Err(RouteError::ShipmentsOutOfRange { max_shipments: order.max_shipments });
        }
        for (index, line) in order.lines.iter().enumerate() {
            crate::catalog::validate_code("sku", &line.sku)
                .map_err(|error| ReserveError::LineCode { line: index, error })?;
            if !(1..=u64::from(LINE_QUANTITY_MAX)).contains(&line.quantity) {
                return Err(ReserveError::QuantityOutOfRange { line: index, quantity: line.quantity }.into());
            }
        }
        let (channel, may_sell_safety_stock) = self
            .resolve_channel(order.channel.as_deref())
            .ok_or_else(|| ReserveError::UnknownChannel { code: order.channel.clone().unwrap_or_default() })?;
        let pickup_store = match &order.method {
            RouteMethod::PickupAt { store, .. } => Some(
                self.catalog
                    .locations
                    .get(store)
                    .ok_or_else(|| RouteError::UnknownPickupStore { code: store.clone() })?,
            ),
            _ => None,
        };
        let destination = self.resolve_destination(&order.destination)?;
        let lines = order.lines.iter().map(|line| (self.catalog.skus.get(&line.sku), line.quantity as u32)).collect();
        Ok(RouteContext { channel, may_sell_safety_stock, pickup_store, destination, lines })
    }

    fn plan_order(&self, order: &QuoteRequest, context: &RouteContext, now_ms: u64) -> plan::PlanDraft {
        let table = self.catalog.routing_table();
        let planned = plan::Order {
            lines: &context.lines,
            channel: context.channel,
            may_sell_safety_stock: context.may_sell_safety_stock,
            method: &order.method,
            pickup_store: context.pickup_store,
            max_shipments: order.max_shipments,
            allow_partial: order.allow_partial,
            allow_backorder: order.allow_backorder,
            inbound_ready: &|twin, units| self.inbound_ready_ms(twin, units),
            now_ms,
        };
        loop {
            if let Some(draft) =
                plan::plan(&table, &self.catalog, &planned, context.destination.clone(), self.swept_until_ms())
            {
                return draft;
            }
            // A position counts a hold past its deadline: release due holds first.
            self.expire_due(now_ms);
        }
    }

    /// Fills in the SKU codes of a plan from the order.
    fn named_plan(&self, order: &QuoteRequest, mut plan: Plan) -> Plan {
        for shipment in &mut plan.shipments {
            for line in &mut shipment.lines {
                line.sku.clone_from(&order.lines[line.line as usize].sku);
            }
        }
        for unfilled in &mut plan.unfilled {
            unfilled.sku.clone_from(&order.lines[unfilled.line as usize].sku);
        }
        plan
    }

    /// Rebuilds the plan a routed reservation was made with.
    fn replayed_plan(
        &self,
        order: &QuoteRequest,
        first: &crate::ReserveOutcome,
        routed: Option<&RoutedRecord>,
    ) -> Plan {
        let Some(routed) = routed else {
            return Plan {
                destination: ResolvedDestination { lat: 0.0, lon: 0.0, source: DestinationSource::Point },
                shipments: Vec::new(),
                unfilled: Vec::new(),
                explanations: Vec::new(),
                cost_cents: 0,
            };
        };
        let mut plan = plan_of_record(&self.catalog, routed);
        for shipment in &mut plan.shipments {
            for line in &mut shipment.lines {
                let reservation_line = line.reservation_line.unwrap_or(0) as usize;
                let outcome = first.lines.get(reservation_line);
                line.quantity = outcome.map_or(0, |outcome| outcome.requested);
                shipment.backorder |= outcome.is_some_and(|outcome| outcome.status == crate::LineStatus::Backordered);
            }
        }
        self.named_plan(order, plan)
    }
}

/// The codes of an order resolved to ids before planning.
struct RouteContext {
    channel: u32,
    may_sell_safety_stock: bool,
    pickup_store: Option<u32>,
    destination: ResolvedDestination,
    lines: Vec<(Option<u32>, u32)>,
}

fn routed_fingerprint(request: &RoutedReserveRequest) -> u64 {
    let order = &request.order;
    let channel = order.channel.as_deref().unwrap_or(crate::DEFAULT_CHANNEL);
    let destination = match &order.destination {
        Destination::Point { lat, lon } => (lat.to_bits(), lon.to_bits(), String::new(), String::new()),
        Destination::Postal { country, postal_code } => (0, 0, country.to_ascii_uppercase(), postal_code.clone()),
    };
    foldhash::quality::FixedState::with_seed(0x5EED_2077).hash_one((
        channel,
        destination,
        &order.lines,
        &order.method,
        order.max_shipments,
        order.allow_partial,
        order.allow_backorder,
        request.ttl_ms,
    ))
}

fn routed_record(draft: &plan::PlanDraft, order_lines: Vec<u32>) -> RoutedRecord {
    let plan = &draft.plan;
    let (source, region_prefix) = match &plan.destination.source {
        DestinationSource::Point => (0, String::new()),
        DestinationSource::PostalCode => (1, String::new()),
        DestinationSource::PostalRegion { prefix } => (2, prefix.clone()),
    };
    RoutedRecord {
        lat: plan.destination.lat,
        lon: plan.destination.lon,
        source,
        region_prefix,
        order_lines,
        shipments: draft
            .shipments
            .iter()
            .zip(&plan.shipments)
            .map(|(planned, shipment)| RoutedShipment {
                location: planned.location,
                method: shipment.method as u8,
                distance_km: shipment.distance_km,
                cost_cents: shipment.cost_cents,
                promise_ms: shipment.promise_ms,
                capacity_day: planned.capacity_day,
                line_count: planned.lines.len() as u32,
            })
            .collect(),
        unfilled: plan
            .unfilled
            .iter()
            .map(|line| (line.line, line.requested, line.unfilled, line.reason as u8))
            .collect(),
    }
}

/// Numbers the shipment lines of a held plan with their reservation line indexes.
fn number_reservation_lines(plan: &mut Plan) {
    let mut next = 0;
    for shipment in &mut plan.shipments {
        for line in &mut shipment.lines {
            line.reservation_line = Some(next);
            next += 1;
        }
    }
}

/// Rebuilds a plan (without SKU codes or explanations) from a routed record.
fn plan_of_record(catalog: &Catalog, routed: &RoutedRecord) -> Plan {
    let source = match routed.source {
        1 => DestinationSource::PostalCode,
        2 => DestinationSource::PostalRegion { prefix: routed.region_prefix.clone() },
        _ => DestinationSource::Point,
    };
    let mut next_line = 0u32;
    let shipments = routed
        .shipments
        .iter()
        .map(|shipment| {
            let lines = (next_line..next_line + shipment.line_count)
                .map(|reservation_line| ShipmentLine {
                    line: routed.order_lines[reservation_line as usize],
                    sku: String::new(),
                    quantity: 0,
                    reservation_line: Some(reservation_line),
                })
                .collect();
            next_line += shipment.line_count;
            Shipment {
                location: catalog.locations.code(shipment.location).unwrap_or_default().to_owned(),
                method: Method::from_code(shipment.method).unwrap_or(Method::Ship),
                lines,
                distance_km: shipment.distance_km,
                cost_cents: shipment.cost_cents,
                promise_ms: shipment.promise_ms,
                backorder: false,
            }
        })
        .collect::<Vec<_>>();
    let cost_cents = shipments.iter().map(|shipment| shipment.cost_cents).sum();
    Plan {
        destination: ResolvedDestination { lat: routed.lat, lon: routed.lon, source },
        shipments,
        unfilled: routed
            .unfilled
            .iter()
            .map(|&(line, requested, unfilled, reason)| UnfilledLine {
                line,
                sku: String::new(),
                requested,
                unfilled,
                reason: UnfilledReason::from_code(reason).unwrap_or(UnfilledReason::InsufficientAtp),
            })
            .collect(),
        explanations: Vec::new(),
        cost_cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EngineConfig, FulfilmentMethods, LocationKind, LocationSpec};

    /// A small deterministic generator for the random networks.
    struct Draws(u64);

    impl Draws {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % bound
        }
    }

    /// Plans made weighing only the locations that can still win equal the plans made
    /// weighing every location.
    #[test]
    fn pruned_plans_equal_exhaustive_plans() {
        let mut draws = Draws(42);
        for network in 0..80 {
            let engine = Engine::new(EngineConfig::default());
            let locations = 2 + draws.below(40);
            for index in 0..locations {
                let mut routing = LocationRouting {
                    shipment_cost_cents: 100 + draws.below(5) as u32 * 100,
                    km_cost_cents: draws.below(3) as u32,
                    speed_km_per_day: 100 + draws.below(4) as u32 * 200,
                    ..LocationRouting::default()
                };
                routing.terms[Method::Ship as usize].handling_minutes = draws.below(4) as u32 * 720;
                routing.terms[Method::Ship as usize].cutoff_minute = draws.below(1_441) as u16;
                let spec = LocationSpec {
                    code: format!("L{index:02}"),
                    kind: LocationKind::Store,
                    lat: 19.0 + draws.below(200) as f64 / 100.0,
                    lon: -99.0 - draws.below(200) as f64 / 100.0,
                    methods: FulfilmentMethods::SHIP.with(FulfilmentMethods::PICKUP),
                    daily_capacity: draws.below(3) as u32,
                    active: draws.below(8) != 0,
                    routing,
                };
                engine.upsert_location(&spec).unwrap();
                // Sparse networks take the survey of positions, dense ones the survey of
                // locations.
                let sparse = network % 2 == 1;
                for sku in ["A", "B"] {
                    if !sparse || draws.below(4) == 0 {
                        engine.set_on_hand(sku, &spec.code, draws.below(6), 1_000).unwrap();
                    }
                }
            }
            for order_index in 0..20 {
                let method = match draws.below(4) {
                    0 => RouteMethod::ShipCheapest,
                    1 => RouteMethod::ShipFastest,
                    2 => RouteMethod::PickupNearest { curbside: false },
                    _ => RouteMethod::PickupAt { store: format!("L{:02}", draws.below(locations)), curbside: false },
                };
                let order = QuoteRequest {
                    channel: None,
                    destination: Destination::Point {
                        lat: 19.0 + draws.below(200) as f64 / 100.0,
                        lon: -99.0 - draws.below(200) as f64 / 100.0,
                    },
                    lines: vec![
                        RouteLine { sku: "A".into(), quantity: 1 + draws.below(3) },
                        RouteLine { sku: "B".into(), quantity: 1 + draws.below(3) },
                    ],
                    method,
                    max_shipments: 1 + draws.below(2) as u32,
                    allow_partial: false,
                    allow_backorder: false,
                };
                let now_ms = 1_000 + draws.below(2 * 86_400_000);
                let pruned = engine.quote(&order, now_ms).unwrap();
                plan::EXHAUSTIVE.set(true);
                let exhaustive = engine.quote(&order, now_ms).unwrap();
                plan::EXHAUSTIVE.set(false);
                assert_eq!(pruned.shipments, exhaustive.shipments, "network {network}, order {order_index}");
                assert_eq!(pruned.unfilled, exhaustive.unfilled, "network {network}, order {order_index}");
                assert_eq!(pruned.explanations, exhaustive.explanations, "network {network}, order {order_index}");
                if order_index % 5 == 4 {
                    let request = RoutedReserveRequest {
                        reservation_id: format!("r{network}-{order_index}"),
                        ttl_ms: 60_000,
                        order,
                    };
                    engine.reserve_routed(&request, now_ms).unwrap();
                }
            }
        }
    }
}
