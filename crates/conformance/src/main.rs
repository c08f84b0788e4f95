//! packetdrill-compatible conformance runner for tcp-core (built by the conformance issue).
fn main() {}
