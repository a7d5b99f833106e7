//! Jobs across a fleet: `exec` prints one `NAME ID` line per host, and
//! wherever a job goes, `@FILE` or `-` (stdin) takes those lines back.
//!
//! Invariant: every name in a pair list names a target host, at most once.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::targets::Host;
use crate::client::{ClientError, JobRef, JobRefError};

/// A job argument: one job (the same on every host), or `NAME ID` lines
/// from a file or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobArg {
    Job(JobRef),
    Pairs(PairSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairSource {
    File(PathBuf),
    Stdin,
}

/// Text that is neither a job nor a source of `NAME ID` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}; or with several hosts, @FILE or - for the `NAME ID` lines that exec printed")]
pub struct JobArgError(#[from] JobRefError);

impl std::str::FromStr for JobArg {
    type Err = JobArgError;

    fn from_str(text: &str) -> Result<JobArg, JobArgError> {
        if text == "-" {
            return Ok(JobArg::Pairs(PairSource::Stdin));
        }
        if let Some(file) = text.strip_prefix('@') {
            return Ok(JobArg::Pairs(PairSource::File(file.into())));
        }
        Ok(JobArg::Job(text.parse()?))
    }
}

impl JobArg {
    /// The job for a single-host command.
    pub(crate) fn single(&self) -> Result<JobRef, ClientError> {
        match self {
            JobArg::Job(job) => Ok(job.clone()),
            JobArg::Pairs(_) => Err(ClientError::Targets(
                "`NAME ID` lines (@FILE or -) go with several hosts: give a list HOST:PORT,... or @INVENTORY"
                    .into(),
            )),
        }
    }

    /// The file the `NAME ID` lines come from, if they come from one.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            JobArg::Pairs(PairSource::File(path)) => Some(path),
            _ => None,
        }
    }

    /// The job on each host: the same everywhere, or the one its pair
    /// names. Hosts without a pair are left out.
    pub(crate) fn per_host<'h>(&self, hosts: &'h [Host]) -> Result<Vec<(&'h Host, JobRef)>, ClientError> {
        let (text, source) = match self {
            JobArg::Job(job) => return Ok(hosts.iter().map(|h| (h, job.clone())).collect()),
            JobArg::Pairs(PairSource::Stdin) => {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    ClientError::Targets(format!("cannot read `NAME ID` lines from stdin: {e}"))
                })?;
                (text, "stdin".to_owned())
            }
            JobArg::Pairs(PairSource::File(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ClientError::Targets(format!("cannot read {}: {e}", path.display())))?;
                (text, path.display().to_string())
            }
        };
        let pairs = parse(&text, &source)?;
        let by_name: HashMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        pairs
            .into_iter()
            .map(|(line, name, id)| {
                by_name.get(name).map(|h| (*h, id)).ok_or_else(|| {
                    ClientError::Targets(format!("{source}:{line}: {name} is not one of the target hosts"))
                })
            })
            .collect()
    }
}

/// `NAME ID` lines, blank lines skipped: (line number, name, job).
fn parse<'t>(text: &'t str, source: &str) -> Result<Vec<(usize, &'t str, JobRef)>, ClientError> {
    let mut pairs: Vec<(usize, &str, JobRef)> = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match (&words[..], words.get(1).map(|id| id.parse::<JobRef>())) {
            ([], _) => {}
            ([name, _], Some(Ok(job))) => {
                if pairs.iter().any(|(_, seen, _)| seen == name) {
                    return Err(ClientError::Targets(format!("{source}:{n}: {name} has a job already")));
                }
                pairs.push((n, name, job));
            }
            _ => {
                return Err(ClientError::Targets(format!(
                    "{source}:{n}: expected `NAME ID`, as exec prints it, not {line:?}"
                )));
            }
        }
    }
    if pairs.is_empty() {
        return Err(ClientError::Targets(format!("{source} has no `NAME ID` lines")));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_args_are_an_id_a_file_or_stdin() {
        assert_eq!("7".parse::<JobArg>().unwrap(), JobArg::Job("7".parse().unwrap()));
        assert_eq!("alice/7".parse::<JobArg>().unwrap(), JobArg::Job("alice/7".parse().unwrap()));
        assert_eq!("-".parse::<JobArg>().unwrap(), JobArg::Pairs(PairSource::Stdin));
        assert_eq!("@ids".parse::<JobArg>().unwrap(), JobArg::Pairs(PairSource::File("ids".into())));
        assert!("x".parse::<JobArg>().is_err());
    }

    #[test]
    fn pair_lines_parse_and_their_mistakes_name_the_line() {
        let job = |text: &str| text.parse::<JobRef>().unwrap();
        assert_eq!(
            parse("a 1\n\nb bob/22\n", "f").unwrap(),
            vec![(1, "a", job("1")), (3, "b", job("bob/22"))]
        );
        for (text, problem) in [
            ("a 1\nb\n", "f:2: expected"),
            ("a x", "f:1: expected"),
            ("a 1\na 2", "f:2: a has"),
            ("\n", "no `NAME ID`"),
        ] {
            let err = parse(text, "f").unwrap_err().to_string();
            assert!(err.contains(problem), "{text:?}: {err}");
        }
    }
}
