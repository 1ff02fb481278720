//! Named cases of the engine's semantics, each a test of its own.

use promesa_engine::error::ReservationError;
use promesa_engine::{
    ConfirmRequest, FulfilRequest, LineQuantity, LineStatus, Policy, ReleaseFrom, ReleaseRequest, ReservationState,
    ReserveRequest, Units,
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

    // The retry answers the first outcome and returns nothing twice.
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

    // The expiry happened exactly once, and the confirm that came too late is told.
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
