//! Command-line pieces shared by the three binaries: which stack to run on
//! and on which cores.

use crate::kernel::KernelStack;
use crate::net::NetStack;
use crate::ours::OurStack;
use std::path::PathBuf;

/// Stack selection, flattened into every binary's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct StackArgs {
    /// Run on Linux kernel sockets (epoll) instead of our stack.
    #[arg(long)]
    pub kernel: bool,
    /// Our stack's runtime configuration (TOML, see crates/runtime/examples/mtcp.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Per-core contexts to run (kernel backend; our stack takes them from
    /// its configuration).
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// CPUs to pin the contexts to, comma-separated (kernel backend).
    #[arg(long, value_delimiter = ',')]
    pub cpus: Vec<usize>,
}

/// An app body generic over the stack it runs on.
pub trait WithStack {
    /// What the app returns.
    type Output;
    /// Runs the app on `stack`.
    fn run<S: NetStack>(self, stack: &S) -> anyhow::Result<Self::Output>;
}

impl StackArgs {
    /// Builds the selected stack and runs `app` on it.
    pub fn dispatch<A: WithStack>(&self, app: A) -> anyhow::Result<A::Output> {
        if self.kernel {
            let stack = KernelStack::new(self.cores, &self.cpus);
            return app.run(&stack);
        }
        let Some(path) = &self.config else {
            anyhow::bail!(
                "say which stack: --config FILE (our stack, see \
                 crates/runtime/examples/mtcp.toml) or --kernel (Linux sockets)"
            );
        };
        let config = runtime::RuntimeConfig::load(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if config.net.backend == runtime::Backend::Memory {
            anyhow::bail!(
                "the memory backend has no peer outside this process; \
                 `cargo xtask demo` runs the apps on it back to back"
            );
        }
        let stack = OurStack::start(config)?;
        app.run(&stack)
    }
}
