//! Inbound supply: expected receipts, availability by a time, the earliest time a
//! quantity is available, and backorders against inbound units.

use std::sync::Arc;

use promesa_engine::supply::{SupplyError, SupplyRequest};
use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::storage::{FsStorage, Storage};
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{
    ConfirmRequest, Engine, EngineConfig, FulfilRequest, LineStatus, LocationFilter, Policy, ReleaseFrom,
    ReleaseRequest, ReserveRequest, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS, engine_with_locations, line, warehouse};

const DAY_MS: u64 = 24 * 60 * 60 * 1_000;

fn receipt(id: &str, quantity: u64, day: u64) -> SupplyRequest {
    SupplyRequest {
        receipt_id: id.into(),
        sku: "CONSOLE".into(),
        location: "L0".into(),
        quantity,
        arrival_ms: T0_MS + day * DAY_MS,
    }
}

fn backorder(id: &str, quantity: u64) -> ReserveRequest {
    ReserveRequest {
        reservation_id: id.into(),
        channel: None,
        lines: vec![line("CONSOLE", "L0", quantity)],
        policy: Policy::Backorder,
        ttl_ms: TTL_15_MIN_MS,
    }
}

fn by_day(engine: &Engine, day: u64) -> u64 {
    engine.availability_by("CONSOLE", "L0", None, T0_MS + day * DAY_MS, T0_MS).unwrap().available
}

#[test]
fn a_receipt_counts_from_its_arrival_and_moves_with_it() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("CONSOLE", "L0", 0, T0_MS).unwrap();
    engine.add_supply(&receipt("PO-1", 500, 30), T0_MS).unwrap();

    assert_eq!(by_day(&engine, 10), 0);
    assert_eq!(by_day(&engine, 30), 500);
    assert_eq!(engine.availability("CONSOLE", "L0", None, T0_MS).unwrap().atp, 0, "current ATP ignores inbound");
    assert_eq!(engine.earliest_available("CONSOLE", "L0", None, 200, T0_MS).unwrap(), Some(T0_MS + 30 * DAY_MS));
    assert_eq!(engine.earliest_available("CONSOLE", "L0", None, 501, T0_MS).unwrap(), None);

    engine.move_supply("PO-1", T0_MS + 40 * DAY_MS, T0_MS).unwrap();
    assert_eq!(by_day(&engine, 30), 0);
    assert_eq!(by_day(&engine, 40), 500);
    assert_eq!(engine.earliest_available("CONSOLE", "L0", None, 1, T0_MS).unwrap(), Some(T0_MS + 40 * DAY_MS));
}

#[test]
fn a_backorder_is_reported_per_line_and_reduces_later_promises() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("CONSOLE", "L0", 2, T0_MS).unwrap();
    engine.add_supply(&receipt("PO-1", 500, 30), T0_MS).unwrap();
    assert_eq!(by_day(&engine, 30), 502);

    // Two units on hand are held as usual; a larger line goes against the receipt.
    let now = engine.reserve(&backorder("now", 2), T0_MS).unwrap();
    assert_eq!(now.lines[0].status, LineStatus::Held);
    let later = engine.reserve(&backorder("pre-order", 120), T0_MS).unwrap();
    assert_eq!(later.lines[0].status, LineStatus::Backordered);
    assert_eq!(later.lines[0].held, 120);
    assert_eq!(engine.get("pre-order", T0_MS).unwrap().lines[0].status, LineStatus::Backordered);

    let current = engine.availability("CONSOLE", "L0", None, T0_MS).unwrap();
    assert_eq!((current.reserved, current.atp), (2, 0), "backordered units are not reserved");
    assert_eq!(by_day(&engine, 10), 0);
    assert_eq!(by_day(&engine, 30), 380);
    let timed = engine.availability_by("CONSOLE", "L0", None, T0_MS + 30 * DAY_MS, T0_MS).unwrap();
    assert_eq!((timed.inbound_by, timed.backordered), (500, 120));

    // More than the free inbound supply cannot be backordered.
    let refused = engine.reserve(&backorder("too-many", 381), T0_MS).unwrap();
    assert_eq!(refused.lines[0].status, LineStatus::InsufficientAtp);
    assert!(engine.get("too-many", T0_MS).is_none());
    // Without the backorder policy the receipt is not used.
    let plain = engine.reserve(&promesa_tests::reserve_one("plain", "CONSOLE", "L0", 1), T0_MS).unwrap();
    assert_eq!(plain.lines[0].status, LineStatus::InsufficientAtp);

    // A confirmed backorder stays backordered; it cannot ship before the stock arrives.
    let confirm = ConfirmRequest { reservation_id: "pre-order".into(), op_id: "c".into(), units: Units::All };
    engine.confirm(&confirm, T0_MS).unwrap();
    assert_eq!(by_day(&engine, 30), 380);
    let fulfil = FulfilRequest { reservation_id: "pre-order".into(), op_id: "f".into(), units: Units::All };
    assert!(matches!(
        engine.fulfil(&fulfil, T0_MS),
        Err(promesa_engine::error::ReservationError::Backordered { line: 0, .. })
    ));

    // The receipt cannot be cancelled under the backorder; once released, it can.
    let error = engine.cancel_supply("PO-1", T0_MS).unwrap_err();
    assert!(matches!(error, SupplyError::Backordered { backordered: 120, inbound_left: 0, .. }), "{error}");
    let release = ReleaseRequest {
        reservation_id: "pre-order".into(),
        op_id: "r".into(),
        units: Units::All,
        from: ReleaseFrom::HeldFirst,
    };
    engine.release(&release, T0_MS).unwrap();
    assert_eq!(by_day(&engine, 30), 500);
    engine.cancel_supply("PO-1", T0_MS).unwrap();
    assert_eq!(by_day(&engine, 365), 0);
}

#[test]
fn an_expired_backorder_frees_the_inbound_units() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("CONSOLE", "L0", 0, T0_MS).unwrap();
    engine.add_supply(&receipt("PO-1", 10, 5), T0_MS).unwrap();
    let mut request = backorder("short", 10);
    request.ttl_ms = 1_000;
    assert_eq!(engine.reserve(&request, T0_MS).unwrap().lines[0].status, LineStatus::Backordered);
    assert_eq!(by_day(&engine, 5), 0);
    assert_eq!(engine.sweep(T0_MS + 1_000).len(), 1);
    assert_eq!(engine.availability_by("CONSOLE", "L0", None, T0_MS + 5 * DAY_MS, T0_MS + 1_000).unwrap().available, 10);
}

#[test]
fn receipts_are_checked_and_idempotent() {
    let engine = engine_with_locations(1);
    engine.add_supply(&receipt("PO-1", 5, 1), T0_MS).unwrap();
    let again = engine.add_supply(&receipt("PO-1", 5, 1), T0_MS).unwrap();
    assert!(again.replayed);
    assert_eq!(again.inbound, 5);
    assert!(matches!(
        engine.add_supply(&receipt("PO-1", 6, 1), T0_MS),
        Err(SupplyError::IdReusedWithDifferentContent { .. })
    ));
    assert_eq!(
        engine.add_supply(&receipt("PO-2", 0, 1), T0_MS).unwrap_err().to_string(),
        "receipt PO-2: quantity 0 is outside 1..=4294967295 or takes the inbound total past it"
    );
    let mut unknown = receipt("PO-3", 1, 1);
    unknown.location = "NOWHERE".into();
    assert_eq!(
        engine.add_supply(&unknown, T0_MS).unwrap_err().to_string(),
        "location NOWHERE is not known; upsert the location first"
    );
    assert!(matches!(engine.move_supply("PO-9", T0_MS, T0_MS), Err(SupplyError::UnknownReceipt { .. })));
    assert!(matches!(engine.cancel_supply("PO-9", T0_MS), Err(SupplyError::UnknownReceipt { .. })));

    // Inbound units never appear as a location of the SKU.
    let all = engine.sku_availability("CONSOLE", LocationFilter::All, None, true, T0_MS).unwrap();
    assert_eq!(all.locations.len(), 0, "{all:?}");
}

#[test]
fn receipts_and_backorders_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let open = || {
        Engine::open(EngineConfig::default(), Arc::clone(&storage), LogConfig::default(), ScanOptions::default(), T0_MS)
            .unwrap()
    };
    let (engine, _) = open();
    engine.upsert_location(&warehouse("L0")).unwrap();
    engine.set_on_hand("CONSOLE", "L0", 1, T0_MS).unwrap();
    engine.add_supply(&receipt("PO-1", 50, 30), T0_MS).unwrap();
    engine.add_supply(&receipt("PO-2", 70, 60), T0_MS).unwrap();
    engine.move_supply("PO-2", T0_MS + 45 * DAY_MS, T0_MS).unwrap();
    engine.reserve(&backorder("pre-order", 60), T0_MS).unwrap();
    let expected: Vec<u64> = [10, 30, 45].iter().map(|&day| by_day(&engine, day)).collect();
    assert_eq!(expected, vec![1, 1, 61]);
    drop(engine);

    let (engine, report) = open();
    assert!(report.snapshot.is_none());
    assert_eq!([10, 30, 45].map(|day| by_day(&engine, day)).to_vec(), expected, "from the log");
    engine.snapshot().unwrap();
    engine.cancel_supply("PO-2", T0_MS).unwrap_err();
    drop(engine);

    let (engine, report) = open();
    assert!(report.snapshot.is_some());
    assert_eq!([10, 30, 45].map(|day| by_day(&engine, day)).to_vec(), expected, "from a snapshot");
    assert_eq!(engine.get("pre-order", T0_MS).unwrap().lines[0].status, LineStatus::Backordered);
}
