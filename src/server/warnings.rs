//! Start-up warnings about set-ups that work but give away more than the
//! operator likely means to, each with what to do about it. Checked at
//! start-up and again after each reload (a new policy may bring new users).

use std::path::Path;

use nix::unistd::Uid;

use super::policy::{self, Policy};
use crate::pki::files;

/// Logs a warning for each risk found.
pub(crate) fn check(certs: &Path, policy: &Policy) {
    let server_uid = Uid::effective();
    if server_uid.is_root() && policy.path().is_none() {
        tracing::warn!(
            "running as root without --policy: every client's jobs run as root with the server's environment; add a policy that maps each client to a unix user (README.md, \"Policy\")"
        );
    }
    let ca_key = certs.join(files::CA_KEY);
    if ca_key.exists() {
        tracing::warn!(
            path = %ca_key.display(),
            "the CA key is in the server's cert directory, which it never needs: whoever reads it can make certificates for any client; move it to the machine where you run `rcmd pki` (keep ca.crt, server.crt and server.key here)"
        );
    }
    let server_key = certs.join(files::SERVER_KEY);
    let mut users = policy.job_users();
    users.sort_by_key(|user| user.uid);
    users.dedup_by_key(|user| user.uid);
    for user in users {
        // Root reads everything, and the server's own user needs its key.
        if user.uid == 0 || user.uid == server_uid.as_raw() {
            continue;
        }
        if policy::can_read(user, &server_key) {
            tracing::warn!(
                user = %user.user,
                path = %server_key.display(),
                "a job user can read the server's private key, so any job of theirs can impersonate this server: make it mode 0600, owned by the server's user, in a directory they cannot enter"
            );
        }
    }
}
