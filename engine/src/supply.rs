//! Inbound supply: expected receipts (purchase orders, transfers) with a quantity and
//! an arrival time, time-phased availability, and backorders against inbound units.
//!
//! Each position with inbound supply has an inbound twin: a position of the same SKU
//! whose location id carries the `INBOUND_LOCATION_BIT`. The twin's on hand is the sum
//! of the position's open receipts, and its reserved and allocated units are the
//! backordered ones. So a backordered reservation line is an ordinary line on the twin:
//! reserve, confirm, release, expiry, the log and snapshots treat it like any other,
//! and current ATP, which reads the real position, never counts inbound units. Reads
//! that list a SKU's positions skip the twins.
//!
//! The receipts themselves (id, twin, quantity, arrival) live in a ledger under one
//! lock. Every receipt change logs its record while holding that lock, so a snapshot
//! that copies the ledger under it knows which records the copy holds.
//!
//! NOTE: receiving a receipt (moving its units into on hand and turning the
//! backorders against it into held units) is not built: an operator adjusts on hand,
//! cancels the receipt once no backorder depends on it, and reserves again.

use compact_str::CompactString;
use parking_lot::Mutex;
use thiserror::Error;

use crate::Engine;
use crate::catalog::{validate_code, validate_id};
use crate::error::{CodeError, LogError};
use crate::limits::{OPERATION_ID_LEN_MAX, POSITION_UNITS_MAX};
use crate::wal::record::Record;

/// Bit of a location id that marks an inbound twin position (see the module docs).
/// Location ids stay below it.
pub const INBOUND_LOCATION_BIT: u32 = 1 << 31;

/// An expected receipt to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupplyRequest {
    /// Receipt id, 1..=128 bytes: the idempotency key.
    pub receipt_id: String,
    /// SKU code.
    pub sku: String,
    /// Location code where the units arrive.
    pub location: String,
    /// Units expected, 1..=`POSITION_UNITS_MAX`.
    pub quantity: u64,
    /// Expected arrival, milliseconds since the Unix epoch.
    pub arrival_ms: u64,
}

/// The inbound supply of one position after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupplyOutcome {
    /// True when this repeats an earlier add with the same receipt id and content.
    pub replayed: bool,
    /// Units of every open receipt of the position.
    pub inbound: u32,
    /// Units promised against them.
    pub backordered: u32,
}

/// Availability of a SKU at a location by a time, counting inbound supply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimedAvailability {
    /// ATP now for the channel (negative in shortage).
    pub atp: i64,
    /// Units of receipts arriving at or before the time.
    pub inbound_by: u64,
    /// Units backordered against inbound supply.
    pub backordered: u64,
    /// Units that can be promised by the time: ATP now (when positive) plus what the
    /// receipts by then bring beyond the backorders, which take the earliest receipts
    /// first.
    pub available: u64,
}

/// Errors of supply changes and time-phased reads.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupplyError {
    /// A code or id breaks the code rules.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The location is not known.
    #[error("location {code} is not known; upsert the location first")]
    UnknownLocation {
        /// Location code.
        code: String,
    },
    /// The SKU is not known.
    #[error("SKU {code} is not known")]
    UnknownSku {
        /// SKU code.
        code: String,
    },
    /// The channel is not known.
    #[error("channel {code} is not known; upsert the channel first")]
    UnknownChannel {
        /// Channel code.
        code: String,
    },
    /// A quantity of 0 or above the counter limit, or a total inbound above it.
    #[error(
        "receipt {receipt_id}: quantity {quantity} is outside 1..={POSITION_UNITS_MAX} or takes the inbound total \
         past it"
    )]
    QuantityOutOfRange {
        /// Receipt id.
        receipt_id: String,
        /// Quantity given.
        quantity: u64,
    },
    /// The receipt id names another receipt.
    #[error("receipt id {receipt_id} already names a receipt with a different SKU, location, quantity or arrival")]
    IdReusedWithDifferentContent {
        /// Receipt id.
        receipt_id: String,
    },
    /// No receipt has this id.
    #[error("receipt {receipt_id} is not known")]
    UnknownReceipt {
        /// Receipt id.
        receipt_id: String,
    },
    /// Cancelling would leave backorders without inbound units.
    #[error(
        "receipt {receipt_id}: cancelling its {quantity} units would leave {inbound_left} inbound for {backordered} \
         backordered; release those backorders first"
    )]
    Backordered {
        /// Receipt id.
        receipt_id: String,
        /// Units of the receipt.
        quantity: u32,
        /// Inbound units the position would keep.
        inbound_left: u32,
        /// Units backordered against the position's inbound supply.
        backordered: u32,
    },
    /// The SKU or position tables are full.
    #[error(transparent)]
    Stock(#[from] crate::error::StockError),
    /// The write-ahead log failed; nothing more is accepted until a restart.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// ATP now, units backordered, and the (arrival, units) of each receipt, earliest
/// first.
type SupplyView = (i64, u64, Vec<(u64, u32)>);

/// One open receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// The inbound twin position.
    pub position: u32,
    pub quantity: u32,
    pub arrival_ms: u64,
}

/// Open receipts by id, and by twin position.
#[derive(Default)]
pub(crate) struct SupplyLedger {
    pub receipts: hashbrown::HashMap<CompactString, Receipt, foldhash::fast::RandomState>,
    by_position: hashbrown::HashMap<u32, Vec<CompactString>, foldhash::fast::RandomState>,
}

impl SupplyLedger {
    pub(crate) fn insert(&mut self, id: &str, receipt: Receipt) {
        self.by_position.entry(receipt.position).or_default().push(id.into());
        self.receipts.insert(id.into(), receipt);
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Receipt> {
        let receipt = self.receipts.remove(id)?;
        if let Some(ids) = self.by_position.get_mut(&receipt.position) {
            ids.retain(|other| other != id);
        }
        Some(receipt)
    }

    /// (arrival, quantity) of the position's receipts, earliest first.
    fn schedule(&self, twin: u32) -> Vec<(u64, u32)> {
        let mut schedule: Vec<(u64, u32)> = self
            .by_position
            .get(&twin)
            .into_iter()
            .flatten()
            .filter_map(|id| self.receipts.get(id))
            .map(|receipt| (receipt.arrival_ms, receipt.quantity))
            .collect();
        schedule.sort_unstable();
        schedule
    }
}

/// The receipts ledger.
#[derive(Default)]
pub(crate) struct Supply {
    pub ledger: Mutex<SupplyLedger>,
}

impl Engine {
    /// Adds an expected receipt. Idempotent on the receipt id: a repeat with the same
    /// SKU, location, quantity and arrival changes nothing.
    pub fn add_supply(&self, request: &SupplyRequest, now_ms: u64) -> Result<SupplyOutcome, SupplyError> {
        validate_id("receipt_id", &request.receipt_id, OPERATION_ID_LEN_MAX)?;
        validate_code("sku", &request.sku)?;
        let location = self
            .catalog
            .locations
            .get(&request.location)
            .ok_or_else(|| SupplyError::UnknownLocation { code: request.location.clone() })?;
        if !(1..=u64::from(POSITION_UNITS_MAX)).contains(&request.quantity) {
            return Err(SupplyError::QuantityOutOfRange {
                receipt_id: request.receipt_id.clone(),
                quantity: request.quantity,
            });
        }
        self.durably(|| {
            let now_ms = self.clock.observe(now_ms);
            // A receipt may be the first news of a new SKU (a pre-order), so the SKU
            // is created like a first stock count creates it.
            let twin =
                self.catalog.ensure_position(&request.sku, location | INBOUND_LOCATION_BIT, &self.journal, now_ms)?;
            let mut ledger = self.supply.ledger.lock();
            let mut guard = self.catalog.lock_position(twin, &self.counters.positions_in_shortage);
            if let Some(existing) = ledger.receipts.get(request.receipt_id.as_str()) {
                let same = existing.position == twin
                    && u64::from(existing.quantity) == request.quantity
                    && existing.arrival_ms == request.arrival_ms;
                if !same {
                    return Err(SupplyError::IdReusedWithDifferentContent { receipt_id: request.receipt_id.clone() });
                }
                self.journal.depend_on(self.catalog.position_lsn(twin).load(std::sync::atomic::Ordering::Acquire));
                return Ok(outcome(true, &guard.counters));
            }
            let inbound = u64::from(guard.counters.on_hand) + request.quantity;
            if inbound > u64::from(POSITION_UNITS_MAX) {
                return Err(SupplyError::QuantityOutOfRange {
                    receipt_id: request.receipt_id.clone(),
                    quantity: request.quantity,
                });
            }
            guard.counters.on_hand = inbound as u32;
            let receipt = Receipt { position: twin, quantity: request.quantity as u32, arrival_ms: request.arrival_ms };
            ledger.insert(&request.receipt_id, receipt);
            self.journal.append(|| Record::SupplyAdded {
                now_ms,
                receipt_id: request.receipt_id.clone(),
                position: twin,
                quantity: request.quantity as u32,
                arrival_ms: request.arrival_ms,
                inbound: inbound as u32,
            });
            Ok(outcome(false, &guard.counters))
        })
    }

    /// Moves a receipt's expected arrival. Repeatable as it is.
    pub fn move_supply(&self, receipt_id: &str, arrival_ms: u64, now_ms: u64) -> Result<SupplyOutcome, SupplyError> {
        validate_id("receipt_id", receipt_id, OPERATION_ID_LEN_MAX)?;
        self.durably(|| {
            let now_ms = self.clock.observe(now_ms);
            let mut ledger = self.supply.ledger.lock();
            let receipt = ledger
                .receipts
                .get_mut(receipt_id)
                .ok_or_else(|| SupplyError::UnknownReceipt { receipt_id: receipt_id.to_owned() })?;
            receipt.arrival_ms = arrival_ms;
            let twin = receipt.position;
            self.journal.append(|| Record::SupplyMoved { now_ms, receipt_id: receipt_id.to_owned(), arrival_ms });
            Ok(outcome(false, &self.catalog.position(twin).read()))
        })
    }

    /// Cancels a receipt. Refused while the backorders of its position need its units.
    pub fn cancel_supply(&self, receipt_id: &str, now_ms: u64) -> Result<SupplyOutcome, SupplyError> {
        validate_id("receipt_id", receipt_id, OPERATION_ID_LEN_MAX)?;
        self.durably(|| {
            let now_ms = self.clock.observe(now_ms);
            let mut ledger = self.supply.ledger.lock();
            let receipt = ledger
                .receipts
                .get(receipt_id)
                .cloned()
                .ok_or_else(|| SupplyError::UnknownReceipt { receipt_id: receipt_id.to_owned() })?;
            let mut guard = self.lock_position_current(receipt.position, now_ms);
            let inbound_left = guard.counters.on_hand - receipt.quantity;
            let backordered = guard.counters.reserved + guard.counters.allocated;
            if inbound_left < backordered {
                return Err(SupplyError::Backordered {
                    receipt_id: receipt_id.to_owned(),
                    quantity: receipt.quantity,
                    inbound_left,
                    backordered,
                });
            }
            guard.counters.on_hand = inbound_left;
            ledger.remove(receipt_id);
            self.journal.append(|| Record::SupplyCancelled {
                now_ms,
                receipt_id: receipt_id.to_owned(),
                position: receipt.position,
                inbound: inbound_left,
            });
            Ok(outcome(false, &guard.counters))
        })
    }

    /// How many units of a SKU at a location can be promised by `by_ms` for a channel,
    /// counting receipts that arrive by then, net of backorders.
    pub fn availability_by(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        by_ms: u64,
        now_ms: u64,
    ) -> Result<TimedAvailability, SupplyError> {
        let (atp, backordered, schedule) = self.supply_view(sku, location, channel, now_ms)?;
        let inbound_by: u64 =
            schedule.iter().filter(|&&(arrival_ms, _)| arrival_ms <= by_ms).map(|&(_, units)| u64::from(units)).sum();
        Ok(TimedAvailability {
            atp,
            inbound_by,
            backordered,
            available: atp.max(0) as u64 + inbound_by.saturating_sub(backordered),
        })
    }

    /// The earliest time at which `quantity` units of a SKU at a location can be
    /// promised for a channel: now if ATP covers them, else the arrival of the receipt
    /// that makes them available, or `None` if the known receipts never do.
    pub fn earliest_available(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        quantity: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, SupplyError> {
        let (atp, backordered, schedule) = self.supply_view(sku, location, channel, now_ms)?;
        let atp = atp.max(0) as u64;
        if atp >= quantity {
            return Ok(Some(self.clock.high_water_mark()));
        }
        let mut arrived = 0u64;
        for (arrival_ms, units) in schedule {
            arrived += u64::from(units);
            if atp + arrived.saturating_sub(backordered) >= quantity {
                return Ok(Some(arrival_ms));
            }
        }
        Ok(None)
    }

    /// When `units` more units of an inbound twin's free supply will have arrived:
    /// receipts count earliest first, and the backorders already made take the first
    /// ones. `None` if the open receipts never bring that many.
    pub(crate) fn inbound_ready_ms(&self, twin: u32, units: u64) -> Option<u64> {
        let ledger = self.supply.ledger.lock();
        let counters = self.catalog.position(twin).read();
        let backordered = u64::from(counters.reserved) + u64::from(counters.allocated);
        let mut arrived = 0u64;
        for (arrival_ms, quantity) in ledger.schedule(twin) {
            arrived += u64::from(quantity);
            if arrived.saturating_sub(backordered) >= units {
                return Some(arrival_ms);
            }
        }
        None
    }

    /// ATP now, units backordered, and the (arrival, units) of each receipt.
    fn supply_view(
        &self,
        sku: &str,
        location: &str,
        channel: Option<&str>,
        now_ms: u64,
    ) -> Result<SupplyView, SupplyError> {
        let (_, may_sell_safety_stock) = self
            .resolve_channel(channel)
            .ok_or_else(|| SupplyError::UnknownChannel { code: channel.unwrap_or_default().to_owned() })?;
        let location_id = self
            .catalog
            .locations
            .get(location)
            .ok_or_else(|| SupplyError::UnknownLocation { code: location.to_owned() })?;
        let sku_id = self.catalog.skus.get(sku).ok_or_else(|| SupplyError::UnknownSku { code: sku.to_owned() })?;
        let atp = match self.catalog.find_position(sku_id, location_id) {
            Some(index) => self.read_position(index, now_ms).atp(may_sell_safety_stock),
            None => 0,
        };
        let Some(twin) = self.catalog.find_position(sku_id, location_id | INBOUND_LOCATION_BIT) else {
            return Ok((atp, 0, Vec::new()));
        };
        let ledger = self.supply.ledger.lock();
        let counters = self.read_position(twin, now_ms);
        let backordered = u64::from(counters.reserved) + u64::from(counters.allocated);
        Ok((atp, backordered, ledger.schedule(twin)))
    }
}

fn outcome(replayed: bool, twin: &crate::position::Counters) -> SupplyOutcome {
    SupplyOutcome { replayed, inbound: twin.on_hand, backordered: twin.reserved + twin.allocated }
}
