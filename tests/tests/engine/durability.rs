//! Durability through the real file system: an engine rebuilt from its log has the
//! state the engine had when it stopped.

use std::sync::Arc;

use promesa_engine::wal::scan::ScanOptions;
use promesa_engine::wal::storage::{FsStorage, Storage};
use promesa_engine::wal::writer::LogConfig;
use promesa_engine::{
    AdjustReason, AdjustRequest, ConfirmRequest, Engine, EngineConfig, ExtendRequest, FulfilRequest, LineQuantity,
    LocationFilter, Policy, PositionAvailability, PositionRow, ReleaseFrom, ReleaseRequest, ReservationView,
    ReserveRequest, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS, line, reserve_one, warehouse};

const SKUS: [&str; 3] = ["SKU-A", "SKU-B", "SKU-C"];
const LOCATIONS: [&str; 2] = ["L0", "L1"];

fn open(storage: &Arc<dyn Storage>, now_ms: u64) -> (Engine, promesa_engine::RecoveryReport) {
    Engine::open(EngineConfig::default(), Arc::clone(storage), LogConfig::default(), ScanOptions::default(), now_ms)
        .expect("recovery succeeds")
}

/// Everything a client can read: every position for two channels, every reservation.
fn observe(engine: &Engine, ids: &[&str], now_ms: u64) -> (Vec<PositionAvailability>, Vec<Option<ReservationView>>) {
    let mut positions = Vec::new();
    for sku in SKUS {
        for location in LOCATIONS {
            for channel in [None, Some("pos")] {
                positions.push(engine.availability(sku, location, channel, now_ms).unwrap_or_default());
            }
        }
    }
    let reservations = ids.iter().map(|id| engine.get(id, now_ms)).collect();
    (positions, reservations)
}

#[test]
fn recovered_engine_equals_engine_before_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let (engine, report) = open(&storage, T0_MS);
    assert_eq!(report.records_replayed, 0);

    // Every kind of change, including a shortage, an expiry and op-id records.
    for location in LOCATIONS {
        engine.upsert_location(&warehouse(location)).unwrap();
    }
    engine.upsert_channel("pos", true).unwrap();
    let rows: Vec<PositionRow> = SKUS
        .iter()
        .map(|sku| PositionRow { sku: (*sku).into(), location: "L0".into(), on_hand: 20, safety_stock: Some(2) })
        .collect();
    engine.load_positions(&rows, T0_MS).unwrap();
    engine.set_on_hand("SKU-A", "L1", 5, T0_MS).unwrap();
    engine.set_safety_stock("SKU-B", "L1", 1, T0_MS).unwrap();
    let receipt = AdjustRequest {
        sku: "SKU-C".into(),
        location: "L1".into(),
        delta: 9,
        reason: AdjustReason::Receipt,
        op_id: "asn-1".into(),
    };
    engine.adjust_on_hand(&receipt, T0_MS).unwrap();

    let two_lines = ReserveRequest {
        reservation_id: "order-1".into(),
        channel: None,
        lines: vec![line("SKU-A", "L0", 4), line("SKU-B", "L0", 3)],
        policy: Policy::AllOrNothing,
        ttl_ms: TTL_15_MIN_MS,
    };
    assert!(engine.reserve(&two_lines, T0_MS).unwrap().held_all());
    let partial = ReserveRequest {
        reservation_id: "order-2".into(),
        channel: Some("pos".into()),
        lines: vec![line("SKU-A", "L1", 9), line("NEW-SKU", "L1", 1)],
        policy: Policy::Partial,
        ttl_ms: 60_000,
    };
    assert!(engine.reserve(&partial, T0_MS).unwrap().held_any());
    assert!(engine.reserve(&reserve_one("order-3", "SKU-C", "L0", 2), T0_MS).unwrap().held_all());
    assert!(engine.reserve(&reserve_one("order-4", "SKU-C", "L1", 3), T0_MS).unwrap().held_all());

    let three = Units::Lines(vec![LineQuantity { line: 0, quantity: 3 }]);
    engine
        .confirm(&ConfirmRequest { reservation_id: "order-1".into(), op_id: "c1".into(), units: three.clone() }, T0_MS)
        .unwrap();
    engine
        .fulfil(&FulfilRequest { reservation_id: "order-1".into(), op_id: "f1".into(), units: three }, T0_MS)
        .unwrap();
    let release = ReleaseRequest {
        reservation_id: "order-3".into(),
        op_id: "r1".into(),
        units: Units::All,
        from: ReleaseFrom::HeldFirst,
    };
    engine.release(&release, T0_MS).unwrap();
    let extend = ExtendRequest { reservation_id: "order-4".into(), op_id: "e1".into(), deadline_ms: T0_MS + 7_200_000 };
    engine.extend(&extend, T0_MS).unwrap();

    // A count finds less than is reserved: a shortage that recovery must keep.
    engine.set_on_hand("SKU-C", "L1", 1, T0_MS).unwrap();

    // order-2 expires (60 s TTL) before the restart; the others stay open.
    let later_ms = T0_MS + 120_000;
    assert_eq!(engine.sweep(later_ms).len(), 1);

    let ids = ["order-1", "order-2", "order-3", "order-4", "order-5"];
    let before = observe(&engine, &ids, later_ms);
    let stats_before = engine.stats();
    engine.close().unwrap();

    let (recovered, report) = open(&storage, later_ms);
    assert!(report.snapshot.is_some(), "closing wrote no snapshot: {report:?}");
    assert_eq!(report.cut, None);
    assert_eq!(report.holds_expired_at_open, 0);
    assert_eq!(observe(&recovered, &ids, later_ms), before);
    let stats_after = recovered.stats();
    assert_eq!(stats_after.positions_in_shortage, stats_before.positions_in_shortage);
    assert_eq!(stats_after.open_reservations, stats_before.open_reservations);
    recovered.audit().unwrap();

    // Retries are still recognized after the restart.
    assert!(recovered.adjust_on_hand(&receipt, later_ms).unwrap().replayed);
    assert!(recovered.release(&release, later_ms).unwrap().replayed);
    assert!(recovered.reserve(&two_lines, later_ms).unwrap().replayed);

    // Recovering twice gives the same state.
    recovered.close().unwrap();
    let (again, _) = open(&storage, later_ms);
    assert_eq!(observe(&again, &ids, later_ms), before);
    let totals = again.sku_availability("SKU-A", LocationFilter::All, None, true, later_ms).unwrap();
    assert_eq!(totals.locations.len(), 2);
    again.close().unwrap();
}

#[test]
fn hold_past_deadline_while_down_expires_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(dir.path()).unwrap());
    let (engine, _) = open(&storage, T0_MS);
    engine.upsert_location(&warehouse("L0")).unwrap();
    engine.set_on_hand("SKU-A", "L0", 5, T0_MS).unwrap();
    let mut request = reserve_one("order-1", "SKU-A", "L0", 5);
    request.ttl_ms = 60_000;
    assert!(engine.reserve(&request, T0_MS).unwrap().held_all());
    engine.close().unwrap();

    // Down for an hour: the hold expires at open, and its expiry is logged.
    let (recovered, report) = open(&storage, T0_MS + 3_600_000);
    assert_eq!(report.holds_expired_at_open, 1);
    assert_eq!(recovered.availability("SKU-A", "L0", None, T0_MS + 3_600_000).unwrap().atp, 5);
    recovered.close().unwrap();

    let (again, report) = open(&storage, T0_MS + 3_600_001);
    assert_eq!(report.holds_expired_at_open, 0);
    assert_eq!(again.stats().holds_expired, 1);
    assert_eq!(again.availability("SKU-A", "L0", None, T0_MS + 3_600_001).unwrap().atp, 5);
    again.close().unwrap();
}

#[test]
fn batch_is_durable_when_it_returns() {
    use promesa_engine::wal::sim::SimStorage;

    let disk = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    let (engine, _) = open(&storage, T0_MS);
    engine.upsert_location(&warehouse("L0")).unwrap();
    engine.set_on_hand("SKU-A", "L0", 100, T0_MS).unwrap();

    let held = engine
        .batch(|| {
            (0..20)
                .map(|index| engine.reserve(&reserve_one(&format!("order-{index}"), "SKU-A", "L0", 2), T0_MS))
                .filter(|outcome| outcome.as_ref().is_ok_and(|outcome| outcome.held_all()))
                .count()
        })
        .unwrap();
    assert_eq!(held, 20);

    // A crash right after the batch returned, losing every write not yet synced.
    let image: Arc<dyn Storage> = Arc::new(disk.crash_image(|_| (0, 0)));
    let (recovered, _) = open(&image, T0_MS);
    assert_eq!(recovered.availability("SKU-A", "L0", None, T0_MS).unwrap().reserved, 40);
    for index in 0..20 {
        assert!(recovered.get(&format!("order-{index}"), T0_MS).is_some(), "order-{index} was lost");
    }
    engine.close().unwrap();
}

mod crash_points {
    //! Random operations on a durable engine over a simulated disk, crashed at random
    //! points: the engine recovered from what the disk kept must equal the engine that
    //! kept running, because every call returned only once its records were synced.

    use std::sync::Arc;

    use promesa_engine::wal::scan::ScanOptions;
    use promesa_engine::wal::sim::SimStorage;
    use promesa_engine::wal::storage::Storage;
    use promesa_engine::wal::writer::LogConfig;
    use promesa_engine::{
        AdjustReason, AdjustRequest, ConfirmRequest, Engine, EngineConfig, ExtendRequest, FulfilRequest, LineQuantity,
        Policy, PositionAvailability, ReleaseFrom, ReleaseRequest, ReservationView, ReserveRequest, Units,
    };
    use promesa_tests::{T0_MS, line, warehouse};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::{LOCATIONS, SKUS, observe};

    /// Random sequences, and operations in each.
    const SEQUENCES: usize = 12;
    const OPERATIONS: usize = 150;

    /// Chance of a crash after each operation.
    const CRASH_PROBABILITY: f64 = 0.05;

    fn open(storage: &SimStorage, now_ms: u64) -> Engine {
        let storage: Arc<dyn Storage> = Arc::new(storage.clone());
        let config = LogConfig { segment_bytes_max: 2_048, ..LogConfig::default() };
        Engine::open(EngineConfig::default(), storage, config, ScanOptions::default(), now_ms).expect("recovery").0
    }

    fn random_units(rng: &mut StdRng) -> Units {
        if rng.gen_bool(0.5) {
            Units::All
        } else {
            Units::Lines(vec![LineQuantity { line: rng.gen_range(0..2), quantity: rng.gen_range(1..4) }])
        }
    }

    /// Applies one random operation; errors and refusals are part of the workload.
    fn random_operation(engine: &Engine, rng: &mut StdRng, step: usize, now_ms: u64) {
        let sku = SKUS[rng.gen_range(0..SKUS.len())];
        let location = LOCATIONS[rng.gen_range(0..LOCATIONS.len())];
        let id = format!("order-{}", rng.gen_range(0..30));
        let op_id = format!("op-{step}");
        match rng.gen_range(0..11) {
            10 => {
                engine.snapshot().expect("a snapshot on a healthy disk succeeds");
            }
            0 => {
                let _ = engine.set_on_hand(sku, location, rng.gen_range(0..12), now_ms);
            }
            1 => {
                let adjust = AdjustRequest {
                    sku: sku.into(),
                    location: location.into(),
                    delta: rng.gen_range(-3..6),
                    reason: AdjustReason::Correction,
                    op_id: format!("adjust-{}", rng.gen_range(0..20)),
                };
                let _ = engine.adjust_on_hand(&adjust, now_ms);
            }
            2 => {
                let _ = engine.set_safety_stock(sku, location, rng.gen_range(0..3), now_ms);
            }
            3 | 4 => {
                let other = SKUS[rng.gen_range(0..SKUS.len())];
                let request = ReserveRequest {
                    reservation_id: id,
                    channel: rng.gen_bool(0.2).then(|| "pos".to_owned()),
                    lines: vec![line(sku, location, rng.gen_range(1..5)), line(other, location, rng.gen_range(1..3))],
                    policy: if rng.gen_bool(0.5) { Policy::AllOrNothing } else { Policy::Partial },
                    ttl_ms: rng.gen_range(1_000..120_000),
                };
                let _ = engine.reserve(&request, now_ms);
            }
            5 => {
                let _ = engine.confirm(&ConfirmRequest { reservation_id: id, op_id, units: random_units(rng) }, now_ms);
            }
            6 => {
                let from = [ReleaseFrom::HeldFirst, ReleaseFrom::Held, ReleaseFrom::Allocated][rng.gen_range(0..3)];
                let request = ReleaseRequest { reservation_id: id, op_id, units: random_units(rng), from };
                let _ = engine.release(&request, now_ms);
            }
            7 => {
                let _ = engine.fulfil(&FulfilRequest { reservation_id: id, op_id, units: random_units(rng) }, now_ms);
            }
            8 => {
                let deadline_ms = now_ms + rng.gen_range(1_000..300_000);
                let _ = engine.extend(&ExtendRequest { reservation_id: id, op_id, deadline_ms }, now_ms);
            }
            _ => {
                engine.sweep(now_ms);
            }
        }
    }

    /// Clears the close time of reservations that closed at or after their deadline,
    /// which an expiry may have done. An expiry that a sweep made is not acknowledged
    /// to any client, so its record may be lost in a crash. Recovery then expires the hold
    /// again at open, with the same effect but a later close time.
    fn comparable(
        (positions, mut reservations): (Vec<PositionAvailability>, Vec<Option<ReservationView>>),
    ) -> (Vec<PositionAvailability>, Vec<Option<ReservationView>>) {
        for view in reservations.iter_mut().flatten() {
            if view.ended_ms.is_some_and(|ended_ms| ended_ms >= view.deadline_ms) {
                view.ended_ms = None;
            }
        }
        (positions, reservations)
    }

    #[test]
    fn recovery_after_crash_equals_running_engine() {
        let seed = promesa_tests::seed("recovery_after_crash_equals_running_engine", 0x5EED_D15C);
        let mut rng = StdRng::seed_from_u64(seed);
        let ids: Vec<String> = (0..30).map(|index| format!("order-{index}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();

        for sequence in 0..SEQUENCES {
            let storage = SimStorage::new();
            let engine = open(&storage, T0_MS);
            for location in LOCATIONS {
                engine.upsert_location(&warehouse(location)).unwrap();
            }
            engine.upsert_channel("pos", true).unwrap();
            let mut now_ms = T0_MS;

            for step in 0..OPERATIONS {
                now_ms += rng.gen_range(0..3_000);
                random_operation(&engine, &mut rng, step, now_ms);
                if !rng.gen_bool(CRASH_PROBABILITY) {
                    continue;
                }

                // Crash: keep the synced bytes and a random part of what was not synced.
                let image = storage.crash_image(|pending| {
                    let whole = rng.gen_range(0..=pending);
                    (whole, rng.gen_range(0..64))
                });
                let recovered = open(&image, now_ms);
                let place = format!("seed {seed}, sequence {sequence}, step {step}");
                let expected = comparable(observe(&engine, &id_refs, now_ms));
                assert_eq!(comparable(observe(&recovered, &id_refs, now_ms)), expected, "{place}");
                assert!(recovered.audit().is_ok(), "{place}: {:?}", recovered.audit());
                assert_eq!(recovered.stats().oversold, 0, "{place}");
                recovered.close().unwrap();

                // A second recovery of the same disk gives the same state again.
                let again = open(&image, now_ms);
                assert_eq!(comparable(observe(&again, &id_refs, now_ms)), expected, "{place}, again");
                again.close().unwrap();
            }
            engine.close().unwrap();
        }
    }
}
