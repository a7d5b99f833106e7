//! Ceilings on the per-job limits: the server's (`serve --job-*`), and a client's own
//! in the policy (`memory = "4G"` and so on in its entry). Each is the
//! default for a job that does not ask, and the most a job may ask for;
//! where the server and the policy both set one, the smaller wins. A
//! request above the ceiling in force is refused with a message that names
//! the ceiling and where it is set ([`AboveCeiling`]).
//!
//! What a limit may be at all (no zero CPUs, no memory below 1 MiB) is not
//! checked here: it is the rule of each limit's type in [`crate::limits`],
//! which a request, a `--job-*` flag and the policy cannot get past.

use std::fmt::Display;

use crate::limits::{BytesPerSecond, Cpus, Limits, Memory, Pids};

/// `serve --job-*`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobLimitArgs {
    /// Memory per job, swap included (SIZE: bytes, or with K, M, G or T):
    /// the default for jobs that do not ask, and the most one may ask for.
    #[arg(long, value_name = "SIZE")]
    pub job_memory: Option<Memory>,

    /// CPUs' worth of time per job (0.5 is half of one CPU; at least 0.01,
    /// the kernel's smallest quota): default and ceiling.
    #[arg(long, value_name = "N")]
    pub job_cpus: Option<Cpus>,

    /// Processes and threads per job: default and ceiling.
    #[arg(long, value_name = "N")]
    pub job_pids: Option<Pids>,

    /// Bytes read per second per job from the disk of the data directory
    /// (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE")]
    pub job_io_read_bps: Option<BytesPerSecond>,

    /// Bytes written per second per job to that disk (SIZE): default and ceiling.
    #[arg(long, value_name = "SIZE")]
    pub job_io_write_bps: Option<BytesPerSecond>,
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

/// A request for a limit above the ceiling in force, naming the ceiling and
/// where it is set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AboveCeiling {
    #[error("a {what} limit of {asked} is above this server's ceiling of {ceiling} (--{flag})")]
    Server { what: &'static str, asked: String, ceiling: String, flag: &'static str },
    #[error("a {what} limit of {asked} is above your ceiling of {ceiling} (`{key}` in this server's policy)")]
    Policy { what: &'static str, asked: String, ceiling: String, key: &'static str },
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
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ceiling<T> {
    value: Option<T>,
    by: SetBy,
}

impl<T> Default for Ceiling<T> {
    fn default() -> Self {
        Ceiling { value: None, by: SetBy::Server }
    }
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

impl<T: PartialOrd + Copy + Display> Ceiling<T> {
    /// The server's own (`--job-*`).
    fn of_server(value: Option<T>) -> Ceiling<T> {
        Ceiling { value, by: SetBy::Server }
    }

    /// The smaller of this one and a client's own, if it has one.
    fn within(self, client: Option<T>) -> Ceiling<T> {
        match (self.value, client) {
            (Some(server), Some(own)) if server <= own => self,
            (_, Some(own)) => Ceiling { value: Some(own), by: SetBy::Policy },
            (_, None) => self,
        }
    }

    /// The limit a job gets that asks for `asked`.
    fn apply(self, asked: Option<T>, name: &Name) -> Result<Option<T>, AboveCeiling> {
        match (asked, self.value) {
            (Some(value), Some(ceiling)) if value > ceiling => {
                let (what, asked, ceiling) = (name.what, value.to_string(), ceiling.to_string());
                Err(match self.by {
                    SetBy::Server => AboveCeiling::Server { what, asked, ceiling, flag: name.flag },
                    SetBy::Policy => AboveCeiling::Policy { what, asked, ceiling, key: name.key },
                })
            }
            (value, _) => Ok(value.or(self.value)),
        }
    }
}

/// The limits in force for a client's jobs: defaults and ceilings at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceilings {
    memory: Ceiling<Memory>,
    cpus: Ceiling<Cpus>,
    pids: Ceiling<Pids>,
    io_read_bps: Ceiling<BytesPerSecond>,
    io_write_bps: Ceiling<BytesPerSecond>,
}

impl Ceilings {
    /// The server's own (`--job-*`).
    pub fn of_server(limits: &Limits) -> Ceilings {
        Ceilings {
            memory: Ceiling::of_server(limits.memory),
            cpus: Ceiling::of_server(limits.cpus),
            pids: Ceiling::of_server(limits.pids),
            io_read_bps: Ceiling::of_server(limits.io_read_bps),
            io_write_bps: Ceiling::of_server(limits.io_write_bps),
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
    /// it is within the ceiling, else the default.
    pub fn apply(&self, asked: &Limits) -> Result<Limits, AboveCeiling> {
        Ok(Limits {
            memory: self.memory.apply(asked.memory, &MEMORY)?,
            cpus: self.cpus.apply(asked.cpus, &CPUS)?,
            pids: self.pids.apply(asked.pids, &PIDS)?,
            io_read_bps: self.io_read_bps.apply(asked.io_read_bps, &READ)?,
            io_write_bps: self.io_write_bps.apply(asked.io_write_bps, &WRITE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(bytes: u64) -> Option<Memory> {
        Some(Memory::new(bytes).unwrap())
    }

    fn cpus(cpus: f64) -> Option<Cpus> {
        Some(Cpus::new(cpus).unwrap())
    }

    fn pids(pids: u64) -> Option<Pids> {
        Some(Pids::new(pids).unwrap())
    }

    fn bps(bytes: u64) -> Option<BytesPerSecond> {
        Some(BytesPerSecond::new(bytes).unwrap())
    }

    fn server() -> Ceilings {
        Ceilings::of_server(&Limits {
            memory: memory(1 << 30),
            cpus: cpus(1.0),
            pids: pids(100),
            ..Limits::default()
        })
    }

    #[test]
    fn the_ceilings_are_the_defaults_and_smaller_asks_are_taken() {
        let none = server().apply(&Limits::default()).unwrap();
        assert_eq!(none, server().limits());
        let asked = Limits { memory: memory(64 << 20), io_write_bps: bps(5 << 20), ..Default::default() };
        let limits = server().apply(&asked).unwrap();
        assert_eq!(
            (limits.memory, limits.io_write_bps, limits.pids),
            (memory(64 << 20), bps(5 << 20), pids(100))
        );
    }

    #[test]
    fn an_ask_above_a_ceiling_names_the_ceiling_and_its_flag() {
        let asked = Limits { memory: memory(2 << 30), ..Default::default() };
        let error = server().apply(&asked).unwrap_err().to_string();
        assert_eq!(error, "a memory limit of 2 GiB is above this server's ceiling of 1 GiB (--job-memory)");
        let error = server().apply(&Limits { cpus: cpus(1.5), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("ceiling of 1 (--job-cpus)"), "{error}");
        let error = server().apply(&Limits { pids: pids(101), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("ceiling of 100 (--job-pids)"), "{error}");
    }

    #[test]
    fn an_ask_at_the_ceiling_is_taken_as_it_is() {
        let at = Limits { memory: memory(1 << 30), cpus: cpus(1.0), pids: pids(100), ..Default::default() };
        assert_eq!(server().apply(&at), Ok(at));
        let least = Ceilings::default().apply(&Limits { cpus: cpus(Cpus::MIN), ..Default::default() });
        assert_eq!(least.unwrap().cpus, cpus(0.01), "no ceiling: the ask itself");
    }

    #[test]
    fn a_client_s_own_ceilings_and_the_server_s_the_smaller_wins_and_is_named() {
        let own = Limits {
            memory: memory(64 << 20),
            pids: pids(500),
            io_read_bps: bps(1 << 20),
            ..Limits::default()
        };
        let client = server().within(&own);
        assert_eq!(
            client.limits(),
            Limits {
                memory: memory(64 << 20),
                cpus: cpus(1.0),
                pids: pids(100),
                io_read_bps: bps(1 << 20),
                io_write_bps: None
            },
            "the policy's where smaller or the server has none, the server's where smaller"
        );
        let error = client.apply(&Limits { memory: memory(128 << 20), ..Default::default() }).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a memory limit of 128 MiB is above your ceiling of 64 MiB (`memory` in this server's policy)"
        );
        let error = client.apply(&Limits { pids: pids(200), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("this server's ceiling of 100 (--job-pids)"), "{error}");
        let error = client.apply(&Limits { io_read_bps: bps(2 << 20), ..Default::default() }).unwrap_err();
        assert!(error.to_string().contains("(`io_read_bps` in this server's policy)"), "{error}");
        let asked = Limits { memory: memory(32 << 20), pids: pids(100), ..Default::default() };
        let limits = client.apply(&asked).unwrap();
        assert_eq!((limits.memory, limits.pids), (memory(32 << 20), pids(100)));
        assert_eq!(Ceilings::default().within(&own).limits(), own, "no server ceilings: the client's");
    }
}
