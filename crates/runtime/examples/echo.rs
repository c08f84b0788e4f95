//! An echo server on every core: `cargo run --example echo -- CONFIG.toml PORT`.
//!
//! Loads the configuration (see `examples/mtcp.toml`), starts the runtime
//! (AF_XDP on the configured interface), and runs one application thread per
//! context, pinned beside its stack thread, each listening on PORT (as with
//! mTCP, every core listens and accepts the flows it owns) and echoing one
//! connection at a time.

use runtime::{Runtime, RuntimeConfig, TcpListener};
use std::io::{Read, Write};
use std::net::SocketAddrV4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: echo CONFIG.toml PORT")?;
    let port: u16 = args.next().ok_or("usage: echo CONFIG.toml PORT")?.parse()?;
    let config = RuntimeConfig::load(&path)?;
    let addr = SocketAddrV4::new(config.net.address, port);
    let (runtime, contexts) = Runtime::start(config)?;
    let apps: Vec<_> = contexts
        .into_iter()
        .map(|ctx| {
            std::thread::spawn(move || -> std::io::Result<()> {
                ctx.pin_current_thread();
                let listener = TcpListener::bind(&ctx, addr)?;
                loop {
                    let (mut stream, peer) = listener.accept()?;
                    eprintln!("core {}: connection from {peer}", ctx.core());
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = stream.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        stream.write_all(&buf[..n])?;
                    }
                }
            })
        })
        .collect();
    for app in apps {
        if let Ok(Err(e)) = app.join() {
            eprintln!("application thread: {e}");
        }
    }
    runtime.shutdown();
    Ok(())
}
