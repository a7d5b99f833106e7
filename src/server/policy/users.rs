//! `run_as`: a unix user name resolved, when the policy loads, to everything
//! a job needs to become that user (uid, primary gid, supplementary groups,
//! home, shell). A job never looks a user up itself, so a user database that
//! changes while the server runs changes nothing until the next reload.

use std::ffi::CString;

use nix::unistd::{Gid, Uid, User};

use crate::jobs::RunAs;

/// The user the server runs as, which bounds who jobs may run as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerUser {
    pub uid: Uid,
}

impl ServerUser {
    pub fn current() -> ServerUser {
        ServerUser { uid: Uid::effective() }
    }
}

/// A `run_as` that jobs cannot run as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadUser {
    #[error("there is no unix user {0:?}: create it, or change run_as")]
    Unknown(String),
    #[error("cannot look up the unix user {name:?}: {errno}")]
    LookUp { name: String, errno: nix::Error },
    #[error("run_as = {0:?} is uid 0: jobs would run as root; add `allow_root = true` if that is meant")]
    Root(String),
    /// `server`: the server's user, by name if it has one.
    #[error(
        "this server runs as {server} (uid {server_uid}), not root, so it can only run jobs as itself; run_as = {name:?} (uid {uid}) needs the server to run as root"
    )]
    NotTheServer { server: String, server_uid: Uid, name: String, uid: Uid },
    #[error("the user name {0:?} contains a NUL byte")]
    Nul(String),
    #[error("cannot list the groups of {name:?}: {errno}")]
    Groups { name: String, errno: nix::Error },
}

/// Resolves `name`. Refuses uid 0 unless `allow_root`, and, on a server that
/// is not root (which cannot change its uid), any user but its own.
pub(crate) fn resolve(name: &str, allow_root: bool, server: ServerUser) -> Result<RunAs, BadUser> {
    let user = match User::from_name(name) {
        Ok(Some(user)) => user,
        Ok(None) => return Err(BadUser::Unknown(name.to_owned())),
        Err(errno) => return Err(BadUser::LookUp { name: name.to_owned(), errno }),
    };
    if user.uid.is_root() && !allow_root {
        return Err(BadUser::Root(name.to_owned()));
    }
    if !server.uid.is_root() && user.uid != server.uid {
        let own =
            User::from_uid(server.uid).ok().flatten().map_or_else(|| server.uid.to_string(), |u| u.name);
        return Err(BadUser::NotTheServer {
            server: own,
            server_uid: server.uid,
            name: name.to_owned(),
            uid: user.uid,
        });
    }
    let c_name = CString::new(name).map_err(|_| BadUser::Nul(name.to_owned()))?;
    let groups = nix::unistd::getgrouplist(&c_name, user.gid)
        .map_err(|errno| BadUser::Groups { name: name.to_owned(), errno })?;
    Ok(RunAs {
        user: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: groups.into_iter().map(Gid::as_raw).collect(),
        home: user.dir,
        shell: user.shell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_user_name() -> String {
        User::from_uid(Uid::effective()).unwrap().unwrap().name
    }

    #[test]
    fn the_server_s_own_user_resolves_with_its_groups() {
        let name = current_user_name();
        let run_as = resolve(&name, true, ServerUser::current()).unwrap();
        assert_eq!(run_as.uid, Uid::effective().as_raw());
        assert_eq!(run_as.gid, Gid::effective().as_raw());
        assert!(run_as.groups.contains(&run_as.gid), "getgrouplist includes the primary group");
        assert!(run_as.home.is_absolute());
    }

    #[test]
    fn an_unknown_user_is_named() {
        let err = resolve("rcmdt-no-such-user", false, ServerUser::current()).unwrap_err();
        assert!(err.to_string().contains("no unix user \"rcmdt-no-such-user\""), "{err}");
    }

    #[test]
    fn root_needs_allow_root() {
        let err = resolve("root", false, ServerUser { uid: Uid::from_raw(0) }).unwrap_err();
        assert_eq!(err, BadUser::Root("root".into()));
        assert!(err.to_string().contains("allow_root = true"), "{err}");
        assert_eq!(resolve("root", true, ServerUser { uid: Uid::from_raw(0) }).unwrap().uid, 0);
    }

    #[test]
    fn a_server_that_is_not_root_runs_jobs_only_as_itself() {
        let err = resolve("root", true, ServerUser { uid: Uid::from_raw(4242) }).unwrap_err();
        assert!(err.to_string().contains("can only run jobs as itself"), "{err}");
    }
}
