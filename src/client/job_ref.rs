//! A job as the CLI names it: `ID` for one of your own jobs, or `CN/ID` for
//! client CN's job, which the server lets only admins reach.

use std::fmt;
use std::str::FromStr;

use crate::pki::{ClientName, InvalidName};
use crate::wire;

/// Ordered as listings order jobs: by client, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobRef {
    pub client: Option<ClientName>,
    pub id: u64,
}

impl JobRef {
    /// The API path of the job, followed by `rest` (such as `/status`).
    pub fn path(&self, rest: &str) -> String {
        match &self.client {
            None => format!("/jobs/{}{rest}", self.id),
            Some(client) => format!("/clients/{}/jobs/{}{rest}", encode_segment(client.as_str()), self.id),
        }
    }
}

impl JobRef {
    /// The last job of a page of a listing, where the next page starts.
    pub fn of_page_end(end: &wire::After) -> Option<JobRef> {
        match end {
            wire::After::Id(id) => Some(JobRef { client: None, id: *id }),
            wire::After::Job(job) => job.parse().ok().filter(|job: &JobRef| job.client.is_some()),
        }
    }
}

/// Text that names no job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefError {
    /// `CN/ID` whose CN is no client name.
    #[error(transparent)]
    Client(#[from] InvalidName),
    #[error("{0:?} is not a job: give its id (such as 3), or CLIENT/ID (such as alice/3)")]
    NotAJob(String),
}

impl FromStr for JobRef {
    type Err = JobRefError;

    fn from_str(text: &str) -> Result<Self, JobRefError> {
        let (client, id) = match text.rsplit_once('/') {
            Some((client, id)) => (Some(ClientName::parse(client)?), id),
            None => (None, text),
        };
        match id.parse::<u64>() {
            Ok(id) if id > 0 => Ok(JobRef { client, id }),
            _ => Err(JobRefError::NotAJob(text.to_owned())),
        }
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.client {
            None => write!(f, "{}", self.id),
            Some(client) => write!(f, "{client}/{}", self.id),
        }
    }
}

/// Percent-encodes a URL path segment or query value: every byte but the
/// unreserved ones.
pub(crate) fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_other_clients_jobs_parse_to_their_paths() {
        let own: JobRef = "3".parse().unwrap();
        assert_eq!((own.path("/status"), own.to_string()), ("/jobs/3/status".into(), "3".into()));
        let other: JobRef = "alice/12".parse().unwrap();
        assert_eq!(other.path(""), "/clients/alice/jobs/12");
        assert_eq!(other.to_string(), "alice/12");
        let odd: JobRef = "a b?#%é/1".parse().unwrap();
        assert_eq!(odd.path("/stop"), "/clients/a%20b%3F%23%25%C3%A9/jobs/1/stop");
    }

    #[test]
    fn bad_names_say_what_a_job_name_is() {
        for bad in ["", "0", "x", "alice/", "alice/x", "/3", "-1", "a/b/3"] {
            assert!(bad.parse::<JobRef>().is_err(), "{bad}");
        }
        assert!("x".parse::<JobRef>().unwrap_err().to_string().contains("CLIENT/ID"));
        assert!(matches!("a/b/3".parse::<JobRef>(), Err(JobRefError::Client(_))), "a bad client name");
    }

    #[test]
    fn page_ends_order_as_listings_do_by_client_then_id() {
        let end = |after: wire::After| JobRef::of_page_end(&after);
        let job = |text: &str| end(wire::After::Job(text.to_owned())).unwrap();
        assert!(job("alice/10") > job("alice/9"), "ids as numbers, not text");
        assert!(job("bob/1") > job("alice/99"));
        assert_eq!(end(wire::After::Id(7)), Some(JobRef { client: None, id: 7 }));
        assert_eq!(end(wire::After::Job("7".to_owned())), None, "an admin's page ends at CN/ID");
        assert_eq!(end(wire::After::Job("a/b/1".to_owned())), None);
    }
}
