//! Multi-core drivers: one thread per core of a [`NetStack`], each running
//! an app's per-core loop on its own context, and the summaries they print.

use crate::client::{run_load, share, LoadPlan, LoadStats, Protocol};
use crate::http::FileCache;
use crate::net::{run_per_core, NetStack, StopFlag};
use crate::perf::{self, PerfServerStats, Workload};
use crate::server::{self, ServerStats};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Called with (core index, bound address) when a core's listener is up.
pub type Ready<'a> = &'a (dyn Fn(usize, SocketAddr) + Sync);

fn check_port(stack_cores: usize, addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 && stack_cores > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a multi-core server needs a fixed port (every core listens on it)",
        ));
    }
    Ok(())
}

/// epserver on every core of `stack` until `stop`.
pub fn serve_http<S: NetStack>(
    stack: &S,
    addr: SocketAddr,
    backlog: u32,
    cache: &FileCache,
    stop: &StopFlag,
    ready: Ready<'_>,
) -> io::Result<Vec<ServerStats>> {
    check_port(stack.cores(), addr)?;
    run_per_core(stack, |ctx, core| {
        server::serve(ctx, addr, backlog, cache, stop, &|a| ready(core, a))
    })
}

/// perf's server on every core of `stack` until `stop`.
pub fn serve_perf<S: NetStack>(
    stack: &S,
    workload: Workload,
    size: usize,
    addr: SocketAddr,
    stop: &StopFlag,
    ready: Ready<'_>,
) -> io::Result<Vec<PerfServerStats>> {
    check_port(stack.cores(), addr)?;
    run_per_core(stack, |ctx, core| {
        perf::serve(ctx, workload, size, addr, stop, &|a| ready(core, a))
    })
}

/// The plan of core `i` of `cores`: concurrency and request count shared out.
pub fn core_plan(total: &LoadPlan, cores: usize, i: usize) -> LoadPlan {
    LoadPlan {
        concurrency: share(total.concurrency.max(cores) as u64, cores, i) as usize,
        requests: total.requests.map(|r| share(r, cores, i)),
        ..total.clone()
    }
}

/// A request/response load over every core of `stack`.
pub fn load<S: NetStack, P: Protocol>(
    stack: &S,
    proto: &P,
    total: &LoadPlan,
    stop: &StopFlag,
) -> io::Result<Vec<LoadStats>> {
    let cores = stack.cores();
    run_per_core(stack, |ctx, i| {
        run_load(ctx, proto, &core_plan(total, cores, i), stop)
    })
}

/// perf's client over every core of `stack`.
pub fn perf_client<S: NetStack>(
    stack: &S,
    workload: Workload,
    size: usize,
    total: &LoadPlan,
    stop: &StopFlag,
) -> io::Result<Vec<LoadStats>> {
    let cores = stack.cores();
    run_per_core(stack, |ctx, i| {
        perf::run_client(ctx, workload, size, &core_plan(total, cores, i), stop)
    })
}

/// A load run reduced to the figures reports use (latencies in microseconds).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Responses (or bulk chunks) completed.
    pub completed: u64,
    /// Failed connections.
    pub errors: u64,
    /// Completed but not successful (non-2xx).
    pub failed_status: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Completions per second.
    pub rate: f64,
    /// Gbit/s of payload (received for request/response, sent for bulk).
    pub gbit_s: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Completions per second of each core.
    pub per_core_rate: Vec<f64>,
}

/// Merges per-core stats into a [`Summary`].
pub fn summarize(per_core: &[LoadStats]) -> Summary {
    let mut all = LoadStats::default();
    for s in per_core {
        all.merge(s);
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    let secs = all.elapsed.as_secs_f64();
    Summary {
        completed: all.completed,
        errors: all.errors,
        failed_status: all.failed_status,
        seconds: secs,
        rate: all.rate(),
        gbit_s: if secs > 0.0 {
            all.bytes_in as f64 * 8.0 / secs / 1e9
        } else {
            0.0
        },
        p50_us: us(all.latency_ns.percentile(50.0)),
        p90_us: us(all.latency_ns.percentile(90.0)),
        p99_us: us(all.latency_ns.percentile(99.0)),
        max_us: us(all.latency_ns.max()),
        per_core_rate: per_core.iter().map(LoadStats::rate).collect(),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "completed {} in {:.2} s: {:.0}/s, {:.3} Gbit/s; errors {}, non-2xx {}",
            self.completed, self.seconds, self.rate, self.gbit_s, self.errors, self.failed_status
        )?;
        writeln!(
            f,
            "latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            self.p50_us, self.p90_us, self.p99_us, self.max_us
        )?;
        let per: Vec<String> = self
            .per_core_rate
            .iter()
            .enumerate()
            .map(|(i, r)| format!("core {i}: {r:.0}/s"))
            .collect();
        write!(f, "per core: {}", per.join(", "))
    }
}

/// Raises `stop` after `d` from a helper thread (servers run for a while).
pub fn stop_after(stop: &StopFlag, d: Duration) {
    let stop = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        stop.stop();
    });
}
