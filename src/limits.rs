//! Per-job resource limits: one [`Limits`] type for every place a limit is
//! set or shown. A request's `limits` in `PUT /jobs` and a status's are
//! this type as JSON; the jobs library starts a job with it
//! ([`crate::jobs::Limits`] is this type); the server's `--job-*` flags and
//! a client's ceilings in the policy are held in it, and so are the
//! client's `--memory`, `--cpus`, ... flags.
//!
//! # Invariants
//!
//! * A limit is a value of its own type ([`Memory`], [`Cpus`], [`Pids`],
//!   [`BytesPerSecond`]), and only a valid one can be made: the rule of
//!   each is in its constructor, which [`FromStr`] (the command line, the
//!   policy's strings), [`TryFrom`] and [`Deserialize`] (JSON numbers) all
//!   go through. So no zero CPUs, NaN, memory below 1 MiB or pids past
//!   the kernel's own ceiling reach a cgroup, wherever they came from.
//! * In JSON each limit is a plain number, as the API has always taken and
//!   shown it: bytes for memory and io, a float for cpus, a whole number
//!   for pids.
//! * Every `None` is "no limit".
//!
//! This module imports nothing of the crate but [`crate::units`], so that
//! `jobs` and `wire` can share it and still import nothing else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::{SizeError, parse_size, size_name};

/// Per-job resource limits: asked for in `PUT /jobs`, in force in a status,
/// a job's own in the jobs library, and a server's or a client's ceilings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory, swap included (no swap beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// CPUs, as a quota: 0.5 is half of one CPU's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// The most processes (and threads) at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    /// Bytes per second read from the disk that holds the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_bps: Option<BytesPerSecond>,
    /// Bytes per second written to that disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_bps: Option<BytesPerSecond>,
}

impl Limits {
    /// No limit at all.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// A value that is not a limit, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error(transparent)]
    Size(#[from] SizeError),
    #[error(
        "a memory limit of {} is too small: the least is {}",
        size_name(*.0),
        size_name(Memory::MIN)
    )]
    MemoryTooSmall(u64),
    #[error("an io limit of 0 bytes per second is too small: the least is 1")]
    NoBytesPerSecond,
    #[error("invalid number of CPUs {0:?}: give a positive number such as 2 or 0.25")]
    NotCpus(String),
    #[error(
        "a cpus limit must be a positive number of at most {max}, such as 2 or 0.25, not {0:?}",
        max = Cpus::MAX
    )]
    CpusOutOfRange(f64),
    #[error(
        "a cpus limit of {0} is too small: the least is {min} (the kernel's smallest CPU quota, 1 ms per 100 ms)",
        min = Cpus::MIN
    )]
    CpusTooFew(f64),
    #[error("invalid number of pids {0:?}: give one such as 100")]
    NotPids(String),
    #[error("a pids limit must be at least 1 and at most {max}, not {0}", max = Pids::MAX)]
    PidsOutOfRange(u64),
}

/// Implements the traits every limit has from its `new` and `get`:
/// `TryFrom` its number (which serde reads it through), into that number
/// (which serde writes), and `FromStr` with `parse` (text to number).
macro_rules! limit_conversions {
    ($limit:ty, $number:ty, $parse:expr) => {
        impl TryFrom<$number> for $limit {
            type Error = LimitError;
            fn try_from(value: $number) -> Result<Self, LimitError> {
                <$limit>::new(value)
            }
        }

        impl From<$limit> for $number {
            fn from(limit: $limit) -> $number {
                limit.get()
            }
        }

        impl FromStr for $limit {
            type Err = LimitError;
            fn from_str(text: &str) -> Result<Self, LimitError> {
                let parse: fn(&str) -> Result<$number, LimitError> = $parse;
                parse(text).and_then(<$limit>::new)
            }
        }
    };
}

/// A memory limit: bytes, at least [`Memory::MIN`]. Written as a size
/// (`64M`, or bytes); shown as one (`64 MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Memory(u64);

impl Memory {
    /// The smallest memory limit taken: below it a job cannot even start.
    pub const MIN: u64 = 1 << 20;

    pub fn new(bytes: u64) -> Result<Memory, LimitError> {
        if bytes < Memory::MIN {
            return Err(LimitError::MemoryTooSmall(bytes));
        }
        Ok(Memory(bytes))
    }

    /// Bytes.
    pub fn get(self) -> u64 {
        self.0
    }
}

limit_conversions!(Memory, u64, |text| Ok(parse_size(text)?));

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&size_name(self.0))
    }
}

/// An io limit: bytes per second, at least 1. Written as a size (`5M`);
/// shown as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct BytesPerSecond(u64);

impl BytesPerSecond {
    pub fn new(bytes: u64) -> Result<BytesPerSecond, LimitError> {
        if bytes == 0 {
            return Err(LimitError::NoBytesPerSecond);
        }
        Ok(BytesPerSecond(bytes))
    }

    /// Bytes per second.
    pub fn get(self) -> u64 {
        self.0
    }
}

limit_conversions!(BytesPerSecond, u64, |text| Ok(parse_size(text)?));

impl fmt::Display for BytesPerSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&size_name(self.0))
    }
}

/// A cpus limit: CPUs' worth of time, finite, from [`Cpus::MIN`] to
/// [`Cpus::MAX`]. Never NaN, so it compares like a number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Cpus(f64);

impl Cpus {
    /// The fewest CPUs a limit may name: the kernel's smallest CPU quota,
    /// 1 ms in each 100 ms period. A smaller one would be raised to it, so
    /// the job would get more than it asked for: it is refused instead.
    pub const MIN: f64 = 0.01;

    /// The most CPUs a limit may name: far above any machine's count, and
    /// far below what the kernel's quota can hold (about 1.7e8 CPUs), so
    /// that a limit never turns into a quota the kernel refuses.
    pub const MAX: f64 = 1e6;

    pub fn new(cpus: f64) -> Result<Cpus, LimitError> {
        if !(cpus.is_finite() && cpus > 0.0 && cpus <= Cpus::MAX) {
            return Err(LimitError::CpusOutOfRange(cpus));
        }
        if cpus < Cpus::MIN {
            return Err(LimitError::CpusTooFew(cpus));
        }
        Ok(Cpus(cpus))
    }

    /// CPUs.
    pub fn get(self) -> f64 {
        self.0
    }
}

limit_conversions!(Cpus, f64, |text| text.trim().parse().map_err(|_| LimitError::NotCpus(text.to_owned())));

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A pids limit: processes and threads at once, from 1 to [`Pids::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Pids(u64);

impl Pids {
    /// The most pids a limit may name: Linux's own ceiling on pids
    /// (`PID_MAX_LIMIT` on 64-bit machines); the kernel refuses a higher
    /// `pids.max`, so such a limit would fail every job at its start.
    pub const MAX: u64 = 1 << 22;

    pub fn new(pids: u64) -> Result<Pids, LimitError> {
        if !(1..=Pids::MAX).contains(&pids) {
            return Err(LimitError::PidsOutOfRange(pids));
        }
        Ok(Pids(pids))
    }

    /// Processes and threads.
    pub fn get(self) -> u64 {
        self.0
    }
}

limit_conversions!(Pids, u64, |text| text.trim().parse().map_err(|_| LimitError::NotPids(text.to_owned())));

impl fmt::Display for Pids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<Limits, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn memory_below_minimum_is_refused() {
        assert_eq!(Memory::new(4096), Err(LimitError::MemoryTooSmall(4096)));
        assert_eq!(Memory::new(0), Err(LimitError::MemoryTooSmall(0)));
        assert_eq!(Memory::new(Memory::MIN).map(Memory::get), Ok(1 << 20), "the least is taken");
        let error = "4K".parse::<Memory>().unwrap_err().to_string();
        assert_eq!(error, "a memory limit of 4 KiB is too small: the least is 1 MiB");
    }

    #[test]
    fn memory_is_written_as_a_size_and_shown_as_one() {
        assert_eq!("64M".parse::<Memory>().map(Memory::get), Ok(64 << 20));
        assert_eq!(" 1048576 ".parse::<Memory>().map(Memory::get), Ok(1 << 20));
        assert_eq!(Memory::new(1536 << 20).unwrap().to_string(), "1.5 GiB");
        let error = "lots".parse::<Memory>().unwrap_err().to_string();
        assert!(error.starts_with("invalid size \"lots\""), "{error}");
    }

    #[test]
    fn bytes_per_second_refuse_zero() {
        assert_eq!(BytesPerSecond::new(0), Err(LimitError::NoBytesPerSecond));
        assert!("0".parse::<BytesPerSecond>().unwrap_err().to_string().contains("too small"));
        assert_eq!("1.5M".parse::<BytesPerSecond>().map(BytesPerSecond::get), Ok(3 << 19));
        assert_eq!(BytesPerSecond::new(1).map(BytesPerSecond::get), Ok(1));
    }

    #[test]
    fn cpus_refuse_nan_infinity_zero_and_negatives() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -1.0, 1e308] {
            assert!(matches!(Cpus::new(bad), Err(LimitError::CpusOutOfRange(_))), "{bad}");
        }
        for bad in ["nan", "inf", "-1", "0"] {
            let error = bad.parse::<Cpus>().unwrap_err().to_string();
            assert!(
                error.starts_with("a cpus limit must be a positive number of at most 1000000"),
                "{error}"
            );
        }
        let error = "many".parse::<Cpus>().unwrap_err().to_string();
        assert!(error.starts_with("invalid number of CPUs \"many\""), "{error}");
    }

    #[test]
    fn cpus_below_the_kernels_smallest_quota_are_refused_naming_the_least() {
        for few in [0.001, 0.005, 0.0099] {
            assert_eq!(Cpus::new(few), Err(LimitError::CpusTooFew(few)));
        }
        let error = "0.005".parse::<Cpus>().unwrap_err().to_string();
        assert!(error.starts_with("a cpus limit of 0.005 is too small: the least is 0.01"), "{error}");
        assert_eq!(Cpus::new(Cpus::MIN).map(Cpus::get), Ok(0.01), "the least is taken as it is");
        assert_eq!(Cpus::new(Cpus::MAX).map(Cpus::get), Ok(1e6), "the most is taken as it is");
        assert_eq!(Cpus::new(0.5).unwrap().to_string(), "0.5");
        assert_eq!(Cpus::new(1.0).unwrap().to_string(), "1");
    }

    #[test]
    fn pids_refuse_zero_and_more_than_the_kernel_allows() {
        for bad in [0, Pids::MAX + 1, u64::MAX] {
            assert_eq!(Pids::new(bad), Err(LimitError::PidsOutOfRange(bad)));
        }
        assert_eq!(Pids::new(Pids::MAX).map(Pids::get), Ok(1 << 22));
        assert_eq!(
            "0".parse::<Pids>().unwrap_err().to_string(),
            "a pids limit must be at least 1 and at most 4194304, not 0"
        );
        assert!("1.5".parse::<Pids>().unwrap_err().to_string().starts_with("invalid number of pids"));
    }

    #[test]
    fn json_limits_are_plain_numbers_both_ways() {
        let text = r#"{"memory":67108864,"cpus":0.5,"pids":100,"io_read_bps":1048576,"io_write_bps":5}"#;
        let limits = json(text).unwrap();
        assert_eq!(limits.memory.map(Memory::get), Some(64 << 20));
        assert_eq!(limits.cpus.map(Cpus::get), Some(0.5));
        assert_eq!(serde_json::to_string(&limits).unwrap(), text);
        assert_eq!(json(r#"{"cpus": 2}"#).unwrap().cpus.map(Cpus::get), Some(2.0), "a whole number of CPUs");
        assert_eq!(serde_json::to_string(&Limits::default()).unwrap(), "{}", "no limit is not shown");
        assert!(Limits::default().is_empty() && !limits.is_empty());
    }

    #[test]
    fn json_limits_that_are_no_limits_cannot_be_read() {
        for (text, reason) in [
            (r#"{"cpus": 0}"#, "a cpus limit must be a positive number"),
            (r#"{"cpus": 0.005}"#, "the least is 0.01"),
            (r#"{"cpus": 1e308}"#, "at most 1000000"),
            (r#"{"pids": 0}"#, "at least 1 and at most 4194304"),
            (r#"{"pids": 5000000}"#, "at least 1 and at most 4194304"),
            (r#"{"pids": -1}"#, "expected u64"),
            (r#"{"memory": 4096}"#, "the least is 1 MiB"),
            (r#"{"memory": 1.5}"#, "expected u64"),
            (r#"{"memory": "64M"}"#, "expected u64"),
            (r#"{"io_read_bps": 0}"#, "too small"),
            (r#"{"swap": 1}"#, "unknown field `swap`"),
        ] {
            let error = json(text).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
