//! Stock changes: absolute counts of on hand, adjustments by a delta with a reason,
//! safety stock, and bulk loads of many positions.
//!
//! Setting on hand below reserved + allocated is accepted (the shelf is what it is):
//! the position is then in shortage, its ATP is negative, and later releases still
//! succeed.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use compact_str::CompactString;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::Engine;
use crate::catalog::{validate_code, validate_id};
use crate::error::{LoadError, StockError};
use crate::limits::{LOAD_ROWS_MAX, OPERATION_ID_LEN_MAX, POSITION_UNITS_MAX};
use crate::wal::record::Record;

/// The reason for an adjustment of on hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdjustReason {
    /// Goods received.
    Receipt = 0,
    /// Goods damaged or lost.
    Damage = 1,
    /// A count found a difference.
    Correction = 2,
    /// A customer return back on the shelf.
    Return = 3,
}

/// An adjustment of on hand by a signed delta.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdjustRequest {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// Units to add (positive) or remove (negative); not zero.
    pub delta: i64,
    /// Why.
    pub reason: AdjustReason,
    /// Operation id, unique among adjustments: a retry with the same id changes nothing.
    pub op_id: String,
}

/// The effect of a stock change on a position's on hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockChange {
    /// On hand before.
    pub previous: u32,
    /// On hand after.
    pub on_hand: u32,
    /// `on_hand - previous`.
    pub delta: i64,
    /// Whether reserved + allocated exceeds on hand after the change.
    pub in_shortage: bool,
    /// True when this repeats an earlier adjustment with the same operation id.
    pub replayed: bool,
}

/// One row of a bulk load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionRow {
    /// SKU code.
    pub sku: String,
    /// Location code.
    pub location: String,
    /// On hand to set.
    pub on_hand: u64,
    /// Safety stock to set; `None` leaves it as it is.
    pub safety_stock: Option<u64>,
}

/// Result of a bulk load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Rows applied.
    pub rows: usize,
    /// Positions created by the load.
    pub positions_created: usize,
    /// Positions left in shortage by the load.
    pub positions_in_shortage: usize,
}

/// A position counter that a request sets to an absolute value.
#[derive(Clone, Copy)]
enum AbsoluteCounter {
    OnHand,
    SafetyStock,
}

impl AbsoluteCounter {
    /// Returns the field name that errors report.
    fn field(self) -> &'static str {
        match self {
            AbsoluteCounter::OnHand => "on_hand",
            AbsoluteCounter::SafetyStock => "safety_stock",
        }
    }
}

/// Shards of the adjustment ledger.
const LEDGER_SHARDS: usize = 16;

#[derive(Default)]
struct LedgerShard {
    /// Operation id to the request's fingerprint, its first outcome, and the LSN just
    /// past its log record (which a retry must see durable too).
    entries: hashbrown::HashMap<CompactString, (u64, StockChange, u64), foldhash::fast::RandomState>,
    /// Operation ids in the order they were recorded, with the time.
    order: VecDeque<(u64, CompactString)>,
}

/// Remembers adjustment operation ids and their first outcome, within a retention and
/// a count bound.
pub(crate) struct AdjustmentLedger {
    shards: Box<[CachePadded<Mutex<LedgerShard>>]>,
    hasher: foldhash::fast::RandomState,
    retention_ms: u64,
    per_shard_max: usize,
}

impl AdjustmentLedger {
    pub(crate) fn new(retention_ms: u64, ids_max: u64) -> Self {
        AdjustmentLedger {
            shards: (0..LEDGER_SHARDS).map(|_| CachePadded::new(Mutex::new(LedgerShard::default()))).collect(),
            hasher: foldhash::fast::RandomState::default(),
            retention_ms,
            per_shard_max: (ids_max as usize).div_ceil(LEDGER_SHARDS).max(1),
        }
    }

    fn shard(&self, op_id: &str) -> &Mutex<LedgerShard> {
        &self.shards[self.hasher.hash_one(op_id) as usize % LEDGER_SHARDS]
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().entries.len()).sum()
    }
}

fn adjustment_fingerprint(request: &AdjustRequest) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5EED_AD15).hash_one((
        &request.sku,
        &request.location,
        request.delta,
        request.reason as u8,
    ))
}

impl Engine {
    /// Sets on hand to an absolute count and returns the resulting delta. Creates the
    /// SKU and the position as needed; the location must exist.
    pub fn set_on_hand(&self, sku: &str, location: &str, on_hand: u64, now_ms: u64) -> Result<StockChange, StockError> {
        self.durably(|| self.apply_absolute_set(AbsoluteCounter::OnHand, sku, location, on_hand, now_ms))
    }

    /// Sets one counter of a position to an absolute value: the shared path of
    /// `set_on_hand` and `set_safety_stock`. Validates everything before the clock or
    /// the catalog changes.
    fn apply_absolute_set(
        &self,
        counter: AbsoluteCounter,
        sku: &str,
        location: &str,
        value: u64,
        now_ms: u64,
    ) -> Result<StockChange, StockError> {
        let location_id = self.resolve_location_for_change(sku, location)?;
        if value > u64::from(POSITION_UNITS_MAX) {
            return Err(above_limit(counter.field(), value, sku, location));
        }
        let value = value as u32;
        let now_ms = self.clock.observe(now_ms);
        let index = self.catalog.ensure_position(sku, location_id, &self.journal, now_ms)?;

        let mut guard = self.lock_position_current(index, now_ms);
        let previous = guard.counters.on_hand;
        match counter {
            AbsoluteCounter::OnHand => {
                guard.counters.on_hand = value;
                self.journal.append(|| Record::OnHandSet { now_ms, position: index, on_hand: value });
            }
            AbsoluteCounter::SafetyStock => {
                guard.counters.safety_stock = value;
                self.journal.append(|| Record::SafetyStockSet { now_ms, position: index, units: value });
            }
        }
        Ok(StockChange {
            previous,
            on_hand: guard.counters.on_hand,
            delta: i64::from(guard.counters.on_hand) - i64::from(previous),
            in_shortage: guard.counters.in_shortage(),
            replayed: false,
        })
    }

    /// Changes on hand by a signed delta. Idempotent on the operation id: a repeat
    /// with the same content returns the first outcome, with different content an error.
    pub fn adjust_on_hand(&self, request: &AdjustRequest, now_ms: u64) -> Result<StockChange, StockError> {
        self.durably(|| self.apply_adjustment(request, now_ms))
    }

    fn apply_adjustment(&self, request: &AdjustRequest, now_ms: u64) -> Result<StockChange, StockError> {
        validate_id("op_id", &request.op_id, OPERATION_ID_LEN_MAX)?;
        validate_code("sku", &request.sku)?;
        validate_code("location", &request.location)?;
        if request.delta == 0 {
            return Err(StockError::ZeroDelta { sku: request.sku.clone(), location: request.location.clone() });
        }
        let now_ms = self.clock.observe(now_ms);

        let fingerprint = adjustment_fingerprint(request);
        let mut ledger = self.adjustments.shard(&request.op_id).lock();
        // Forget ids past their retention first, so a late retry is judged afresh.
        self.trim_adjustments(&mut ledger, now_ms);
        if let Some((first_fingerprint, first, first_lsn)) = ledger.entries.get(request.op_id.as_str()) {
            if *first_fingerprint != fingerprint {
                return Err(StockError::OperationIdReused { op_id: request.op_id.clone() });
            }
            self.journal.depend_on(*first_lsn);
            return Ok(StockChange { replayed: true, ..*first });
        }

        // A receipt may create the position, unless it is above the limit even from 0.
        // A removal needs a position that exists.
        let index = match self.existing_position(&request.sku, &request.location) {
            Ok(index) => index,
            Err(StockError::UnknownPosition { .. }) if request.delta > i64::from(POSITION_UNITS_MAX) => {
                return Err(above_limit("on_hand", request.delta as u64, &request.sku, &request.location));
            }
            Err(StockError::UnknownPosition { .. }) if request.delta > 0 => {
                let location_id = self.resolve_location_for_change(&request.sku, &request.location)?;
                self.catalog.ensure_position(&request.sku, location_id, &self.journal, now_ms)?
            }
            Err(error) => return Err(error),
        };
        let mut guard = self.lock_position_current(index, now_ms);
        let previous = guard.counters.on_hand;
        // In i128, so that no delta can overflow.
        let result = i128::from(previous) + i128::from(request.delta);
        if result < 0 {
            return Err(StockError::BelowZero {
                sku: request.sku.clone(),
                location: request.location.clone(),
                delta: request.delta,
                result: result as i64,
            });
        }
        if result > i128::from(POSITION_UNITS_MAX) {
            return Err(above_limit("on_hand", result as u64, &request.sku, &request.location));
        }
        guard.counters.on_hand = result as u32;
        let change = StockChange {
            previous,
            on_hand: guard.counters.on_hand,
            delta: request.delta,
            in_shortage: guard.counters.in_shortage(),
            replayed: false,
        };
        let lsn = self.journal.append(|| Record::Adjusted {
            now_ms,
            position: index,
            previous,
            on_hand: change.on_hand,
            in_shortage: change.in_shortage,
            op_id: request.op_id.clone(),
            fingerprint,
        });
        drop(guard);

        self.record_adjustment(&mut ledger, &request.op_id, fingerprint, change, lsn, now_ms);
        Ok(change)
    }

    /// Remembers a replayed adjustment's operation id and outcome, unless a snapshot
    /// already holds that id.
    pub(crate) fn replay_adjustment(
        &self,
        op_id: &str,
        fingerprint: u64,
        change: StockChange,
        end_lsn: u64,
        now_ms: u64,
    ) {
        let mut ledger = self.adjustments.shard(op_id).lock();
        self.trim_adjustments(&mut ledger, now_ms);
        if !ledger.entries.contains_key(op_id) {
            self.record_adjustment(&mut ledger, op_id, fingerprint, change, end_lsn, now_ms);
        }
    }

    /// Copies the remembered adjustments, one ledger shard lock at a time.
    pub(crate) fn adjustment_images(&self) -> Vec<crate::snapshot::image::AdjustmentImage> {
        let mut images = Vec::new();
        for shard in self.adjustments.shards.iter() {
            let ledger = shard.lock();
            for (recorded_ms, op_id) in &ledger.order {
                let Some((fingerprint, change, lsn)) = ledger.entries.get(op_id) else { continue };
                images.push(crate::snapshot::image::AdjustmentImage {
                    op_id: op_id.to_string(),
                    fingerprint: *fingerprint,
                    previous: change.previous,
                    on_hand: change.on_hand,
                    delta: change.delta,
                    in_shortage: change.in_shortage,
                    lsn: *lsn,
                    recorded_ms: *recorded_ms,
                });
            }
        }
        images
    }

    /// Restores remembered adjustments from a snapshot, in the order they were recorded.
    pub(crate) fn restore_adjustments(&self, images: &[crate::snapshot::image::ArchivedAdjustmentImage]) {
        let mut sorted: Vec<_> = images.iter().collect();
        sorted.sort_by_key(|image| image.recorded_ms.to_native());
        for image in sorted {
            let op_id = image.op_id.as_str();
            let mut ledger = self.adjustments.shard(op_id).lock();
            let change = StockChange {
                previous: image.previous.to_native(),
                on_hand: image.on_hand.to_native(),
                delta: image.delta.to_native(),
                in_shortage: image.in_shortage,
                replayed: false,
            };
            let op_id = CompactString::new(op_id);
            ledger.entries.insert(op_id.clone(), (image.fingerprint.to_native(), change, image.lsn.to_native()));
            ledger.order.push_back((image.recorded_ms.to_native(), op_id));
        }
    }

    /// Remembers an adjustment's operation id and first outcome.
    fn record_adjustment(
        &self,
        ledger: &mut LedgerShard,
        op_id: &str,
        fingerprint: u64,
        change: StockChange,
        lsn: u64,
        now_ms: u64,
    ) {
        let op_id = CompactString::new(op_id);
        ledger.entries.insert(op_id.clone(), (fingerprint, change, lsn));
        ledger.order.push_back((now_ms, op_id));
        self.trim_adjustments(ledger, now_ms);
    }

    fn trim_adjustments(&self, ledger: &mut LedgerShard, now_ms: u64) {
        while let Some((recorded_ms, _)) = ledger.order.front() {
            let expired = now_ms.saturating_sub(*recorded_ms) >= self.adjustments.retention_ms;
            if !expired && ledger.order.len() <= self.adjustments.per_shard_max {
                break;
            }
            let (_, op_id) = ledger.order.pop_front().expect("front exists");
            ledger.entries.remove(&op_id);
        }
    }

    /// Sets the safety stock of a position. Raising it above the free units is
    /// accepted: ATP for channels that respect safety stock goes negative, which is
    /// not a shortage.
    pub fn set_safety_stock(
        &self,
        sku: &str,
        location: &str,
        units: u64,
        now_ms: u64,
    ) -> Result<StockChange, StockError> {
        self.durably(|| self.apply_absolute_set(AbsoluteCounter::SafetyStock, sku, location, units, now_ms))
    }

    /// Sets on hand (and optionally safety stock) of many positions. Every row is
    /// validated first; if any row is invalid, nothing is applied and every invalid
    /// row is reported.
    ///
    /// NOTE: each position changes atomically, but a reader running during the load
    /// may see some rows applied and others not yet.
    pub fn load_positions(&self, rows: &[PositionRow], now_ms: u64) -> Result<LoadSummary, LoadError> {
        self.durably(|| self.apply_load(rows, now_ms))
    }

    fn apply_load(&self, rows: &[PositionRow], now_ms: u64) -> Result<LoadSummary, LoadError> {
        if rows.len() > LOAD_ROWS_MAX {
            let rows = vec![(LOAD_ROWS_MAX, StockError::TooManyRows { rows: rows.len() })];
            return Err(LoadError::InvalidRows { rows });
        }

        // Validate every row before changing anything, the clock included.
        let mut invalid = Vec::new();
        let mut locations = Vec::with_capacity(rows.len());
        for (row_index, row) in rows.iter().enumerate() {
            match self.validate_row(row) {
                Ok(location) => locations.push(location),
                Err(error) => invalid.push((row_index, error)),
            }
        }
        if !invalid.is_empty() {
            return Err(LoadError::InvalidRows { rows: invalid });
        }
        let now_ms = self.clock.observe(now_ms);

        // Create missing positions under one writer lock, then set the counters.
        let positions_before = self.catalog.position_count();
        let mut indexes = Vec::with_capacity(rows.len());
        {
            let _writer = self.catalog.writer_lock();
            for (row, &location) in rows.iter().zip(&locations) {
                let index = self
                    .catalog
                    .ensure_position_locked(&row.sku, location, &self.journal, now_ms)
                    .map_err(|error| LoadError::InvalidRows { rows: vec![(indexes.len(), error)] })?;
                indexes.push(index);
            }
        }
        let mut summary = LoadSummary {
            rows: rows.len(),
            positions_created: self.catalog.position_count() - positions_before,
            positions_in_shortage: 0,
        };
        for (row, &index) in rows.iter().zip(&indexes) {
            let mut guard = self.lock_position_current(index, now_ms);
            guard.counters.on_hand = row.on_hand as u32;
            self.journal.append(|| Record::OnHandSet { now_ms, position: index, on_hand: row.on_hand as u32 });
            if let Some(safety_stock) = row.safety_stock {
                guard.counters.safety_stock = safety_stock as u32;
                self.journal.append(|| Record::SafetyStockSet { now_ms, position: index, units: safety_stock as u32 });
            }
        }

        // A position named by several rows counts once.
        indexes.sort_unstable();
        indexes.dedup();
        summary.positions_in_shortage =
            indexes.iter().filter(|&&index| self.catalog.position(index).read().in_shortage()).count();
        Ok(summary)
    }

    fn validate_row(&self, row: &PositionRow) -> Result<u32, StockError> {
        validate_code("sku", &row.sku)?;
        validate_code("location", &row.location)?;
        let location = self
            .catalog
            .locations
            .get(&row.location)
            .ok_or_else(|| StockError::UnknownLocation { code: row.location.clone() })?;
        if row.on_hand > u64::from(POSITION_UNITS_MAX) {
            return Err(above_limit("on_hand", row.on_hand, &row.sku, &row.location));
        }
        if let Some(safety_stock) = row.safety_stock
            && safety_stock > u64::from(POSITION_UNITS_MAX)
        {
            return Err(above_limit("safety_stock", safety_stock, &row.sku, &row.location));
        }
        Ok(location)
    }

    /// Validates the codes of a stock change and returns the location's id.
    fn resolve_location_for_change(&self, sku: &str, location: &str) -> Result<u32, StockError> {
        validate_code("sku", sku)?;
        validate_code("location", location)?;
        self.catalog.locations.get(location).ok_or_else(|| StockError::UnknownLocation { code: location.to_owned() })
    }

    fn existing_position(&self, sku: &str, location: &str) -> Result<u32, StockError> {
        let location_id = self
            .catalog
            .locations
            .get(location)
            .ok_or_else(|| StockError::UnknownLocation { code: location.to_owned() })?;
        self.catalog
            .skus
            .get(sku)
            .and_then(|sku_id| self.catalog.find_position(sku_id, location_id))
            .ok_or_else(|| StockError::UnknownPosition { sku: sku.to_owned(), location: location.to_owned() })
    }

    /// Makes room for this many SKUs and positions, so loading them does not grow the
    /// indexes step by step.
    pub fn reserve_capacity(&self, skus: usize, positions: usize) {
        self.catalog.reserve(skus, positions);
    }
}

fn above_limit(field: &'static str, value: u64, sku: &str, location: &str) -> StockError {
    StockError::AboveLimit { field, value, sku: sku.to_owned(), location: location.to_owned() }
}
