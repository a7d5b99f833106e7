//! A certificate's serial number, in the one form rcmd compares, stores and
//! prints.
//!
//! # Invariant
//!
//! A [`Serial`] holds the serial's integer as big-endian bytes without
//! leading zero bytes, so two serials are equal exactly when they are the
//! same number, however the certificate encoded it or the user typed it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A certificate's serial number.
///
/// Shown, and stored in the index, as lowercase hex with two digits per byte
/// (`4f0a…`). Parsed leniently, as users copy it: upper or lower case, with
/// `:` between bytes as openssl prints it, with or without leading zeros.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

/// Text that is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a serial number (hex digits, optionally with `:` between bytes)")]
pub struct InvalidSerial {
    text: String,
}

impl Serial {
    /// The serial whose big-endian bytes are `bytes` (a DER INTEGER's
    /// content, or rcgen's serial).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Serial {
        let significant = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Serial(bytes[significant..].to_vec())
    }

    /// The big-endian bytes, without leading zero bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        // `pad`, so that `pki list` can align it in a column.
        f.pad(&hex)
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({self})")
    }
}

impl FromStr for Serial {
    type Err = InvalidSerial;

    fn from_str(text: &str) -> Result<Serial, InvalidSerial> {
        let invalid = || InvalidSerial { text: text.to_owned() };
        let digits: Vec<u8> = text
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_digit(16).map(|d| d as u8).ok_or_else(invalid))
            .collect::<Result<_, _>>()?;
        if digits.is_empty() {
            return Err(invalid());
        }
        // An odd count has an implied leading zero.
        let pad = usize::from(digits.len() % 2 == 1);
        let padded: Vec<u8> = std::iter::repeat_n(0, pad).chain(digits).collect();
        let bytes: Vec<u8> = padded.chunks(2).map(|pair| pair[0] << 4 | pair[1]).collect();
        Ok(Serial::from_bytes(&bytes))
    }
}

impl Serialize for Serial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Serial, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_lowercase_hex_pairs_without_leading_zero_bytes() {
        let serial = Serial::from_bytes(&[0x00, 0x00, 0x4f, 0x0a, 0xbc]);
        assert_eq!(serial.to_string(), "4f0abc");
        assert_eq!(Serial::from_bytes(&[0x0a, 0x01]).to_string(), "0a01", "a byte keeps both digits");
    }

    #[test]
    fn every_way_of_typing_a_serial_is_the_same_serial() {
        let serial = Serial::from_bytes(&[0x0a, 0xbc, 0x01]);
        for typed in ["0abc01", "abc01", "0ABC01", "0a:bc:01", "0A:BC:01", "00:0a:bc:01", "000abc01"] {
            assert_eq!(typed.parse::<Serial>(), Ok(serial.clone()), "{typed}");
        }
    }

    #[test]
    fn what_is_not_hex_is_not_a_serial() {
        for typed in ["", ":", "alice", "0x4f", "4f 0a", "4g"] {
            assert!(typed.parse::<Serial>().is_err(), "{typed:?}");
        }
    }

    #[test]
    fn displayed_text_parses_back_to_the_same_serial() {
        let serial = Serial::from_bytes(&[0x7f, 0x00, 0x80, 0xff]);
        assert_eq!(serial.to_string().parse::<Serial>(), Ok(serial));
    }

    #[test]
    fn json_holds_the_displayed_text() {
        let serial = Serial::from_bytes(&[0x40, 0x01]);
        assert_eq!(serde_json::to_string(&serial).unwrap(), r#""4001""#);
        assert_eq!(serde_json::from_str::<Serial>(r#""40:01""#).unwrap(), serial);
        assert!(serde_json::from_str::<Serial>(r#""bob""#).is_err());
    }

    #[test]
    fn a_column_width_pads_it() {
        assert_eq!(format!("[{:<6}]", Serial::from_bytes(&[0x40, 0x01])), "[4001  ]");
    }
}
