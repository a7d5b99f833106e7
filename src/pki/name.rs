//! Client names: they become a certificate's CN and a directory name, so
//! they must be safe as both.

use super::PkiError;

pub const MAX_NAME_LEN: usize = 64;

/// Checks that `name` can be a client's CN and a directory under the cert
/// directory.
pub fn validate_client_name(name: &str) -> Result<(), PkiError> {
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
        Some(reason) => Err(PkiError::BadName { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["alice", "bob.smith", "ci-runner_7", "Émile", &"x".repeat(64)] {
            validate_client_name(name).unwrap();
        }
    }

    #[test]
    fn each_unsafe_name_is_refused_with_its_reason() {
        let cases = [
            ("", "empty"),
            (&"x".repeat(65) as &str, "64 bytes"),
            (".", "not names"),
            ("..", "not names"),
            ("a/b", "`/`"),
            ("a\\b", "`/`"),
            ("a\nb", "control"),
            ("a\0b", "control"),
            ("-rf", "start with `-`"),
        ];
        for (name, reason) in cases {
            let err = validate_client_name(name).unwrap_err().to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
    }
}
