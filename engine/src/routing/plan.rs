//! The planner: which locations fill an order, read from the applied state without
//! locks. A routed reserve then reserves the plan's units and capacity atomically, and
//! plans again if another request took them first.
//!
//! Order of preference: a single location that fills the whole order, then the
//! fewest shipments, then the lowest cost, where cost is the shipments' cost plus a
//! penalty per day the latest shipment arrives after the shipping target
//! (`SHIP_PROMISE_TARGET_DAYS` after the order). Ties go to the nearer location, then the lower
//! code, so the same state always gives the same plan.

use std::cmp::Ordering as CmpOrdering;
use std::fmt::Write as _;

use smallvec::SmallVec;

use crate::catalog::{Catalog, NO_POSITION};
use crate::limits::{ROUTE_CANDIDATES_MAX, SAME_DAY_RADIUS_KM};
use crate::routing::geo::UnitVector;
use crate::routing::table::{LocationRoute, RoutingTable};
use crate::routing::{
    Method, NO_CUTOFF_MINUTE, Plan, ResolvedDestination, RouteMethod, Shipment, ShipmentLine, UnfilledLine,
    UnfilledReason,
};

/// Milliseconds in a day.
pub(crate) const DAY_MS: u64 = 24 * 60 * 60 * 1_000;

/// Cost added per day a shipping order arrives after its target promise, in cents.
pub const LATE_DAY_COST_CENTS: u64 = 200;

/// The target promise of a shipping order, in days after the order: arriving later
/// costs `LATE_DAY_COST_CENTS` a day.
pub const SHIP_PROMISE_TARGET_DAYS: u64 = 2;

/// Candidates with the most coverage that the exact two-shipment search pairs up.
const PAIR_SEARCH_CANDIDATES: usize = 24;

/// Mark in `Scratch::seen` of a location not looked at yet.
const UNSEEN: u32 = u32::MAX;

/// Buffers of the survey, kept per thread so that a plan allocates them once.
#[derive(Default)]
struct Scratch {
    /// Per location id, its row in `locations`, or `UNSEEN`.
    seen: Vec<u32>,
    /// Location ids in the order the survey met them.
    locations: Vec<u32>,
    /// Per row, the ATP of each distinct SKU of the order.
    avail: Vec<u32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
    /// The survey by location's list of locations, reused from call to call.
    static NEARBY: std::cell::RefCell<Vec<Nearby>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The reason a location that stocks a SKU of the order is not a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exclusion {
    Inactive,
    NotInChannel,
    PickupOnly,
    NoMethod,
    TooFar,
    PastCutoff,
    FullToday,
}

impl Exclusion {
    fn describe(self) -> &'static str {
        match self {
            Exclusion::Inactive => "inactive",
            Exclusion::NotInChannel => "not open to this channel",
            Exclusion::PickupOnly => "pickup only",
            Exclusion::NoMethod => "does not offer the method",
            Exclusion::TooFar => "beyond same-day range",
            Exclusion::PastCutoff => "past today's cut-off",
            Exclusion::FullToday => "full for today",
        }
    }
}

/// A location that may ship (or hand over) the order.
pub(crate) struct Candidate {
    pub location: u32,
    pub method: Method,
    pub distance_km: f64,
    pub cost_cents: u64,
    pub promise_ms: u64,
    /// Units available per distinct SKU of the order.
    avail: SmallVec<[u32; 8]>,
    /// Rank for the goal, lower first: the cost with the lateness penalty for the
    /// cheapest, the promise then the cost for the fastest, 0 for the nearest.
    score: (u64, u64),
}

/// A location that stocks a SKU of the order but cannot take it, kept to explain
/// choices.
struct Excluded {
    location: u32,
    distance_km: f64,
    reason: Exclusion,
}

/// The order as the planner reads it: SKU ids, channel and settings.
pub(crate) struct Order<'a> {
    pub lines: &'a [(Option<u32>, u32)],
    pub channel: u32,
    pub may_sell_safety_stock: bool,
    pub method: &'a RouteMethod,
    /// Location id of the pickup store for `RouteMethod::PickupAt`.
    pub pickup_store: Option<u32>,
    pub max_shipments: u32,
    pub allow_partial: bool,
    /// Units no location has in stock may be backordered against inbound supply.
    pub allow_backorder: bool,
    /// For an inbound twin position and a number of units, when that many more units
    /// of its free inbound supply have arrived, if they ever do.
    pub inbound_ready: &'a dyn Fn(u32, u64) -> Option<u64>,
    pub now_ms: u64,
}

/// A plan with the ids a hold needs: per shipment its candidate, per shipment line its
/// SKU id and position.
pub(crate) struct PlanDraft {
    pub plan: Plan,
    pub shipments: SmallVec<[PlannedShipment; 2]>,
}

pub(crate) struct PlannedShipment {
    pub location: u32,
    /// The lines are held on the location's inbound twin positions.
    pub backorder: bool,
    pub capacity_day: u32,
    /// (order line, SKU id, position, units).
    pub lines: SmallVec<[(u32, u32, u32, u32); 4]>,
}

/// Returns the location's local day number at `now_ms`.
pub(crate) fn local_day(route: &LocationRoute, now_ms: u64) -> u32 {
    (local_ms(route, now_ms) / DAY_MS) as u32
}

fn local_ms(route: &LocationRoute, now_ms: u64) -> u64 {
    (now_ms as i64 + i64::from(route.routing.utc_offset_minutes) * 60_000).max(0) as u64
}

/// When an order placed at `now_ms` is ready at the location for `method`, and
/// whether handling had to wait for the next local day because of the cut-off.
fn ready_ms(route: &LocationRoute, method: Method, now_ms: u64) -> (u64, bool) {
    let terms = route.routing.terms[method as usize];
    let local = local_ms(route, now_ms);
    let minute = (local % DAY_MS) / 60_000;
    let next_day = terms.cutoff_minute < NO_CUTOFF_MINUTE && minute >= u64::from(terms.cutoff_minute);
    let start_ms = if next_day { now_ms + (DAY_MS - local % DAY_MS) } else { now_ms };
    (start_ms + u64::from(terms.handling_minutes) * 60_000, next_day)
}

fn transit_days(route: &LocationRoute, distance_km: f64) -> u64 {
    let bands = &route.routing.transit_bands;
    if let Some(band) = bands.iter().find(|band| distance_km <= f64::from(band.distance_km_max)) {
        return u64::from(band.days);
    }
    // Whole kilometres are precise enough for days in transit, and integer division
    // is cheaper than a float-to-integer conversion with its range checks.
    let km = distance_km as u32 as u64;
    km.div_ceil(u64::from(route.routing.speed_km_per_day)).max(1)
}

/// Works out whether a location can take the order's method, and at what distance,
/// cost and promise.
fn evaluate(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    destination: &UnitVector,
    location: u32,
) -> Result<Terms, (f64, Exclusion)> {
    let route = table.locations[location as usize].as_ref().expect("positions name known locations");
    let distance_km = route.point.distance_km(destination);
    let exclude = |reason| Err((distance_km, reason));
    if !route.active {
        return exclude(Exclusion::Inactive);
    }
    if !table.channel_allows(order.channel, location) {
        return exclude(Exclusion::NotInChannel);
    }

    let offers = |method: Method| route.methods.contains(method.bit());
    let method = match order.method {
        RouteMethod::ShipCheapest | RouteMethod::ShipFastest | RouteMethod::SameDay if route.routing.pickup_only => {
            return exclude(Exclusion::PickupOnly);
        }
        RouteMethod::ShipCheapest | RouteMethod::ShipFastest if offers(Method::Ship) => Method::Ship,
        RouteMethod::ShipCheapest | RouteMethod::ShipFastest if offers(Method::DropShip) => Method::DropShip,
        RouteMethod::SameDay if offers(Method::SameDay) => Method::SameDay,
        RouteMethod::PickupAt { curbside: false, .. } | RouteMethod::PickupNearest { curbside: false }
            if offers(Method::Pickup) =>
        {
            Method::Pickup
        }
        RouteMethod::PickupAt { curbside: true, .. } | RouteMethod::PickupNearest { curbside: true }
            if offers(Method::Curbside) =>
        {
            Method::Curbside
        }
        _ => return exclude(Exclusion::NoMethod),
    };
    if method == Method::SameDay && distance_km > SAME_DAY_RADIUS_KM {
        return exclude(Exclusion::TooFar);
    }

    let (ready_ms, next_day) = ready_ms(route, method, order.now_ms);
    if method == Method::SameDay && (next_day || local_day(route, ready_ms) != local_day(route, order.now_ms)) {
        return exclude(Exclusion::PastCutoff);
    }
    if route.daily_capacity > 0 {
        let used = crate::routing::capacity_used_on(catalog, location, local_day(route, order.now_ms));
        if used >= route.daily_capacity {
            return exclude(Exclusion::FullToday);
        }
    }

    let shipment_cost = u64::from(route.routing.shipment_cost_cents);
    let (cost_cents, promise_ms) = match method {
        Method::Pickup | Method::Curbside => (shipment_cost, ready_ms),
        Method::SameDay => (shipment_cost + (f64::from(route.routing.km_cost_cents) * distance_km + 0.5) as u64, {
            let local = local_ms(route, ready_ms);
            ready_ms + (DAY_MS - local % DAY_MS) - 1
        }),
        Method::Ship | Method::DropShip => (
            shipment_cost + (f64::from(route.routing.km_cost_cents) * distance_km + 0.5) as u64,
            ready_ms + transit_days(route, distance_km) * DAY_MS,
        ),
    };
    Ok(Terms { method, distance_km, cost_cents, promise_ms })
}

/// The cost and promise a location gives the order.
struct Terms {
    method: Method,
    distance_km: f64,
    cost_cents: u64,
    promise_ms: u64,
}

/// The planner's findings about an order before it chooses.
struct Survey {
    /// Distinct SKU ids of the order and the units asked of each.
    skus: SmallVec<[(u32, u64); 8]>,
    /// Per order line, its index in `skus`, or `None` for an unknown SKU.
    line_sku: SmallVec<[Option<usize>; 8]>,
    /// Eligible locations with some of the order's SKUs available.
    candidates: Vec<Candidate>,
    /// Locations with some available that cannot take the order.
    excluded: Vec<Excluded>,
    /// Locations that stock the order's SKUs with none available, and their distance.
    empty: Vec<(u32, f64)>,
    /// Per distinct SKU, the distance of the nearest location with some available,
    /// whether it can take the order or not.
    nearest_stocked_km: SmallVec<[f64; 8]>,
    /// Per distinct SKU, units at every candidate together.
    total_avail: SmallVec<[u64; 8]>,
}

/// The goal a plan is scored by.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    Cheapest,
    Fastest,
    Nearest,
}

/// Plans the order. Returns `None` when a position the order reads counts a hold
/// past its deadline that no sweep released yet; the caller sweeps and plans again.
pub(crate) fn plan(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    destination: ResolvedDestination,
    swept_until_ms: u64,
) -> Option<PlanDraft> {
    let point = UnitVector::from_degrees(destination.lat, destination.lon);
    let goal = match order.method {
        RouteMethod::ShipCheapest => Goal::Cheapest,
        RouteMethod::ShipFastest | RouteMethod::SameDay => Goal::Fastest,
        RouteMethod::PickupAt { .. } | RouteMethod::PickupNearest { .. } => Goal::Nearest,
    };
    let target_ms = order.now_ms + SHIP_PROMISE_TARGET_DAYS * DAY_MS;
    let survey = survey(table, catalog, order, &point, swept_until_ms, goal, target_ms)?;
    let need: SmallVec<[u64; 8]> = survey.skus.iter().map(|&(_, units)| units).collect();
    let max_shipments = if goal == Goal::Nearest { 1 } else { order.max_shipments as usize };
    let compare = |a: usize, b: usize| compare_single(table, &survey.candidates[a], &survey.candidates[b]);

    // The best location that fills the whole order alone, found in one pass.
    let fills_alone =
        |candidate: &Candidate| candidate.avail.iter().zip(&need).all(|(&avail, &need)| u64::from(avail) >= need);
    let mut single: Option<usize> = None;
    for (index, candidate) in survey.candidates.iter().enumerate() {
        if fills_alone(candidate) && single.is_none_or(|best| compare(index, best).is_lt()) {
            single = Some(index);
        }
    }

    let chosen: SmallVec<[usize; 4]> = match single {
        Some(index) => SmallVec::from_slice(&[index]),
        None if max_shipments >= 2 || order.allow_partial => {
            // Candidates in order of preference, for the split's tie-breaks.
            let mut ranked: Vec<usize> = (0..survey.candidates.len()).collect();
            ranked.sort_by(|&a, &b| compare(a, b));
            let shipments = if max_shipments >= 2 { max_shipments } else { 1 };
            choose_split(&survey, &ranked, &need, shipments, goal, target_ms)
        }
        None => SmallVec::new(),
    };
    Some(assemble(table, catalog, order, destination, &survey, &chosen, &need, goal))
}

/// Reads every position of the order's SKUs and evaluates their locations.
fn survey(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    destination: &UnitVector,
    swept_until_ms: u64,
    goal: Goal,
    target_ms: u64,
) -> Option<Survey> {
    let mut skus: SmallVec<[(u32, u64); 8]> = SmallVec::new();
    let mut line_sku: SmallVec<[Option<usize>; 8]> = SmallVec::new();
    for &(sku, quantity) in order.lines {
        let Some(sku) = sku else {
            line_sku.push(None);
            continue;
        };
        let slot = match skus.iter().position(|&(id, _)| id == sku) {
            Some(slot) => slot,
            None => {
                skus.push((sku, 0));
                skus.len() - 1
            }
        };
        skus[slot].1 += u64::from(quantity);
        line_sku.push(Some(slot));
    }

    // When the order's SKUs are stocked at most locations, weighing locations nearest
    // the best rank first and reading only their positions beats reading every
    // position of the SKUs.
    let visits: u64 = skus.iter().map(|&(sku, _)| u64::from(catalog.sku_position_count(sku))).sum();
    let locations = table.locations.len();
    let by_location = order.pickup_store.is_some() || (locations <= ROUTE_CANDIDATES_MAX && locations as u64 <= visits);
    if by_location && !exhaustive() {
        let context = (table, catalog, order, destination, goal, target_ms);
        match survey_by_location(context, swept_until_ms, &skus, &line_sku) {
            ByLocation::Found(survey) => return Some(*survey),
            ByLocation::Due => return None,
            ByLocation::NoFiller => {}
        }
    }

    // First read the stock: per location seen, its ATP of each SKU, in a buffer
    // reused from call to call. `SEEN` maps a location id to its row, and every entry
    // set here is reset to UNSEEN before returning.
    let width = skus.len();
    let mut due = false;
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch { seen, locations, avail } = scratch;
        if seen.len() < table.locations.len() {
            seen.resize(table.locations.len(), UNSEEN);
        }
        locations.clear();
        avail.clear();
        for (slot, &(sku, _)) in skus.iter().enumerate() {
            catalog.for_each_position(sku, |_, position| {
                // Inbound twins are not stock, and a location added after this table
                // was built is not routed to until the next plan.
                let location = position.location();
                if location as usize >= table.locations.len()
                    || table.locations[location as usize].is_none()
                    || order.pickup_store.is_some_and(|store| store != location)
                {
                    return;
                }
                let row = match seen[location as usize] {
                    UNSEEN => {
                        if locations.len() >= ROUTE_CANDIDATES_MAX {
                            return;
                        }
                        seen[location as usize] = locations.len() as u32;
                        locations.push(location);
                        avail.resize(avail.len() + width, 0);
                        locations.len() - 1
                    }
                    row => row as usize,
                };
                let counters = position.read();
                if order.now_ms > swept_until_ms && counters.may_hold_expired(order.now_ms) {
                    due = true;
                }
                avail[row * width + slot] =
                    counters.atp(order.may_sell_safety_stock).clamp(0, i64::from(u32::MAX)) as u32;
            });
        }
        for &location in locations.iter() {
            seen[location as usize] = UNSEEN;
        }
    });
    if due {
        return None;
    }

    // Then weigh the locations with stock; the others are kept with their distance
    // to explain choices. When some location fills the whole order alone, only the
    // ones that could still beat the best so far are weighed (see `weigh_fillers`).
    let mut survey = Survey {
        skus,
        line_sku,
        candidates: Vec::new(),
        excluded: Vec::new(),
        empty: Vec::new(),
        nearest_stocked_km: SmallVec::from_elem(f64::INFINITY, width),
        total_avail: SmallVec::new(),
    };
    SCRATCH.with_borrow_mut(|scratch| {
        let mut fillers: Vec<Filler> = Vec::new();
        let mut stocked: Vec<(u32, f64, usize)> = Vec::with_capacity(scratch.locations.len());
        for (row, &location) in scratch.locations.iter().enumerate() {
            let avail = &scratch.avail[row * width..(row + 1) * width];
            let route = table.locations[location as usize].as_ref().expect("surveyed locations are in the table");
            let distance_km = route.point.distance_km(destination);
            if avail.iter().all(|&units| units == 0) {
                survey.empty.push((location, distance_km));
                continue;
            }
            for (nearest, &units) in survey.nearest_stocked_km.iter_mut().zip(avail) {
                if units > 0 {
                    *nearest = nearest.min(distance_km);
                }
            }
            stocked.push((location, distance_km, row));
            let fills = avail.iter().zip(&survey.skus).all(|(&units, &(_, need))| u64::from(units) >= need);
            if fills {
                let bound = lower_bound(route, goal, order, distance_km);
                fillers.push(Filler { bound, distance_km, location, row, weighed: false });
            }
        }
        let weighed = if exhaustive() {
            None
        } else {
            let context = (table, catalog, order, destination, goal, target_ms);
            weigh_fillers(context, &mut fillers, &mut survey, scratch, width)
        };
        if let Some(winner_km) = weighed {
            // Weigh the nearest location nearer than the winner, to explain the choice.
            let nearest = stocked
                .iter()
                .filter(|&&(_, distance_km, _)| distance_km < winner_km)
                .min_by(|a, b| tie_break(table, a.1, a.0, b.1, b.0));
            if let Some(&(location, _, row)) = nearest {
                let known = survey.candidates.iter().any(|candidate| candidate.location == location)
                    || survey.excluded.iter().any(|excluded| excluded.location == location);
                if !known {
                    let avail = &scratch.avail[row * width..(row + 1) * width];
                    weigh(table, catalog, order, destination, goal, target_ms, location, avail, &mut survey);
                }
            }
        } else {
            // No location fills the order alone: weigh every one with stock.
            survey.candidates.clear();
            survey.excluded.clear();
            for &(location, _, row) in &stocked {
                let avail = &scratch.avail[row * width..(row + 1) * width];
                weigh(table, catalog, order, destination, goal, target_ms, location, avail, &mut survey);
            }
        }
    });
    survey.total_avail = (0..width)
        .map(|slot| survey.candidates.iter().map(|candidate| u64::from(candidate.avail[slot])).sum())
        .collect();
    Some(survey)
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's plans weigh every location, to check the pruning against.
    pub(crate) static EXHAUSTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn exhaustive() -> bool {
    EXHAUSTIVE.get()
}

#[cfg(not(test))]
fn exhaustive() -> bool {
    false
}

/// Result of the survey by location.
enum ByLocation {
    /// A location fills the order alone. The survey contains it and what explains it.
    Found(Box<Survey>),
    /// No location fills the order alone: survey every position instead.
    NoFiller,
    /// A position counts a hold past its deadline: sweep and plan again.
    Due,
}

/// A location of the table with its distance and the lower bound of its rank.
struct Nearby {
    location: u32,
    distance_km: f64,
    bound: (u64, u64),
    weighed: bool,
}

/// Reads the ATP of each of the order's SKUs at a location into `avail` (0 where
/// the position does not exist). Returns whether any position exists, or `None` if
/// one counts a hold past its deadline.
fn read_location(
    catalog: &Catalog,
    order: &Order<'_>,
    skus: &[(u32, u64)],
    location: u32,
    swept_until_ms: u64,
    avail: &mut SmallVec<[u32; 8]>,
) -> Option<bool> {
    avail.clear();
    let mut any = false;
    for &(sku, _) in skus {
        let units = match catalog.find_position(sku, location) {
            Some(index) => {
                any = true;
                let counters = catalog.position(index).read();
                if order.now_ms > swept_until_ms && counters.may_hold_expired(order.now_ms) {
                    return None;
                }
                counters.atp(order.may_sell_safety_stock).clamp(0, i64::from(u32::MAX)) as u32
            }
            None => 0,
        };
        avail.push(units);
    }
    Some(any)
}

/// Surveys the order from the locations' side. First it computes each location's
/// distance and a lower bound of its rank. Then it reads the positions of locations in
/// bound order, until no location left can beat the best one that fills the order
/// alone. Last, it reads the locations nearer than the winner, nearest first, as far as
/// the explanation needs. The plan equals that of reading every position (a unit test
/// checks this).
fn survey_by_location(
    (table, catalog, order, destination, goal, target_ms): (
        &RoutingTable,
        &Catalog,
        &Order<'_>,
        &UnitVector,
        Goal,
        u64,
    ),
    swept_until_ms: u64,
    skus: &SmallVec<[(u32, u64); 8]>,
    line_sku: &SmallVec<[Option<usize>; 8]>,
) -> ByLocation {
    let width = skus.len();
    let mut survey = Survey {
        skus: skus.clone(),
        line_sku: line_sku.clone(),
        candidates: Vec::new(),
        excluded: Vec::new(),
        empty: Vec::new(),
        nearest_stocked_km: SmallVec::from_elem(f64::INFINITY, width),
        total_avail: SmallVec::new(),
    };
    NEARBY.with_borrow_mut(|nearby| {
        nearby.clear();
        for (location, route) in table.locations.iter().enumerate() {
            let location = location as u32;
            let Some(route) = route else { continue };
            if order.pickup_store.is_some_and(|store| store != location) {
                continue;
            }
            let distance_km = route.point.distance_km(destination);
            let bound = lower_bound(route, goal, order, distance_km);
            nearby.push(Nearby { location, distance_km, bound, weighed: false });
        }
        let rank = |entry: &Nearby, other: &Nearby| {
            entry
                .bound
                .cmp(&other.bound)
                .then_with(|| tie_break(table, entry.distance_km, entry.location, other.distance_km, other.location))
        };

        // Fillers, lowest bound first, until the next bound is above the best rank.
        let mut avail: SmallVec<[u32; 8]> = SmallVec::new();
        let mut best: Option<((u64, u64), f64)> = None;
        loop {
            let mut next: Option<usize> = None;
            for (index, entry) in nearby.iter().enumerate() {
                if !entry.weighed && next.is_none_or(|next| rank(entry, &nearby[next]).is_lt()) {
                    next = Some(index);
                }
            }
            let Some(index) = next else { break };
            let entry = &mut nearby[index];
            if let Some((score, distance_km)) = best
                && (entry.bound > score || (entry.bound == score && entry.distance_km > distance_km))
            {
                break;
            }
            entry.weighed = true;
            let location = entry.location;
            let Some(any) = read_location(catalog, order, skus, location, swept_until_ms, &mut avail) else {
                return ByLocation::Due;
            };
            let fills = any && avail.iter().zip(skus.iter()).all(|(&units, &(_, need))| u64::from(units) >= need);
            if fills && weigh(table, catalog, order, destination, goal, target_ms, location, &avail, &mut survey) {
                let candidate = survey.candidates.last().expect("just weighed");
                let rank = (candidate.score, candidate.distance_km);
                if best.is_none_or(|(score, distance_km)| rank.0 < score || (rank.0 == score && rank.1 <= distance_km))
                {
                    best = Some(rank);
                }
            }
        }
        let Some((_, winner_km)) = best else { return ByLocation::NoFiller };

        // Locations nearer than the winner, nearest first: the nearest with any of the
        // SKUs is the rival an explanation names, and per SKU the nearest with some
        // available decides whether the winner is the nearest with stock.
        let mut nearer: Vec<&Nearby> = nearby.iter().filter(|entry| entry.distance_km < winner_km).collect();
        nearer.sort_by(|a, b| tie_break(table, a.distance_km, a.location, b.distance_km, b.location));
        let mut rival_found = false;
        for entry in nearer {
            let Some(any) = read_location(catalog, order, skus, entry.location, swept_until_ms, &mut avail) else {
                return ByLocation::Due;
            };
            if !any {
                continue;
            }
            for (nearest, &units) in survey.nearest_stocked_km.iter_mut().zip(&avail) {
                if units > 0 && nearest.is_infinite() {
                    *nearest = entry.distance_km;
                }
            }
            if !rival_found {
                rival_found = true;
                let known = survey.candidates.iter().any(|candidate| candidate.location == entry.location)
                    || survey.excluded.iter().any(|excluded| excluded.location == entry.location);
                if !known {
                    if avail.iter().all(|&units| units == 0) {
                        survey.empty.push((entry.location, entry.distance_km));
                    } else {
                        weigh(table, catalog, order, destination, goal, target_ms, entry.location, &avail, &mut survey);
                    }
                }
            }
            if survey.nearest_stocked_km.iter().all(|km| km.is_finite()) {
                break;
            }
        }
        survey.total_avail = (0..width)
            .map(|slot| survey.candidates.iter().map(|candidate| u64::from(candidate.avail[slot])).sum())
            .collect();
        ByLocation::Found(Box::new(survey))
    })
}

/// A location that fills the whole order alone, with a lower bound of its rank.
struct Filler {
    /// No weighing can give the location a better (score, distance) than this.
    bound: (u64, u64),
    distance_km: f64,
    location: u32,
    row: usize,
    weighed: bool,
}

/// Returns a lower bound of a location's rank for a goal, from its distance alone:
/// handling, cut-offs and lateness only add to the promise and the score.
fn lower_bound(route: &LocationRoute, goal: Goal, order: &Order<'_>, distance_km: f64) -> (u64, u64) {
    let shipment_cost = u64::from(route.routing.shipment_cost_cents);
    let distance_cost = (f64::from(route.routing.km_cost_cents) * distance_km + 0.5) as u64;
    match goal {
        Goal::Cheapest => (shipment_cost + distance_cost, 0),
        Goal::Fastest => {
            let transit_ms = match order.method {
                RouteMethod::SameDay => 0,
                _ => transit_days(route, distance_km) * DAY_MS,
            };
            (order.now_ms + transit_ms, shipment_cost + distance_cost)
        }
        Goal::Nearest => (0, 0),
    }
}

/// Weighs one location: a candidate if it can take the order, else excluded.
#[allow(clippy::too_many_arguments)]
fn weigh(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    destination: &UnitVector,
    goal: Goal,
    target_ms: u64,
    location: u32,
    avail: &[u32],
    survey: &mut Survey,
) -> bool {
    match evaluate(table, catalog, order, destination, location) {
        Ok(terms) => {
            survey.candidates.push(Candidate {
                location,
                method: terms.method,
                distance_km: terms.distance_km,
                cost_cents: terms.cost_cents,
                promise_ms: terms.promise_ms,
                avail: SmallVec::from_slice(avail),
                score: score(goal, terms.cost_cents, terms.promise_ms, target_ms),
            });
            true
        }
        Err((distance_km, reason)) => {
            survey.excluded.push(Excluded { location, distance_km, reason });
            false
        }
    }
}

/// Weighs the locations that fill the order alone, lowest bound first, until the
/// next bound is above the best weighed rank: no location left can beat it. Returns
/// the distance of the best, or `None` if none of them can take the order.
#[allow(clippy::too_many_arguments)]
fn weigh_fillers(
    (table, catalog, order, destination, goal, target_ms): (
        &RoutingTable,
        &Catalog,
        &Order<'_>,
        &UnitVector,
        Goal,
        u64,
    ),
    fillers: &mut [Filler],
    survey: &mut Survey,
    scratch: &Scratch,
    width: usize,
) -> Option<f64> {
    let mut best: Option<((u64, u64), f64)> = None;
    loop {
        let next = fillers
            .iter_mut()
            .filter(|filler| !filler.weighed)
            .min_by(|a, b| a.bound.cmp(&b.bound).then(a.distance_km.total_cmp(&b.distance_km)));
        let Some(filler) = next else { break };
        if let Some((score, distance_km)) = best
            && (filler.bound > score || (filler.bound == score && filler.distance_km > distance_km))
        {
            break;
        }
        filler.weighed = true;
        let avail = &scratch.avail[filler.row * width..(filler.row + 1) * width];
        if weigh(table, catalog, order, destination, goal, target_ms, filler.location, avail, survey) {
            let candidate = survey.candidates.last().expect("just weighed");
            let rank = (candidate.score, candidate.distance_km);
            if best.is_none_or(|(score, distance_km)| rank.0 < score || (rank.0 == score && rank.1 <= distance_km)) {
                best = Some(rank);
            }
        }
    }
    best.map(|(_, distance_km)| distance_km)
}

fn late_days(promise_ms: u64, target_ms: u64) -> u64 {
    promise_ms.saturating_sub(target_ms).div_ceil(DAY_MS)
}

fn score_cents(cost_cents: u64, promise_ms: u64, target_ms: u64) -> u64 {
    cost_cents + LATE_DAY_COST_CENTS * late_days(promise_ms, target_ms)
}

/// Returns a candidate's rank for a goal, lower first.
fn score(goal: Goal, cost_cents: u64, promise_ms: u64, target_ms: u64) -> (u64, u64) {
    match goal {
        Goal::Cheapest => (score_cents(cost_cents, promise_ms, target_ms), 0),
        Goal::Fastest => (promise_ms, cost_cents),
        Goal::Nearest => (0, 0),
    }
}

fn compare_single(table: &RoutingTable, a: &Candidate, b: &Candidate) -> CmpOrdering {
    a.score.cmp(&b.score).then_with(|| tie_break(table, a.distance_km, a.location, b.distance_km, b.location))
}

fn tie_break(table: &RoutingTable, a_km: f64, a: u32, b_km: f64, b: u32) -> CmpOrdering {
    a_km.total_cmp(&b_km).then_with(|| code(table, a).cmp(code(table, b)))
}

fn code(table: &RoutingTable, location: u32) -> &str {
    table.locations[location as usize].as_ref().map_or("", |route| route.code.as_str())
}

/// Units of the still-needed SKUs a candidate covers.
fn coverage(candidate: &Candidate, need: &[u64]) -> u64 {
    candidate.avail.iter().zip(need).map(|(&avail, &need)| u64::from(avail).min(need)).sum()
}

/// Picks up to `max_shipments` locations when none fills the order alone: greedily by
/// coverage (ties in `ranked` order), then, when two shipments fill the order, the
/// best pair among the candidates that cover the most.
fn choose_split(
    survey: &Survey,
    ranked: &[usize],
    need: &[u64],
    max_shipments: usize,
    goal: Goal,
    target_ms: u64,
) -> SmallVec<[usize; 4]> {
    let candidates = &survey.candidates;
    let mut chosen: SmallVec<[usize; 4]> = SmallVec::new();
    let mut left: SmallVec<[u64; 8]> = SmallVec::from_slice(need);
    while chosen.len() < max_shipments && left.iter().any(|&units| units > 0) {
        let mut best: Option<(usize, u64)> = None;
        for &index in ranked {
            if chosen.contains(&index) {
                continue;
            }
            let covered = coverage(&candidates[index], &left);
            if covered > best.map_or(0, |(_, covered)| covered) {
                best = Some((index, covered));
            }
        }
        let Some((index, _)) = best else { break };
        for (left, &avail) in left.iter_mut().zip(&candidates[index].avail) {
            *left -= (*left).min(u64::from(avail));
        }
        chosen.push(index);
    }

    let filled = left.iter().all(|&units| units == 0);
    if chosen.len() == 2 && filled {
        let mut top: Vec<usize> = ranked.to_vec();
        top.sort_by_key(|&index| std::cmp::Reverse(coverage(&candidates[index], need)));
        top.truncate(PAIR_SEARCH_CANDIDATES);
        let pair_key = |a: usize, b: usize| {
            let (a, b) = (&candidates[a], &candidates[b]);
            let promise_ms = a.promise_ms.max(b.promise_ms);
            let cost = a.cost_cents + b.cost_cents;
            let primary = match goal {
                Goal::Fastest => (promise_ms, cost),
                _ => (score_cents(cost, promise_ms, target_ms), 0),
            };
            (primary, a.distance_km + b.distance_km)
        };
        let mut best = (chosen[0], chosen[1]);
        let mut best_key = pair_key(best.0, best.1);
        for (position, &a) in top.iter().enumerate() {
            for &b in &top[position + 1..] {
                let fills = candidates[a]
                    .avail
                    .iter()
                    .zip(&candidates[b].avail)
                    .zip(need)
                    .all(|((&x, &y), &need)| u64::from(x) + u64::from(y) >= need);
                if !fills {
                    continue;
                }
                let key = pair_key(a, b);
                let better = key.0 < best_key.0 || (key.0 == best_key.0 && key.1.total_cmp(&best_key.1).is_lt());
                if better {
                    best = (a, b);
                    best_key = key;
                }
            }
        }
        chosen = SmallVec::from_slice(&[best.0, best.1]);
        let rank = |index: usize| ranked.iter().position(|&ranked| ranked == index);
        chosen.sort_by_key(|&index| rank(index));
    }
    chosen
}

/// Turns the chosen candidates into shipments, unfilled lines and explanations.
#[allow(clippy::too_many_arguments)]
fn assemble(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    destination: ResolvedDestination,
    survey: &Survey,
    chosen: &[usize],
    need: &[u64],
    goal: Goal,
) -> PlanDraft {
    let candidates = &survey.candidates;

    // Units of each SKU each chosen location gives, earlier shipments first.
    let mut give: SmallVec<[SmallVec<[u64; 8]>; 4]> = SmallVec::new();
    let mut left: SmallVec<[u64; 8]> = SmallVec::from_slice(need);
    for &index in chosen {
        let units: SmallVec<[u64; 8]> = left
            .iter_mut()
            .zip(&candidates[index].avail)
            .map(|(left, &avail)| {
                let units = (*left).min(u64::from(avail));
                *left -= units;
                units
            })
            .collect();
        give.push(units);
    }
    // A line of an unknown SKU is never filled.
    let filled_known = |survey: &Survey| survey.line_sku.iter().all(Option::is_some);

    // Hand each line its units from the shipments in order.
    let mut shipments: Vec<Shipment> = Vec::new();
    let mut drafts: SmallVec<[PlannedShipment; 2]> = SmallVec::new();
    let mut line_left: SmallVec<[u32; 8]> = order.lines.iter().map(|&(_, quantity)| quantity).collect();
    {
        for (shipment_index, &index) in chosen.iter().enumerate() {
            let candidate = &candidates[index];
            let route = table.locations[candidate.location as usize].as_ref().expect("candidate is known");
            let mut lines = Vec::new();
            let mut draft_lines = SmallVec::new();
            for (line, (&(sku, _), slot)) in order.lines.iter().zip(&survey.line_sku).enumerate() {
                let (Some(sku), Some(slot)) = (sku, *slot) else { continue };
                let units = (line_left[line] as u64).min(give[shipment_index][slot]) as u32;
                if units == 0 {
                    continue;
                }
                line_left[line] -= units;
                give[shipment_index][slot] -= u64::from(units);
                lines.push(ShipmentLine {
                    line: line as u32,
                    sku: String::new(),
                    quantity: units,
                    reservation_line: None,
                });
                draft_lines.push((line as u32, sku, NO_POSITION, units));
            }
            drafts.push(PlannedShipment {
                location: candidate.location,
                backorder: false,
                capacity_day: local_day(route, order.now_ms),
                lines: draft_lines,
            });
            shipments.push(Shipment {
                location: route.code.clone(),
                method: candidate.method,
                lines,
                distance_km: candidate.distance_km,
                cost_cents: candidate.cost_cents,
                promise_ms: candidate.promise_ms,
                backorder: false,
            });
        }
    }

    // Units still without a location may go against inbound supply.
    let regular_shipments = shipments.len();
    if order.allow_backorder && goal != Goal::Nearest && line_left.iter().any(|&units| units > 0) {
        let max_shipments = order.max_shipments as usize;
        let point = UnitVector::from_degrees(destination.lat, destination.lon);
        let (lines, shipments, drafts) = (&mut line_left, &mut shipments, &mut drafts);
        add_backorders(table, catalog, order, &point, survey, lines, shipments, drafts, max_shipments);
    }
    let filled = line_left.iter().all(|&units| units == 0) && filled_known(survey);

    // Lines with units left over, and why.
    let enough_somewhere = |slot: usize| survey.total_avail[slot] >= survey.skus[slot].1;
    let unfilled: Vec<UnfilledLine> = order
        .lines
        .iter()
        .enumerate()
        .filter(|&(line, _)| line_left[line] > 0)
        .map(|(line, &(_, quantity))| {
            let reason = match survey.line_sku[line] {
                None => UnfilledReason::UnknownSku,
                Some(_) if goal == Goal::Nearest => UnfilledReason::PickupStoreCannotFill,
                Some(slot) if enough_somewhere(slot) => UnfilledReason::ShipmentLimit,
                Some(_) => UnfilledReason::InsufficientAtp,
            };
            UnfilledLine {
                line: line as u32,
                sku: String::new(),
                requested: quantity,
                unfilled: line_left[line],
                reason,
            }
        })
        .collect();

    // A rejected order reserves nothing, so only its unfilled lines remain.
    if !filled && !order.allow_partial {
        shipments.clear();
        drafts.clear();
    }

    let explanations = order
        .lines
        .iter()
        .enumerate()
        .map(|(line, _)| explain(table, survey, chosen, &shipments, regular_shipments, line, goal))
        .collect();
    let cost_cents = shipments.iter().map(|shipment| shipment.cost_cents).sum();
    PlanDraft { plan: Plan { destination, shipments, unfilled, explanations, cost_cents }, shipments: drafts }
}

/// Backorders the units still without a location: per SKU, at the eligible location
/// whose free inbound supply covers them and that promises soonest (then costs least,
/// then is nearest). Backorders at one location form one shipment, promised once the
/// supply that covers them has arrived and is handled and shipped. Stops at the
/// order's shipment limit.
#[allow(clippy::too_many_arguments)]
fn add_backorders(
    table: &RoutingTable,
    catalog: &Catalog,
    order: &Order<'_>,
    point: &UnitVector,
    survey: &Survey,
    line_left: &mut SmallVec<[u32; 8]>,
    shipments: &mut Vec<Shipment>,
    drafts: &mut SmallVec<[PlannedShipment; 2]>,
    max_shipments: usize,
) {
    for (slot, &(sku, _)) in survey.skus.iter().enumerate() {
        let short: u64 = line_left
            .iter()
            .zip(&survey.line_sku)
            .filter(|&(_, line_slot)| *line_slot == Some(slot))
            .map(|(&units, _)| u64::from(units))
            .sum();
        if short == 0 {
            continue;
        }

        // The best location with enough free inbound supply: (promise, cost, distance).
        let mut best: Option<(u64, u64, f64, u32, u32, Method)> = None;
        catalog.for_each_position(sku, |twin, position| {
            let twin_location = position.location();
            if twin_location & crate::supply::INBOUND_LOCATION_BIT == 0 {
                return;
            }
            let location = twin_location & !crate::supply::INBOUND_LOCATION_BIT;
            let Some(Some(route)) = table.locations.get(location as usize) else { return };
            let free = position.read().atp(true).max(0) as u64;
            if free < short {
                return;
            }
            let Ok(terms) = evaluate(table, catalog, order, point, location) else { return };
            let Some(arrival_ms) = (order.inbound_ready)(twin, short) else { return };
            let start_ms = arrival_ms.max(order.now_ms);
            let (ready_ms, _) = ready_ms(route, terms.method, start_ms);
            let promise_ms = match terms.method {
                Method::Ship | Method::DropShip => ready_ms + transit_days(route, terms.distance_km) * DAY_MS,
                _ => ready_ms,
            };
            let key = (promise_ms, terms.cost_cents, terms.distance_km, location, twin, terms.method);
            let better = best.is_none_or(|best| {
                (key.0, key.1)
                    .cmp(&(best.0, best.1))
                    .then_with(|| tie_break(table, key.2, key.3, best.2, best.3))
                    .is_lt()
            });
            if better {
                best = Some(key);
            }
        });
        let Some((promise_ms, cost_cents, distance_km, location, _, method)) = best else { continue };

        // Join a backorder shipment at the same location, or start one.
        let existing = drafts.iter().position(|draft| draft.backorder && draft.location == location);
        let index = match existing {
            Some(index) => index,
            None if shipments.len() < max_shipments => {
                let route = table.locations[location as usize].as_ref().expect("evaluated location");
                drafts.push(PlannedShipment {
                    location,
                    backorder: true,
                    capacity_day: local_day(route, order.now_ms),
                    lines: SmallVec::new(),
                });
                shipments.push(Shipment {
                    location: route.code.clone(),
                    method,
                    lines: Vec::new(),
                    distance_km,
                    cost_cents,
                    promise_ms,
                    backorder: true,
                });
                shipments.len() - 1
            }
            None => continue,
        };
        shipments[index].promise_ms = shipments[index].promise_ms.max(promise_ms);
        for (line, line_slot) in survey.line_sku.iter().enumerate() {
            if *line_slot != Some(slot) || line_left[line] == 0 {
                continue;
            }
            let units = line_left[line];
            line_left[line] = 0;
            shipments[index].lines.push(ShipmentLine {
                line: line as u32,
                sku: String::new(),
                quantity: units,
                reservation_line: None,
            });
            drafts[index].lines.push((line as u32, sku, NO_POSITION, units));
        }
    }
}

/// Says why a line's first location won, and why the nearest location that was
/// nearer lost.
fn explain(
    table: &RoutingTable,
    survey: &Survey,
    chosen: &[usize],
    shipments: &[Shipment],
    regular_shipments: usize,
    line: usize,
    goal: Goal,
) -> String {
    let Some(slot) = survey.line_sku[line] else {
        return "unknown SKU".to_owned();
    };
    let Some(shipment_index) = shipments
        .iter()
        .position(|shipment| shipment.lines.iter().any(|shipment_line| shipment_line.line as usize == line))
    else {
        return "no eligible location can fill it".to_owned();
    };
    if shipment_index >= regular_shipments {
        let shipment = &shipments[shipment_index];
        return format!(
            "{}: backordered against inbound supply, {:.1} km; no eligible location has it in stock",
            shipment.location, shipment.distance_km
        );
    }
    let winner = &survey.candidates[chosen[shipment_index]];
    let nearest_stocked = survey.nearest_stocked_km[slot] >= winner.distance_km;
    let why = match (chosen.len(), goal) {
        (_, Goal::Nearest) => "nearest store that fills the order",
        (1, _) if nearest_stocked => "nearest with stock that fills the order",
        (1, Goal::Cheapest) => "cheapest that fills the order",
        (1, Goal::Fastest) => "soonest that fills the order",
        _ => "split: no single location fills the order",
    };
    let mut text = String::with_capacity(96);
    let _ = write!(
        text,
        "{}: {why}, {} available, {:.1} km",
        code(table, winner.location),
        winner.avail[slot],
        winner.distance_km
    );

    // The nearest location nearer than the winner (ties to the lower code), and why
    // it lost.
    let nearest_candidate = survey
        .candidates
        .iter()
        .filter(|candidate| {
            candidate.distance_km < winner.distance_km
                && !chosen.iter().any(|&index| survey.candidates[index].location == candidate.location)
        })
        .min_by(|a, b| tie_break(table, a.distance_km, a.location, b.distance_km, b.location));
    let excluded = survey
        .excluded
        .iter()
        .map(|excluded| (excluded.location, excluded.distance_km, excluded.reason.describe()))
        .chain(survey.empty.iter().map(|&(location, distance_km)| (location, distance_km, "has none available")));
    let nearest_excluded = excluded
        .filter(|&(_, distance_km, _)| distance_km < winner.distance_km)
        .min_by(|a, b| tie_break(table, a.1, a.0, b.1, b.0));
    match (nearest_candidate, nearest_excluded) {
        (_, Some((location, distance_km, reason)))
            if nearest_candidate.is_none_or(|candidate| {
                tie_break(table, distance_km, location, candidate.distance_km, candidate.location).is_lt()
            }) =>
        {
            let _ = write!(text, "; {} nearer but {reason}", code(table, location));
        }
        (Some(candidate), _) => {
            let _ = write!(text, "; {} nearer but ", code(table, candidate.location));
            let fills_alone =
                candidate.avail.iter().zip(&survey.skus).all(|(&avail, &(_, need))| u64::from(avail) >= need);
            let _ = match candidate.avail[slot] {
                0 => write!(text, "has none available"),
                units if u64::from(units) < survey.skus[slot].1 => write!(text, "has {units} available"),
                _ if !fills_alone => write!(text, "cannot fill the whole order"),
                _ if goal == Goal::Fastest => write!(text, "arrives later"),
                _ => write!(text, "costs more"),
            };
        }
        _ => {}
    }
    text
}
