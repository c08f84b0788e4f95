//! End-to-end tests of tcp-core over a deterministic simulated network
//! (`netsim/sim.rs`): two endpoints exchange random data in both directions
//! over a link with loss, duplication, reordering, delay and jitter,
//! corruption and a bandwidth limit. Whatever the network does, every byte
//! must arrive exactly once and in order, and every connection must close
//! cleanly: both applications see end of stream, no error, a `Closed` event
//! for every handle they closed, and both endpoints end with no connection.
//!
//! The loss sweep prints goodput per loss rate (`--nocapture`); only
//! correctness is asserted. Run in release: `cargo test -p tcp-core --release
//! --test netsim -- --nocapture`.

#[path = "netsim/sim.rs"]
mod sim;

use std::net::SocketAddrV4;

use core::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{LinkConfig, Sim};
use tcp_core::{
    Config, ConnError, Endpoint, EventKind, Instant, RecvError, SendError, SocketHandle, State,
};

/// How a flow ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseMode {
    /// Each side shuts down its write side once all its data is queued, and
    /// closes once it has read end of stream.
    Normal,
    /// Request/response: the server sends nothing before reading the
    /// client's end of stream, then queues its response and calls `close`
    /// at once (the queued data must still be delivered); the client reads
    /// the response after its own half-close.
    HalfClose,
    /// Both sides call `shutdown` at the same instant, after each received
    /// all of the other's data: the FINs cross (RFC 9293 section 3.6,
    /// simultaneous close).
    Simultaneous,
}

/// One application side of a flow.
#[derive(Debug, Default)]
struct Side {
    handle: Option<SocketHandle>,
    to_send: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    eof: bool,
    shut: bool,
    closed: bool,
    /// Bytes read per application wake-up (`usize::MAX`: all).
    read_quota: usize,
    connected_event: bool,
    peer_fin_event: bool,
    closed_event: bool,
    errors: Vec<ConnError>,
    /// States observed through the handle, consecutive duplicates removed.
    states: Vec<State>,
}

/// A connection between the two hosts, with the data each side sends.
#[derive(Debug)]
struct Flow {
    /// Host that connects (0 or 1); the other listens.
    client_host: usize,
    server_port: u16,
    /// The client's (ephemeral) port, known after `connect`.
    client_port: u16,
    mode: CloseMode,
    /// `sides[0]` is the client.
    sides: [Side; 2],
    done_at: Option<Instant>,
}

impl Flow {
    fn host(&self, side: usize) -> usize {
        if side == 0 {
            self.client_host
        } else {
            1 - self.client_host
        }
    }
}

/// A whole scenario: endpoint configurations, link, flows.
struct Scenario {
    seed: u64,
    cfgs: [Config; 2],
    link: LinkConfig,
    flows: Vec<Flow>,
    /// Slow readers wake up this often (`None`: every step).
    app_tick: Option<Duration>,
    /// Virtual time after which the run counts as hung.
    time_limit: Duration,
}

/// What a finished scenario measured.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    bytes: u64,
    /// Time from the first connect until every byte was read.
    transfer_time: Duration,
    segments: u64,
    corrupted: u64,
}

/// Retry limits generous enough that 30% loss never times a connection out
/// (R2, SYN retries, FIN-WAIT-2): the assertions are about delivery.
fn robust(mut cfg: Config) -> Config {
    cfg.syn_retries = 20;
    cfg.r2 = 40;
    cfg.rto_min = Duration::from_millis(200);
    cfg.rto_max = Duration::from_secs(10);
    cfg.fin_wait2_timeout = None;
    cfg
}

fn random_bytes(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// A finished scenario: its flows (with what each side saw) and figures.
struct Finished {
    flows: Vec<Flow>,
    outcome: Outcome,
}

fn run(sc: Scenario) -> Outcome {
    run_keep(sc).outcome
}

/// Run a scenario to completion and check everything; panics with the seed
/// on any violation.
fn run_keep(mut sc: Scenario) -> Finished {
    let seed = sc.seed;
    let tag = format!("seed {seed} loss {:.0}%", sc.link.loss * 100.0);
    let tag = tag.as_str();
    let mut sim = Sim::new(seed, sc.cfgs.clone(), sc.link);
    let start = sim.now;
    let deadline = start + sc.time_limit;
    // Each host listens on the ports of the flows it serves.
    let mut listeners: [Vec<(u16, SocketHandle)>; 2] = [Vec::new(), Vec::new()];
    for f in &sc.flows {
        let server = 1 - f.client_host;
        if !listeners[server].iter().any(|(p, _)| *p == f.server_port) {
            let addr = sim.addr(server, f.server_port);
            let l = sim.eps[server].listen(addr, 128).expect("listen");
            listeners[server].push((f.server_port, l));
        }
    }
    // Clients connect.
    for f in &mut sc.flows {
        let c = f.client_host;
        let local = SocketAddrV4::new(sim.ips[c], 0);
        let remote = SocketAddrV4::new(sim.ips[1 - c], f.server_port);
        let h = sim.eps[c].connect(sim.now, local, remote).expect("connect");
        f.sides[0].handle = Some(h);
        f.client_port = sim.eps[c].local_addr(h).expect("local_addr").port();
    }
    let mut next_app = sim.now;
    let mut read_buf = vec![0u8; 1 << 16];
    loop {
        // Events first: they route accept-ready and closed notifications.
        for (host, host_listeners) in listeners.iter().enumerate() {
            while let Some(ev) = sim.eps[host].poll_event() {
                on_event(&mut sc.flows, host_listeners, host, ev.socket, ev.kind, tag);
            }
        }
        let app_due = sim.now >= next_app;
        if app_due {
            if let Some(t) = sc.app_tick {
                next_app = sim.now + t;
            }
        }
        // Accept on every listener.
        for (host, host_listeners) in listeners.iter().enumerate() {
            for &(_, l) in host_listeners {
                loop {
                    match sim.eps[host].accept(l) {
                        Ok(h) => bind_accepted(&mut sc.flows, &sim.eps[host], host, h, tag),
                        Err(tcp_core::AcceptError::WouldBlock) => break,
                        Err(e) => panic!("{tag}: accept: {e:?}"),
                    }
                }
            }
        }
        let now = sim.now;
        for f in &mut sc.flows {
            for s in 0..2 {
                let host = f.host(s);
                app_step(
                    &mut sim.eps[host],
                    now,
                    f.mode,
                    s,
                    &mut f.sides[s],
                    app_due,
                    &mut read_buf,
                    tag,
                );
            }
            if f.mode == CloseMode::Simultaneous
                && !f.sides[0].shut
                && !f.sides[1].shut
                && f.sides
                    .iter()
                    .all(|s| s.handle.is_some() && s.sent == s.to_send.len())
                && f.sides[0].received.len() == f.sides[1].to_send.len()
                && f.sides[1].received.len() == f.sides[0].to_send.len()
            {
                for s in 0..2 {
                    let host = f.host(s);
                    let h = f.sides[s].handle.unwrap();
                    sim.eps[host]
                        .shutdown(now, h)
                        .unwrap_or_else(|e| panic!("{tag}: simultaneous shutdown side {s}: {e:?}"));
                    f.sides[s].shut = true;
                }
            }
            if f.done_at.is_none() && f.sides.iter().all(|s| s.eof) {
                f.done_at = Some(now);
            }
        }
        let all_closed = sc
            .flows
            .iter()
            .all(|f| f.sides.iter().all(|s| s.closed && s.closed_event));
        if all_closed && sim.eps[0].connection_count() == 0 && sim.eps[1].connection_count() == 0 {
            break;
        }
        sim.flush();
        let mut next = sim.next_event();
        if sc.app_tick.is_some() && !all_closed {
            next = Some(next.map_or(next_app, |n| n.min(next_app)));
        }
        let Some(next) = next else {
            panic!(
                "{tag}: deadlock at {}: nothing pending, flows {:#?}, conns {} / {}",
                sim.now,
                summarize(&sc.flows, &sim),
                sim.eps[0].connection_count(),
                sim.eps[1].connection_count()
            );
        };
        if next > deadline {
            panic!(
                "{tag}: not finished after {:?} of virtual time: {:#?}, conns {} / {}",
                sc.time_limit,
                summarize(&sc.flows, &sim),
                sim.eps[0].connection_count(),
                sim.eps[1].connection_count()
            );
        }
        sim.advance_to(next);
    }
    // Correctness: exactly once, in order, byte for byte.
    let mut out = Outcome::default();
    let mut last_done = start;
    for (k, f) in sc.flows.iter().enumerate() {
        for s in 0..2 {
            let sent = &f.sides[s].to_send;
            let got = &f.sides[1 - s].received;
            if got != sent {
                let at = sent.iter().zip(got.iter()).position(|(a, b)| a != b);
                panic!(
                    "{tag} flow {k}: side {} received {} bytes, peer sent {}; first difference at {at:?}",
                    1 - s,
                    got.len(),
                    sent.len()
                );
            }
            out.bytes += sent.len() as u64;
            let side = &f.sides[s];
            assert!(
                side.errors.is_empty(),
                "{tag} flow {k} side {s}: errors {:?}",
                side.errors
            );
            assert!(
                side.peer_fin_event,
                "{tag} flow {k} side {s}: no PeerFin event"
            );
        }
        assert!(
            f.sides[0].connected_event,
            "{tag} flow {k}: no Connected event"
        );
        last_done = last_done.max(f.done_at.expect("flow done"));
    }
    for (i, ep) in sim.eps.iter().enumerate() {
        let st = ep.stats();
        assert_eq!(
            st.failed, 0,
            "{tag}: host {i} had failed connections: {st:?}"
        );
        assert_eq!(
            ep.connection_count(),
            0,
            "{tag}: host {i} leaked connections"
        );
        out.segments += st.segments_out;
    }
    for l in &sim.links {
        assert_eq!(
            l.stats.rejected, l.stats.corrupted_delivered,
            "{tag}: every corrupted copy delivered must fail the checksum"
        );
        out.corrupted += l.stats.corrupted;
    }
    out.transfer_time = last_done - start;
    Finished {
        flows: sc.flows,
        outcome: out,
    }
}

fn summarize(flows: &[Flow], sim: &Sim) -> Vec<String> {
    let mut v = Vec::new();
    for (k, f) in flows.iter().enumerate() {
        for s in 0..2 {
            let side = &f.sides[s];
            let st = side
                .handle
                .map(|h| (sim.eps[f.host(s)].state(h), sim.eps[f.host(s)].info(h).ok()));
            v.push(format!(
                "flow {k} side {s} ({:?}): sent {}/{} recv {} eof {} shut {} closed {} closed_ev {} errs {:?} state {:?}",
                f.mode,
                side.sent,
                side.to_send.len(),
                side.received.len(),
                side.eof,
                side.shut,
                side.closed,
                side.closed_event,
                side.errors,
                st
            ));
        }
    }
    v
}

fn on_event(
    flows: &mut [Flow],
    listeners: &[(u16, SocketHandle)],
    host: usize,
    socket: SocketHandle,
    kind: EventKind,
    tag: &str,
) {
    if listeners.iter().any(|&(_, l)| l == socket) {
        assert_eq!(kind, EventKind::AcceptReady, "{tag}: listener event");
        return;
    }
    for f in flows.iter_mut() {
        for s in 0..2 {
            if f.host(s) == host && f.sides[s].handle == Some(socket) {
                let side = &mut f.sides[s];
                match kind {
                    EventKind::Connected => {
                        assert_eq!(s, 0, "{tag}: Connected on a passive socket");
                        side.connected_event = true;
                    }
                    EventKind::PeerFin => side.peer_fin_event = true,
                    EventKind::Error(e) => side.errors.push(e),
                    EventKind::Closed => {
                        assert!(side.closed, "{tag}: Closed before close()");
                        assert!(!side.closed_event, "{tag}: Closed twice");
                        side.closed_event = true;
                    }
                    EventKind::Readable | EventKind::Writable => {}
                    EventKind::AcceptReady => panic!("{tag}: AcceptReady on a connection"),
                }
                return;
            }
        }
    }
    // Events for handles the app no longer knows are a bug: after `close`
    // only `Closed` may come, and handles are unique per host.
    panic!("{tag}: event {kind:?} for unknown socket {socket:?} on host {host}");
}

fn bind_accepted(flows: &mut [Flow], ep: &Endpoint, host: usize, h: SocketHandle, tag: &str) {
    let local = ep.local_addr(h).expect("local_addr");
    let peer = ep.peer_addr(h).expect("peer_addr");
    for f in flows.iter_mut() {
        if f.host(1) == host
            && f.server_port == local.port()
            && f.client_port == peer.port()
            && f.sides[1].handle.is_none()
        {
            f.sides[1].handle = Some(h);
            return;
        }
    }
    panic!("{tag}: accepted an unexpected connection from {peer}");
}

#[allow(clippy::too_many_arguments)]
fn app_step(
    ep: &mut Endpoint,
    now: Instant,
    mode: CloseMode,
    s: usize,
    side: &mut Side,
    app_due: bool,
    buf: &mut [u8],
    tag: &str,
) {
    let Some(h) = side.handle else { return };
    if side.closed {
        return;
    }
    let st = ep
        .state(h)
        .unwrap_or_else(|e| panic!("{tag} side {s}: state of an open handle: {e:?}"));
    if side.states.last() != Some(&st) {
        side.states.push(st);
    }
    if std::env::var_os("NETSIM_TRACE").is_some() {
        if let Ok(i) = ep.info(h) {
            eprintln!(
                "{now} side {s} {:?} srtt {:?} rto {:?} cwnd {} flight {} rtx {} sent {} recv {}",
                i.state,
                i.srtt,
                i.rto,
                i.cwnd,
                i.bytes_in_flight,
                i.total_retransmits,
                side.sent,
                side.received.len()
            );
        }
    }
    // Read.
    if app_due || side.read_quota == usize::MAX {
        let mut quota = side.read_quota;
        while quota > 0 && !side.eof {
            let n = buf.len().min(quota);
            match ep.recv(h, &mut buf[..n]) {
                Ok(0) => side.eof = true,
                Ok(n) => {
                    side.received.extend_from_slice(&buf[..n]);
                    quota = quota.saturating_sub(n);
                }
                Err(RecvError::WouldBlock) => break,
                Err(RecvError::NotConnected) if !side.connected_event && s == 0 => break,
                Err(e) => panic!("{tag} side {s}: recv: {e:?}"),
            }
        }
    }
    // Write.
    let may_send = mode != CloseMode::HalfClose || s == 0 || side.eof;
    if may_send {
        while side.sent < side.to_send.len() {
            match ep.send(now, h, &side.to_send[side.sent..]) {
                Ok(n) => side.sent += n,
                Err(SendError::WouldBlock) => break,
                Err(e) => panic!("{tag} side {s}: send: {e:?}"),
            }
        }
    }
    let all_queued = side.sent == side.to_send.len();
    match mode {
        CloseMode::Normal => {
            if all_queued && !side.shut {
                ep.shutdown(now, h)
                    .unwrap_or_else(|e| panic!("{tag} side {s}: shutdown: {e:?}"));
                side.shut = true;
            }
        }
        CloseMode::HalfClose => {
            if s == 0 && all_queued && !side.shut {
                ep.shutdown(now, h)
                    .unwrap_or_else(|e| panic!("{tag} side {s}: shutdown: {e:?}"));
                side.shut = true;
            }
            if s == 1 && side.eof && all_queued {
                // Close with data still queued: it must still be delivered.
                ep.close(now, h)
                    .unwrap_or_else(|e| panic!("{tag} side {s}: close: {e:?}"));
                side.shut = true;
                side.closed = true;
                return;
            }
        }
        CloseMode::Simultaneous => {}
    }
    if side.shut && side.eof && !side.closed {
        ep.close(now, h)
            .unwrap_or_else(|e| panic!("{tag} side {s}: close: {e:?}"));
        side.closed = true;
    }
}

// ----------------------------------------------------------------------
// Scenario builders
// ----------------------------------------------------------------------

fn side_with(data: Vec<u8>) -> Side {
    Side {
        to_send: data,
        read_quota: usize::MAX,
        ..Side::default()
    }
}

fn flow(client_host: usize, server_port: u16, mode: CloseMode, c2s: Vec<u8>, s2c: Vec<u8>) -> Flow {
    Flow {
        client_host,
        server_port,
        client_port: 0,
        mode,
        sides: [side_with(c2s), side_with(s2c)],
        done_at: None,
    }
}

/// A random configuration: options on or off independently (so the two
/// sides often disagree and must fall back), MSS, delayed ACK, Nagle and
/// buffer sizes varied.
fn random_config(rng: &mut ChaCha8Rng) -> Config {
    let mut cfg = robust(Config::default());
    cfg.sack = rng.gen_bool(0.75);
    cfg.timestamps = rng.gen_bool(0.75);
    cfg.window_scaling = rng.gen_bool(0.75);
    cfg.mss = [1460, 1460, 1200, 536][rng.gen_range(0..4)];
    cfg.delayed_ack = [Duration::from_millis(40), Duration::ZERO][rng.gen_range(0..2)];
    cfg.nodelay = rng.gen_bool(0.5);
    cfg.recv_buf = [64 << 10, 64 << 10, 256 << 10, 16 << 10][rng.gen_range(0..4)];
    cfg.send_buf = [64 << 10, 128 << 10, 16 << 10][rng.gen_range(0..3)];
    cfg
}

/// Data size for one direction: 64 KiB to 1 MiB, sometimes empty (64 to
/// 256 KiB at 30% loss, where recovery is mostly by retransmission timeout
/// and a 1 MiB transfer takes hours of virtual time).
fn random_len(rng: &mut ChaCha8Rng, loss: f64) -> usize {
    let max = if loss >= 0.3 { 256 << 10 } else { 1 << 20 };
    match rng.gen_range(0..20) {
        0 => 0,
        _ => rng.gen_range(64 << 10..=max),
    }
}

fn sweep_scenario(seed: u64, loss: f64) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ((loss * 1000.0) as u64 * 0x9e37_79b9));
    let cfgs = [random_config(&mut rng), random_config(&mut rng)];
    let n_flows = rng.gen_range(1..=2);
    let mut flows = Vec::new();
    for k in 0..n_flows {
        let mode = [
            CloseMode::Normal,
            CloseMode::HalfClose,
            CloseMode::Simultaneous,
        ][rng.gen_range(0..3)];
        let c2s_len = random_len(&mut rng, loss);
        let s2c_len = random_len(&mut rng, loss);
        let c2s = random_bytes(&mut rng, c2s_len);
        let s2c = random_bytes(&mut rng, s2c_len);
        flows.push(flow(rng.gen_range(0..2), 5000 + k as u16, mode, c2s, s2c));
    }
    Scenario {
        seed,
        cfgs,
        link: LinkConfig::lossy(loss),
        flows,
        app_tick: None,
        time_limit: Duration::from_secs(4 * 3600),
    }
}

/// Seeds per loss rate: 200 (the release-mode suite, `cargo xtask test`);
/// 20 in debug builds, where the sweep would take minutes;
/// `NETSIM_SEEDS=n` overrides both.
fn seeds() -> u64 {
    std::env::var("NETSIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 20 } else { 200 })
}

/// Replays one run of the sweep: `NETSIM_ONE=seed,loss` (e.g. `9,0.3`);
/// with `NETSIM_TRACE=1` every application step prints the connection's
/// state, RTT, RTO, window and retransmissions. Does nothing otherwise.
#[test]
fn replay_one_from_env() {
    let Ok(v) = std::env::var("NETSIM_ONE") else {
        return;
    };
    let mut it = v.split(',');
    let seed: u64 = it.next().unwrap().parse().unwrap();
    let loss: f64 = it.next().unwrap().parse().unwrap();
    run(sweep_scenario(seed, loss));
}
const LOSS_RATES: [f64; 5] = [0.0, 0.01, 0.05, 0.10, 0.30];

/// The loss sweep of issue 2 section 5: 200 seeds at 0, 1, 5, 10 and 30%
/// loss (see [`seeds`]), with 2% duplication, 5% reordering, 0.5% corruption, jitter and a
/// 100 Mbit/s bottleneck in both directions; random data both ways on one
/// or two connections per run; normal, half and simultaneous closes; the
/// RFC 7323/2018 options randomly on or off on either side.
#[test]
fn loss_sweep_delivers_exactly_once_and_closes_cleanly() {
    let rows: Vec<(f64, Vec<Outcome>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = LOSS_RATES
            .iter()
            .map(|&loss| {
                scope.spawn(move || {
                    let outs: Vec<Outcome> = (0..seeds())
                        .map(|seed| run(sweep_scenario(seed, loss)))
                        .collect();
                    (loss, outs)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    eprintln!();
    eprintln!(
        "netsim goodput (virtual time; both directions: random loss as listed, plus 0.5% corruption, \
         2% duplication, 5% reordering, 5 ms +- 1 ms one way, 100 Mbit/s, 50 ms queue)"
    );
    eprintln!(
        "{:>6} {:>5} {:>10} {:>14} {:>16} {:>12} {:>10}",
        "loss", "runs", "MiB", "Mbit/s (agg)", "Mbit/s (median)", "segs/run", "corrupted"
    );
    for (loss, outs) in &rows {
        let bytes: u64 = outs.iter().map(|o| o.bytes).sum();
        let time: f64 = outs.iter().map(|o| o.transfer_time.as_secs_f64()).sum();
        let mut per: Vec<f64> = outs
            .iter()
            .filter(|o| o.bytes > 0)
            .map(|o| o.bytes as f64 * 8.0 / o.transfer_time.as_secs_f64().max(1e-6) / 1e6)
            .collect();
        per.sort_by(|a, b| a.total_cmp(b));
        let median = per.get(per.len() / 2).copied().unwrap_or(0.0);
        let segs: u64 = outs.iter().map(|o| o.segments).sum();
        let corrupted: u64 = outs.iter().map(|o| o.corrupted).sum();
        eprintln!(
            "{:>5.0}% {:>5} {:>10.1} {:>14.2} {:>16.2} {:>12.0} {:>10}",
            loss * 100.0,
            outs.len(),
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 * 8.0 / time.max(1e-6) / 1e6,
            median,
            segs as f64 / outs.len() as f64,
            corrupted
        );
    }
}

/// Simultaneous close on a clean link: both sides pass through CLOSING
/// (RFC 9293 section 3.6, figure 13) and everything is released.
#[test]
fn simultaneous_close_goes_through_closing() {
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c2s = random_bytes(&mut rng, 10_000);
        let s2c = random_bytes(&mut rng, 20_000);
        let sc = Scenario {
            seed,
            cfgs: [robust(Config::default()), robust(Config::default())],
            link: LinkConfig::ideal(),
            flows: vec![flow(0, 80, CloseMode::Simultaneous, c2s, s2c)],
            app_tick: None,
            time_limit: Duration::from_secs(600),
        };
        let out = run_keep(sc);
        for s in 0..2 {
            let st = &out.flows[0].sides[s].states;
            assert!(
                st.contains(&State::Closing),
                "seed {seed} side {s}: states {st:?} should include CLOSING"
            );
        }
    }
}

/// Half-close in both directions of use: the client shuts down its write
/// side and keeps reading a large response sent only after its FIN arrived;
/// the server calls `close` with the response still queued.
#[test]
fn half_close_response_after_fin_is_delivered() {
    for (i, &loss) in [0.0, 0.05, 0.2].iter().enumerate() {
        for seed in 0..10 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed + 100 * i as u64);
            let c2s = random_bytes(&mut rng, 3_000);
            let s2c = random_bytes(&mut rng, 300_000);
            let sc = Scenario {
                seed,
                cfgs: [robust(Config::default()), robust(Config::default())],
                link: LinkConfig::lossy(loss),
                flows: vec![flow(1, 8080, CloseMode::HalfClose, c2s, s2c)],
                app_tick: None,
                time_limit: Duration::from_secs(3600),
            };
            let out = run_keep(sc);
            let client = &out.flows[0].sides[0].states;
            assert!(
                client.contains(&State::FinWait2) || client.contains(&State::FinWait1),
                "seed {seed}: client states {client:?}"
            );
        }
    }
}

/// A receiver with a 2 KiB buffer that reads 500 bytes every 100 ms: the
/// window closes, the sender probes it (persist timer, RFC 9293 section
/// 3.8.6.1) and resumes when it opens; with loss too, window updates and
/// probes are lost and must be recovered.
#[test]
fn small_receive_buffer_zero_window_slow_reader() {
    for &loss in &[0.0, 0.05, 0.1] {
        for seed in 0..8 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut small = robust(Config::default());
            small.recv_buf = 2048;
            let c2s = random_bytes(&mut rng, 40_000);
            let s2c = random_bytes(&mut rng, 1_000);
            let mut f = flow(0, 80, CloseMode::Normal, c2s, s2c);
            f.sides[1].read_quota = 500;
            let sc = Scenario {
                seed,
                cfgs: [robust(Config::default()), small],
                link: LinkConfig::lossy(loss),
                flows: vec![f],
                app_tick: Some(Duration::from_millis(100)),
                time_limit: Duration::from_secs(3600),
            };
            let out = run_keep(sc);
            assert_eq!(out.flows[0].sides[1].received.len(), 40_000);
        }
    }
}

/// Every combination of SACK, timestamps and window scaling on one side
/// against all-on and all-off on the other, at 5% loss (negotiation must
/// fall back to what both offer, RFC 7323 section 1.3, RFC 2018 section 2).
#[test]
fn option_mixes_interoperate() {
    for mask in 0u8..8 {
        for other_on in [true, false] {
            for seed in 0..4 {
                let mut a = robust(Config::default());
                a.sack = mask & 1 != 0;
                a.timestamps = mask & 2 != 0;
                a.window_scaling = mask & 4 != 0;
                a.recv_buf = 200_000;
                let mut b = robust(Config::default());
                b.sack = other_on;
                b.timestamps = other_on;
                b.window_scaling = other_on;
                b.recv_buf = 200_000;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let c2s = random_bytes(&mut rng, 150_000);
                let s2c = random_bytes(&mut rng, 150_000);
                let sc = Scenario {
                    seed,
                    cfgs: [a, b],
                    link: LinkConfig::lossy(0.05),
                    flows: vec![flow((seed % 2) as usize, 443, CloseMode::Normal, c2s, s2c)],
                    app_tick: None,
                    time_limit: Duration::from_secs(3600),
                };
                run_keep(sc);
            }
        }
    }
}

/// Many concurrent connections in both directions over one lossy link.
#[test]
fn many_concurrent_connections() {
    for seed in 0..3 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut flows = Vec::new();
        for k in 0..40u16 {
            let c2s_len = rng.gen_range(0..20_000);
            let s2c_len = rng.gen_range(0..20_000);
            let c2s = random_bytes(&mut rng, c2s_len);
            let s2c = random_bytes(&mut rng, s2c_len);
            let mode = [
                CloseMode::Normal,
                CloseMode::HalfClose,
                CloseMode::Simultaneous,
            ][usize::from(k % 3)];
            flows.push(flow(usize::from(k % 2), 7000 + k % 4, mode, c2s, s2c));
        }
        let sc = Scenario {
            seed,
            cfgs: [robust(Config::default()), robust(Config::default())],
            link: LinkConfig::lossy(0.05),
            flows,
            app_tick: None,
            time_limit: Duration::from_secs(3600),
        };
        run_keep(sc);
    }
}

/// A clean 100 Mbit/s link, 10 ms RTT: one 4 MiB transfer each way, goodput
/// printed (a reference point for the lossy rows; not asserted).
#[test]
fn clean_link_bulk_goodput() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let c2s = random_bytes(&mut rng, 4 << 20);
    let mut link = LinkConfig::ideal();
    link.bandwidth_bps = 100_000_000;
    link.max_queue = Duration::from_millis(50);
    let mut cfg = robust(Config::default());
    cfg.recv_buf = 1 << 20;
    cfg.send_buf = 1 << 20;
    let sc = Scenario {
        seed: 1,
        cfgs: [cfg.clone(), cfg],
        link,
        flows: vec![flow(0, 80, CloseMode::Normal, c2s, Vec::new())],
        app_tick: None,
        time_limit: Duration::from_secs(600),
    };
    let out = run(sc);
    eprintln!(
        "clean link: {} bytes in {:?} = {:.1} Mbit/s, {} segments",
        out.bytes,
        out.transfer_time,
        out.bytes as f64 * 8.0 / out.transfer_time.as_secs_f64() / 1e6,
        out.segments
    );
}

/// A long fat path (100 ms RTT, 50 Mbit/s, 1% loss, reordering): the
/// bandwidth-delay product (625 KB) is far beyond 64 KiB, so only window
/// scaling (RFC 7323 section 2) lets the transfer fill it; 2 MiB each way
/// with 1 MiB buffers, SACK and timestamps on.
#[test]
fn long_fat_path_with_window_scaling() {
    let mut total = Outcome::default();
    for seed in 0..6 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 1000);
        let c2s = random_bytes(&mut rng, 2 << 20);
        let s2c = random_bytes(&mut rng, 2 << 20);
        let mut link = LinkConfig::lossy(0.01);
        link.delay = Duration::from_millis(50);
        link.jitter = Duration::from_millis(2);
        link.bandwidth_bps = 50_000_000;
        link.max_queue = Duration::from_millis(100);
        let mut cfg = robust(Config::default());
        cfg.recv_buf = 1 << 20;
        cfg.send_buf = 1 << 20;
        let sc = Scenario {
            seed,
            cfgs: [cfg.clone(), cfg],
            link,
            flows: vec![flow(0, 443, CloseMode::Normal, c2s, s2c)],
            app_tick: None,
            time_limit: Duration::from_secs(4 * 3600),
        };
        let out = run(sc);
        total.bytes += out.bytes;
        total.transfer_time += out.transfer_time;
    }
    eprintln!(
        "long fat path (100 ms RTT, 50 Mbit/s, 1% loss): {:.2} Mbit/s aggregate goodput",
        total.bytes as f64 * 8.0 / total.transfer_time.as_secs_f64() / 1e6
    );
}
