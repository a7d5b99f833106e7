//! The per-job limits: the server's (`serve --job-*`), and a client's own
//! in the policy (`memory = "4G"` and so on in its entry). Each is the
//! default for a job that does not ask, and the most a job may ask for;
//! where the server and the policy both set one, the smaller wins. A
//! request above the ceiling in force is refused with a message that names
//! the ceiling and where it is set.
//!
//! What a limit may be at all (no zero CPUs, no memory below 1 MiB) is one
//! rule per limit, here, that holds wherever a limit is set: in a request,
//! in a `--job-*` flag and in the policy.

use crate::jobs::Limits;
use crate::units::parse_size;
use crate::wire::{self, size_name};

/// `serve --job-*`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobLimitArgs {
    /// Memory per job, swap included (SIZE: bytes, or with K, M, G or T):
    /// the default for jobs that do not ask, and the most one may ask for.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub job_memory: Option<u64>,

    /// CPUs' worth of time per job (0.5 is half of one CPU; at least 0.01,
    /// the kernel's smallest quota): default and ceiling.
    #[arg(long, value_name = "N", value_parser = wire::Limits::parse_cpus)]
    pub job_cpus: Option<f64>,

    /// Processes and threads per job: default and ceiling.
    #[arg(long, value_name = "N", value_parser = parse_pids)]
    pub job_pids: Option<u64>,

    /// Bytes read per second per job from the disk of the data directory
    /// (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE", value_parser = parse_bps)]
    pub job_io_read_bps: Option<u64>,

    /// Bytes written per second per job to that disk (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE", value_parser = parse_bps)]
    pub job_io_write_bps: Option<u64>,
}

impl JobLimitArgs {
    /// The server's limits, as the jobs library takes them.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings::of_server(&Limits {
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

/// The rule of a memory limit.
pub(crate) fn check_memory(bytes: u64) -> Result<u64, String> {
    at_least("memory", bytes, MIN_MEMORY)
}

/// The rule of an io limit (bytes per second, read or write).
pub(crate) fn check_bps(bytes: u64) -> Result<u64, String> {
    at_least("io", bytes, 1)
}

/// The most pids a limit may name: Linux's own ceiling on pids
/// (`PID_MAX_LIMIT` on 64-bit machines); the kernel refuses a higher
/// `pids.max`, so such a limit would fail every job at its start.
const MAX_PIDS: u64 = 1 << 22;

/// The rule of a pids limit.
pub(crate) fn check_pids(pids: u64) -> Result<u64, String> {
    if (1..=MAX_PIDS).contains(&pids) {
        Ok(pids)
    } else {
        Err(format!("a pids limit must be at least 1 and at most {MAX_PIDS}, not {pids}"))
    }
}

fn at_least(what: &str, bytes: u64, min: u64) -> Result<u64, String> {
    if bytes < min {
        return Err(format!(
            "a {what} limit of {} is too small: the least is {}",
            size_name(bytes),
            size_name(min)
        ));
    }
    Ok(bytes)
}

/// `--job-memory`: a size that is a memory limit.
fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size(text).and_then(check_memory)
}

/// `--job-pids`: a number that is a pids limit.
fn parse_pids(text: &str) -> Result<u64, String> {
    let pids =
        text.trim().parse().map_err(|_| format!("invalid number of pids {text:?}: give one such as 100"))?;
    check_pids(pids)
}

/// `--job-io-*-bps`: a size that is an io limit.
fn parse_bps(text: &str) -> Result<u64, String> {
    parse_size(text).and_then(check_bps)
}

/// Every limit `asked` sets follows its rule.
fn check(asked: &wire::Limits) -> Result<(), String> {
    asked.memory.map(check_memory).transpose()?;
    asked.cpus.map(wire::Limits::check_cpus).transpose()?;
    asked.pids.map(check_pids).transpose()?;
    asked.io_read_bps.map(check_bps).transpose()?;
    asked.io_write_bps.map(check_bps).transpose()?;
    Ok(())
}

/// Who set a ceiling: named in the message that refuses a request above it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SetBy {
    /// `--job-NAME`.
    #[default]
    Server,
    /// `NAME` in the client's entry of the policy.
    Policy,
}

/// One limit's ceiling in force (`None`: no limit), and who set it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Ceiling<T> {
    value: Option<T>,
    by: SetBy,
}

/// How one limit is named: in messages, as a server flag, in the policy.
struct Name {
    what: &'static str,
    flag: &'static str,
    key: &'static str,
}

const MEMORY: Name = Name { what: "memory", flag: "job-memory", key: "memory" };
const CPUS: Name = Name { what: "cpus", flag: "job-cpus", key: "cpus" };
const PIDS: Name = Name { what: "pids", flag: "job-pids", key: "pids" };
const READ: Name = Name { what: "read", flag: "job-io-read-bps", key: "io_read_bps" };
const WRITE: Name = Name { what: "write", flag: "job-io-write-bps", key: "io_write_bps" };

impl<T: PartialOrd + Copy> Ceiling<T> {
    /// The smaller of this one and a client's own, if it has one.
    fn within(self, client: Option<T>) -> Ceiling<T> {
        match (self.value, client) {
            (Some(server), Some(own)) if server <= own => self,
            (_, Some(own)) => Ceiling { value: Some(own), by: SetBy::Policy },
            (_, None) => self,
        }
    }

    /// The limit a job gets that asks for `asked` (which follows its rule).
    fn apply(self, asked: Option<T>, name: &Name, show: impl Fn(T) -> String) -> Result<Option<T>, String> {
        match (asked, self.value) {
            (Some(value), Some(ceiling)) if value > ceiling => {
                let (what, value, ceiling) = (name.what, show(value), show(ceiling));
                Err(match self.by {
                    SetBy::Server => {
                        format!(
                            "a {what} limit of {value} is above this server's ceiling of {ceiling} (--{})",
                            name.flag
                        )
                    }
                    SetBy::Policy => format!(
                        "a {what} limit of {value} is above your ceiling of {ceiling} (`{}` in this server's policy)",
                        name.key
                    ),
                })
            }
            (value, _) => Ok(value.or(self.value)),
        }
    }
}

/// The limits in force for a client's jobs: defaults and ceilings at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceilings {
    memory: Ceiling<u64>,
    cpus: Ceiling<f64>,
    pids: Ceiling<u64>,
    io_read_bps: Ceiling<u64>,
    io_write_bps: Ceiling<u64>,
}

impl Ceilings {
    /// The server's own (`--job-*`).
    pub fn of_server(limits: &Limits) -> Ceilings {
        let server = |value| Ceiling { value, by: SetBy::Server };
        Ceilings {
            memory: server(limits.memory),
            cpus: Ceiling { value: limits.cpus, by: SetBy::Server },
            pids: server(limits.pids),
            io_read_bps: server(limits.io_read_bps),
            io_write_bps: server(limits.io_write_bps),
        }
    }

    /// The ceilings of a client whose policy entry sets `own`: for each
    /// limit, the smaller of the server's and the client's.
    pub fn within(&self, own: &Limits) -> Ceilings {
        Ceilings {
            memory: self.memory.within(own.memory),
            cpus: self.cpus.within(own.cpus),
            pids: self.pids.within(own.pids),
            io_read_bps: self.io_read_bps.within(own.io_read_bps),
            io_write_bps: self.io_write_bps.within(own.io_write_bps),
        }
    }

    /// The limits themselves.
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.memory.value,
            cpus: self.cpus.value,
            pids: self.pids.value,
            io_read_bps: self.io_read_bps.value,
            io_write_bps: self.io_write_bps.value,
        }
    }

    /// The limits a job gets when it asks for `asked`: each asked value if
    /// it is a limit at all and within the ceiling, else the default.
    pub fn apply(&self, asked: &wire::Limits) -> Result<Limits, String> {
        check(asked)?;
        let number = |n: u64| n.to_string();
        Ok(Limits {
            memory: self.memory.apply(asked.memory, &MEMORY, size_name)?,
            cpus: self.cpus.apply(asked.cpus, &CPUS, |cpus: f64| cpus.to_string())?,
            pids: self.pids.apply(asked.pids, &PIDS, number)?,
            io_read_bps: self.io_read_bps.apply(asked.io_read_bps, &READ, size_name)?,
            io_write_bps: self.io_write_bps.apply(asked.io_write_bps, &WRITE, size_name)?,
        })
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
        Ceilings::of_server(&Limits {
            memory: Some(1 << 30),
            cpus: Some(1.0),
            pids: Some(100),
            ..Limits::default()
        })
    }

    #[test]
    fn the_ceilings_are_the_defaults_and_smaller_asks_are_taken() {
        let none = server().apply(&wire::Limits::default()).unwrap();
        assert_eq!(none, server().limits());
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
            wire::Limits { cpus: Some(0.001), ..Default::default() },
            wire::Limits { cpus: Some(0.0099), ..Default::default() },
            wire::Limits { pids: Some(0), ..Default::default() },
            wire::Limits { memory: Some(4096), ..Default::default() },
            wire::Limits { io_read_bps: Some(0), ..Default::default() },
            wire::Limits { cpus: Some(f64::NAN), ..Default::default() },
            wire::Limits { cpus: Some(f64::INFINITY), ..Default::default() },
            wire::Limits { cpus: Some(1e308), ..Default::default() },
            wire::Limits { pids: Some(MAX_PIDS + 1), ..Default::default() },
            wire::Limits { pids: Some(u64::MAX), ..Default::default() },
        ] {
            assert!(Ceilings::default().apply(&asked).is_err(), "{asked:?}");
        }
    }

    #[test]
    fn a_cpus_limit_below_the_kernels_smallest_quota_is_refused_naming_the_least() {
        let error = Ceilings::default().apply(&wire::Limits { cpus: Some(0.005), ..Default::default() });
        let error = error.unwrap_err();
        assert!(error.contains("a cpus limit of 0.005 is too small: the least is 0.01"), "{error}");
        let least = Ceilings::default().apply(&wire::Limits { cpus: Some(0.01), ..Default::default() });
        assert_eq!(least.unwrap().cpus, Some(0.01), "the least is taken as it is");
    }

    #[test]
    fn a_client_s_own_ceilings_and_the_server_s_the_smaller_wins_and_is_named() {
        let own = Limits {
            memory: Some(64 << 20),
            pids: Some(500),
            io_read_bps: Some(1 << 20),
            ..Limits::default()
        };
        let client = server().within(&own);
        assert_eq!(
            client.limits(),
            Limits {
                memory: Some(64 << 20),
                cpus: Some(1.0),
                pids: Some(100),
                io_read_bps: Some(1 << 20),
                io_write_bps: None
            },
            "the policy's where smaller or the server has none, the server's where smaller"
        );
        let error =
            client.apply(&wire::Limits { memory: Some(128 << 20), ..Default::default() }).unwrap_err();
        assert!(error.contains("your ceiling of 64 MiB (`memory` in this server's policy)"), "{error}");
        let error = client.apply(&wire::Limits { pids: Some(200), ..Default::default() }).unwrap_err();
        assert!(error.contains("this server's ceiling of 100 (--job-pids)"), "{error}");
        let error =
            client.apply(&wire::Limits { io_read_bps: Some(2 << 20), ..Default::default() }).unwrap_err();
        assert!(error.contains("(`io_read_bps` in this server's policy)"), "{error}");
        let asked = wire::Limits { memory: Some(32 << 20), pids: Some(100), ..Default::default() };
        let limits = client.apply(&asked).unwrap();
        assert_eq!((limits.memory, limits.pids), (Some(32 << 20), Some(100)));
        assert_eq!(Ceilings::default().within(&own).limits(), own, "no server ceilings: the client's");
    }
}
