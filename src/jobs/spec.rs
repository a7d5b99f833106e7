//! What a job is started with: the command, and how it is contained.
//!
//! The pool takes a [`JobSpec`] as it is. Deciding who may ask for what (a
//! policy, the server's ceilings) is the caller's business; the pool only
//! refuses what it cannot do.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::limits::Limits;

/// Everything a job is started with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobSpec {
    /// The program: a path, or a name looked up in `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Give the job a pipe for stdin (otherwise it reads /dev/null).
    pub stdin: bool,
    /// Resource limits; every `None` is "no limit".
    pub limits: Limits,
    /// Run in new PID, mount and network namespaces.
    pub isolate: bool,
    /// The user to run as, in a clean environment. `None`: the server's own
    /// user and environment.
    pub run_as: Option<RunAs>,
}

impl JobSpec {
    /// A plain job: no stdin, no limits, the server's user.
    pub fn new(command: impl Into<String>, args: Vec<String>) -> Self {
        JobSpec { command: command.into(), args, ..JobSpec::default() }
    }
}

/// A unix user resolved once, when the policy that names it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// `PATH` for jobs that run as a policy's user: the server's own `PATH` is
/// none of their business.
pub const JOB_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl JobSpec {
    /// The environment the job gets: `None` keeps the server's own (no
    /// `run_as`); otherwise only HOME, USER, LOGNAME, SHELL and PATH.
    pub fn environment(&self) -> Option<Vec<(&'static str, OsString)>> {
        let user = self.run_as.as_ref()?;
        Some(vec![
            ("HOME", user.home.clone().into_os_string()),
            ("USER", user.user.clone().into()),
            ("LOGNAME", user.user.clone().into()),
            ("SHELL", user.shell.clone().into_os_string()),
            ("PATH", JOB_PATH.into()),
        ])
    }

    /// The program that will run: `command` itself if it holds a `/`, else
    /// the first executable file of that name in the job's `PATH`. This is
    /// what an allow-list is checked against, and what is executed, so the
    /// two cannot differ.
    pub fn resolve_program(&self) -> io::Result<PathBuf> {
        let not_found = || {
            io::Error::new(io::ErrorKind::NotFound, format!("{:?} is not a program in PATH", self.command))
        };
        if self.command.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the command is empty"));
        }
        if self.command.contains('/') {
            return Ok(PathBuf::from(&self.command));
        }
        let path = match self.run_as {
            Some(_) => OsString::from(JOB_PATH),
            None => std::env::var_os("PATH").unwrap_or_else(|| JOB_PATH.into()),
        };
        std::env::split_paths(&path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(&self.command))
            .find(|candidate| is_executable_file(candidate))
            .ok_or_else(not_found)
    }
}

/// Whether `path` is a file that someone may execute.
pub(crate) fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> RunAs {
        RunAs {
            user: "alice".into(),
            uid: 1000,
            gid: 1000,
            groups: vec![],
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    #[test]
    fn a_name_is_found_in_path_and_a_path_is_taken_as_it_is() {
        assert_eq!(JobSpec::new("sh", vec![]).resolve_program().unwrap().file_name().unwrap(), "sh");
        assert_eq!(JobSpec::new("./x", vec![]).resolve_program().unwrap(), PathBuf::from("./x"));
        let missing = JobSpec::new("no-such-program-rcmd", vec![]).resolve_program().unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(JobSpec::new("", vec![]).resolve_program().is_err());
    }

    #[test]
    fn a_policy_user_gets_only_the_five_variables() {
        assert!(JobSpec::new("true", vec![]).environment().is_none());
        let spec = JobSpec { run_as: Some(alice()), ..JobSpec::new("true", vec![]) };
        let names: Vec<_> = spec.environment().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["HOME", "USER", "LOGNAME", "SHELL", "PATH"]);
    }
}
