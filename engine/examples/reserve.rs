//! Reserves stock in an in-memory engine: the example the README shows.
//!
//! Run it with `cargo run -p promesa-engine --example reserve`.

use promesa_engine::{
    Engine, EngineConfig, FulfilmentMethods, LocationKind, LocationSpec, Policy, ReserveLine, ReserveRequest,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig::default());
    let now_ms = 1_767_225_600_000; // the caller's clock, milliseconds since the Unix epoch
    engine.upsert_location(&LocationSpec {
        code: "MTY-DC".into(),
        kind: LocationKind::Warehouse,
        lat: 25.67,
        lon: -100.31,
        methods: FulfilmentMethods::SHIP,
        daily_capacity: 5_000,
        active: true,
        routing: Default::default(),
    })?;
    engine.set_on_hand("TV-55-OLED", "MTY-DC", 12, now_ms)?;

    let outcome = engine.reserve(
        &ReserveRequest {
            reservation_id: "order-48121".into(),
            channel: None,
            lines: vec![ReserveLine { sku: "TV-55-OLED".into(), location: "MTY-DC".into(), quantity: 2 }],
            policy: Policy::AllOrNothing,
            ttl_ms: 15 * 60 * 1_000,
        },
        now_ms,
    )?;

    // A line that cannot be held is an outcome, not an error: check its status.
    assert!(outcome.held_all(), "{:?}", outcome.lines);
    let atp = engine.availability("TV-55-OLED", "MTY-DC", None, now_ms)?.atp;
    println!("held 2 for order-48121 until {} ms; ATP now {atp}", outcome.deadline_ms);
    Ok(())
}
