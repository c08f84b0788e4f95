//! The per-core statistics line goes out through `tracing` at the configured
//! interval (own test binary: it installs the global subscriber).

use packet_io::{mem_pair, MemConfig};
use runtime::{Runtime, RuntimeConfig, ThreadMode};
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn stats_lines_are_logged_per_core_at_the_interval() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let mut cfg = RuntimeConfig::memory(Ipv4Addr::new(10, 8, 0, 1), 2);
    cfg.stack.stats_interval_ms = 100;
    cfg.stack.mode = ThreadMode::Threaded;
    let queues = (0..2)
        .map(|_| mem_pair(&MemConfig::default()).unwrap().0)
        .collect();
    let (rt, ctxs) = Runtime::start_memory(cfg, queues).unwrap();
    std::thread::sleep(Duration::from_millis(550));
    drop(ctxs);
    rt.shutdown();
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for core in 0..2 {
        let lines = text
            .lines()
            .filter(|l| l.contains("mtcp core stats") && l.contains(&format!("core={core}")))
            .count();
        assert!(
            (2..=8).contains(&lines),
            "core {core}: {lines} lines in\n{text}"
        );
    }
    assert!(
        text.contains("rx_gbps=")
            && text.contains("active_flows=")
            && text.contains("retransmissions=")
    );
}
