//! `commands`: the programs a client may run, as paths.
//!
//! # What is compared
//!
//! A program is known by its *location*: the canonical path of the directory
//! that holds it, joined with its file name. So `/bin/ls` and `/usr/bin/ls`
//! are the same program on a system where `/bin` links to `/usr/bin`, and
//! `/usr/bin/../bin/ls` is `/usr/bin/ls`; but the file name itself is kept,
//! so allowing `/bin/ls` on a busybox system does not allow every other
//! applet that links to the same binary.
//!
//! A request names a program as a name looked up in the job's `PATH`
//! ([`JobSpec::resolve_program`]) or as an absolute path; a relative path
//! would depend on a working directory and is refused. The location found
//! is what the job then executes, so what was checked is what runs: only
//! someone who can write the directory holding an allowed program could
//! swap it between the check and the exec, and the policy refuses to load
//! when that is the client's own job user (see [`super::access`]).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::jobs::{JobSpec, RunAs, is_executable_file};

use super::access;

/// An entry of `commands` that cannot be allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadEntry {
    #[error("commands: {0:?} is not an absolute path")]
    NotAbsolute(String),
    #[error("commands: {0:?} is not an executable file")]
    NotExecutable(String),
    #[error(
        "commands: {entry:?} could be replaced by its job user {user} (it can write the file or a directory above it), which would let them run anything"
    )]
    Replaceable { entry: String, user: String },
}

/// Why a job may not run the program it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotAllowed {
    #[error("{0:?} is a relative path: name a program in PATH or give an absolute path")]
    RelativePath(String),
    /// `allowed`: the list as the policy wrote it, or "none".
    #[error("{command:?} is not an allowed command; allowed: {allowed}")]
    NotListed { command: String, allowed: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowList {
    locations: HashSet<PathBuf>,
    /// As the policy wrote them, for error messages.
    listed: Vec<String>,
}

/// The location of an existing program: canonical directory, own file name.
fn location(path: &Path) -> std::io::Result<PathBuf> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a path to a file");
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => name,
        _ => return Err(invalid()),
    };
    let dir = path.parent().ok_or_else(invalid)?.canonicalize()?;
    Ok(dir.join(name))
}

impl AllowList {
    /// Reads the entries of one client's `commands`. Each must be an absolute
    /// path to an existing executable file that `user` cannot replace.
    pub fn new(entries: &[String], user: &RunAs) -> Result<AllowList, BadEntry> {
        let mut locations = HashSet::new();
        for entry in entries {
            let path = Path::new(entry);
            if !path.is_absolute() {
                return Err(BadEntry::NotAbsolute(entry.clone()));
            }
            let found = location(path)
                .ok()
                .filter(|location| is_executable_file(location))
                .ok_or_else(|| BadEntry::NotExecutable(entry.clone()))?;
            if user.uid != 0 && access::can_replace(user, &found) {
                return Err(BadEntry::Replaceable { entry: entry.clone(), user: user.user.clone() });
            }
            locations.insert(found);
        }
        Ok(AllowList { locations, listed: entries.to_vec() })
    }

    /// Finds the program `spec` names and checks it against the list.
    /// Returns the location to execute.
    pub fn check(&self, spec: &JobSpec) -> Result<String, NotAllowed> {
        if spec.command.contains('/') && !spec.command.starts_with('/') {
            return Err(NotAllowed::RelativePath(spec.command.clone()));
        }
        let refused = || NotAllowed::NotListed {
            command: spec.command.clone(),
            allowed: if self.listed.is_empty() { "none".to_owned() } else { self.listed.join(", ") },
        };
        let program = spec.resolve_program().map_err(|_| refused())?;
        let found = location(&program).map_err(|_| refused())?;
        if !self.locations.contains(&found) {
            return Err(refused());
        }
        found.into_os_string().into_string().map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> RunAs {
        RunAs {
            user: "rcmdt-nobody".into(),
            uid: 65_500,
            gid: 65_500,
            groups: vec![],
            home: "/".into(),
            shell: "/bin/sh".into(),
        }
    }

    fn spec(command: &str) -> JobSpec {
        JobSpec { run_as: Some(user()), ..JobSpec::new(command, vec![]) }
    }

    #[test]
    fn a_name_a_symlinked_directory_and_dot_dot_all_reach_one_program() {
        let list = AllowList::new(&["/bin/sh".into()], &user()).unwrap();
        let real = location(Path::new("/bin/sh")).unwrap();
        for command in ["sh", "/bin/sh", "/usr/bin/../bin/sh", "/bin/./sh"] {
            if Path::new(command).is_absolute() || real.parent() == Some(Path::new("/usr/bin")) {
                assert_eq!(list.check(&spec(command)).unwrap(), real.to_str().unwrap(), "{command}");
            }
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_list() {
        let list = AllowList::new(&["/bin/sh".into()], &user()).unwrap();
        for command in ["ls", "/bin/ls", "no-such-program", "./sh", "bin/sh", "/bin/", "/bin/.."] {
            let err = list.check(&spec(command)).unwrap_err();
            let relative = command.contains('/') && !command.starts_with('/');
            assert_eq!(matches!(err, NotAllowed::RelativePath(_)), relative, "{command}: {err}");
        }
        assert!(list.check(&spec("ls")).unwrap_err().to_string().contains("allowed: /bin/sh"));
    }

    #[test]
    fn entries_must_be_absolute_existing_programs() {
        for bad in ["sh", "/no/such/program", "/etc/passwd", "/bin"] {
            assert!(AllowList::new(&[bad.into()], &user()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_program_its_user_can_replace_is_refused() {
        let dir = std::env::temp_dir().join(format!("rcmdt-allow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = dir.join("tool");
        std::fs::copy("/bin/true", &tool).unwrap();
        let owner = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&tool).unwrap().uid()
        };
        let own_user = RunAs { uid: owner, ..user() };
        if owner != 0 {
            let err = AllowList::new(&[tool.to_str().unwrap().into()], &own_user).unwrap_err();
            assert!(err.to_string().contains("could be replaced"), "{err}");
        }
        AllowList::new(&[tool.to_str().unwrap().into()], &user()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
