//! The `jobs` command's work, as a library so its tests can drive it: the demo, simulations, seeding and the
//! benchmarks. `main.rs` only parses arguments and wires.

pub mod bench;
pub mod demo;
pub mod drift;
pub mod preview;
pub mod requests;
pub mod seed;
pub mod simulate;
