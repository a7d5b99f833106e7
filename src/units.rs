//! Sizes and durations as people write them (`64M`, `2G`, `7d`, `12h`) and
//! as they are shown back (`64 MiB`). Each parser's error says what is
//! accepted. This module imports nothing else of the crate.

use std::time::Duration;

/// Text that is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {0:?}: give bytes, or a number with K, M, G or T (such as 64M)")]
pub struct SizeError(String);

/// Text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: give a number with s, m, h or d (such as 12h or 7d), or 0")]
pub struct DurationError(String);

/// Bytes, or a number with K, M, G or T (powers of 1024): `512`, `64M`, `1.5G`.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let bad = || SizeError(text.to_owned());
    let (number, unit) = split_unit(text.trim());
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(bad()),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(scale).ok_or_else(bad);
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A duration: a number with s, m, h or d (`45s`, `30m`, `12h`, `7d`), or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(text.to_owned());
    let (number, unit) = split_unit(text.trim());
    let seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "" if number == "0" => 0,
        _ => return Err(bad()),
    };
    let value: u64 = number.parse().map_err(|_| bad())?;
    value.checked_mul(seconds).map(Duration::from_secs).ok_or_else(bad)
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    text.split_at(at)
}

/// A number of bytes for people: `64 MiB`, `1.5 GiB`, `512 bytes`.
///
/// ```
/// assert_eq!(rcmd::units::size_name(64 << 20), "64 MiB");
/// assert_eq!(rcmd::units::size_name(1536 << 20), "1.5 GiB");
/// assert_eq!(rcmd::units::size_name(100), "100 bytes");
/// ```
pub fn size_name(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let (mut value, mut unit) = (bytes as f64, None);
    for name in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(name);
    }
    match unit {
        None => format!("{bytes} bytes"),
        Some(unit) => {
            let text = format!("{value:.1}");
            format!("{} {unit}", text.strip_suffix(".0").unwrap_or(&text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_and_refuse_nonsense() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        for bad in ["", "M", "-1", "12X", "99999999999T", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_size_error_quotes_the_text_and_says_what_is_accepted() {
        assert_eq!(
            parse_size("lots").unwrap_err().to_string(),
            "invalid size \"lots\": give bytes, or a number with K, M, G or T (such as 64M)"
        );
    }

    #[test]
    fn durations_take_s_m_h_d_and_zero() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "7", "1w", "-1d", "d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
