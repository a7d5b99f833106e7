//! How each host fared, the summary on stderr, and the exit status.
//!
//! Exit status of a fleet command: 0 when every host succeeded, 255
//! (unreachable) when any host could not be reached, else the largest
//! status of a failed host.

use super::targets::Host;
use crate::client::error::exit;

/// The end of one host's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// The host answered, but the command failed there: the status it gives
    /// and why, for people.
    Failed {
        status: i32,
        why: String,
    },
    /// No answer: cannot connect, TLS refused, the connection broke.
    Unreachable {
        why: String,
    },
}

impl Outcome {
    /// A host whose job was never started: a Ctrl-C came first (`why`
    /// says when). 130, as a shell gives a command that SIGINT ended.
    pub fn not_started(why: &str) -> Outcome {
        Outcome::Failed { status: 130, why: format!("not started: {why}") }
    }

    pub fn status(&self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed { status, .. } => *status,
            Outcome::Unreachable { .. } => exit::UNREACHABLE,
        }
    }

    /// `ok`, `failed` or `unreachable`, as JSON output names it.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed { .. } => "failed",
            Outcome::Unreachable { .. } => "unreachable",
        }
    }

    pub fn why(&self) -> Option<&str> {
        match self {
            Outcome::Ok => None,
            Outcome::Failed { why, .. } | Outcome::Unreachable { why } => Some(why),
        }
    }
}

/// The exit status of the whole command (see the module docs).
pub(crate) fn exit_status<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> i32 {
    let mut status = 0;
    for outcome in outcomes {
        if matches!(outcome, Outcome::Unreachable { .. }) {
            return exit::UNREACHABLE;
        }
        status = status.max(outcome.status());
    }
    status
}

/// The summary lines: a count, then the failed and the unreachable hosts
/// with why, one host per line so that long lists stay readable.
pub(crate) fn summary(results: &[(&Host, Outcome)]) -> Vec<String> {
    let count = |word: &str| results.iter().filter(|(_, o)| o.word() == word).count();
    let (ok, failed, unreachable) = (count("ok"), count("failed"), count("unreachable"));
    let mut head = format!("{} hosts: {ok} ok", results.len());
    if failed > 0 {
        head += &format!(", {failed} failed");
    }
    if unreachable > 0 {
        head += &format!(", {unreachable} unreachable");
    }
    let mut lines = vec![head];
    for (host, outcome) in results {
        if let Some(why) = outcome.why() {
            lines.push(format!("{} {}: {}", outcome.word(), host.name, one_line(why)));
        }
    }
    lines
}

/// `why` may hold a server's own words: control characters are escaped, so
/// that a hostile server cannot forge summary lines of other hosts.
fn one_line(why: &str) -> String {
    why.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: i32) -> Outcome {
        Outcome::Failed { status, why: format!("exit status {status}") }
    }

    #[test]
    fn exit_status_is_zero_255_or_the_largest() {
        assert_eq!(exit_status(&[Outcome::Ok, Outcome::Ok]), 0);
        assert_eq!(exit_status(&[Outcome::Ok, failed(3), failed(2)]), 3);
        assert_eq!(exit_status(&[failed(3), Outcome::Unreachable { why: "x".into() }, failed(200)]), 255);
        assert_eq!(exit_status(&[]), 0);
    }

    #[test]
    fn a_servers_words_cannot_forge_summary_lines() {
        let host = Host { name: "evil".into(), addr: "h:1".into(), labels: Default::default() };
        let why = "refused\nok web2: fine\x1b[2K".to_owned();
        let lines = summary(&[(&host, Outcome::Failed { status: 1, why })]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "failed evil: refused\\nok web2: fine\\u{1b}[2K");
    }

    #[test]
    fn summary_counts_and_names_each_host_that_did_not_succeed() {
        let host = |name: &str| Host { name: name.into(), addr: "h:1".into(), labels: Default::default() };
        let (a, b, c) = (host("a"), host("b"), host("c"));
        let lines = summary(&[
            (&a, Outcome::Ok),
            (&b, failed(2)),
            (&c, Outcome::Unreachable { why: "cannot connect".into() }),
        ]);
        assert_eq!(
            lines,
            [
                "3 hosts: 1 ok, 1 failed, 1 unreachable",
                "failed b: exit status 2",
                "unreachable c: cannot connect"
            ]
        );
    }
}
