//! A client's own ceilings in the policy: `memory`, `cpus`, `pids`,
//! `io_read_bps` and `io_write_bps`, written as on the command line
//! (`memory = "4G"`, `cpus = 0.5`) or as plain numbers (`memory = 1048576`,
//! `cpus = 2`). A string goes through the limit's [`FromStr`], a number
//! through its constructor, so each value is held to the rule of its type
//! in [`crate::limits`] as it is read, and a bad one (`"lots"`, `0`, `nan`,
//! `-1`) fails the whole file with its line and column.

use std::fmt;
use std::str::FromStr;

use serde::Deserializer;
use serde::de::{self, Visitor};

use crate::limits::{BytesPerSecond, Cpus, LimitError, Memory, Pids};

/// A TOML value as it was written: text, a whole number or a float.
pub(super) enum Written {
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

/// A value that cannot be the limit it is written for.
#[derive(Debug, thiserror::Error)]
pub(super) enum WrittenError {
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("a size cannot be {0}")]
    NegativeSize(i128),
    #[error("a size is \"64M\" or a whole number of bytes, not {0}")]
    FractionalSize(f64),
    #[error("a pids limit must be at least 1, not {0}")]
    NegativePids(i128),
    #[error("pids is a whole number, such as 100")]
    NotWholePids,
}

/// A limit as the policy may write it.
pub(super) trait FromWritten: Sized {
    fn from_written(written: Written) -> Result<Self, WrittenError>;
}

/// A size limit: `"4G"`, or a whole number of bytes.
fn size<T: FromStr<Err = LimitError> + TryFrom<u64, Error = LimitError>>(
    written: Written,
) -> Result<T, WrittenError> {
    match written {
        Written::Text(text) => Ok(text.parse()?),
        Written::Whole(n) => Ok(T::try_from(u64::try_from(n).map_err(|_| WrittenError::NegativeSize(n))?)?),
        Written::Float(n) => Err(WrittenError::FractionalSize(n)),
    }
}

impl FromWritten for Memory {
    fn from_written(written: Written) -> Result<Memory, WrittenError> {
        size(written)
    }
}

impl FromWritten for BytesPerSecond {
    fn from_written(written: Written) -> Result<BytesPerSecond, WrittenError> {
        size(written)
    }
}

impl FromWritten for Cpus {
    fn from_written(written: Written) -> Result<Cpus, WrittenError> {
        Ok(match written {
            Written::Text(text) => text.parse()?,
            Written::Whole(n) => Cpus::new(n as f64)?,
            Written::Float(n) => Cpus::new(n)?,
        })
    }
}

impl FromWritten for Pids {
    fn from_written(written: Written) -> Result<Pids, WrittenError> {
        match written {
            Written::Whole(n) => Ok(Pids::new(u64::try_from(n).map_err(|_| WrittenError::NegativePids(n))?)?),
            _ => Err(WrittenError::NotWholePids),
        }
    }
}

/// Reads one limit, or fails at its place in the file: for
/// `#[serde(deserialize_with)]`.
pub(super) fn limit<'de, D: Deserializer<'de>, T: FromWritten>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let written = <Written as de::Deserialize>::deserialize(deserializer)?;
    T::from_written(written).map(Some).map_err(de::Error::custom)
}
