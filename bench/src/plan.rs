//! The capacity plan: from a capacity report's measured figures, what one node
//! sustains for a given order volume, the headroom at peak, the memory and disk it
//! needs, and whether a second node is needed. Every figure is an estimate scaled from
//! the report; the plan names the report's figures it used.

use serde::Serialize;
use serde_json::Value;

/// Share of a node's measured capacity the plan lets the peak use; above it, the
/// plan calls for a second node.
pub const PEAK_UTILIZATION_MAX: f64 = 0.7;

/// Share of the machine's memory the plan lets the engine use.
pub const MEMORY_SHARE_MAX: f64 = 0.8;

/// Seconds in a day.
const DAY_SECS: f64 = 86_400.0;

/// The order volume and catalogue a plan is for.
#[derive(Clone, Debug, Serialize)]
pub struct PlanInput {
    /// Orders per day.
    pub orders_per_day: f64,
    /// Peak order rate over the day's average rate.
    pub peak_factor: f64,
    /// SKUs.
    pub skus: u64,
    /// Locations.
    pub locations: u64,
    /// Positions (SKU at location); every SKU at every location unless given.
    pub positions: u64,
    /// Logged changes per order: reserve, confirm and fulfil by default.
    pub changes_per_order: f64,
    /// Hours ended reservations are kept for retries.
    pub retention_hours: f64,
    /// Bound on ended reservations kept.
    pub ended_reservations_max: f64,
    /// Memory of the machine, in bytes, if known.
    pub machine_memory_bytes: Option<f64>,
}

/// The plan.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityPlan {
    /// The input.
    pub input: PlanInput,
    /// Average orders per second.
    pub orders_per_sec_average: f64,
    /// Orders per second at peak.
    pub orders_per_sec_peak: f64,
    /// Logged changes per second at peak.
    pub changes_per_sec_peak: f64,
    /// Durable changes per second one node sustained in the report: the lower of the
    /// engine's batched figure (two changes per reserve + release pair) and, when the
    /// report has its network section, the batched reserves per second through the
    /// server.
    pub node_changes_per_sec: f64,
    /// Source measurement of `node_changes_per_sec`.
    pub node_capacity_source: String,
    /// Node capacity over the peak's need.
    pub headroom_at_peak: f64,
    /// Memory of positions, ended and open reservations, in bytes.
    pub memory_bytes: f64,
    /// Log written per day, in bytes, before snapshots let old segments go.
    pub log_bytes_per_day: f64,
    /// One snapshot, in bytes.
    pub snapshot_bytes: f64,
    /// Restart time scaled from the report's restart, in seconds.
    pub restart_secs: f64,
    /// Nodes needed: 1, or 2 when the peak or the memory exceeds one node's share.
    pub nodes: u32,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// Reads a number at a JSON path such as `engine.bytes_per_position`.
fn figure(report: &Value, path: &str) -> Result<f64, String> {
    let mut value = report;
    for key in path.split('.') {
        value = &value[key];
    }
    value
        .as_f64()
        .ok_or_else(|| format!("the report has no number at {path}; run `promesa-bench capacity --json FILE`"))
}

/// Makes the plan from a capacity report.
pub fn plan(input: PlanInput, report: &Value) -> Result<CapacityPlan, String> {
    let bytes_per_position =
        figure(report, "engine.bytes_per_position")? + figure(report, "engine.code_bytes_per_position")?;
    let bytes_per_reservation = figure(report, "engine.bytes_per_ended_reservation")?;
    let engine_changes_per_sec = 2.0 * figure(report, "durable.reserve_release_batched.ops_per_sec")?;
    let (node_changes_per_sec, node_capacity_source) = match figure(report, "network.batched.reserves_per_sec") {
        Ok(network) if network < engine_changes_per_sec => {
            (network, "through the server over QUIC, batched frames".to_owned())
        }
        _ => (engine_changes_per_sec, "the engine in process, batched".to_owned()),
    };
    let log_bytes_per_record = figure(report, "recovery.log_bytes")? / figure(report, "recovery.records")?.max(1.0);
    let snapshot_bytes_per_position =
        figure(report, "snapshot.size_bytes")? / figure(report, "snapshot.positions")?.max(1.0);
    let restart_secs_per_position =
        figure(report, "recovery.restart_10m_secs")? / figure(report, "recovery.positions")?.max(1.0);

    let orders_per_sec_average = input.orders_per_day / DAY_SECS;
    let orders_per_sec_peak = orders_per_sec_average * input.peak_factor;
    let changes_per_sec_peak = orders_per_sec_peak * input.changes_per_order;
    let headroom_at_peak = node_changes_per_sec / changes_per_sec_peak.max(f64::MIN_POSITIVE);

    // Ended reservations kept for the retention, within the bound, and the open
    // reservations of a 15-minute checkout at peak.
    let ended = (input.orders_per_day * input.retention_hours / 24.0).min(input.ended_reservations_max);
    let open = orders_per_sec_peak * 15.0 * 60.0;
    let memory_bytes = input.positions as f64 * bytes_per_position + (ended + open) * bytes_per_reservation;
    let log_bytes_per_day = input.orders_per_day * input.changes_per_order * log_bytes_per_record;
    let snapshot_bytes = input.positions as f64 * snapshot_bytes_per_position;
    let restart_secs = input.positions as f64 * restart_secs_per_position;

    let mut nodes = 1;
    let mut reasons = Vec::new();
    if changes_per_sec_peak > node_changes_per_sec * PEAK_UTILIZATION_MAX {
        nodes = 2;
        reasons.push(format!(
            "the peak needs {changes_per_sec_peak:.0} changes/s, above {:.0}% of the {node_changes_per_sec:.0}/s one \
             node sustained",
            PEAK_UTILIZATION_MAX * 100.0
        ));
    }
    if let Some(machine) = input.machine_memory_bytes
        && memory_bytes > machine * MEMORY_SHARE_MAX
    {
        nodes = 2;
        reasons.push(format!(
            "the engine needs {:.1} GB, above {:.0}% of this machine's {:.1} GB",
            memory_bytes / 1e9,
            MEMORY_SHARE_MAX * 100.0,
            machine / 1e9
        ));
    }
    if reasons.is_empty() {
        reasons.push(format!(
            "one node: the peak uses {:.2}% of its measured capacity",
            100.0 / headroom_at_peak.max(f64::MIN_POSITIVE)
        ));
    }
    Ok(CapacityPlan {
        input,
        orders_per_sec_average,
        orders_per_sec_peak,
        changes_per_sec_peak,
        node_changes_per_sec,
        node_capacity_source,
        headroom_at_peak,
        memory_bytes,
        log_bytes_per_day,
        snapshot_bytes,
        restart_secs,
        nodes,
        reasons,
    })
}

/// Renders the plan as text.
pub fn render(plan: &CapacityPlan) -> String {
    let input = &plan.input;
    let mut out = format!(
        "plan for {:.0} orders/day (peak x{}), {} SKUs x {} locations = {} positions (estimates from the report)\n",
        input.orders_per_day, input.peak_factor, input.skus, input.locations, input.positions
    );
    out.push_str(&format!(
        "  orders/s: {:.1} average, {:.1} at peak; logged changes/s at peak: {:.0}\n",
        plan.orders_per_sec_average, plan.orders_per_sec_peak, plan.changes_per_sec_peak
    ));
    out.push_str(&format!(
        "  one node sustains {:.0} durable changes/s ({}): headroom at peak {:.1}x\n",
        plan.node_changes_per_sec, plan.node_capacity_source, plan.headroom_at_peak
    ));
    out.push_str(&format!(
        "  memory {:.2} GB; log {:.2} GB/day; snapshot {:.2} GB; restart about {:.1} s\n",
        plan.memory_bytes / 1e9,
        plan.log_bytes_per_day / 1e9,
        plan.snapshot_bytes / 1e9,
        plan.restart_secs
    ));
    out.push_str(&format!("  nodes: {}\n", plan.nodes));
    for reason in &plan.reasons {
        out.push_str(&format!("    {reason}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        let mut engine = serde_json::Map::new();
        engine.insert("bytes_per_position".into(), 50.0.into());
        engine.insert("code_bytes_per_position".into(), 10.0.into());
        engine.insert("bytes_per_ended_reservation".into(), 250.0.into());
        let mut recovery = serde_json::Map::new();
        recovery.insert("log_bytes".into(), 1_000_000.into());
        recovery.insert("records".into(), 10_000.into());
        recovery.insert("restart_10m_secs".into(), 10.0.into());
        recovery.insert("positions".into(), 10_000_000.into());
        serde_json::json!({
            "engine": engine,
            "durable": { "reserve_release_batched": { "ops_per_sec": 500_000.0 } },
            "recovery": recovery,
            "snapshot": { "size_bytes": 500_000_000, "positions": 10_000_000 }
        })
    }

    fn input(orders_per_day: f64) -> PlanInput {
        PlanInput {
            orders_per_day,
            peak_factor: 10.0,
            skus: 100_000,
            locations: 100,
            positions: 10_000_000,
            changes_per_order: 3.0,
            retention_hours: 24.0,
            ended_reservations_max: 10_000_000.0,
            machine_memory_bytes: Some(24e9),
        }
    }

    #[test]
    fn plan_fits_million_orders_on_one_node() {
        let plan = plan(input(1_000_000.0), &report()).unwrap();
        assert!((plan.orders_per_sec_average - 11.574).abs() < 0.001);
        assert!((plan.changes_per_sec_peak - 347.22).abs() < 0.01);
        assert_eq!(plan.node_changes_per_sec, 1_000_000.0);
        // Positions 600 MB; 1M ended and 104,167 open reservations at 250 bytes.
        assert!((plan.memory_bytes - (600e6 + (1e6 + 104_166.67) * 250.0)).abs() < 1e3);
        assert!((plan.log_bytes_per_day - 300e6).abs() < 1.0);
        assert!((plan.snapshot_bytes - 500e6).abs() < 1.0);
        assert!((plan.restart_secs - 10.0).abs() < 1e-9);
        assert_eq!(plan.nodes, 1);
    }

    #[test]
    fn plan_adds_node_past_peak_share() {
        let plan = plan(input(3_000_000_000.0), &report()).unwrap();
        assert_eq!(plan.nodes, 2);
        assert!(plan.reasons[0].contains("changes/s"), "{:?}", plan.reasons);
        assert!(render(&plan).contains("nodes: 2"));
    }

    #[test]
    fn plan_takes_the_server_figure_when_lower() {
        let mut report = report();
        report["network"] = serde_json::json!({ "batched": { "reserves_per_sec": 300_000.0 } });
        let plan = plan(input(1_000_000.0), &report).unwrap();
        assert_eq!(plan.node_changes_per_sec, 300_000.0);
        assert!(render(&plan).contains("(through the server over QUIC, batched frames)"), "{}", render(&plan));

        report["network"]["batched"]["reserves_per_sec"] = 5_000_000.0.into();
        let plan = super::plan(input(1_000_000.0), &report).unwrap();
        assert_eq!(plan.node_changes_per_sec, 1_000_000.0);
        assert_eq!(plan.node_capacity_source, "the engine in process, batched");
    }

    #[test]
    fn plan_names_missing_report_figure() {
        let error = plan(input(1.0), &serde_json::json!({})).unwrap_err();
        assert!(error.contains("engine.bytes_per_position"), "{error}");
    }
}
