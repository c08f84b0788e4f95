//! epwget: an HTTP load generator (mTCP's epwget). Per core, a share of the
//! concurrency; one GET per connection unless `--keep-alive`.
//!
//! `epwget 10.0.0.1:80 --path /index.html -c 100 -d 10 [--kernel --cores 2]`

use clap::Parser;
use mtcp_apps::cli::{StackArgs, WithStack};
use mtcp_apps::client::LoadPlan;
use mtcp_apps::http::HttpGet;
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::run::{load, summarize, Summary};
use std::net::SocketAddr;
use std::time::Duration;

/// HTTP load generator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server, address:port.
    target: SocketAddr,
    /// The path to GET.
    #[arg(long, default_value = "/")]
    path: String,
    /// Concurrent connections in all (shared over the cores).
    #[arg(short, long, default_value_t = 1)]
    concurrency: usize,
    /// Requests in all.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Seconds to run (default 10 when no request count is given).
    #[arg(short, long)]
    duration: Option<f64>,
    /// Reuse connections (HTTP keep-alive) instead of one request each.
    #[arg(long)]
    keep_alive: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

struct App(Args);

impl WithStack for App {
    type Output = Summary;

    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Summary> {
        let a = self.0;
        let duration = match (a.requests, a.duration) {
            (None, None) => Some(Duration::from_secs(10)),
            (_, d) => d.map(|d| Duration::from_secs_f64(d.max(0.0))),
        };
        let plan = LoadPlan {
            target: a.target,
            concurrency: a.concurrency,
            requests: a.requests,
            duration,
            nodelay: true,
        };
        let proto = HttpGet::new(&a.target.to_string(), &a.path, a.keep_alive);
        let per_core = load(stack, &proto, &plan, &StopFlag::new())?;
        Ok(summarize(&per_core))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let json = args.json;
    let stack = args.stack.clone();
    let summary = stack.dispatch(App(args))?;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    if summary.completed == 0 {
        anyhow::bail!("no request completed");
    }
    Ok(())
}
