//! A client's own ceilings in the policy: `memory`, `cpus`, `pids`,
//! `io_read_bps` and `io_write_bps`, written as on the command line
//! (`memory = "4G"`, `cpus = 0.5`) or as plain numbers (`memory = 1048576`,
//! `cpus = 2`). Each value is held to the rule of its limit (see
//! [`crate::server::ceilings`]) as it is read, so a bad one (`"lots"`, `0`,
//! `nan`, `-1`) fails the whole file with its line and column.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

use crate::server::ceilings::{check_bps, check_memory, check_pids};
use crate::units::parse_size;
use crate::wire;

/// A TOML value as it was written: text, a whole number or a float.
enum Written {
    Text(String),
    Whole(i128),
    Float(f64),
}

impl<'de> de::Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl Visitor<'_> for Any {
            type Value = Written;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a string such as \"4G\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Written, E> {
                Ok(Written::Text(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Written, E> {
                Ok(Written::Whole(n.into()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Written, E> {
                Ok(Written::Whole(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Written, E> {
                Ok(Written::Float(n))
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// Reads one value with `read`, or fails at its place in the file.
fn read<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    read: impl FnOnce(Written) -> Result<T, String>,
) -> Result<Option<T>, D::Error> {
    let written = <Written as de::Deserialize>::deserialize(deserializer)?;
    read(written).map(Some).map_err(de::Error::custom)
}

/// A size: `"4G"`, or a whole number of bytes.
fn size(written: Written) -> Result<u64, String> {
    match written {
        Written::Text(text) => parse_size(&text),
        Written::Whole(n) => u64::try_from(n).map_err(|_| format!("a size cannot be {n}")),
        Written::Float(n) => Err(format!("a size is \"64M\" or a whole number of bytes, not {n}")),
    }
}

pub(super) fn memory<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    read(deserializer, |written| size(written).and_then(check_memory))
}

pub(super) fn bps<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    read(deserializer, |written| size(written).and_then(check_bps))
}

pub(super) fn cpus<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    read(deserializer, |written| match written {
        Written::Text(text) => wire::Limits::parse_cpus(&text),
        Written::Whole(n) => wire::Limits::check_cpus(n as f64),
        Written::Float(n) => wire::Limits::check_cpus(n),
    })
}

pub(super) fn pids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    read(deserializer, |written| match written {
        Written::Whole(n) => u64::try_from(n)
            .map_err(|_| format!("a pids limit must be at least 1, not {n}"))
            .and_then(check_pids),
        _ => Err("pids is a whole number, such as 100".to_owned()),
    })
}
