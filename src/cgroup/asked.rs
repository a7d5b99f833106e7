//! [`Asked`]: what a job's limits ask of each controller, as plain numbers;
//! the one place that reads [`Limits`].

use super::Limits;
use super::io::Rates;
use crate::limits::{BytesPerSecond, Cpus, Memory, Pids};

/// The limits a job asks for, as the controllers take them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    pub io: Option<Rates>,
}

impl Asked {
    /// What `limits` ask of cgroups: the one place that reads them.
    pub fn of(limits: &Limits) -> Asked {
        Asked {
            memory: limits.memory.map(Memory::get),
            cpus: limits.cpus.map(Cpus::get),
            pids: limits.pids.map(Pids::get),
            io: Rates::of(
                limits.io_read_bps.map(BytesPerSecond::get),
                limits.io_write_bps.map(BytesPerSecond::get),
            ),
        }
    }
}
