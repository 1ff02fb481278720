//! Integration tests of the engine, one binary with a module per theme.

mod cases;
mod concurrency;
mod crash;
mod durability;
mod model;
mod property;
mod routing;
mod routing_model;
mod supply;
