//! Batched packet I/O for mtcp-rs: AF_XDP and an in-memory twin (to be filled by the packet-io issue).
