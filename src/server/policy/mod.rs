//! Who may run what, as whom: `serve --policy FILE`.
//!
//! ```toml
//! [clients.alice]
//! run_as = "alice"                        # the unix user her jobs run as (required)
//! commands = ["/usr/bin/make", "/bin/ls"] # optional allow-list of programs
//! isolate = true                          # optional: every job of hers is isolated
//! memory = "4G"                           # optional ceilings for her jobs: memory,
//! cpus = 2                                #   cpus, pids, io_read_bps, io_write_bps
//! admin = false                           # optional: may list and stop every client's jobs
//! ```
//!
//! # Invariants
//!
//! * A [`Policy`] is complete or does not exist: loading resolves every
//!   user and every allowed program, and any problem (an unknown key, a
//!   missing user, uid 0 without `allow_root`, another user on a server that
//!   is not root) fails the whole file. A reload that fails keeps the old one.
//! * Without a policy file every client has the [`Rights`] of the server's
//!   own user, as before policies existed; with one, a client that is not in
//!   it has no rights at all ([`Policy::rights`] is `None`: 403 everywhere).
//! * Every job is made through [`Rights::apply`], which is the only place
//!   that sets who a job runs as and checks what it may run.
//! * A client's ceilings ([`Rights::ceilings`]) are a [`Limits`], the very
//!   type of a request's limits, so they follow the same rules; whether
//!   this host can enforce them is checked by the server whenever a policy
//!   loads ([`Policy::ceilings`]), since every job of the client gets them.
//!
//! Submodules: [`users`] resolves `run_as`, [`commands`] the allow-list,
//! [`limits`] reads the ceilings as written, and [`access`] judges what a
//! job user could do to a file (also for the server's start-up warnings).

mod access;
mod commands;
mod limits;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::jobs::{JobSpec, RunAs};
use crate::limits::{BytesPerSecond, Cpus, Limits, Memory, Pids};
use crate::pki::ClientName;

pub(crate) use access::can_read;
use commands::{AllowList, BadEntry, NotAllowed};
use users::BadUser;
pub(crate) use users::ServerUser;

/// What one client may do.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rights {
    /// `None`: the server's own user and environment (no policy file).
    run_as: Option<RunAs>,
    /// `None`: any program.
    commands: Option<AllowList>,
    isolate: bool,
    /// May list every client's jobs and reach them under `/clients/{cn}/`.
    pub admin: bool,
    /// The client's own ceilings, within the server's (see
    /// [`crate::server::ceilings`]); `None`: the server's alone.
    pub ceilings: Limits,
}

impl Rights {
    /// Turns a request into the job to start, or says why it may not run:
    /// sets the user, forces isolation if the policy says so, and checks the
    /// program against the allow-list, which then names exactly what runs.
    pub fn apply(&self, mut spec: JobSpec) -> Result<JobSpec, NotAllowed> {
        spec.run_as = self.run_as.clone();
        spec.isolate |= self.isolate;
        if let Some(allowed) = &self.commands {
            spec.command = allowed.check(&spec)?;
        }
        Ok(spec)
    }
}

/// The server's policy: open (no file), or the clients a file names.
#[derive(Debug)]
pub(crate) enum Policy {
    Open(Arc<Rights>),
    File { path: PathBuf, clients: HashMap<ClientName, Arc<Rights>> },
}

/// A policy file that cannot be put in force. Each says which file; the
/// whole server keeps running on the policy it had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyError {
    #[error("cannot read the policy {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("policy {}: {invalid}", path.display())]
    Invalid { path: PathBuf, invalid: InvalidPolicy },
}

/// What is wrong in a policy file's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidPolicy {
    /// Not TOML, or not the policy's shape: `line L, column C: ...`.
    #[error("{0}")]
    Shape(String),
    #[error("[clients.{client}]: {bad}")]
    User { client: ClientName, bad: BadUser },
    #[error("[clients.{client}]: {bad}")]
    Commands { client: ClientName, bad: BadEntry },
}

/// The file's shape. Unknown keys are errors, so a typo (`comands`) can
/// never silently allow everything.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    clients: BTreeMap<ClientName, ClientEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    run_as: String,
    #[serde(default)]
    allow_root: bool,
    commands: Option<Vec<String>>,
    #[serde(default)]
    isolate: bool,
    #[serde(default)]
    admin: bool,
    #[serde(default, deserialize_with = "limits::limit")]
    memory: Option<Memory>,
    #[serde(default, deserialize_with = "limits::limit")]
    cpus: Option<Cpus>,
    #[serde(default, deserialize_with = "limits::limit")]
    pids: Option<Pids>,
    #[serde(default, deserialize_with = "limits::limit")]
    io_read_bps: Option<BytesPerSecond>,
    #[serde(default, deserialize_with = "limits::limit")]
    io_write_bps: Option<BytesPerSecond>,
}

impl Policy {
    /// No policy file: every client runs jobs as the server's user.
    pub fn open() -> Policy {
        Policy::Open(Arc::default())
    }

    /// Reads and resolves a policy file, for a server running as `server`.
    pub fn load(path: &Path, server: ServerUser) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| PolicyError::Read { path: path.to_owned(), error })?;
        Policy::parse(&text, server)
            .map_err(|invalid| PolicyError::Invalid { path: path.to_owned(), invalid })
            .map(|clients| Policy::File { path: path.to_owned(), clients })
    }

    fn parse(text: &str, server: ServerUser) -> Result<HashMap<ClientName, Arc<Rights>>, InvalidPolicy> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| InvalidPolicy::Shape(one_line(text, &e)))?;
        let mut clients = HashMap::with_capacity(file.clients.len());
        for (name, entry) in file.clients {
            let run_as = users::resolve(&entry.run_as, entry.allow_root, server)
                .map_err(|bad| InvalidPolicy::User { client: name.clone(), bad })?;
            let commands = entry
                .commands
                .map(|list| AllowList::new(&list, &run_as))
                .transpose()
                .map_err(|bad| InvalidPolicy::Commands { client: name.clone(), bad })?;
            let ceilings = Limits {
                memory: entry.memory,
                cpus: entry.cpus,
                pids: entry.pids,
                io_read_bps: entry.io_read_bps,
                io_write_bps: entry.io_write_bps,
            };
            let rights = Rights {
                run_as: Some(run_as),
                commands,
                isolate: entry.isolate,
                admin: entry.admin,
                ceilings,
            };
            clients.insert(name, Arc::new(rights));
        }
        Ok(clients)
    }

    /// What `client` may do; `None` if it may not connect at all.
    pub fn rights(&self, client: &ClientName) -> Option<Arc<Rights>> {
        match self {
            Policy::Open(rights) => Some(Arc::clone(rights)),
            Policy::File { clients, .. } => clients.get(client).cloned(),
        }
    }

    /// The file, if there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Policy::Open(_) => None,
            Policy::File { path, .. } => Some(path),
        }
    }

    /// The clients with ceilings of their own, with them.
    pub fn ceilings(&self) -> Vec<(&ClientName, &Limits)> {
        match self {
            Policy::Open(_) => Vec::new(),
            Policy::File { clients, .. } => clients
                .iter()
                .filter(|(_, rights)| rights.ceilings != Limits::default())
                .map(|(name, rights)| (name, &rights.ceilings))
                .collect(),
        }
    }

    /// Every user the policy runs jobs as.
    pub fn job_users(&self) -> Vec<&RunAs> {
        match self {
            Policy::Open(_) => Vec::new(),
            Policy::File { clients, .. } => clients.values().filter_map(|r| r.run_as.as_ref()).collect(),
        }
    }

    /// The clients that `self` lets in and `next` does not.
    pub fn dropped_by(&self, next: &Policy) -> Vec<ClientName> {
        match self {
            Policy::Open(_) => Vec::new(),
            Policy::File { clients, .. } => {
                clients.keys().filter(|name| next.rights(name).is_none()).cloned().collect()
            }
        }
    }
}

/// A TOML error as one line: where, and what.
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// The policy in force, replaced whole at a reload. Requests take the
/// current one and keep it for their duration.
#[derive(Debug)]
pub(crate) struct CurrentPolicy(RwLock<Arc<Policy>>);

impl CurrentPolicy {
    pub fn new(policy: Policy) -> Self {
        CurrentPolicy(RwLock::new(Arc::new(policy)))
    }

    pub fn get(&self) -> Arc<Policy> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `next` in force and returns the one it replaced.
    pub fn replace(&self, next: Policy) -> Arc<Policy> {
        std::mem::replace(&mut *self.0.write().unwrap_or_else(|e| e.into_inner()), Arc::new(next))
    }
}

#[cfg(test)]
mod tests {
    use nix::unistd::{Uid, User};

    use super::*;

    fn me() -> String {
        User::from_uid(Uid::effective()).unwrap().unwrap().name
    }

    /// The error as the operator reads it.
    fn parse(text: &str) -> Result<HashMap<ClientName, Arc<Rights>>, String> {
        Policy::parse(text, ServerUser::current()).map_err(|e| e.to_string())
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = format!("[clients.alice]\nrun_as = {:?}\ncomands = [\"/bin/ls\"]\n", me());
        let err = parse(&text).unwrap_err();
        assert!(err.contains("line 3") && err.contains("comands"), "{err}");
        let err = parse("[client.alice]\nrun_as = \"x\"\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("client"), "{err}");
    }

    #[test]
    fn a_client_name_that_breaks_the_rules_is_refused() {
        let err = parse(&format!("[clients.\"a/b\"]\nrun_as = {:?}\n", me())).unwrap_err();
        assert!(err.contains("invalid client name") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn run_as_is_required_and_resolved() {
        let err = parse("[clients.alice]\nadmin = true\n").unwrap_err();
        assert!(err.contains("run_as"), "{err}");
        let err = parse("[clients.alice]\nrun_as = \"rcmdt-no-such-user\"\n").unwrap_err();
        assert!(err.contains("[clients.alice]") && err.contains("no unix user"), "{err}");
    }

    #[test]
    fn rights_follow_the_file_and_strangers_have_none() {
        let me = me();
        let text = format!(
            "[clients.alice]\nrun_as = {me:?}\nallow_root = true\ncommands = [\"/bin/sh\"]\nisolate = true\n\n[clients.ops]\nrun_as = {me:?}\nallow_root = true\nadmin = true\n"
        );
        let policy = Policy::File { path: "p.toml".into(), clients: parse(&text).unwrap() };
        let alice = policy.rights(&"alice".parse().unwrap()).unwrap();
        assert!(!alice.admin);
        let spec = alice.apply(JobSpec::new("sh", vec![])).unwrap();
        assert!(spec.isolate && spec.run_as.as_ref().unwrap().user == me && spec.command.ends_with("/sh"));
        assert!(alice.apply(JobSpec::new("ls", vec![])).is_err());
        assert!(policy.rights(&"ops".parse().unwrap()).unwrap().admin);
        assert!(policy.rights(&"mallory".parse().unwrap()).is_none());

        let fewer = Policy::File { path: "p.toml".into(), clients: parse("").unwrap() };
        let mut dropped = policy.dropped_by(&fewer);
        dropped.sort();
        assert_eq!(dropped, ["alice".parse().unwrap(), "ops".parse().unwrap()]);
        assert!(Policy::open().rights(&"anyone".parse().unwrap()).is_some());
    }

    #[test]
    fn ceilings_are_read_as_sizes_and_numbers() {
        let text = format!(
            "[clients.alice]\nrun_as = {:?}\nallow_root = true\nmemory = \"4G\"\ncpus = 2\npids = 100\nio_read_bps = 1048576\nio_write_bps = \"1.5M\"\n\n[clients.bob]\nrun_as = {0:?}\nallow_root = true\ncpus = 0.5\nmemory = 67108864\n",
            me()
        );
        let clients = parse(&text).unwrap();
        let alice = &clients[&"alice".parse().unwrap()].ceilings;
        assert_eq!(
            *alice,
            Limits {
                memory: Memory::new(4 << 30).ok(),
                cpus: Cpus::new(2.0).ok(),
                pids: Pids::new(100).ok(),
                io_read_bps: BytesPerSecond::new(1 << 20).ok(),
                io_write_bps: BytesPerSecond::new(3 << 19).ok()
            }
        );
        let bob = &clients[&"bob".parse().unwrap()].ceilings;
        assert_eq!(
            (bob.cpus.map(Cpus::get), bob.memory.map(Memory::get), bob.pids),
            (Some(0.5), Some(64 << 20), None)
        );
    }

    #[test]
    fn a_ceiling_that_is_no_limit_is_refused_with_its_line_and_column() {
        for (value, reason) in [
            ("memory = \"lots\"", "invalid size \"lots\""),
            ("memory = 0", "too small"),
            ("memory = \"0\"", "too small"),
            ("memory = -1", "cannot be -1"),
            ("memory = 1.5", "whole number of bytes"),
            ("memory = true", "a number, or a string"),
            ("cpus = nan", "positive number"),
            ("cpus = inf", "positive number"),
            ("cpus = -inf", "positive number"),
            ("cpus = -1", "positive number"),
            ("cpus = 0", "positive number"),
            ("cpus = 1e308", "at most 1000000"),
            ("cpus = \"many\"", "invalid number of CPUs"),
            ("pids = 0", "at least 1"),
            ("pids = -5", "at least 1"),
            ("pids = 1.5", "whole number"),
            ("pids = 99999999999999999999", ""),
            ("pids = 5000000", "at most 4194304"),
            ("io_read_bps = 0", "too small"),
            ("io_write_bps = \"1X\"", "invalid size"),
            ("memory = \"99999999999T\"", "invalid size"),
        ] {
            let text = format!("[clients.alice]\nrun_as = {:?}\nallow_root = true\n{value}\n", me());
            let err = parse(&text).unwrap_err();
            assert!(err.contains("line 4, column") && err.contains(reason), "{value}: {err}");
        }
    }
}
