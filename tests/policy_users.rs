//! Jobs run as the unix users a policy names: real users made for each test
//! (`rcmdt-pol-...`, removed by a guard even on failure). Needs root, as CI
//! is: only root can make users and run jobs as them.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::util::TempDir;
use crate::util::server::ServerProcess;
use crate::util::users::TestUser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A server whose policy maps each (client, user) pair; `extra` goes into
/// every entry.
fn serve(clients: &[(&str, &TestUser)], extra: &str) -> (ServerProcess, TempDir) {
    let dir = TempDir::new("policy-users");
    let policy = dir.path().join("policy.toml");
    let text: String = clients
        .iter()
        .map(|(client, user)| format!("[clients.{client}]\nrun_as = {:?}\n{extra}\n", user.name))
        .collect();
    std::fs::write(&policy, text).unwrap();
    let names: Vec<&str> = clients.iter().map(|(client, _)| *client).collect();
    let server = ServerProcess::start(&names, &["--policy", policy.to_str().unwrap()]);
    (server, dir)
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn a_job_runs_as_its_user_with_its_groups_in_its_home() {
    let alice = TestUser::new("id", true);
    let (server, _dir) = serve(&[("alice", &alice)], "");
    assert_eq!(server.ok("alice", &["run", "id"]), alice.id(), "groups included");
    assert_eq!(server.ok("alice", &["run", "pwd"]).trim_end(), alice.home.to_str().unwrap());
    // Its files are its own.
    server.ok("alice", &["run", "touch", "made-by-job"]);
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(alice.home.join("made-by-job")).unwrap());
    assert_eq!(owner, nix::unistd::User::from_name(&alice.name).unwrap().unwrap().uid.as_raw());
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn a_job_s_environment_holds_nothing_of_the_server_s() {
    let alice = TestUser::new("env", false);
    let (server, _dir) = serve(&[("alice", &alice)], "");
    let env = server.ok("alice", &["run", "env"]);
    let names: BTreeSet<&str> = env.lines().filter_map(|line| line.split_once('=')).map(|(k, _)| k).collect();
    assert_eq!(names, BTreeSet::from(["HOME", "LOGNAME", "PATH", "SHELL", "USER"]), "{env}");
    assert!(env.contains(&format!("HOME={}\n", alice.home.display())), "{env}");
    assert!(env.contains(&format!("USER={}\n", alice.name)), "{env}");
    assert!(!env.contains("RUST_LOG"), "the server's own variable");
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn a_job_user_cannot_reach_the_server_s_data_keys_or_other_jobs() {
    let alice = TestUser::new("peek", false);
    let bob = TestUser::new("bob", false);
    let (server, _dir) = serve(&[("alice", &alice), ("bob", &bob)], "");
    server.ok("bob", &["run", "sh", "-c", "echo bob-secret; echo more >&2"]);

    let data = server.data.path().join("jobs");
    let certs = server.pki.cert_dir();
    let guard_pid = crate::util::pids_matching("__guard")
        .into_iter()
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(&format!(" {} ", server.pid())))
        })
        .expect("the server's guard");
    let attempts = [
        format!("ls {}", data.display()),
        format!("cat {}/*/*", data.display()),
        format!("grep -r bob-secret {}", data.display()),
        format!("cat {}", certs.join("server.key").display()),
        format!("cat {}", certs.join("ca.key").display()),
        format!("cat /proc/{}/environ", server.pid()),
        format!("kill -KILL {}", server.pid()),
        format!("kill -KILL {guard_pid}"),
    ];
    for attempt in &attempts {
        let out = server.rcmd("alice", &["run", "sh", "-c", attempt]);
        assert_ne!(out.status.code(), Some(0), "{attempt} worked");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("bob-secret"), "{attempt}");
    }
    assert!(crate::util::is_alive(server.pid()) && crate::util::is_alive(guard_pid));
    assert_eq!(server.ok("bob", &["output", "1"]), "bob-secret\n");
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn two_clients_of_one_user_still_see_only_their_own_jobs() {
    let shared = TestUser::new("shared", false);
    let (server, _dir) = serve(&[("ci1", &shared), ("ci2", &shared)], "");
    server.ok("ci1", &["run", "true"]);
    let out = server.rcmd("ci2", &["status", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert_eq!(server.ok("ci2", &["list"]).lines().count(), 1, "only the header");
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn the_server_warns_when_a_job_user_could_read_its_key() {
    let alice = TestUser::new("key", false);
    let (server, _dir) = serve(&[("alice", &alice)], "");
    const WARNING: &str = "a job user can read the server's private key";
    assert!(!server.log().contains(WARNING), "0600 in a 0700 directory: {}", server.log());
    let certs = server.pki.cert_dir();
    let mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    // Open the whole path to the key: the test PKI's own directory too.
    mode(server.pki.path(), 0o755);
    mode(&certs, 0o755);
    mode(&certs.join("server.key"), 0o644);
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGHUP).unwrap();
    crate::util::wait_until("the warning", Duration::from_secs(10), || server.log().contains(WARNING));
    assert!(server.log().contains(&alice.name));
    // And the job really could.
    let out = server.rcmd("alice", &["run", "cat", certs.join("server.key").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY"));
}

#[test]
#[ignore = "needs root: makes users and runs jobs as them"]
fn a_server_that_is_not_root_runs_jobs_as_itself_with_a_clean_environment() {
    let runner = TestUser::new("srv", false);
    let user = nix::unistd::User::from_name(&runner.name).unwrap().unwrap();
    let dir = TempDir::new("policy-non-root");
    let policy = dir.path().join("policy.toml");
    let chown = |path: &std::path::Path| {
        let status =
            std::process::Command::new("chown").arg("-R").arg(&runner.name).arg(path).status().unwrap();
        assert!(status.success());
    };
    std::fs::write(&policy, format!("[clients.alice]\nrun_as = {:?}\n", runner.name)).unwrap();
    chown(dir.path());
    let server = ServerProcess::start_with(
        &["alice"],
        &["--policy", policy.to_str().unwrap()],
        |pki, data, command| {
            chown(pki.path());
            chown(data.path());
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        },
    );
    assert_eq!(server.ok("alice", &["run", "id", "-u"]).trim(), user.uid.to_string());
    assert_eq!(server.ok("alice", &["run", "pwd"]).trim_end(), runner.home.to_str().unwrap());
    let env = server.ok("alice", &["run", "env"]);
    assert!(!env.contains("RUST_LOG") && env.contains(&format!("USER={}\n", runner.name)), "{env}");
    let other = dir.path().join("root.toml");
    // Another user is refused at load: a server that is not root cannot switch.
    std::fs::write(&other, "[clients.alice]\nrun_as = \"root\"\nallow_root = true\n").unwrap();
    let refused = std::process::Command::new(crate::util::server::RCMD)
        .args(["serve", "--listen", "127.0.0.1:0", "--certs"])
        .arg(server.pki.cert_dir())
        .arg("--policy")
        .arg(&other)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("can only run jobs as itself"), "{stderr}");
}
