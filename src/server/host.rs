//! [`HostCgroups`]: the host's cgroups as the server found them at start-up,
//! and which limits they can enforce.
//!
//! Invariant: cgroups are detected before any child process, the guard
//! included. On a delegated cgroup v2 host the server may move itself into a
//! leaf group so that its own group, left without processes, can pass
//! controllers to jobs; a child started earlier would stay behind in that
//! group and keep it from doing so, while one started later is born in the
//! leaf. [`HostCgroups::detect`] is the only way to get the value that
//! [`super::guard::Guard::start`] takes and the pools' [`jobs::Containment`]
//! comes from, so nothing can start a child before it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::policy::Policy;
use crate::jobs;

/// Why limits cannot be taken on this host: every job would get them, and
/// they would not hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unenforceable {
    #[error("{what}: {source}")]
    Refused { what: String, source: jobs::Unsupported },
    #[error(
        "{what}: limits need cgroups, which this server does not have (see the log line above); drop them"
    )]
    NoCgroups { what: String },
}

/// The host's cgroups, or `None` where it has none the server can use.
#[derive(Debug)]
pub(crate) struct HostCgroups(Option<Arc<jobs::Cgroups>>);

impl HostCgroups {
    /// Finds the host's cgroups and logs in one line what jobs get here.
    pub fn detect(data_dir: &Path) -> HostCgroups {
        match jobs::Cgroups::detect(data_dir) {
            Ok(cgroups) => {
                tracing::info!("cgroups: {cgroups}");
                HostCgroups(Some(Arc::new(cgroups)))
            }
            Err(e) => {
                tracing::warn!(
                    "no cgroups ({e}): each job is a process group only, which a process can leave, and jobs that ask for limits are refused"
                );
                HostCgroups(None)
            }
        }
    }

    /// How the pools contain jobs: in these cgroups, or, on a host without
    /// them, by `watcher` (the guard) hearing of every job's process group.
    pub fn containment(&self, watcher: Option<Arc<dyn jobs::GroupWatcher>>) -> jobs::Containment {
        match (&self.0, watcher) {
            (Some(cgroups), _) => jobs::Containment::Cgroups(Arc::clone(cgroups)),
            (None, Some(watcher)) => jobs::Containment::Guard(watcher),
            (None, None) => jobs::Containment::None,
        }
    }

    /// The server's cgroup folders, which the guard purges.
    pub fn folders(&self) -> Vec<PathBuf> {
        self.0.as_ref().map(|c| c.folders()).unwrap_or_default()
    }

    /// Refuses limits (`what`: where they are set) that this host cannot
    /// enforce.
    pub fn enforceable(&self, what: &str, limits: &jobs::Limits) -> Result<(), Unenforceable> {
        match &self.0 {
            Some(cgroups) => cgroups
                .check(limits)
                .map_err(|source| Unenforceable::Refused { what: what.to_owned(), source }),
            None if *limits != jobs::Limits::default() => {
                Err(Unenforceable::NoCgroups { what: what.to_owned() })
            }
            None => Ok(()),
        }
    }

    /// Refuses a policy whose ceilings this host cannot enforce, as
    /// [`HostCgroups::enforceable`] refuses `--job-*`.
    pub fn policy_enforceable(&self, policy: &Policy) -> Result<(), Unenforceable> {
        let file = policy.path().map(|path| path.display().to_string()).unwrap_or_default();
        for (client, limits) in policy.ceilings() {
            self.enforceable(&format!("policy {file}: [clients.{client}]"), limits)?;
        }
        Ok(())
    }
}
