//! The server's per-job limits (`serve --job-*`): each is the default for a
//! job that does not ask, and the most a job may ask for. A request above a
//! ceiling, or one that is not a limit at all (zero CPUs), is refused with a
//! message that names the ceiling or the rule.

use crate::jobs::Limits;
use crate::units::parse_size;
use crate::wire::{self, size_name};

/// `serve --job-*`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobLimitArgs {
    /// Memory per job, swap included (SIZE: bytes, or with K, M, G or T):
    /// the default for jobs that do not ask, and the most one may ask for.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub job_memory: Option<u64>,

    /// CPUs' worth of time per job (0.5 is half of one CPU): default and ceiling.
    #[arg(long, value_name = "N", value_parser = wire::Limits::parse_cpus)]
    pub job_cpus: Option<f64>,

    /// Processes and threads per job: default and ceiling.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub job_pids: Option<u64>,

    /// Bytes read per second per job from the disk of the data directory
    /// (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub job_io_read_bps: Option<u64>,

    /// Bytes written per second per job to that disk (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub job_io_write_bps: Option<u64>,
}

impl JobLimitArgs {
    /// The server's limits, as the jobs library takes them.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings(Limits {
            memory: self.job_memory,
            cpus: self.job_cpus,
            pids: self.job_pids,
            io_read_bps: self.job_io_read_bps,
            io_write_bps: self.job_io_write_bps,
        })
    }
}

/// The smallest memory limit taken: below it a job cannot even start.
const MIN_MEMORY: u64 = 1 << 20;

/// The server's limits: defaults and ceilings at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceilings(pub Limits);

impl Ceilings {
    /// The limits a job gets when it asks for `asked`: each asked value if
    /// it is valid and within the ceiling, else the server's default.
    pub fn apply(&self, asked: &wire::Limits) -> Result<Limits, String> {
        let server = &self.0;
        let bytes = |asked: Option<u64>, ceiling: Option<u64>, what: &str, flag: &str, min: u64| match (
            asked, ceiling,
        ) {
            (Some(value), _) if value < min => Err(format!(
                "a {what} limit of {} is too small: the least is {}",
                size_name(value),
                size_name(min)
            )),
            (Some(value), Some(ceiling)) if value > ceiling => Err(format!(
                "a {what} limit of {} is above this server's ceiling of {} (--{flag})",
                size_name(value),
                size_name(ceiling)
            )),
            (value, ceiling) => Ok(value.or(ceiling)),
        };
        let memory = bytes(asked.memory, server.memory, "memory", "job-memory", MIN_MEMORY)?;
        let io_read_bps = bytes(asked.io_read_bps, server.io_read_bps, "read", "job-io-read-bps", 1)?;
        let io_write_bps = bytes(asked.io_write_bps, server.io_write_bps, "write", "job-io-write-bps", 1)?;
        let cpus = match (asked.cpus, server.cpus) {
            (Some(cpus), _) if !(cpus.is_finite() && cpus > 0.0) => {
                return Err(format!("a cpus limit must be a positive number, not {cpus}"));
            }
            (Some(cpus), Some(ceiling)) if cpus > ceiling => {
                return Err(format!(
                    "a cpus limit of {cpus} is above this server's ceiling of {ceiling} (--job-cpus)"
                ));
            }
            (cpus, ceiling) => cpus.or(ceiling),
        };
        let pids = match (asked.pids, server.pids) {
            (Some(0), _) => return Err("a pids limit must be at least 1".to_owned()),
            (Some(pids), Some(ceiling)) if pids > ceiling => {
                return Err(format!(
                    "a pids limit of {pids} is above this server's ceiling of {ceiling} (--job-pids)"
                ));
            }
            (pids, ceiling) => pids.or(ceiling),
        };
        Ok(Limits { memory, cpus, pids, io_read_bps, io_write_bps })
    }
}

/// The limits of a job as the API shows them.
pub fn to_wire(limits: &Limits) -> wire::Limits {
    wire::Limits {
        memory: limits.memory,
        cpus: limits.cpus,
        pids: limits.pids,
        io_read_bps: limits.io_read_bps,
        io_write_bps: limits.io_write_bps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Ceilings {
        Ceilings(Limits { memory: Some(1 << 30), cpus: Some(1.0), pids: Some(100), ..Limits::default() })
    }

    #[test]
    fn the_ceilings_are_the_defaults_and_smaller_asks_are_taken() {
        let none = server().apply(&wire::Limits::default()).unwrap();
        assert_eq!(none, server().0);
        let asked =
            wire::Limits { memory: Some(64 << 20), io_write_bps: Some(5 << 20), ..Default::default() };
        let limits = server().apply(&asked).unwrap();
        assert_eq!(
            (limits.memory, limits.io_write_bps, limits.pids),
            (Some(64 << 20), Some(5 << 20), Some(100))
        );
    }

    #[test]
    fn an_ask_above_a_ceiling_names_the_ceiling_and_its_flag() {
        let asked = wire::Limits { memory: Some(2 << 30), ..Default::default() };
        let error = server().apply(&asked).unwrap_err();
        assert!(error.contains("ceiling of 1 GiB (--job-memory)"), "{error}");
        let error = server().apply(&wire::Limits { cpus: Some(1.5), ..Default::default() }).unwrap_err();
        assert!(error.contains("ceiling of 1 (--job-cpus)"), "{error}");
        let error = server().apply(&wire::Limits { pids: Some(101), ..Default::default() }).unwrap_err();
        assert!(error.contains("ceiling of 100 (--job-pids)"), "{error}");
    }

    #[test]
    fn limits_that_are_no_limits_are_refused() {
        for asked in [
            wire::Limits { cpus: Some(0.0), ..Default::default() },
            wire::Limits { cpus: Some(-1.0), ..Default::default() },
            wire::Limits { pids: Some(0), ..Default::default() },
            wire::Limits { memory: Some(4096), ..Default::default() },
            wire::Limits { io_read_bps: Some(0), ..Default::default() },
        ] {
            assert!(Ceilings::default().apply(&asked).is_err(), "{asked:?}");
        }
    }
}
