//! Workloads, measurement and the capacity report of Promesa's engine.
//!
//! The criterion benchmarks (`benches/engine.rs`) and the `promesa-bench capacity`
//! report run the same workloads, defined here:
//!
//! - [`catalogue`]: synthetic catalogues whose SKU and location codes are computed
//!   from a position number, and engines loaded with them.
//! - [`workload`]: one thread's loop of engine calls (reserve + release pairs, single
//!   availability reads, batch reads), reusing its request buffers between calls.
//! - [`measure`]: runs a workload on several threads at once and measures wall time.
//! - [`capacity`]: the capacity report: every figure, its JSON form and a text table.
//! - [`server`]: a real server and real clients over QUIC on loopback.
//! - [`durable`]: the report's figures of engines that write their log to disk:
//!   durable reserve + release pairs and restarts from the log.
//! - [`system`]: machine facts: CPU model, resident memory, UTC date.
//!
//! Every workload also runs at a tiny size in this crate's tests, so that a change in
//! the engine's API breaks the build of the benchmarks and not only their next run.

pub mod capacity;
pub mod catalogue;
pub mod durable;
pub mod measure;
pub mod plan;
pub mod routing;
pub mod server;
pub mod system;
pub mod workload;
