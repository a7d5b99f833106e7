//! Client names. A name becomes a certificate's CN, a directory under the
//! cert directory, a key in the server's policy and its job pools, and part
//! of URLs (`/clients/{cn}/...`) and job names (`CN/ID`), so it must be safe
//! as all of them.
//!
//! The rules live in one place, [`ClientName::parse`]: the CA refuses to
//! issue a certificate for a name that breaks them, and the server refuses
//! (403) a certificate whose CN breaks them whoever signed it. Holding a
//! `ClientName` means the name was checked.
//!
//! A server name (`pki server NAME`) follows the same rules and one more:
//! no whitespace, since it also names the host in fan-out output and in the
//! `NAME ID` lines of `exec`. [`ServerName::parse`] holds that rule.

use std::fmt;
use std::str::FromStr;

use super::PkiError;

/// The longest name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A checked client name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientName(String);

/// Why a string is not a client name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid client name {name:?}: {reason}")]
pub struct InvalidName {
    pub name: String,
    pub reason: &'static str,
}

impl ClientName {
    /// Checks `name` against the rules: not empty, at most 64 bytes, not
    /// `.` or `..`, no `/` or `\`, no control characters, no leading `-`.
    pub fn parse(name: &str) -> Result<ClientName, InvalidName> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_NAME_LEN {
            Some("it is longer than 64 bytes")
        } else if name == "." || name == ".." {
            Some("`.` and `..` are not names")
        } else if name.contains('/') || name.contains('\\') {
            Some("it must not contain `/` or `\\`")
        } else if name.chars().any(char::is_control) {
            Some("it must not contain control characters")
        } else if name.starts_with('-') {
            Some("it must not start with `-`")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidName { name: name.to_owned(), reason }),
            None => Ok(ClientName(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientName {
    type Err = InvalidName;

    fn from_str(name: &str) -> Result<Self, InvalidName> {
        ClientName::parse(name)
    }
}

impl TryFrom<String> for ClientName {
    type Error = InvalidName;

    fn try_from(name: String) -> Result<Self, InvalidName> {
        ClientName::parse(&name)
    }
}

impl From<ClientName> for String {
    fn from(name: ClientName) -> String {
        name.0
    }
}

impl AsRef<str> for ClientName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked server name: a client name's rules, and no whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName(String);

impl ServerName {
    pub fn parse(name: &str) -> Result<ServerName, PkiError> {
        let reason = match ClientName::parse(name) {
            Err(e) => Some(e.reason),
            Ok(_) if name.contains(char::is_whitespace) => Some("it must not contain whitespace"),
            Ok(_) => None,
        };
        match reason {
            Some(reason) => Err(PkiError::BadServerName { name: name.to_owned(), reason }),
            None => Ok(ServerName(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["alice", "bob.smith", "ci-runner_7", "Émile", "a b", &"x".repeat(64)] {
            assert_eq!(ClientName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn each_unsafe_name_is_refused_with_its_reason() {
        let cases = [
            ("", "empty"),
            (&"x".repeat(65) as &str, "64 bytes"),
            (&"é".repeat(33), "64 bytes"),
            (".", "not names"),
            ("..", "not names"),
            ("a/b", "`/`"),
            ("a\\b", "`/`"),
            ("a\nb", "control"),
            ("a\0b", "control"),
            ("a\u{85}b", "control"),
            ("-rf", "start with `-`"),
        ];
        for (name, reason) in cases {
            let err = ClientName::parse(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
    }

    #[test]
    fn deserialising_applies_the_same_rules() {
        let ok: ClientName = serde_json::from_str(r#""alice""#).unwrap();
        assert_eq!(ok.as_str(), "alice");
        let err = serde_json::from_str::<ClientName>(r#""a/b""#).unwrap_err().to_string();
        assert!(err.contains("`/`"), "{err}");
    }

    #[test]
    fn server_names_also_refuse_whitespace() {
        ServerName::parse("web1.example.com").unwrap();
        for name in ["web 1", "web\t1", "../x", ""] {
            let err = ServerName::parse(name).unwrap_err().to_string();
            assert!(err.starts_with("invalid server name"), "{name:?}: {err}");
        }
    }
}
