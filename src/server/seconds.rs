//! A flag's number of seconds, checked when the command line is parsed: a
//! bad value (`inf`, `-1`, `nan`) is refused before the server does anything,
//! such as making a PKI or starting its guard.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A finite, non-negative number of seconds, such as `10` or `2.5`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

/// Why a text is not [`Seconds`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSeconds {
    #[error("{0:?} is not a number of seconds (such as 10 or 2.5)")]
    NotANumber(String),
    #[error("{0:?} is not a number of seconds: it must be finite and not negative")]
    OutOfRange(String),
}

impl FromStr for Seconds {
    type Err = InvalidSeconds;

    fn from_str(text: &str) -> Result<Self, InvalidSeconds> {
        let value: f64 = text.parse().map_err(|_| InvalidSeconds::NotANumber(text.to_owned()))?;
        Duration::try_from_secs_f64(value)
            .map(Seconds)
            .map_err(|_| InvalidSeconds::OutOfRange(text.to_owned()))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_secs_f64().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_non_negative_numbers_are_seconds() {
        assert_eq!("2.5".parse(), Ok(Seconds(Duration::from_millis(2500))));
        assert_eq!("0".parse(), Ok(Seconds(Duration::ZERO)));
        for bad in ["inf", "-inf", "infinity", "nan", "-1", "", "10s", "1e300"] {
            assert!(bad.parse::<Seconds>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_shows_as_it_would_be_typed() {
        assert_eq!(Seconds(Duration::from_secs(5)).to_string(), "5");
    }
}
