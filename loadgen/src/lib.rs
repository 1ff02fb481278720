//! `promesa-loadgen`: drives a Promesa server over QUIC with a configurable mix of
//! requests, closed-loop, and reports throughput and latency per operation; seeds a
//! synthetic catalogue; runs the peer reservation workload that Redis and PostgreSQL
//! run in the side-by-side comparison.

pub mod dataset;
pub mod demo;
pub mod draws;
pub mod plot;
pub mod replay;
pub mod report;
pub mod run;
pub mod seed;
