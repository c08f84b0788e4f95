//! The pcap tap: the file format, and tshark reading what the tap wrote.

mod common;

use common::*;
use packet_io::{mem_pair, FrameBatch, MemConfig, PacketQueue, PcapWriter, Tap};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn writer_emits_the_classic_format() {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.write_frame(UNIX_EPOCH + Duration::new(5, 6_000), &[1, 2, 3])
        .unwrap();
    let bytes = w.into_inner();
    assert_eq!(&bytes[0..4], &0xa1b2c3d4u32.to_le_bytes());
    assert_eq!(&bytes[4..8], &[2, 0, 4, 0], "version 2.4");
    assert_eq!(&bytes[20..24], &1u32.to_le_bytes(), "Ethernet");
    assert_eq!(&bytes[24..28], &5u32.to_le_bytes(), "seconds");
    assert_eq!(&bytes[28..32], &6u32.to_le_bytes(), "microseconds");
    assert_eq!(&bytes[32..36], &3u32.to_le_bytes());
    assert_eq!(&bytes[36..40], &3u32.to_le_bytes());
    assert_eq!(&bytes[40..], &[1, 2, 3]);
}

#[test]
fn tshark_reads_what_the_tap_wrote() {
    let dir = std::env::temp_dir().join(format!("pio-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tap.pcap");
    let (a, mut b) = mem_pair(&MemConfig::default()).unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut tap = Tap::new(a, file).unwrap();
    for port in [5001u16, 5002, 5003] {
        let f = udp_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            (Ipv4Addr::new(10, 1, 0, 1), 4000),
            (Ipv4Addr::new(10, 1, 0, 2), port),
            b"tapped",
        );
        assert!(send_bytes(&mut tap, &f));
    }
    // Echo one back so the tap records a received frame too.
    let mut rx = FrameBatch::with_capacity(8);
    assert_eq!(b.recv(&mut rx), 3);
    let mut rest = FrameBatch::with_capacity(8);
    rx.split_off_into(1, &mut rest);
    b.release(&mut rest).unwrap();
    assert_eq!(b.send(&mut rx).unwrap(), 1);
    let mut got = FrameBatch::with_capacity(8);
    assert_eq!(tap.recv(&mut got), 1);
    tap.release(&mut got).unwrap();
    tap.flush().unwrap();
    drop(tap);

    let out = match Command::new("tshark")
        .args([
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "udp.dstport",
            "-e",
            "udp.checksum.status",
        ])
        .args(["-o", "udp.check_checksum:TRUE"])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIP tshark check: cannot run tshark ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "3 sent + 1 received:\n{text}");
    let ports: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(ports, ["5001", "5002", "5003", "5001"], "\n{text}");
    assert!(rows.iter().all(|r| r[0] == "48"), "frame lengths:\n{text}");
    assert!(
        rows.iter().all(|r| r[2] == "1"),
        "tshark validated every UDP checksum (status 1 = good):\n{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
