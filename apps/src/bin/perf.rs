//! perf: client and server for short connections, ping-pong and bulk.
//!
//! ```text
//! perf server --workload short --addr 0.0.0.0:5001 [--kernel]
//! perf client --workload short 10.0.0.1:5001 -c 64 -d 10 [--kernel]
//! ```

use clap::{Parser, Subcommand};
use mtcp_apps::cli::{StackArgs, WithStack};
use mtcp_apps::client::LoadPlan;
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::perf::{PerfServerStats, Workload};
use mtcp_apps::run::{perf_client, serve_perf, stop_after, summarize, Summary};
use std::net::SocketAddr;
use std::time::Duration;

/// Short-connection, ping-pong and bulk TCP benchmark.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Serve one workload.
    Server {
        /// The workload.
        #[arg(long, value_enum)]
        workload: Workload,
        /// Message size, bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:5001")]
        addr: SocketAddr,
        /// Stop after this many seconds (default: run until killed).
        #[arg(short, long)]
        duration: Option<f64>,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Load a perf server.
    Client {
        /// The server, address:port.
        target: SocketAddr,
        /// The workload.
        #[arg(long, value_enum)]
        workload: Workload,
        /// Message size, bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Connections in all.
        #[arg(short, long, default_value_t = 1)]
        concurrency: usize,
        /// Transactions in all (bulk: 64 KiB chunks).
        #[arg(short = 'n', long)]
        requests: Option<u64>,
        /// Seconds to run (default 10 when no count is given).
        #[arg(short, long)]
        duration: Option<f64>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
}

struct ServerApp {
    workload: Workload,
    size: usize,
    addr: SocketAddr,
    duration: Option<f64>,
}

impl WithStack for ServerApp {
    type Output = Vec<PerfServerStats>;

    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Vec<PerfServerStats>> {
        let stop = StopFlag::new();
        if let Some(d) = self.duration {
            stop_after(&stop, Duration::from_secs_f64(d.max(0.0)));
        }
        let name = stack.name();
        Ok(serve_perf(
            stack,
            self.workload,
            self.size,
            self.addr,
            &stop,
            &|core, a| eprintln!("perf: core {core} serving on {a} ({name})"),
        )?)
    }
}

struct ClientApp {
    workload: Workload,
    size: usize,
    plan: LoadPlan,
}

impl WithStack for ClientApp {
    type Output = Summary;

    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Summary> {
        let per_core = perf_client(
            stack,
            self.workload,
            self.size,
            &self.plan,
            &StopFlag::new(),
        )?;
        Ok(summarize(&per_core))
    }
}

fn main() -> anyhow::Result<()> {
    match Args::parse().role {
        Role::Server {
            workload,
            size,
            addr,
            duration,
            json,
            stack,
        } => {
            let per_core = stack.dispatch(ServerApp {
                workload,
                size,
                addr,
                duration,
            })?;
            let mut total = PerfServerStats::default();
            for s in &per_core {
                total.merge(s);
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "total": total, "per_core": per_core })
                );
            } else {
                println!("total: {total:?}");
            }
        }
        Role::Client {
            target,
            workload,
            size,
            concurrency,
            requests,
            duration,
            json,
            stack,
        } => {
            let duration = match (requests, duration) {
                (None, None) => Some(Duration::from_secs(10)),
                (_, d) => d.map(|d| Duration::from_secs_f64(d.max(0.0))),
            };
            let plan = LoadPlan {
                target,
                concurrency,
                requests,
                duration,
                nodelay: true,
            };
            let summary = stack.dispatch(ClientApp {
                workload,
                size,
                plan,
            })?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{} {summary}", workload.name());
            }
        }
    }
    Ok(())
}
