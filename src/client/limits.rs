//! `exec` and `run` flags that ask for a job's limits and isolation. Each
//! limit is parsed into its type in [`crate::limits`], so one that is no
//! limit is refused here, before the server is asked.

use crate::limits::{BytesPerSecond, Cpus, Limits, Memory, Pids};

/// Limits for the job (the server's own `--job-*` are the defaults and the
/// most that may be asked for).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitFlags {
    /// Memory, swap included: bytes, or a number with K, M, G or T (64M).
    /// Past it the kernel's OOM killer ends the job.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<Memory>,

    /// CPUs' worth of time, such as 2 or 0.25 (a quarter of one CPU); at
    /// least 0.01, the kernel's smallest quota.
    #[arg(long, value_name = "N")]
    pub cpus: Option<Cpus>,

    /// The most processes and threads at once.
    #[arg(long, value_name = "N")]
    pub pids: Option<Pids>,

    /// Bytes read per second from the disk of the server's data directory (SIZE).
    #[arg(long, value_name = "SIZE")]
    pub io_read_bps: Option<BytesPerSecond>,

    /// Bytes written per second to that disk (SIZE).
    #[arg(long, value_name = "SIZE")]
    pub io_write_bps: Option<BytesPerSecond>,

    /// Run in namespaces of its own: it sees only its own processes, has a
    /// private /proc and an empty /tmp, and no network but loopback.
    #[arg(long)]
    pub isolate: bool,
}

impl LimitFlags {
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids,
            io_read_bps: self.io_read_bps,
            io_write_bps: self.io_write_bps,
        }
    }
}
