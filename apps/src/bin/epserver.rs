//! epserver: a multi-core HTTP/1.1 static file server, one context per core,
//! answering GET and HEAD from files cached in memory at start.
//!
//! `epserver --dir www --addr 10.0.0.1:80 [--kernel --cores 2] [--duration 10]`

use anyhow::Context;
use clap::Parser;
use mtcp_apps::cli::{StackArgs, WithStack};
use mtcp_apps::http::FileCache;
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::run::{serve_http, stop_after};
use mtcp_apps::server::ServerStats;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Multi-core HTTP/1.1 static file server (mTCP's epserver).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Directory to serve (read into memory at start).
    #[arg(long, default_value = "www")]
    dir: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    addr: SocketAddr,
    /// Listen backlog per core.
    #[arg(long, default_value_t = 4096)]
    backlog: u32,
    /// Stop after this many seconds (default: run until killed).
    #[arg(short, long)]
    duration: Option<f64>,
    /// Largest total size of the files cached, MiB.
    #[arg(long, default_value_t = 1024)]
    max_mib: usize,
    /// Stop when standard input reaches end of file (for scripts that
    /// started the server and want its final statistics).
    #[arg(long)]
    stdin_stop: bool,
    /// Print the final statistics as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

struct App {
    args: Args,
    cache: FileCache,
}

impl WithStack for App {
    type Output = Vec<ServerStats>;

    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Vec<ServerStats>> {
        let stop = StopFlag::new();
        if let Some(d) = self.args.duration {
            stop_after(&stop, Duration::from_secs_f64(d.max(0.0)));
        }
        if self.args.stdin_stop {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                stop.stop();
            });
        }
        let name = stack.name();
        let stats = serve_http(
            stack,
            self.args.addr,
            self.args.backlog,
            &self.cache,
            &stop,
            &|core, addr| eprintln!("epserver: core {core} listening on {addr} ({name})"),
        )?;
        if let Some(r) = stack.report() {
            eprintln!("epserver: {name} per-core stack counters:\n{r}");
        }
        Ok(stats)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cache = FileCache::load(&args.dir, args.max_mib << 20)
        .with_context(|| format!("loading {}", args.dir.display()))?;
    eprintln!(
        "epserver: {} files, {} bytes cached from {}",
        cache.len(),
        cache.bytes(),
        args.dir.display()
    );
    let json = args.json;
    let stack = args.stack.clone();
    let per_core = stack.dispatch(App { args, cache })?;
    let mut total = ServerStats::default();
    for s in &per_core {
        total.merge(s);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "total": total, "per_core": per_core })
        );
    } else {
        for (i, s) in per_core.iter().enumerate() {
            println!("core {i}: {s:?}");
        }
        println!("total: {total:?}");
    }
    Ok(())
}
