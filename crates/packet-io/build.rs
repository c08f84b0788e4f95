//! Compiles the XDP steering program (`bpf/steer.bpf.c`) with `clang -target bpf`
//! into `$OUT_DIR/steer.bpf.o`, which `src/steer.rs` embeds with `include_bytes!`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let src = Path::new("bpf/steer.bpf.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CLANG");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("steer.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());

    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c"])
        .arg(src)
        .arg("-o")
        .arg(&out);
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps in the multiarch
    // directory of the host (not of the bpf target).
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    for dir in [
        format!("/usr/include/{arch}-linux-gnu"),
        "/usr/include/x86_64-linux-gnu".to_owned(),
        "/usr/include/aarch64-linux-gnu".to_owned(),
    ] {
        if Path::new(&dir).join("asm/types.h").exists() {
            cmd.arg(format!("-I{dir}"));
            break;
        }
    }

    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "packet-io: compiling {} with `{clang} -target bpf` failed ({}):\n{}\n\
             (the kernel uapi headers come from the Debian package linux-libc-dev)",
            src.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "packet-io: cannot run `{clang}` ({e}); the XDP steering program is compiled \
             with clang. Install it (Debian: apt-get install clang llvm, or run \
             `cargo xtask deps` as root) or point the CLANG environment variable at it."
        ),
    }
}
