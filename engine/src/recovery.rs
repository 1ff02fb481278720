//! Opening a durable engine: replay the write-ahead log into a fresh engine, cut a torn
//! tail, attach the log writer, and expire the holds whose deadline passed while the
//! process was down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::catalog::{FulfilmentMethods, LocationKind, LocationSpec};
use crate::journal::Journal;
use crate::reservation::replay::ReservedFields;
use crate::wal::record::Record;
use crate::wal::scan::{Cut, ScanError, ScanOptions, scan};
use crate::wal::storage::Storage;
use crate::wal::writer::{LogConfig, LogError, LogWriter};
use crate::{Engine, EngineConfig};

/// The result of a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
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

        let scan_report = scan(&*storage, 0, scan_options, |record| {
            let record = Record::decode(record.record_type, record.payload).map_err(|error| error.to_string())?;
            engine.replay(record)
        })?;
        engine.journal = Journal::new(Some(LogWriter::open(storage, scan_report.end_lsn, log_config)?));

        // Holds that expired while the process was down, logged like any expiry.
        engine.journal.begin()?;
        let holds_expired_at_open = engine.sweep(now_ms).len();
        engine.journal.acknowledge()?;

        let report = RecoveryReport {
            records_replayed: scan_report.records,
            segments: scan_report.segments,
            cut: scan_report.cut,
            holds_expired_at_open,
            end_lsn: scan_report.end_lsn,
            elapsed: started.elapsed(),
        };
        Ok((engine, report))
    }

    /// Returns the log writer's counters, if the engine writes a log.
    pub fn log_stats(&self) -> Option<crate::wal::writer::LogStats> {
        self.journal.log().map(LogWriter::stats)
    }

    /// Stops the log writer after writing and syncing everything queued.
    pub fn close(mut self) -> Result<(), LogError> {
        match self.journal.take_log() {
            Some(log) => log.shutdown(),
            None => Ok(()),
        }
    }

    /// Applies one log record's effect.
    fn replay(&self, record: Record) -> Result<(), String> {
        let now_ms = self.clock.observe(record.now_ms());
        let disabled = Journal::default();
        match record {
            Record::LocationUpserted { location, code, kind, lat, lon, methods, daily_capacity, active, .. } => {
                let kind = match kind {
                    0 => LocationKind::Warehouse,
                    1 => LocationKind::Store,
                    2 => LocationKind::DarkStore,
                    3 => LocationKind::DropShipVendor,
                    other => return Err(format!("location kind {other} is not known")),
                };
                let methods = FulfilmentMethods::from_bits(methods)
                    .ok_or_else(|| format!("methods {methods:#x} are not known"))?;
                let spec = LocationSpec { code, kind, lat, lon, methods, daily_capacity, active };
                self.catalog.upsert_location(&spec, &disabled, now_ms).map_err(|error| error.to_string())?;
                check_id("location", self.catalog.locations.get(&spec.code), location)
            }
            Record::ChannelUpserted { channel, code, may_sell_safety_stock, .. } => {
                self.catalog
                    .upsert_channel(&code, may_sell_safety_stock, &disabled, now_ms)
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
                self.replay_position(position, |counters| counters.on_hand = on_hand)
            }
            Record::SafetyStockSet { position, units, .. } => {
                self.replay_position(position, |counters| counters.safety_stock = units)
            }
            Record::Adjusted { position, previous, on_hand, in_shortage, op_id, fingerprint, .. } => {
                self.replay_position(position, |counters| counters.on_hand = on_hand)?;
                let change = crate::StockChange {
                    previous,
                    on_hand,
                    delta: i64::from(on_hand) - i64::from(previous),
                    in_shortage,
                    replayed: false,
                };
                self.replay_adjustment(&op_id, fingerprint, change, now_ms);
                Ok(())
            }
            Record::Reserved { now_ms, id, fingerprint, channel, policy, ttl_ms, lines, unresolved } => self
                .replay_reserved(ReservedFields {
                    now_ms,
                    id,
                    fingerprint,
                    channel,
                    policy,
                    ttl_ms,
                    lines,
                    unresolved,
                }),
            Record::Moved { id, op_id, fingerprint, kind, lines, .. } => {
                self.replay_moved(now_ms, &id, &op_id, fingerprint, kind, &lines)
            }
            Record::Extended { id, op_id, fingerprint, deadline_ms, .. } => {
                self.replay_extended(now_ms, &id, &op_id, fingerprint, deadline_ms)
            }
            Record::Expired { id, .. } => self.replay_expired(now_ms, &id),
        }
    }

    fn replay_position(&self, index: u32, change: impl FnOnce(&mut crate::position::Counters)) -> Result<(), String> {
        if index as usize >= self.catalog.position_count() {
            return Err(format!("position {index} does not exist"));
        }
        let mut guard = self.catalog.position(index).lock(&self.counters.positions_in_shortage);
        change(&mut guard.counters);
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
