//! Real unix users for tests, made with `useradd` (needs root) and removed,
//! with their home and group, when the guard drops, even if the test failed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::wait_until;

/// `useradd` and `userdel` take a lock on /etc/passwd and fail at once if
/// someone else holds it: one at a time in this process; other processes
/// (other test binaries) are waited out.
static USER_DB: Mutex<()> = Mutex::new(());

/// Runs a user-database command until it stops failing for a held lock
/// (exit 10 for useradd/userdel, "cannot lock" in the message) or, for
/// userdel, for a process of the user that is still on its way out (8).
fn user_db(program: &str, args: &[&str]) {
    let _one = USER_DB.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = String::new();
    wait_until(&format!("{program} {args:?} succeeds"), Duration::from_secs(30), || {
        let out = Command::new(program).args(args).output().expect("useradd/userdel are installed (passwd)");
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return true;
        }
        let retry = last.contains("lock") || matches!(out.status.code(), Some(8 | 10));
        assert!(retry, "{program} {args:?}: {last}");
        false
    });
}

/// A unix user made for one test: `rcmdt-pol-LABEL-PID`, with its own group,
/// a home directory, /bin/sh, and optionally one more group.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
    pub extra_group: Option<String>,
}

impl TestUser {
    pub fn new(label: &str, with_extra_group: bool) -> TestUser {
        let name = format!("rcmdt-pol-{label}-{}", std::process::id());
        assert!(name.len() <= 32, "user names are at most 32 characters: {name}");
        let home = std::env::temp_dir().join(format!("{name}-home"));
        let _ = std::fs::remove_dir_all(&home);
        let extra_group = with_extra_group.then(|| format!("rcmdt-pol-g{label}-{}", std::process::id()));
        if let Some(group) = &extra_group {
            user_db("groupadd", &[group]);
        }
        let mut args =
            vec!["--create-home", "--home-dir", home.to_str().unwrap(), "--shell", "/bin/sh", "--user-group"];
        if let Some(group) = &extra_group {
            args.extend(["--groups", group]);
        }
        args.push(&name);
        // A guard from here on: if useradd fails half-way, Drop still cleans.
        let user = TestUser { name: name.clone(), home: home.clone(), extra_group: extra_group.clone() };
        user_db("useradd", &args);
        user
    }

    /// `id NAME` as the system reports it.
    pub fn id(&self) -> String {
        let out = Command::new("id").arg(&self.name).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| user_db("userdel", &["--remove", &self.name]));
        if let Some(group) = &self.extra_group {
            let _ = std::panic::catch_unwind(|| user_db("groupdel", &[group]));
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
