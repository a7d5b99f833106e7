//! An error and its causes as one line, each cause said once.
//!
//! Many errors already include their cause in their own message
//! (`cannot prepare DIR: File name too long`) and also return it from
//! `source()`. Printing the chain blindly, as `{:#}` does, then says the cause
//! twice. Here a cause is added only when the line does not already say it.

use std::error::Error;

/// `error: cause: cause ...`, without repeating a cause the line already has.
pub fn one_line(error: &anyhow::Error) -> String {
    join_chain(error.chain())
}

fn join_chain<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot prepare /x: {source}")]
    struct SaysItsCause {
        source: std::io::Error,
    }

    fn too_long() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::ENAMETOOLONG)
    }

    #[test]
    fn a_cause_in_the_message_is_not_repeated() {
        let error =
            anyhow::Error::new(SaysItsCause { source: too_long() }).context("cannot open the job store");
        let line = one_line(&error);
        assert_eq!(line, format!("cannot open the job store: cannot prepare /x: {}", too_long()));
        assert_eq!(line.matches("File name too long").count(), 1, "{line}");
    }

    #[test]
    fn causes_not_in_the_message_are_added_in_order() {
        let error = anyhow::Error::new(too_long()).context("inner").context("outer");
        assert_eq!(one_line(&error), format!("outer: inner: {}", too_long()));
    }
}
