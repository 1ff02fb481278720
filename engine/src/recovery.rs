//! Opening a durable engine: load the newest valid snapshot, replay the write-ahead log
//! after it, cut a torn tail, attach the log writer, and expire the holds whose
//! deadline passed while the process was down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::catalog::{FulfilmentMethods, LocationKind, LocationSpec};
use crate::journal::Journal;
use crate::reservation::replay::{ReplayedOperation, ReservedFields};
use crate::snapshot::Snapshots;
use crate::snapshot::image::ImageError;
use crate::wal::record::Record;
use crate::wal::scan::{Cut, ScanError, ScanOptions, scan};
use crate::wal::storage::Storage;
use crate::wal::writer::{LogConfig, LogError, LogWriter};
use crate::{Engine, EngineConfig};

/// The result of a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot loaded, if any.
    pub snapshot: Option<String>,
    /// Newer snapshots that failed their checks and were skipped, with the reason.
    pub snapshots_skipped: Vec<(String, ImageError)>,
    /// Time to load the snapshot.
    pub snapshot_elapsed: Duration,
    /// Log records replayed.
    pub records_replayed: u64,
    /// Segment files read.
    pub segments: usize,
    /// The cut of a torn or damaged tail, with the bytes it dropped.
    pub cut: Option<Cut>,
    /// Holds whose deadline passed while the process was down, expired at open.
    pub holds_expired_at_open: usize,
    /// LSN where new records continue.
    pub end_lsn: u64,
    /// Time from the start of the scan to the engine being ready.
    pub elapsed: Duration,
}

/// Recovery could not build the engine from its log.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The log could not be read back.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The log writer could not start.
    #[error("the write-ahead log cannot be opened for writing: {0}")]
    Io(#[from] std::io::Error),
    /// Writing the expiries found at open failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A snapshot passed its checks but could not be restored.
    #[error("snapshot {file} cannot be restored: {reason}")]
    Snapshot {
        /// The snapshot file.
        file: String,
        /// The problem found.
        reason: String,
    },
    /// The log ends before the last change the snapshot holds, so records are missing.
    #[error(
        "the log ends at LSN {log_end_lsn}, before LSN {snapshot_end_lsn} that snapshot {file} depends on; \
         log segments are missing or were truncated"
    )]
    LogBehindSnapshot {
        /// The snapshot file.
        file: String,
        /// The log's end LSN.
        log_end_lsn: u64,
        /// The LSN the log must reach.
        snapshot_end_lsn: u64,
    },
}

/// The parts of a record a snapshot already contains, beyond the per-object LSNs.
#[derive(Clone, Copy, Default)]
struct ReplayFilter {
    /// Catalog records ending at or below it are in the snapshot.
    catalog_lsn: u64,
    /// Below it, a record may name a reservation the snapshot forgot.
    reservations_lsn: u64,
    /// Receipt records ending at or below it are in the snapshot's supply ledger.
    supply_lsn: u64,
}

impl Engine {
    /// Opens an engine whose every change is written to the log in `storage`: replays
    /// what the log holds, then expires the holds past their deadline at `now_ms`
    /// (each exactly once, because the expiry is logged).
    pub fn open(
        config: EngineConfig,
        storage: Arc<dyn Storage>,
        log_config: LogConfig,
        scan_options: ScanOptions,
        now_ms: u64,
    ) -> Result<(Engine, RecoveryReport), RecoveryError> {
        let started = Instant::now();
        let mut engine = Engine::new(config);

        crate::snapshot::remove_temporary_files(&*storage)?;
        let (loaded, snapshots_skipped) = crate::snapshot::load_newest(&*storage)?;
        let mut filter = ReplayFilter::default();
        let mut from_lsn = 0;
        let mut snapshot_end_lsn = 0;
        let snapshot = match &loaded {
            Some((bytes, file)) => {
                let image = crate::snapshot::image::access(bytes).expect("validated when loaded");
                engine.restore_image(image).map_err(|reason| RecoveryError::Snapshot { file: file.clone(), reason })?;
                filter = ReplayFilter {
                    catalog_lsn: image.catalog_lsn.to_native(),
                    reservations_lsn: image.reservations_lsn.to_native(),
                    supply_lsn: image.supply_lsn.to_native(),
                };
                from_lsn = image.start_lsn.to_native();
                snapshot_end_lsn = image.end_lsn.to_native();
                Some(file.clone())
            }
            None => None,
        };
        drop(loaded);
        let snapshot_elapsed = started.elapsed();

        let scan_report = scan(&*storage, from_lsn, scan_options, |record| {
            let end_lsn = record.lsn + record.framed_len() as u64;
            let record = Record::decode(record.record_type, record.payload).map_err(|error| error.to_string())?;
            engine.replay(record, end_lsn, filter)
        })?;
        if let Some(file) = &snapshot
            && scan_report.end_lsn < snapshot_end_lsn
        {
            return Err(RecoveryError::LogBehindSnapshot {
                file: file.clone(),
                log_end_lsn: scan_report.end_lsn,
                snapshot_end_lsn,
            });
        }
        engine.journal =
            Journal::new(Some(LogWriter::open(Arc::clone(&storage), scan_report.end_lsn, log_config.clone())?));
        engine.snapshots = Some(Snapshots::new(storage, log_config.snapshot, from_lsn));

        // Capacity counts follow from the routed reservations just restored; count
        // them before expiring holds, which gives capacity back.
        engine.recount_capacity();

        // Holds that expired while the process was down, logged like any expiry.
        engine.journal.begin()?;
        let holds_expired_at_open = engine.sweep(now_ms).len();
        engine.journal.acknowledge()?;

        let report = RecoveryReport {
            snapshot,
            snapshots_skipped,
            snapshot_elapsed,
            records_replayed: scan_report.records,
            segments: scan_report.segments,
            cut: scan_report.cut,
            holds_expired_at_open,
            end_lsn: scan_report.end_lsn,
            elapsed: started.elapsed(),
        };
        if let Some(cut) = &report.cut {
            tracing::warn!(
                segment = %cut.segment,
                offset = cut.offset,
                dropped_bytes = cut.dropped_bytes,
                hole = cut.hole,
                "cut the log's damaged tail"
            );
        }
        tracing::info!(
            snapshot = report.snapshot.as_deref().unwrap_or("none"),
            snapshots_skipped = report.snapshots_skipped.len(),
            records_replayed = report.records_replayed,
            bytes_dropped = report.cut.as_ref().map_or(0, |cut| cut.dropped_bytes),
            holds_expired_at_open,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "recovered"
        );
        Ok((engine, report))
    }

    /// Returns the log writer's counters, if the engine writes a log.
    pub fn log_stats(&self) -> Option<crate::wal::writer::LogStats> {
        self.journal.log().map(LogWriter::stats)
    }

    /// Shuts down cleanly: writes a snapshot (unless the policy turns it off), then
    /// stops the log writer after writing and syncing everything queued.
    ///
    /// A failed snapshot is returned after the log is stopped. The log still contains
    /// every change, so the next open recovers from it.
    pub fn close(mut self) -> Result<(), crate::snapshot::SnapshotError> {
        let snapshot = if self.snapshot_on_close() { self.snapshot().map(drop) } else { Ok(()) };
        if let Some(log) = self.journal.take_log() {
            log.shutdown()?;
        }
        snapshot
    }

    /// Applies one log record's effect to the objects that do not reflect it yet.
    fn replay(&self, record: Record, end_lsn: u64, filter: ReplayFilter) -> Result<(), String> {
        // The record's own time, as the operation used it: records from concurrent
        // callers reach the log slightly out of time order, so the clock's high-water
        // mark would stamp an earlier operation with a later caller's time.
        let now_ms = record.now_ms();
        self.clock.observe(now_ms);
        let disabled = Journal::default();
        let in_snapshot_catalog = end_lsn <= filter.catalog_lsn;
        let operation = |id, op_id, fingerprint| ReplayedOperation {
            now_ms,
            id,
            op_id,
            fingerprint,
            end_lsn,
            reservations_lsn: filter.reservations_lsn,
        };
        match record {
            Record::LocationUpserted { .. } | Record::ChannelUpserted { .. } | Record::PositionCreated { .. }
                if in_snapshot_catalog =>
            {
                Ok(())
            }
            Record::LocationUpserted {
                location,
                code,
                kind,
                lat,
                lon,
                methods,
                daily_capacity,
                active,
                routing,
                ..
            } => {
                let kind = LocationKind::from_code(kind).ok_or_else(|| format!("location kind {kind} is not known"))?;
                let methods = FulfilmentMethods::from_bits(methods)
                    .ok_or_else(|| format!("methods {methods:#x} are not known"))?;
                let spec = LocationSpec { code, kind, lat, lon, methods, daily_capacity, active, routing };
                self.catalog.upsert_location(&spec, &disabled, now_ms).map_err(|error| error.to_string())?;
                check_id("location", self.catalog.locations.get(&spec.code), location)
            }
            Record::ChannelUpserted { channel, code, may_sell_safety_stock, locations, .. } => {
                self.catalog
                    .upsert_channel(&code, may_sell_safety_stock, locations, &disabled, now_ms)
                    .map_err(|error| error.to_string())?;
                check_id("channel", self.catalog.channels.get(&code), channel)
            }
            Record::PositionCreated { position, sku_code, location, .. } => {
                // The record states that the position is new, so skip the lock-free lookup.
                let _writer = self.catalog.writer_lock();
                let created = self
                    .catalog
                    .ensure_position_locked(&sku_code, location, &disabled, now_ms)
                    .map_err(|error| error.to_string())?;
                check_id("position", Some(created), position)
            }
            Record::OnHandSet { position, on_hand, .. } => {
                self.replay_position(position, end_lsn, |counters| counters.on_hand = on_hand)
            }
            Record::SafetyStockSet { position, units, .. } => {
                self.replay_position(position, end_lsn, |counters| counters.safety_stock = units)
            }
            Record::Adjusted { position, previous, on_hand, in_shortage, op_id, fingerprint, .. } => {
                self.replay_position(position, end_lsn, |counters| counters.on_hand = on_hand)?;
                let change = crate::StockChange {
                    previous,
                    on_hand,
                    delta: i64::from(on_hand) - i64::from(previous),
                    in_shortage,
                    replayed: false,
                };
                self.replay_adjustment(&op_id, fingerprint, change, end_lsn, now_ms);
                Ok(())
            }
            Record::Reserved { now_ms, id, fingerprint, channel, policy, ttl_ms, lines, unresolved, routed } => self
                .replay_reserved(
                    ReservedFields { now_ms, id, fingerprint, channel, policy, ttl_ms, lines, unresolved, routed },
                    end_lsn,
                ),
            Record::Moved { id, op_id, fingerprint, kind, lines, .. } => {
                self.replay_moved(operation(&id, &op_id, fingerprint), kind, &lines)
            }
            Record::Extended { id, op_id, fingerprint, deadline_ms, .. } => {
                self.replay_extended(operation(&id, &op_id, fingerprint), deadline_ms)
            }
            Record::Expired { id, .. } => self.replay_expired(operation(&id, "", 0)),
            Record::SupplyAdded { receipt_id, position, quantity, arrival_ms, inbound, .. } => {
                self.replay_position(position, end_lsn, |counters| counters.on_hand = inbound)?;
                if end_lsn > filter.supply_lsn {
                    let receipt = crate::supply::Receipt { position, quantity, arrival_ms };
                    self.supply.ledger.lock().insert(&receipt_id, receipt);
                }
                Ok(())
            }
            Record::SupplyMoved { receipt_id, arrival_ms, .. } => {
                if end_lsn > filter.supply_lsn {
                    let mut ledger = self.supply.ledger.lock();
                    let receipt = ledger.receipts.get_mut(receipt_id.as_str());
                    receipt.ok_or_else(|| format!("move of unknown receipt {receipt_id}"))?.arrival_ms = arrival_ms;
                }
                Ok(())
            }
            Record::SupplyCancelled { receipt_id, position, inbound, .. } => {
                self.replay_position(position, end_lsn, |counters| counters.on_hand = inbound)?;
                if end_lsn > filter.supply_lsn {
                    self.supply
                        .ledger
                        .lock()
                        .remove(&receipt_id)
                        .ok_or_else(|| format!("cancel of unknown receipt {receipt_id}"))?;
                }
                Ok(())
            }
            // Upserts of the same rows in log order end in the same table, whether or
            // not the snapshot already had them.
            Record::PostalCodesUpserted { rows, .. } => {
                self.postal.upsert(&rows);
                Ok(())
            }
        }
    }

    fn replay_position(
        &self,
        index: u32,
        end_lsn: u64,
        change: impl FnOnce(&mut crate::position::Counters),
    ) -> Result<(), String> {
        if let Some(mut guard) = self.position_for_replay(index, end_lsn)? {
            change(&mut guard.counters);
        }
        Ok(())
    }
}

fn check_id(kind: &str, actual: Option<u32>, logged: u32) -> Result<(), String> {
    if actual == Some(logged) {
        Ok(())
    } else {
        Err(format!("{kind} got id {actual:?} on replay, the log says {logged}"))
    }
}
