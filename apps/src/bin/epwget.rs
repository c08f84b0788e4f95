//! epwget: an HTTP load generator (mTCP's epwget). Per core, a share of the
//! concurrency; one GET per connection unless `--keep-alive`.
//!
//! ```text
//! epwget 10.0.0.1:80 --path /index.html -c 100 -d 10 --config mtcp.toml   # our stack
//! epwget 10.0.0.1:80 --path /index.html -c 100 -d 10 --kernel             # Linux
//! epwget 10.0.0.1:80 --path /big.bin --fetch --kernel > big.bin           # one GET, body to stdout
//! epwget --memory -c 64 -d 10      # epserver and epwget on our stack, in one process
//! ```

use anyhow::Context as _;
use clap::Parser;
use mtcp_apps::cli::{StackArgs, WithStack};
use mtcp_apps::client::LoadPlan;
use mtcp_apps::http::{parse_response, FileCache, HttpGet};
use mtcp_apps::net::{NetStack, StopFlag};
use mtcp_apps::ours::OurStack;
use mtcp_apps::run::{load, serve_http, summarize, Summary};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// HTTP load generator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server, address:port (with --memory: the in-process server's).
    #[arg(default_value = "10.9.0.1:80")]
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
    /// One GET over a kernel socket (std::net); the body goes to stdout.
    #[arg(long)]
    fetch: bool,
    /// Run epserver and epwget on our stack at both ends in this process,
    /// joined by the runtime's in-memory backend (no root, no NIC).
    #[arg(long)]
    memory: bool,
    /// With --memory: the directory the in-process epserver serves
    /// (default: a built-in page at /).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stack: StackArgs,
}

impl Args {
    fn plan(&self) -> LoadPlan {
        let duration = match (self.requests, self.duration) {
            (None, None) => Some(Duration::from_secs(10)),
            (_, d) => d.map(|d| Duration::from_secs_f64(d.max(0.0))),
        };
        LoadPlan {
            target: self.target,
            concurrency: self.concurrency,
            requests: self.requests,
            duration,
            nodelay: true,
        }
    }
}

struct App<'a>(&'a Args);

impl WithStack for App<'_> {
    type Output = Summary;

    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Summary> {
        let a = self.0;
        let proto = HttpGet::new(&a.target.to_string(), &a.path, a.keep_alive);
        let per_core = load(stack, &proto, &a.plan(), &StopFlag::new())?;
        if let Some(r) = stack.report() {
            eprintln!("epwget: {} per-core stack counters:\n{r}", stack.name());
        }
        Ok(summarize(&per_core))
    }
}

/// One GET over a blocking kernel socket; returns the body.
fn fetch(target: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(10))
        .with_context(|| format!("connecting to {target}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let head = parse_response(&all)
        .map_err(|e| anyhow::anyhow!("bad response: {e:?}"))?
        .context("incomplete response head")?;
    anyhow::ensure!(head.status == 200, "status {}", head.status);
    let body = all[head.head_len..].to_vec();
    if let Some(len) = head.content_length {
        anyhow::ensure!(
            body.len() == len,
            "body has {} bytes, Content-Length says {len}",
            body.len()
        );
    }
    Ok(body)
}

/// epserver and epwget on our stack at both ends, over in-memory queues.
fn memory(a: &Args) -> anyhow::Result<Summary> {
    let cores = a.stack.cores.max(1);
    let server_ip = match a.target.ip() {
        std::net::IpAddr::V4(ip) => ip,
        _ => anyhow::bail!("IPv4 only"),
    };
    let client_ip = Ipv4Addr::from(u32::from(server_ip) ^ 3);
    let (server, client) = OurStack::memory_pair(server_ip, client_ip, cores, |c| {
        c.stack.max_concurrency = 16_384;
        c.stack.msl_ms = 500;
    })?;
    let cache = match &a.dir {
        Some(d) => FileCache::load(d, 1 << 30)?,
        None => FileCache::from_files([(
            "/index.html".to_string(),
            b"<html><body><h1>mtcp-rs</h1><p>served by epserver on our stack</p></body></html>\n"
                .to_vec(),
        )]),
    };
    eprintln!(
        "epwget: in-memory backend: epserver on {} ({cores} core(s)) and epwget on {client_ip}, \
         our stack at both ends, in this process",
        a.target
    );
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            serve_http(&server, a.target, 4096, &cache, &stop, &|_, addr| {
                let _ = tx.lock().map(|t| t.send(addr));
            })
        });
        for _ in 0..cores {
            rx.recv_timeout(Duration::from_secs(10))
                .context("the in-process epserver did not start")?;
        }
        let summary = App(a).run(&client);
        stop.stop();
        let served = srv
            .join()
            .map_err(|_| anyhow::anyhow!("epserver panicked"))??;
        for (i, st) in served.iter().enumerate() {
            eprintln!("epserver core {i}: {st:?}");
        }
        if let Some(r) = server.report() {
            eprintln!("epserver: per-core stack counters:\n{r}");
        }
        summary
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.fetch {
        let body = fetch(args.target, &args.path)?;
        std::io::stdout().write_all(&body)?;
        return Ok(());
    }
    let summary = if args.memory {
        memory(&args)?
    } else {
        args.stack.dispatch(App(&args))?
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    if summary.completed == 0 {
        anyhow::bail!("no request completed");
    }
    Ok(())
}
