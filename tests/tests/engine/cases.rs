//! Named cases of the engine's semantics, each a test of its own.

use promesa_engine::error::ReservationError;
use promesa_engine::{AdjustReason, AdjustRequest};
use promesa_engine::{
    ConfirmRequest, Engine, EngineConfig, FulfilRequest, LineQuantity, LineStatus, Policy, ReleaseFrom, ReleaseRequest,
    ReservationState, ReserveRequest, Units,
};
use promesa_tests::{T0_MS, TTL_15_MIN_MS, engine_with_locations, line, reserve_one};

fn atp(engine: &promesa_engine::Engine, sku: &str, location: &str, now_ms: u64) -> i64 {
    engine.availability(sku, location, None, now_ms).unwrap().atp
}

#[test]
fn two_lines_same_position_checked_against_sum() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 5, T0_MS).unwrap();
    let mut request = ReserveRequest {
        reservation_id: "order-1".into(),
        channel: None,
        lines: vec![line("SKU", "L0", 3), line("SKU", "L0", 3)],
        policy: Policy::AllOrNothing,
        ttl_ms: TTL_15_MIN_MS,
    };

    let refused = engine.reserve(&request, T0_MS).unwrap();
    assert!(!refused.held_any());
    assert_eq!(refused.lines[0].status, LineStatus::InsufficientAtp);
    assert_eq!(refused.lines[1].status, LineStatus::InsufficientAtp);
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS), 5);
    assert!(engine.get("order-1", T0_MS).is_none());

    request.policy = Policy::Partial;
    let partial = engine.reserve(&request, T0_MS).unwrap();
    assert_eq!(partial.lines[0].held, 3);
    assert_eq!(partial.lines[0].status, LineStatus::Held);
    assert_eq!(partial.lines[1].held, 2);
    assert_eq!(partial.lines[1].status, LineStatus::PartiallyHeld);
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS), 0);
}

#[test]
fn hold_confirm_fulfil_release_returns_rest_once() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 20, T0_MS).unwrap();
    assert!(engine.reserve(&reserve_one("order-1", "SKU", "L0", 10), T0_MS).unwrap().held_all());

    let seven = Units::Lines(vec![LineQuantity { line: 0, quantity: 7 }]);
    let confirm = ConfirmRequest { reservation_id: "order-1".into(), op_id: "c1".into(), units: seven.clone() };
    engine.confirm(&confirm, T0_MS).unwrap();
    let fulfil = FulfilRequest { reservation_id: "order-1".into(), op_id: "f1".into(), units: seven };
    engine.fulfil(&fulfil, T0_MS).unwrap();
    let release = ReleaseRequest {
        reservation_id: "order-1".into(),
        op_id: "r1".into(),
        units: Units::All,
        from: ReleaseFrom::HeldFirst,
    };
    let released = engine.release(&release, T0_MS).unwrap();
    assert_eq!(released.moved.as_slice(), &[3]);
    assert_eq!(released.state, ReservationState::Fulfilled);

    // The retry returns the first outcome and returns no unit twice.
    assert!(engine.release(&release, T0_MS).unwrap().replayed);
    let position = engine.availability("SKU", "L0", None, T0_MS).unwrap();
    assert_eq!(position.on_hand, 13);
    assert_eq!(position.reserved, 0);
    assert_eq!(position.allocated, 0);
    assert_eq!(position.atp, 13);
    engine.audit().unwrap();
}

#[test]
fn count_to_zero_then_release_shows_shortage() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 2, T0_MS).unwrap();
    assert!(engine.reserve(&reserve_one("order-1", "SKU", "L0", 2), T0_MS).unwrap().held_all());

    let change = engine.set_on_hand("SKU", "L0", 0, T0_MS).unwrap();
    assert_eq!(change.delta, -2);
    assert!(change.in_shortage);
    let position = engine.availability("SKU", "L0", None, T0_MS).unwrap();
    assert_eq!(position.atp, -2);
    assert!(position.in_shortage);
    assert_eq!(engine.stats().positions_in_shortage, 1);

    let release = ReleaseRequest {
        reservation_id: "order-1".into(),
        op_id: "r1".into(),
        units: Units::All,
        from: ReleaseFrom::HeldFirst,
    };
    engine.release(&release, T0_MS).unwrap();
    let position = engine.availability("SKU", "L0", None, T0_MS).unwrap();
    assert_eq!(position.reserved, 0);
    assert_eq!(position.atp, 0);
    assert_eq!(engine.stats().positions_in_shortage, 0);
    assert_eq!(engine.stats().oversold, 0);
    engine.audit().unwrap();
}

#[test]
fn safety_stock_limits_online_channel() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 5, T0_MS).unwrap();
    engine.set_safety_stock("SKU", "L0", 2, T0_MS).unwrap();

    assert!(!engine.reserve(&reserve_one("order-1", "SKU", "L0", 5), T0_MS).unwrap().held_any());
    assert!(engine.reserve(&reserve_one("order-2", "SKU", "L0", 3), T0_MS).unwrap().held_all());
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS), 0);

    // A store's point of sale may sell the safety stock.
    engine.upsert_channel("pos", true).unwrap();
    let mut pos = reserve_one("order-3", "SKU", "L0", 2);
    pos.channel = Some("pos".into());
    assert!(engine.reserve(&pos, T0_MS).unwrap().held_all());
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS), -2);
    assert_eq!(engine.stats().positions_in_shortage, 0);
}

#[test]
fn expired_hold_frees_atp_before_sweep() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 4, T0_MS).unwrap();
    let mut request = reserve_one("order-1", "SKU", "L0", 4);
    request.ttl_ms = 60_000;
    let outcome = engine.reserve(&request, T0_MS).unwrap();
    assert_eq!(outcome.deadline_ms, T0_MS + 60_000);
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS + 59_999), 0);

    // At the deadline the hold counts as free for reads and reserves alike.
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS + 60_000), 4);
    assert!(engine.reserve(&reserve_one("order-2", "SKU", "L0", 4), T0_MS + 60_000).unwrap().held_all());

    // The expiry happened exactly once, and the confirm that came too late gets `Expired`.
    let events = engine.sweep(T0_MS + 120_000);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reservation_id, "order-1");
    assert!(engine.sweep(T0_MS + 180_000).is_empty());
    let confirm = ConfirmRequest { reservation_id: "order-1".into(), op_id: "c1".into(), units: Units::All };
    assert!(matches!(engine.confirm(&confirm, T0_MS + 180_000), Err(ReservationError::Expired { .. })));
    assert_eq!(engine.get("order-1", T0_MS + 180_000).unwrap().state, ReservationState::Expired);
    engine.audit().unwrap();
}

#[test]
fn repeated_reserve_returns_first_outcome() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 3, T0_MS).unwrap();
    let request = reserve_one("order-1", "SKU", "L0", 3);
    let first = engine.reserve(&request, T0_MS).unwrap();
    assert!(first.held_all());

    engine.set_on_hand("SKU", "L0", 100, T0_MS + 1).unwrap();
    let again = engine.reserve(&request, T0_MS + 2).unwrap();
    assert!(again.replayed);
    assert_eq!(again.lines, first.lines);
    assert_eq!(again.deadline_ms, first.deadline_ms);
    assert_eq!(atp(&engine, "SKU", "L0", T0_MS + 2), 97);

    let different = reserve_one("order-1", "SKU", "L0", 2);
    let error = engine.reserve(&different, T0_MS + 3).unwrap_err();
    assert_eq!(
        error.to_string(),
        "reservation id order-1 already names a reservation with different channel, lines, policy or TTL"
    );
}

fn release_all(id: &str, op_id: &str) -> ReleaseRequest {
    ReleaseRequest { reservation_id: id.into(), op_id: op_id.into(), units: Units::All, from: ReleaseFrom::HeldFirst }
}

#[test]
fn ended_reservation_forgotten_after_retention() {
    let config = EngineConfig { retention_ms: 60_000, ..EngineConfig::default() };
    let engine = Engine::new(config);
    engine.upsert_location(&promesa_tests::warehouse("L0")).unwrap();
    engine.set_on_hand("SKU", "L0", 10, T0_MS).unwrap();
    assert!(engine.reserve(&reserve_one("order-1", "SKU", "L0", 4), T0_MS).unwrap().held_all());
    engine.release(&release_all("order-1", "r1"), T0_MS + 1_000).unwrap();

    // Within the retention a retry gets the first outcome.
    assert!(engine.release(&release_all("order-1", "r1"), T0_MS + 60_999).unwrap().replayed);
    assert_eq!(engine.stats().ended_reservations_kept, 1);

    // Past it the id is forgotten: counted, and a retry is no longer recognized.
    engine.sweep(T0_MS + 61_000);
    let stats = engine.stats();
    assert_eq!(stats.ended_reservations_kept, 0);
    assert_eq!(stats.forgotten_by_retention, 1);
    assert_eq!(stats.retention_achieved_ms, 60_000);
    assert!(engine.get("order-1", T0_MS + 61_000).is_none());
    assert!(matches!(
        engine.release(&release_all("order-1", "r1"), T0_MS + 61_000),
        Err(ReservationError::UnknownReservation { .. })
    ));

    // A reserve with the forgotten id is judged afresh.
    let again = engine.reserve(&reserve_one("order-1", "SKU", "L0", 4), T0_MS + 61_000).unwrap();
    assert!(!again.replayed);
    assert_eq!(engine.availability("SKU", "L0", None, T0_MS + 61_000).unwrap().atp, 6);
}

#[test]
fn ended_reservation_bound_forgets_oldest_first() {
    // The bound is split over 64 shards, so 64 is one ended reservation per shard.
    let config = EngineConfig { ended_reservations_max: 64, ..EngineConfig::default() };
    let engine = Engine::new(config);
    engine.upsert_location(&promesa_tests::warehouse("L0")).unwrap();
    engine.set_on_hand("SKU", "L0", 1_000_000, T0_MS).unwrap();
    let count = 2_000u64;
    for index in 0..count {
        let id = format!("order-{index}");
        let now_ms = T0_MS + index;
        assert!(engine.reserve(&reserve_one(&id, "SKU", "L0", 1), now_ms).unwrap().held_all());
        engine.release(&release_all(&id, "r1"), now_ms).unwrap();
    }

    let stats = engine.stats();
    assert!(stats.ended_reservations_kept <= 64, "kept {}", stats.ended_reservations_kept);
    assert_eq!(stats.forgotten_by_bound + stats.ended_reservations_kept, count);
    assert!(stats.retention_achieved_ms < 24 * 60 * 60 * 1_000, "{stats:?}");
    // The newest ended reservation is still known; the oldest is not.
    assert!(engine.get(&format!("order-{}", count - 1), T0_MS + count).is_some());
    assert!(engine.get("order-0", T0_MS + count).is_none());
    assert_eq!(engine.stats().open_reservations, 0);
    engine.audit().unwrap();
}

#[test]
fn open_reservation_never_forgotten() {
    let config = EngineConfig { retention_ms: 1_000, ended_reservations_max: 64, ..EngineConfig::default() };
    let engine = Engine::new(config);
    engine.upsert_location(&promesa_tests::warehouse("L0")).unwrap();
    engine.set_on_hand("SKU", "L0", 10, T0_MS).unwrap();
    assert!(engine.reserve(&reserve_one("order-1", "SKU", "L0", 2), T0_MS).unwrap().held_all());
    let confirm = ConfirmRequest { reservation_id: "order-1".into(), op_id: "c1".into(), units: Units::All };
    engine.confirm(&confirm, T0_MS).unwrap();

    // Allocated units never expire, and the reservation outlives any retention.
    let much_later_ms = T0_MS + 30 * 24 * 60 * 60 * 1_000;
    engine.sweep(much_later_ms);
    let view = engine.get("order-1", much_later_ms).unwrap();
    assert_eq!(view.state, ReservationState::Confirmed);
    assert!(engine.confirm(&confirm, much_later_ms).unwrap().replayed);
}

#[test]
fn line_status_codes_are_stable() {
    let codes = [
        (LineStatus::Held, 0),
        (LineStatus::PartiallyHeld, 1),
        (LineStatus::UnknownSku, 2),
        (LineStatus::UnknownLocation, 3),
        (LineStatus::InactiveLocation, 4),
        (LineStatus::InsufficientAtp, 5),
        (LineStatus::NotAttempted, 6),
    ];
    for (status, code) in codes {
        assert_eq!(status.code(), code, "{status:?}");
    }
}

#[test]
fn invalid_requests_name_field_value_and_limit() {
    let engine = engine_with_locations(1);
    engine.set_on_hand("SKU", "L0", 5, T0_MS).unwrap();
    let check = |request: ReserveRequest, expected: &str| {
        let error = engine.reserve(&request, T0_MS).unwrap_err();
        assert_eq!(error.to_string(), expected);
    };

    let mut request = reserve_one("order-1", "SKU", "L0", 0);
    check(request.clone(), "line 0: quantity 0 is outside 1..=1000000000");
    request.lines[0].quantity = 1_000_000_001;
    check(request.clone(), "line 0: quantity 1000000001 is outside 1..=1000000000");
    request.lines[0].quantity = 1;
    request.ttl_ms = 999;
    check(request.clone(), "ttl_ms 999 is outside 1000..=604800000 (1 s to 7 days)");
    request.ttl_ms = TTL_15_MIN_MS;
    request.reservation_id = "x".repeat(129);
    check(request.clone(), "reservation_id is 129 bytes long; the limit is 128 bytes");
    request.reservation_id = "order-1".into();
    request.lines.clear();
    check(request.clone(), "reservation order-1 has no lines; a reservation has 1 to 1000 lines");
    request.lines = vec![line("SKU", "L0\u{7}", 1)];
    check(request.clone(), "line 0: location \"L0\\u{7}\" contains a control character");
    request.lines = vec![line("SKU", "L0", 1)];
    request.channel = Some("marketplace".into());
    check(request, "channel marketplace is not known; upsert the channel first");

    // Nothing changed.
    assert_eq!(engine.availability("SKU", "L0", None, T0_MS).unwrap().atp, 5);
    assert!(engine.get("order-1", T0_MS).is_none());
}

#[test]
fn adjustment_retry_recognized_within_retention() {
    let config = EngineConfig { retention_ms: 60_000, ..EngineConfig::default() };
    let engine = Engine::new(config);
    engine.upsert_location(&promesa_tests::warehouse("L0")).unwrap();
    let receipt = AdjustRequest {
        sku: "SKU".into(),
        location: "L0".into(),
        delta: 12,
        reason: AdjustReason::Receipt,
        op_id: "asn-7781".into(),
    };
    assert_eq!(engine.adjust_on_hand(&receipt, T0_MS).unwrap().on_hand, 12);
    let retry = engine.adjust_on_hand(&receipt, T0_MS + 59_999).unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.on_hand, 12);
    let different = AdjustRequest { delta: 13, ..receipt.clone() };
    assert_eq!(
        engine.adjust_on_hand(&different, T0_MS + 59_999).unwrap_err().to_string(),
        "operation id asn-7781 was already used for a different adjustment"
    );
    assert_eq!(engine.availability("SKU", "L0", None, T0_MS + 59_999).unwrap().on_hand, 12);

    // Past the retention the id is forgotten, so the same request applies again.
    let late = engine.adjust_on_hand(&receipt, T0_MS + 60_000).unwrap();
    assert!(!late.replayed);
    assert_eq!(late.on_hand, 24);
}
