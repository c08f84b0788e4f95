//! The apps on our stack at both ends, in one process over the runtime's
//! in-memory backend: the same code paths as over AF_XDP, no root needed.

use mtcp_apps::client::LoadPlan;
use mtcp_apps::http::{FileCache, HttpGet};
use mtcp_apps::net::{NetContext, NetStack, StopFlag};
use mtcp_apps::ours::OurStack;
use mtcp_apps::perf::Workload;
use mtcp_apps::run::{load, perf_client, serve_http, serve_perf, summarize};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

fn stacks() -> (OurStack, OurStack) {
    OurStack::memory_pair(SERVER, CLIENT, 1, |c| {
        c.stack.max_concurrency = 1024;
        c.stack.msl_ms = 200;
    })
    .expect("memory stacks")
}

#[test]
fn epserver_and_epwget_on_our_stack() {
    let (server, client) = stacks();
    let cache = FileCache::from_files([("/index.html".to_string(), vec![b'x'; 1000])]);
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let addr: SocketAddr = (SERVER, 8080).into();
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            serve_http(&server, addr, 128, &cache, &stop, &|_, a| {
                let _ = tx.lock().unwrap().send(a);
            })
        });
        let bound = rx.recv_timeout(Duration::from_secs(10)).expect("listening");
        assert_eq!(bound, addr);
        for keep_alive in [false, true] {
            let plan = LoadPlan {
                target: addr,
                concurrency: 4,
                requests: Some(200),
                duration: Some(Duration::from_secs(30)),
                nodelay: true,
            };
            let get = HttpGet::new("10.9.0.1", "/index.html", keep_alive);
            let per_core = load(&client, &get, &plan, &StopFlag::new()).unwrap();
            let sum = summarize(&per_core);
            assert_eq!(sum.completed, 200, "keep_alive {keep_alive}: {sum}");
            assert_eq!(sum.errors, 0);
            assert_eq!(sum.failed_status, 0);
        }
        // 404 and a raw exchange through the client stack's own context.
        let mut ctx = client.context(0).unwrap();
        let fd = ctx.connect(addr).unwrap();
        let mut events = Vec::new();
        let mut sent = false;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            ctx.wait(&mut events, Some(Duration::from_millis(50)))
                .unwrap();
            if !sent && ctx.connected(fd).unwrap_or(false) {
                ctx.write(fd, b"GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n")
                    .unwrap();
                sent = true;
            }
            if sent {
                match ctx.read(fd, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        ctx.close(fd).unwrap();
        drop(ctx);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        stop.stop();
        let stats = srv.join().unwrap().unwrap();
        assert_eq!(stats[0].ok, 400);
        assert_eq!(stats[0].not_found, 1);
    });
}

#[test]
fn perf_workloads_on_our_stack() {
    let (server, client) = stacks();
    let addr: SocketAddr = (SERVER, 5001).into();
    for (workload, concurrency, requests) in [
        (Workload::Short, 8, 300u64),
        (Workload::Pingpong, 4, 2000),
        (Workload::Bulk, 1, 100),
    ] {
        let stop = StopFlag::new();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        std::thread::scope(|s| {
            let srv = s.spawn(|| {
                serve_perf(&server, workload, 64, addr, &stop, &|_, a| {
                    let _ = tx.lock().unwrap().send(a);
                })
            });
            rx.recv_timeout(Duration::from_secs(10)).expect("listening");
            let plan = LoadPlan {
                target: addr,
                concurrency,
                requests: Some(requests),
                duration: Some(Duration::from_secs(30)),
                nodelay: true,
            };
            let per_core = perf_client(&client, workload, 64, &plan, &StopFlag::new()).unwrap();
            let sum = summarize(&per_core);
            std::thread::sleep(Duration::from_millis(300));
            stop.stop();
            let served = srv.join().unwrap().unwrap();
            match workload {
                Workload::Bulk => {
                    assert!(per_core[0].bytes_in >= requests * 65536, "{sum}");
                    assert_eq!(served[0].bytes_in, per_core[0].bytes_in, "{sum}");
                }
                _ => {
                    assert_eq!(sum.completed, requests, "{workload:?}: {sum}");
                    assert_eq!(sum.errors, 0, "{workload:?}: {sum}");
                    assert_eq!(served[0].bytes_out, requests * 64);
                }
            }
        });
    }
}

#[test]
fn two_cores_each_side_share_the_load() {
    let (server, client) = OurStack::memory_pair(SERVER, CLIENT, 2, |c| {
        c.stack.max_concurrency = 1024;
        c.stack.msl_ms = 200;
    })
    .expect("memory stacks");
    let cache = FileCache::from_files([("/index.html".to_string(), vec![b'y'; 100])]);
    let stop = StopFlag::new();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let addr: SocketAddr = (SERVER, 8081).into();
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            serve_http(&server, addr, 128, &cache, &stop, &|_, a| {
                let _ = tx.lock().unwrap().send(a);
            })
        });
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(10)).expect("listening");
        }
        let plan = LoadPlan {
            target: addr,
            concurrency: 8,
            requests: Some(400),
            duration: Some(Duration::from_secs(30)),
            nodelay: true,
        };
        let get = HttpGet::new("10.9.0.1", "/index.html", false);
        let per_core = load(&client, &get, &plan, &StopFlag::new()).unwrap();
        assert_eq!(per_core.len(), 2);
        let sum = summarize(&per_core);
        assert_eq!(sum.completed, 400, "{sum}");
        assert_eq!(sum.errors, 0, "{sum}");
        // Each client core ran its share.
        assert!(per_core.iter().all(|c| c.completed == 200), "{sum}");
        std::thread::sleep(Duration::from_millis(200));
        stop.stop();
        let stats = srv.join().unwrap().unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats.iter().map(|s| s.ok).sum::<u64>(), 400);
    });
}
