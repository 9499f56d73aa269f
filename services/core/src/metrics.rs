//! Prometheus metrics: one registry per process, served at `/metrics` by every service.
//! Labels stay bounded (account names, outcomes, route templates), never user ids.

use std::sync::LazyLock;

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// A counter vector registered in `REGISTRY`.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    REGISTRY.register(Box::new(counter.clone())).expect("each metric is registered once");
    counter
}

/// The text exposition format.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new().encode(&REGISTRY.gather(), &mut out).expect("encoding to a Vec never fails");
    String::from_utf8(out).expect("the text format is UTF-8")
}
