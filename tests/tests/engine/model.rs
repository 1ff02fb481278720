//! A sequential reference model of the engine, written from the documented semantics
//! rather than from the engine's code: plain maps of positions and reservations that
//! one request at a time changes.
//!
//! Time: `now_ms` is the engine's high-water mark. The driver calls
//! [`Model::advance_to`] with a request's effective time before it requests the
//! model's reply, and `advance_to` releases every hold whose deadline has passed. The
//! model therefore never counts an expired hold, which is what reads and reserves see
//! before any sweep.
//!
//! Where the semantics leave an order open (which of two errors a request reports),
//! the model takes the order of the request's fields: bad input first, then the id's
//! history (idempotency), then the state the request needs.

use std::collections::{HashMap, HashSet};

use promesa_engine::error::{AvailabilityError, CodeError, LoadError, ReservationError, ReserveError, StockError};
use promesa_engine::limits::{LINE_QUANTITY_MAX, POSITION_UNITS_MAX, TTL_MS_MAX, TTL_MS_MIN};
use promesa_engine::{
    AdjustRequest, ConfirmRequest, DEFAULT_CHANNEL, ExtendRequest, FulfilRequest, LineOutcome, LineStatus, LineView,
    LoadSummary, OperationOutcome, Policy, PositionAvailability, PositionRow, ReleaseFrom, ReleaseRequest,
    ReservationState, ReservationView, ReserveLine, ReserveOutcome, ReserveRequest, StockChange, Units,
};

/// A position key: (SKU code, location code).
type PositionKey = (String, String);

/// Counters of one position. `reserved` never includes units of an expired hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ModelPosition {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
}

impl ModelPosition {
    /// ATP = on hand − reserved − allocated − safety stock, without the last term for
    /// a channel that may sell safety stock.
    fn atp(&self, may_sell_safety_stock: bool) -> i64 {
        let free = self.on_hand as i64 - self.reserved as i64 - self.allocated as i64;
        if may_sell_safety_stock { free } else { free - self.safety_stock as i64 }
    }

    fn in_shortage(&self) -> bool {
        self.reserved + self.allocated > self.on_hand
    }

    fn availability(&self, may_sell_safety_stock: bool) -> PositionAvailability {
        PositionAvailability {
            on_hand: self.on_hand as u32,
            reserved: self.reserved as u32,
            allocated: self.allocated as u32,
            safety_stock: self.safety_stock as u32,
            atp: self.atp(may_sell_safety_stock),
            in_shortage: self.in_shortage(),
        }
    }
}

/// One line of a stored reservation. held + allocated + fulfilled + released is the
/// quantity held at reserve time.
#[derive(Clone, Debug)]
struct ModelLine {
    sku: String,
    location: String,
    status: LineStatus,
    requested: u32,
    held: u32,
    allocated: u32,
    fulfilled: u32,
    released: u32,
}

impl ModelLine {
    fn key(&self) -> PositionKey {
        (self.sku.clone(), self.location.clone())
    }
}

/// The content of a confirm, release, fulfil or extend, which decides whether a
/// repeated operation id is a retry or a reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OperationContent {
    Confirm(Units),
    Release(Units, ReleaseFrom),
    Fulfil(Units),
    Extend(u64),
}

/// When a reservation closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// Closed by a request at this time.
    At(u64),
    /// Closed by the expiry of its last held units. The engine may notice the expiry
    /// at any time from the first mark at or after the deadline (`earliest_ms`) on.
    ByExpiry { earliest_ms: u64 },
}

#[derive(Clone, Debug)]
struct ModelReservation {
    /// The reserve request with its channel spelled out, to compare with retries.
    request: ReserveRequest,
    first_outcome: ReserveOutcome,
    created_ms: u64,
    deadline_ms: u64,
    ended: Option<Ended>,
    /// Whether held units ever expired.
    hold_expired: bool,
    lines: Vec<ModelLine>,
    /// First outcome of each successful operation, by operation id.
    operations: HashMap<String, (OperationContent, OperationOutcome)>,
}

impl ModelReservation {
    fn held(&self) -> u64 {
        self.lines.iter().map(|line| u64::from(line.held)).sum()
    }

    fn allocated(&self) -> u64 {
        self.lines.iter().map(|line| u64::from(line.allocated)).sum()
    }

    /// Returns the state as `ReservationState` documents it. A reservation that closes
    /// with nothing fulfilled after its hold expired is `Expired`, even if a release
    /// took its allocated units last.
    fn state(&self) -> ReservationState {
        if self.held() > 0 {
            ReservationState::Held
        } else if self.allocated() > 0 {
            ReservationState::Confirmed
        } else if self.lines.iter().any(|line| line.fulfilled > 0) {
            ReservationState::Fulfilled
        } else if self.hold_expired {
            ReservationState::Expired
        } else {
            ReservationState::Released
        }
    }

    fn id(&self) -> String {
        self.request.reservation_id.clone()
    }
}

/// A hold the model released by expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelExpiry {
    pub deadline_ms: u64,
    /// Units released per line.
    pub released: Vec<u32>,
    /// The first mark at or after the deadline: the engine cannot expire the hold earlier.
    pub earliest_ms: u64,
}

/// The expected reply of `get`. When the reservation closed by expiry, `view.ended_ms`
/// is the earliest time the engine may report, and `ended_by_expiry` is true.
#[derive(Clone, Debug)]
pub struct ExpectedView {
    pub view: ReservationView,
    pub ended_by_expiry: bool,
}

/// One location of an expected SKU availability: code, active, counters.
pub type ExpectedLocation = (String, bool, PositionAvailability);

/// An expected SKU availability: total ATP and the locations.
pub type ExpectedSku = (i64, Vec<ExpectedLocation>);

/// The reference model.
#[derive(Clone, Debug)]
pub struct Model {
    /// The time high-water mark.
    pub now_ms: u64,
    /// Location code → active.
    locations: HashMap<String, bool>,
    /// Channel code → may sell safety stock.
    channels: HashMap<String, bool>,
    positions: HashMap<PositionKey, ModelPosition>,
    reservations: HashMap<String, ModelReservation>,
    /// First outcome of each successful adjustment, by operation id.
    adjustments: HashMap<String, (AdjustRequest, StockChange)>,
    /// Every hold released by expiry, by reservation id.
    pub expiries: HashMap<String, ModelExpiry>,
}

impl Model {
    /// Creates a model with the channel `default`, which may not sell safety stock.
    pub fn new(now_ms: u64) -> Self {
        Model {
            now_ms,
            locations: HashMap::new(),
            channels: HashMap::from([(DEFAULT_CHANNEL.to_owned(), false)]),
            positions: HashMap::new(),
            reservations: HashMap::new(),
            adjustments: HashMap::new(),
            expiries: HashMap::new(),
        }
    }

    pub fn upsert_location(&mut self, code: &str, active: bool) {
        self.locations.insert(code.to_owned(), active);
    }

    pub fn upsert_channel(&mut self, code: &str, may_sell_safety_stock: bool) {
        self.channels.insert(code.to_owned(), may_sell_safety_stock);
    }

    /// Returns whether the SKU is known, which it is once it has a position somewhere.
    fn sku_known(&self, sku: &str) -> bool {
        self.positions.keys().any(|(position_sku, _)| position_sku == sku)
    }

    /// Raises the mark to `now_ms` and releases every hold whose deadline is at or
    /// before it.
    pub fn advance_to(&mut self, now_ms: u64) {
        assert!(now_ms >= self.now_ms, "model time went back from {} to {now_ms}", self.now_ms);
        self.now_ms = now_ms;
        let Model { reservations, positions, expiries, .. } = self;
        for reservation in reservations.values_mut() {
            if reservation.held() == 0 || reservation.deadline_ms > now_ms {
                continue;
            }
            let mut released = Vec::with_capacity(reservation.lines.len());
            for line in &mut reservation.lines {
                released.push(line.held);
                if line.held > 0 {
                    positions.get_mut(&line.key()).expect("a line with held units has a position").reserved -=
                        u64::from(line.held);
                    line.released += line.held;
                    line.held = 0;
                }
            }
            reservation.hold_expired = true;
            if reservation.allocated() == 0 {
                reservation.ended = Some(Ended::ByExpiry { earliest_ms: now_ms });
            }
            let expiry = ModelExpiry { deadline_ms: reservation.deadline_ms, released, earliest_ms: now_ms };
            let previous = expiries.insert(reservation.id(), expiry);
            assert!(previous.is_none(), "model expired reservation {} twice", reservation.id());
        }
    }

    // Stock.

    pub fn set_on_hand(&mut self, sku: &str, location: &str, on_hand: u64) -> Result<StockChange, StockError> {
        self.check_location(location)?;
        if on_hand > u64::from(POSITION_UNITS_MAX) {
            return Err(above_limit("on_hand", on_hand, sku, location));
        }
        let position = self.position_mut(sku, location);
        let previous = position.on_hand;
        position.on_hand = on_hand;
        Ok(StockChange {
            previous: previous as u32,
            on_hand: on_hand as u32,
            delta: on_hand as i64 - previous as i64,
            in_shortage: position.in_shortage(),
            replayed: false,
        })
    }

    pub fn adjust_on_hand(&mut self, request: &AdjustRequest) -> Result<StockChange, StockError> {
        if request.op_id.is_empty() {
            return Err(StockError::Code(CodeError::Empty { field: "op_id", len_max: 128 }));
        }
        if request.delta == 0 {
            return Err(StockError::ZeroDelta { sku: request.sku.clone(), location: request.location.clone() });
        }
        if let Some((first_request, first)) = self.adjustments.get(&request.op_id) {
            if first_request != request {
                return Err(StockError::OperationIdReused { op_id: request.op_id.clone() });
            }
            return Ok(StockChange { replayed: true, ..*first });
        }

        self.check_location(&request.location)?;
        let key = (request.sku.clone(), request.location.clone());
        let previous = match self.positions.get(&key) {
            Some(position) => position.on_hand,
            // A receipt may create the position, but a removal needs one that exists.
            None if request.delta > 0 => 0,
            None => {
                return Err(StockError::UnknownPosition {
                    sku: request.sku.clone(),
                    location: request.location.clone(),
                });
            }
        };
        let result = previous as i64 + request.delta;
        if result < 0 {
            return Err(StockError::BelowZero {
                sku: request.sku.clone(),
                location: request.location.clone(),
                delta: request.delta,
                result,
            });
        }
        if result > i64::from(POSITION_UNITS_MAX) {
            return Err(above_limit("on_hand", result as u64, &request.sku, &request.location));
        }

        let position = self.position_mut(&request.sku, &request.location);
        position.on_hand = result as u64;
        let change = StockChange {
            previous: previous as u32,
            on_hand: result as u32,
            delta: request.delta,
            in_shortage: position.in_shortage(),
            replayed: false,
        };
        self.adjustments.insert(request.op_id.clone(), (request.clone(), change));
        Ok(change)
    }

    pub fn set_safety_stock(&mut self, sku: &str, location: &str, units: u64) -> Result<StockChange, StockError> {
        self.check_location(location)?;
        if units > u64::from(POSITION_UNITS_MAX) {
            return Err(above_limit("safety_stock", units, sku, location));
        }
        let position = self.position_mut(sku, location);
        position.safety_stock = units;
        // A stock change reports on hand, which safety stock leaves as it is.
        Ok(StockChange {
            previous: position.on_hand as u32,
            on_hand: position.on_hand as u32,
            delta: 0,
            in_shortage: position.in_shortage(),
            replayed: false,
        })
    }

    /// Sets on hand, and safety stock where a row gives it, of every row in order. If
    /// any row is invalid it sets nothing and reports every invalid row with its first
    /// error.
    pub fn load_positions(&mut self, rows: &[PositionRow]) -> Result<LoadSummary, LoadError> {
        let mut invalid = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if let Err(error) = self.validate_row(row) {
                invalid.push((index, error));
            }
        }
        if !invalid.is_empty() {
            return Err(LoadError::InvalidRows { rows: invalid });
        }

        let mut created = HashSet::new();
        let mut touched = HashSet::new();
        for row in rows {
            let key = (row.sku.clone(), row.location.clone());
            if !self.positions.contains_key(&key) {
                created.insert(key.clone());
            }
            let position = self.position_mut(&row.sku, &row.location);
            position.on_hand = row.on_hand;
            if let Some(safety_stock) = row.safety_stock {
                position.safety_stock = safety_stock;
            }
            touched.insert(key);
        }
        let positions_in_shortage = touched.iter().filter(|key| self.positions[*key].in_shortage()).count();
        Ok(LoadSummary { rows: rows.len(), positions_created: created.len(), positions_in_shortage })
    }

    fn validate_row(&self, row: &PositionRow) -> Result<(), StockError> {
        self.check_location(&row.location)?;
        if row.on_hand > u64::from(POSITION_UNITS_MAX) {
            return Err(above_limit("on_hand", row.on_hand, &row.sku, &row.location));
        }
        if let Some(safety_stock) = row.safety_stock
            && safety_stock > u64::from(POSITION_UNITS_MAX)
        {
            return Err(above_limit("safety_stock", safety_stock, &row.sku, &row.location));
        }
        Ok(())
    }

    fn check_location(&self, location: &str) -> Result<(), StockError> {
        if self.locations.contains_key(location) {
            Ok(())
        } else {
            Err(StockError::UnknownLocation { code: location.to_owned() })
        }
    }

    fn position_mut(&mut self, sku: &str, location: &str) -> &mut ModelPosition {
        self.positions.entry((sku.to_owned(), location.to_owned())).or_default()
    }

    // Availability.

    pub fn availability(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
    ) -> Result<PositionAvailability, AvailabilityError> {
        let may_sell_safety_stock = self.channel_for_read(channel)?;
        if !self.sku_known(sku) {
            return Err(AvailabilityError::UnknownSku { code: sku.to_owned() });
        }
        if !self.locations.contains_key(location) {
            return Err(AvailabilityError::UnknownLocation { code: location.to_owned() });
        }
        // A known SKU and location without a position read as zeros.
        let position = self.positions.get(&(sku.to_owned(), location.to_owned())).copied().unwrap_or_default();
        Ok(position.availability(may_sell_safety_stock))
    }

    /// Returns the expected total ATP and per-location counters of a SKU. With `filter`
    /// `None` the locations are every location with a position, sorted by code. With a
    /// filter they are the filter's, in its order. The channel and the filter are checked
    /// before the SKU, because a batch read shares them between its SKUs.
    pub fn sku_availability(
        &self,
        sku: &str,
        filter: Option<&[&str]>,
        channel: Option<&str>,
    ) -> Result<ExpectedSku, AvailabilityError> {
        let may_sell_safety_stock = self.channel_for_read(channel)?;
        if let Some(codes) = filter
            && let Some(unknown) = codes.iter().find(|code| !self.locations.contains_key(**code))
        {
            return Err(AvailabilityError::UnknownLocation { code: (*unknown).to_owned() });
        }
        if !self.sku_known(sku) {
            return Err(AvailabilityError::UnknownSku { code: sku.to_owned() });
        }
        let codes: Vec<String> = match filter {
            Some(codes) => codes.iter().map(|code| (*code).to_owned()).collect(),
            None => {
                let mut codes: Vec<String> =
                    self.positions.keys().filter(|(key_sku, _)| key_sku == sku).map(|(_, code)| code.clone()).collect();
                codes.sort();
                codes
            }
        };
        let mut total_atp = 0;
        let mut locations = Vec::with_capacity(codes.len());
        for code in codes {
            let active = self.locations[&code];
            let position = self.positions.get(&(sku.to_owned(), code.clone())).copied().unwrap_or_default();
            let availability = position.availability(may_sell_safety_stock);
            // Only active locations promise, and a location in shortage does not lower
            // the others.
            if active {
                total_atp += availability.atp.max(0);
            }
            locations.push((code, active, availability));
        }
        Ok((total_atp, locations))
    }

    /// Returns the expected replies of a batch read: one per SKU, after the channel and
    /// the filter that the SKUs share are checked.
    pub fn availability_batch(
        &self,
        skus: &[&str],
        filter: Option<&[&str]>,
        channel: Option<&str>,
    ) -> Result<Vec<Result<ExpectedSku, AvailabilityError>>, AvailabilityError> {
        self.channel_for_read(channel)?;
        if let Some(codes) = filter
            && let Some(unknown) = codes.iter().find(|code| !self.locations.contains_key(**code))
        {
            return Err(AvailabilityError::UnknownLocation { code: (*unknown).to_owned() });
        }
        Ok(skus.iter().map(|sku| self.sku_availability(sku, filter, channel)).collect())
    }

    fn channel_for_read(&self, channel: Option<&str>) -> Result<bool, AvailabilityError> {
        let code = channel.unwrap_or(DEFAULT_CHANNEL);
        self.channels.get(code).copied().ok_or_else(|| AvailabilityError::UnknownChannel { code: code.to_owned() })
    }

    // Reserve.

    pub fn reserve(&mut self, request: &ReserveRequest) -> Result<ReserveOutcome, ReserveError> {
        let may_sell_safety_stock = self.validate_reserve(request)?;
        let mut normalized = request.clone();
        normalized.channel = Some(request.channel.clone().unwrap_or_else(|| DEFAULT_CHANNEL.to_owned()));
        if let Some(existing) = self.reservations.get(&request.reservation_id) {
            if existing.request != normalized {
                return Err(ReserveError::IdReusedWithDifferentContent { id: request.reservation_id.clone() });
            }
            return Ok(ReserveOutcome { replayed: true, ..existing.first_outcome.clone() });
        }

        let deadline_ms = self.now_ms + request.ttl_ms;
        let blocks: Vec<Result<PositionKey, LineStatus>> =
            request.lines.iter().map(|line| self.line_position(line)).collect();
        let lines = match request.policy {
            Policy::AllOrNothing => self.plan_all_or_nothing(request, &blocks, may_sell_safety_stock),
            Policy::Partial => self.plan_partial(request, &blocks, may_sell_safety_stock),
            Policy::Backorder => unreachable!("the model has no inbound supply"),
        };
        let outcome = ReserveOutcome { replayed: false, deadline_ms, lines: lines.iter().copied().collect() };
        // A reserve that holds nothing leaves no record, so a retry is judged afresh.
        if !outcome.held_any() {
            return Ok(outcome);
        }

        let mut model_lines = Vec::with_capacity(lines.len());
        for (line, result) in request.lines.iter().zip(&lines) {
            if result.held > 0 {
                self.position_mut(&line.sku, &line.location).reserved += u64::from(result.held);
            }
            model_lines.push(ModelLine {
                sku: line.sku.clone(),
                location: line.location.clone(),
                status: result.status,
                requested: result.requested,
                held: result.held,
                allocated: 0,
                fulfilled: 0,
                released: 0,
            });
        }
        let reservation = ModelReservation {
            request: normalized,
            first_outcome: outcome.clone(),
            created_ms: self.now_ms,
            deadline_ms,
            ended: None,
            hold_expired: false,
            lines: model_lines,
            operations: HashMap::new(),
        };
        self.reservations.insert(request.reservation_id.clone(), reservation);
        Ok(outcome)
    }

    /// Checks the request's fields and returns whether its channel may sell safety stock.
    fn validate_reserve(&self, request: &ReserveRequest) -> Result<bool, ReserveError> {
        if request.reservation_id.is_empty() {
            return Err(ReserveError::ReservationId(CodeError::Empty { field: "reservation_id", len_max: 128 }));
        }
        if request.lines.is_empty() {
            return Err(ReserveError::NoLines { id: request.reservation_id.clone() });
        }
        if !(TTL_MS_MIN..=TTL_MS_MAX).contains(&request.ttl_ms) {
            return Err(ReserveError::TtlOutOfRange { ttl_ms: request.ttl_ms });
        }
        for (index, line) in request.lines.iter().enumerate() {
            if line.sku.is_empty() {
                return Err(ReserveError::LineCode {
                    line: index,
                    error: CodeError::Empty { field: "sku", len_max: 64 },
                });
            }
            if line.location.is_empty() {
                return Err(ReserveError::LineCode {
                    line: index,
                    error: CodeError::Empty { field: "location", len_max: 64 },
                });
            }
            if !(1..=u64::from(LINE_QUANTITY_MAX)).contains(&line.quantity) {
                return Err(ReserveError::QuantityOutOfRange { line: index, quantity: line.quantity });
            }
        }
        let code = request.channel.as_deref().unwrap_or(DEFAULT_CHANNEL);
        self.channels.get(code).copied().ok_or_else(|| ReserveError::UnknownChannel { code: code.to_owned() })
    }

    /// Returns the position a line draws on, or the status of a line that cannot be
    /// held at all, checked in the precedence order `LineStatus` documents.
    fn line_position(&self, line: &ReserveLine) -> Result<PositionKey, LineStatus> {
        if !self.sku_known(&line.sku) {
            return Err(LineStatus::UnknownSku);
        }
        match self.locations.get(&line.location) {
            None => return Err(LineStatus::UnknownLocation),
            Some(false) => return Err(LineStatus::InactiveLocation),
            Some(true) => {}
        }
        let key = (line.sku.clone(), line.location.clone());
        // A known SKU without a position at this location has no ATP there.
        if self.positions.contains_key(&key) { Ok(key) } else { Err(LineStatus::InsufficientAtp) }
    }

    fn atp_of(&self, key: &PositionKey, may_sell_safety_stock: bool) -> i64 {
        self.positions[key].atp(may_sell_safety_stock)
    }

    /// Plans every line in full, or nothing. Lines on one position need the position's
    /// ATP for their sum. A line on an over-committed position is `InsufficientAtp`,
    /// and a line that could be held while others cannot is `NotAttempted`.
    fn plan_all_or_nothing(
        &self,
        request: &ReserveRequest,
        blocks: &[Result<PositionKey, LineStatus>],
        may_sell_safety_stock: bool,
    ) -> Vec<LineOutcome> {
        let mut demand: HashMap<&PositionKey, u64> = HashMap::new();
        for (line, block) in request.lines.iter().zip(blocks) {
            if let Ok(key) = block {
                *demand.entry(key).or_default() += line.quantity;
            }
        }
        let over = |key: &PositionKey| demand[key] as i64 > self.atp_of(key, may_sell_safety_stock);
        let fits = blocks.iter().all(|block| block.as_ref().is_ok_and(|key| !over(key)));

        request
            .lines
            .iter()
            .zip(blocks)
            .map(|(line, block)| {
                let requested = line.quantity as u32;
                if fits {
                    return LineOutcome { status: LineStatus::Held, requested, held: requested };
                }
                let status = match block {
                    Err(status) => *status,
                    Ok(key) if over(key) => LineStatus::InsufficientAtp,
                    Ok(_) => LineStatus::NotAttempted,
                };
                LineOutcome { status, requested, held: 0 }
            })
            .collect()
    }

    /// Plans what is available, earlier lines first.
    fn plan_partial(
        &self,
        request: &ReserveRequest,
        blocks: &[Result<PositionKey, LineStatus>],
        may_sell_safety_stock: bool,
    ) -> Vec<LineOutcome> {
        let mut remaining: HashMap<&PositionKey, u64> = HashMap::new();
        request
            .lines
            .iter()
            .zip(blocks)
            .map(|(line, block)| {
                let requested = line.quantity as u32;
                let key = match block {
                    Err(status) => return LineOutcome { status: *status, requested, held: 0 },
                    Ok(key) => key,
                };
                let free =
                    remaining.entry(key).or_insert_with(|| self.atp_of(key, may_sell_safety_stock).max(0) as u64);
                let held = line.quantity.min(*free);
                *free -= held;
                let status = if held == line.quantity {
                    LineStatus::Held
                } else if held > 0 {
                    LineStatus::PartiallyHeld
                } else {
                    LineStatus::InsufficientAtp
                };
                LineOutcome { status, requested, held: held as u32 }
            })
            .collect()
    }

    // Confirm, release, fulfil, extend.

    pub fn confirm(&mut self, request: &ConfirmRequest) -> Result<OperationOutcome, ReservationError> {
        let content = OperationContent::Confirm(request.units.clone());
        let now_ms = self.now_ms;
        self.operate(&request.reservation_id, &request.op_id, content, |reservation, positions| {
            // Expiry won the race, so the reply is `Expired` whatever units were named.
            if reservation.hold_expired {
                return Err(expired(reservation, now_ms));
            }
            let moved = units_to_move(reservation, &request.units, "held", true, now_ms, |line| line.held)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, "held", true, now_ms));
            }
            for (line, &units) in reservation.lines.iter_mut().zip(&moved) {
                if units > 0 {
                    let position = positions.get_mut(&line.key()).expect("held units have a position");
                    position.reserved -= u64::from(units);
                    position.allocated += u64::from(units);
                    line.held -= units;
                    line.allocated += units;
                }
            }
            Ok(moved)
        })
    }

    pub fn release(&mut self, request: &ReleaseRequest) -> Result<OperationOutcome, ReservationError> {
        let content = OperationContent::Release(request.units.clone(), request.from);
        let now_ms = self.now_ms;
        self.operate(&request.reservation_id, &request.op_id, content, |reservation, positions| {
            let (state, takes_held, available): (&'static str, bool, fn(&ModelLine) -> u32) = match request.from {
                ReleaseFrom::HeldFirst => ("held or allocated", true, |line| line.held + line.allocated),
                ReleaseFrom::Held => ("held", true, |line| line.held),
                ReleaseFrom::Allocated => ("allocated", false, |line| line.allocated),
            };
            let moved = units_to_move(reservation, &request.units, state, takes_held, now_ms, available)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, state, takes_held, now_ms));
            }
            for (line, &units) in reservation.lines.iter_mut().zip(&moved) {
                if units == 0 {
                    continue;
                }
                let from_held = if request.from == ReleaseFrom::Allocated { 0 } else { units.min(line.held) };
                let from_allocated = units - from_held;
                let position = positions.get_mut(&line.key()).expect("held or allocated units have a position");
                position.reserved -= u64::from(from_held);
                position.allocated -= u64::from(from_allocated);
                line.held -= from_held;
                line.allocated -= from_allocated;
                line.released += units;
            }
            Ok(moved)
        })
    }

    pub fn fulfil(&mut self, request: &FulfilRequest) -> Result<OperationOutcome, ReservationError> {
        let content = OperationContent::Fulfil(request.units.clone());
        let now_ms = self.now_ms;
        self.operate(&request.reservation_id, &request.op_id, content, |reservation, positions| {
            let state = "held or allocated";
            let moved =
                units_to_move(reservation, &request.units, state, true, now_ms, |line| line.held + line.allocated)?;
            if moved.iter().all(|&units| units == 0) {
                return Err(nothing_or_expired(reservation, state, true, now_ms));
            }

            // Lines may share a position, so each position needs on hand for their sum.
            let mut needed: HashMap<PositionKey, u64> = HashMap::new();
            for (line, &units) in reservation.lines.iter().zip(&moved) {
                *needed.entry(line.key()).or_default() += u64::from(units);
            }
            for (index, (line, &units)) in reservation.lines.iter().zip(&moved).enumerate() {
                let on_hand = positions.get(&line.key()).map_or(0, |position| position.on_hand);
                if units > 0 && needed[&line.key()] > on_hand {
                    return Err(ReservationError::NotOnHand {
                        id: reservation.id(),
                        line: index,
                        sku: line.sku.clone(),
                        location: line.location.clone(),
                        requested: units,
                        on_hand: on_hand as u32,
                    });
                }
            }

            for (line, &units) in reservation.lines.iter_mut().zip(&moved) {
                if units == 0 {
                    continue;
                }
                let from_allocated = units.min(line.allocated);
                let from_held = units - from_allocated;
                let position = positions.get_mut(&line.key()).expect("held or allocated units have a position");
                position.allocated -= u64::from(from_allocated);
                position.reserved -= u64::from(from_held);
                position.on_hand -= u64::from(units);
                line.held -= from_held;
                line.allocated -= from_allocated;
                line.fulfilled += units;
            }
            Ok(moved)
        })
    }

    pub fn extend(&mut self, request: &ExtendRequest) -> Result<OperationOutcome, ReservationError> {
        let content = OperationContent::Extend(request.deadline_ms);
        let now_ms = self.now_ms;
        self.operate(&request.reservation_id, &request.op_id, content, |reservation, _| {
            if reservation.held() == 0 {
                return Err(nothing_or_expired(reservation, "held", true, now_ms));
            }
            if request.deadline_ms <= reservation.deadline_ms {
                return Err(ReservationError::DeadlineNotLater {
                    id: reservation.id(),
                    deadline_ms: request.deadline_ms,
                    current_ms: reservation.deadline_ms,
                });
            }
            if request.deadline_ms > now_ms + TTL_MS_MAX {
                return Err(ReservationError::DeadlineTooFar {
                    id: reservation.id(),
                    deadline_ms: request.deadline_ms,
                    now_ms,
                });
            }
            reservation.deadline_ms = request.deadline_ms;
            Ok(vec![0; reservation.lines.len()])
        })
    }

    /// Runs the common part of confirm, release, fulfil and extend. It finds the
    /// reservation and returns the first outcome of a repeated operation id. Otherwise
    /// it runs `change`, which either fails having changed nothing or returns the units
    /// moved per line, closes the reservation if nothing is held or allocated any more,
    /// and records the outcome.
    fn operate(
        &mut self,
        reservation_id: &str,
        op_id: &str,
        content: OperationContent,
        change: impl FnOnce(
            &mut ModelReservation,
            &mut HashMap<PositionKey, ModelPosition>,
        ) -> Result<Vec<u32>, ReservationError>,
    ) -> Result<OperationOutcome, ReservationError> {
        if reservation_id.is_empty() {
            return Err(ReservationError::ReservationId(CodeError::Empty { field: "reservation_id", len_max: 128 }));
        }
        if op_id.is_empty() {
            return Err(ReservationError::OperationId(CodeError::Empty { field: "op_id", len_max: 128 }));
        }
        let now_ms = self.now_ms;
        let Model { reservations, positions, .. } = self;
        let reservation = reservations
            .get_mut(reservation_id)
            .ok_or_else(|| ReservationError::UnknownReservation { id: reservation_id.to_owned() })?;
        if let Some((first_content, first)) = reservation.operations.get(op_id) {
            if *first_content != content {
                return Err(ReservationError::OperationIdReused {
                    id: reservation_id.to_owned(),
                    op_id: op_id.to_owned(),
                });
            }
            return Ok(OperationOutcome { replayed: true, ..first.clone() });
        }

        let moved = change(reservation, positions)?;
        if reservation.ended.is_none() && reservation.held() + reservation.allocated() == 0 {
            reservation.ended = Some(Ended::At(now_ms));
        }
        let outcome = OperationOutcome {
            replayed: false,
            moved: moved.into_iter().collect(),
            state: reservation.state(),
            deadline_ms: reservation.deadline_ms,
        };
        reservation.operations.insert(op_id.to_owned(), (content, outcome.clone()));
        Ok(outcome)
    }

    // Reads of the whole state.

    pub fn get(&self, reservation_id: &str) -> Option<ExpectedView> {
        let reservation = self.reservations.get(reservation_id)?;
        let (ended_ms, ended_by_expiry) = match reservation.ended {
            None => (None, false),
            Some(Ended::At(ms)) => (Some(ms), false),
            Some(Ended::ByExpiry { earliest_ms }) => (Some(earliest_ms), true),
        };
        let lines = reservation
            .lines
            .iter()
            .map(|line| LineView {
                sku: line.sku.clone(),
                location: line.location.clone(),
                status: line.status,
                requested: line.requested,
                held: line.held,
                allocated: line.allocated,
                fulfilled: line.fulfilled,
                released: line.released,
            })
            .collect();
        let view = ReservationView {
            id: reservation.id(),
            channel: reservation.request.channel.clone().expect("stored requests spell out the channel"),
            policy: reservation.request.policy,
            state: reservation.state(),
            deadline_ms: reservation.deadline_ms,
            created_ms: reservation.created_ms,
            ended_ms,
            lines,
        };
        Some(ExpectedView { view, ended_by_expiry })
    }

    /// Returns the current deadline of a reservation, if the model has it.
    pub fn deadline_of(&self, reservation_id: &str) -> Option<u64> {
        self.reservations.get(reservation_id).map(|reservation| reservation.deadline_ms)
    }

    pub fn positions_in_shortage(&self) -> u64 {
        self.positions.values().filter(|position| position.in_shortage()).count() as u64
    }

    pub fn open_reservations(&self) -> u64 {
        self.reservations.values().filter(|reservation| reservation.ended.is_none()).count() as u64
    }

    /// Checks the model against itself: each position's reserved and allocated equal
    /// the sums over the reservations' lines. Returns the first mismatch.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut sums: HashMap<PositionKey, (u64, u64)> = HashMap::new();
        for reservation in self.reservations.values() {
            for line in &reservation.lines {
                let sum = sums.entry(line.key()).or_default();
                sum.0 += u64::from(line.held);
                sum.1 += u64::from(line.allocated);
            }
        }
        for (key, position) in &self.positions {
            let (reserved, allocated) = sums.get(key).copied().unwrap_or_default();
            if position.reserved != reserved || position.allocated != allocated {
                return Err(format!(
                    "model position {key:?}: reserved {} allocated {}, lines sum to {reserved} and {allocated}",
                    position.reserved, position.allocated
                ));
            }
        }
        Ok(())
    }
}

fn above_limit(field: &'static str, value: u64, sku: &str, location: &str) -> StockError {
    StockError::AboveLimit { field, value, sku: sku.to_owned(), location: location.to_owned() }
}

fn expired(reservation: &ModelReservation, now_ms: u64) -> ReservationError {
    ReservationError::Expired { id: reservation.id(), deadline_ms: reservation.deadline_ms, now_ms }
}

/// Returns the error of an operation that finds no units to move: `Expired` when it
/// would take held units and expiry took them, otherwise `NothingToChange`.
fn nothing_or_expired(
    reservation: &ModelReservation,
    state: &'static str,
    takes_held: bool,
    now_ms: u64,
) -> ReservationError {
    if reservation.hold_expired && takes_held {
        expired(reservation, now_ms)
    } else {
        ReservationError::NothingToChange { id: reservation.id(), state }
    }
}

/// Works out the units each line moves: every unit in the state the operation takes,
/// or the named quantities, each checked against its line in the order named. A named
/// quantity that needed held units which expiry took is `Expired`.
fn units_to_move(
    reservation: &ModelReservation,
    units: &Units,
    state: &'static str,
    takes_held: bool,
    now_ms: u64,
    available: impl Fn(&ModelLine) -> u32,
) -> Result<Vec<u32>, ReservationError> {
    let line_count = reservation.lines.len();
    let quantities = match units {
        Units::All => return Ok(reservation.lines.iter().map(available).collect()),
        Units::Lines(quantities) => quantities,
    };
    let mut moved = vec![0; line_count];
    let mut named = vec![false; line_count];
    for quantity in quantities {
        let line = quantity.line as usize;
        if line >= line_count {
            return Err(ReservationError::LineOutOfRange { id: reservation.id(), line, line_count });
        }
        if named[line] {
            return Err(ReservationError::DuplicateLine { id: reservation.id(), line });
        }
        named[line] = true;
        if quantity.quantity == 0 {
            return Err(ReservationError::ZeroQuantity { id: reservation.id(), line });
        }
        let have = available(&reservation.lines[line]);
        if quantity.quantity > u64::from(have) && reservation.hold_expired && takes_held {
            return Err(expired(reservation, now_ms));
        }
        if quantity.quantity > u64::from(have) {
            return Err(ReservationError::QuantityExceeds {
                id: reservation.id(),
                line,
                requested: quantity.quantity,
                available: have,
                state,
            });
        }
        moved[line] = quantity.quantity as u32;
    }
    Ok(moved)
}
