//! `serve --policy`: who may connect, what they may run, admins, client
//! names as the server sees them, and reloading the policy on SIGHUP.
//!
//! These tests map clients to the user running the tests (with
//! `allow_root`, so they pass as root and as anyone else); the tests with
//! users of their own are in tests/policy_users.rs.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::TempDir;
use crate::util::server::{RCMD, ServerProcess, get_json, http, http_as};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn me() -> String {
    User::from_uid(Uid::effective()).unwrap().unwrap().name
}

/// A policy entry for `client` that runs its jobs as the test's own user.
fn entry(client: &str, extra: &str) -> String {
    format!("[clients.{client}]\nrun_as = {:?}\nallow_root = true\n{extra}\n", me())
}

/// A server with clients alice, bob, ops and mallory, and a policy that lets
/// in alice (only `echo` and `sh`), bob (anything) and ops (an admin), but
/// not mallory.
struct PolicyServer {
    server: ServerProcess,
    policy: PathBuf,
    _dir: TempDir,
}

impl PolicyServer {
    fn start() -> PolicyServer {
        PolicyServer::with(&[
            &entry("alice", "commands = [\"/bin/echo\", \"/bin/sh\"]"),
            &entry("bob", ""),
            &entry("ops", "admin = true"),
        ])
    }

    fn with(entries: &[&str]) -> PolicyServer {
        PolicyServer::with_args(entries, &[])
    }

    /// With `args` for `serve` besides the policy.
    fn with_args(entries: &[&str], args: &[&str]) -> PolicyServer {
        let dir = TempDir::new("policy");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, entries.concat()).unwrap();
        let mut args = args.to_vec();
        args.extend(["--policy", policy.to_str().unwrap()]);
        let server = ServerProcess::start(&["alice", "bob", "ops", "mallory"], &args);
        PolicyServer { server, policy, _dir: dir }
    }

    /// Rewrites the policy file and sends SIGHUP; waits until the server
    /// has logged the outcome (`expect` is a phrase of that line).
    fn reload(&self, text: &str, expect: &str) {
        let before = self.server.log().matches(expect).count();
        std::fs::write(&self.policy, text).unwrap();
        kill(Pid::from_raw(self.server.pid() as i32), Signal::SIGHUP).unwrap();
        crate::util::wait_until(&format!("the server logs {expect:?}"), Duration::from_secs(10), || {
            self.server.log().matches(expect).count() > before
        });
    }
}

async fn send(
    client: &reqwest::Client,
    server: &ServerProcess,
    method: Method,
    path: &str,
) -> (StatusCode, String) {
    let mut request = client.request(method.clone(), server.url(path));
    if method == Method::PUT {
        request = request.body(r#"{"cmd": "echo", "args": ["hi"]}"#);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Every route of the API, and one that does not exist.
const EVERY_ROUTE: &[(Method, &str)] = &[
    (Method::PUT, "/jobs"),
    (Method::GET, "/jobs"),
    (Method::GET, "/jobs?all=true"),
    (Method::GET, "/jobs/1/status"),
    (Method::GET, "/jobs/1/output"),
    (Method::GET, "/jobs/1/output/stdout"),
    (Method::POST, "/jobs/1/stop"),
    (Method::DELETE, "/jobs/1"),
    (Method::GET, "/clients/alice/jobs/1/status"),
    (Method::DELETE, "/clients/alice/jobs/1"),
    (Method::GET, "/no/such/route"),
];

/// Asserts 403 with a JSON error on every route, and returns the errors.
async fn forbidden_everywhere(client: &reqwest::Client, server: &ServerProcess) -> Vec<String> {
    let mut errors = Vec::new();
    for (method, path) in EVERY_ROUTE {
        let (status, body) = send(client, server, method.clone(), path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{method} {path}: {body}"));
        errors.push(error["error"].as_str().expect("an error message").to_owned());
    }
    errors
}

#[tokio::test]
async fn a_client_not_in_the_policy_gets_403_on_every_route() {
    let ps = PolicyServer::start();
    let alice = http_as(&ps.server, "alice");
    let (status, _) = send(&alice, &ps.server, Method::PUT, "/jobs").await;
    assert_eq!(status, StatusCode::OK);

    let errors = forbidden_everywhere(&http_as(&ps.server, "mallory"), &ps.server).await;
    assert!(errors[0].contains("client \"mallory\" is not in this server's policy"), "{}", errors[0]);
    // Nothing was made for mallory, and alice's job is untouched.
    assert!(!ps.server.ok("alice", &["status", "1"]).starts_with("Error"));
    let out = ps.server.rcmd("mallory", &["run", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
}

#[tokio::test]
async fn a_command_outside_the_list_is_403_and_makes_no_job() {
    let ps = PolicyServer::start();
    let s = &ps.server;
    for refused in
        [&["exec", "ls"][..], &["exec", "/bin/ls", "/"], &["exec", "./echo"], &["exec", "no-such-program"]]
    {
        let out = s.rcmd("alice", refused);
        assert_eq!(out.status.code(), Some(1), "{refused:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("403"), "{refused:?}: {stderr}");
    }
    assert_eq!(s.ok("alice", &["list"]).lines().count(), 1, "only the header: no job was made");

    // What is allowed runs, by name or by any path to the same program,
    // and the job records the program that ran.
    assert_eq!(s.ok("alice", &["run", "echo", "allowed"]), "allowed\n");
    assert_eq!(s.ok("alice", &["run", "/usr/bin/../bin/echo", "too"]), "too\n");
    let status: Value = serde_json::from_str(&s.ok("alice", &["--json", "status", "1"])).unwrap();
    assert!(status["cmd"].as_str().unwrap().ends_with("/echo"), "{status}");
    assert!(status["cmd"].as_str().unwrap().starts_with('/'), "{status}");
    // bob has no list: anything goes.
    assert!(s.ok("bob", &["run", "ls", "/"]).contains("tmp"));
}

#[test]
fn a_policy_that_breaks_the_rules_does_not_load() {
    let cases = [
        // uid 0 is refused first, whoever runs the server.
        ("[clients.alice]\nrun_as = \"root\"\n", "allow_root = true"),
        (&entry("alice", "comands = [\"/bin/ls\"]") as &str, "line 4"),
        ("[clients.alice]\nadmin = true\n", "run_as"),
        ("[clients.\"a/b\"]\nrun_as = \"root\"\n", "invalid client name"),
        (&entry("alice", "commands = [\"ls\"]"), "absolute"),
        (&entry("alice", "memory = \"lots\""), "line 4, column 10: invalid size \"lots\""),
        (&entry("alice", "cpus = nan"), "line 4, column 8: a cpus limit must be a positive number"),
        (&entry("alice", "pids = 0"), "line 4, column 8: a pids limit must be at least 1"),
        (
            &entry("alice", "cpus = 0.005"),
            "line 4, column 8: a cpus limit of 0.005 is too small: the least is 0.01",
        ),
        ("[clients.alice]\nrun_as = \"rcmdt-pol-no-such-user\"\n", "no unix user"),
    ];
    let pki = rcmd::testing::TestPki::new();
    let dir = TempDir::new("bad-policy");
    for (text, reason) in cases {
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, text).unwrap();
        let out = std::process::Command::new(RCMD)
            .arg("serve")
            .arg("--certs")
            .arg(pki.cert_dir())
            .args(["--listen", "127.0.0.1:0", "--policy"])
            .arg(&policy)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason) && stderr.contains("policy.toml"), "{text}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "{text}");
    }
}

/// The limits in force for `client`'s job `id`, as its status shows them.
fn limits_of(server: &ServerProcess, client: &str, id: &str) -> Value {
    let status: Value = serde_json::from_str(&server.ok(client, &["--json", "status", id])).unwrap();
    status["limits"].clone()
}

/// Runs `args` as `client`, expects it refused with 400, and returns stderr.
fn refused(server: &ServerProcess, client: &str, args: &[&str]) -> String {
    let out = server.rcmd(client, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains("400"), "{args:?}: {stderr}");
    stderr
}

/// Allocates far more than 64 MiB (200 MiB), then prints its size.
const HOG: &str = r#"BEGIN { s = "x"; while (length(s) < 209715200) s = s s; print length(s) }"#;

#[tokio::test]
#[ignore = "needs root: the server makes cgroups"]
async fn a_client_s_ceilings_are_her_jobs_defaults_and_limits_and_the_smaller_of_hers_and_the_server_s_wins()
{
    const MIB: u64 = 1 << 20;
    // alice: memory below the server's, pids above it, cpus where the
    // server has none. bob: none of his own.
    let ps = PolicyServer::with_args(
        &[
            &entry("alice", "memory = \"64M\"\npids = 500\ncpus = 0.5"),
            &entry("bob", ""),
            &entry("ops", "admin = true"),
        ],
        &["--job-memory", "1G", "--job-pids", "100"],
    );
    let s = &ps.server;

    // Asking for nothing: the smaller of each, and held by the kernel (a
    // 200 MiB hog is OOM-killed under alice's 64 MiB).
    s.ok("alice", &["exec", "true"]);
    assert_eq!(limits_of(s, "alice", "1"), json!({"memory": 64 * MIB, "pids": 100, "cpus": 0.5}));
    let out = s.rcmd("alice", &["run", "awk", HOG]);
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of memory (limit 64 MiB)"));
    s.ok("bob", &["exec", "true"]);
    assert_eq!(limits_of(s, "bob", "1"), json!({"memory": 1024 * MIB, "pids": 100}));

    // Above the ceiling: 400 naming it and where it is set, and no job.
    let error = refused(s, "alice", &["exec", "--memory", "128M", "true"]);
    assert!(error.contains("above your ceiling of 64 MiB (`memory` in this server's policy)"), "{error}");
    let error = refused(s, "alice", &["exec", "--pids", "200", "true"]);
    assert!(error.contains("above this server's ceiling of 100 (--job-pids)"), "{error}");
    let error = refused(s, "alice", &["exec", "--cpus", "1", "true"]);
    assert!(error.contains("above your ceiling of 0.5 (`cpus` in this server's policy)"), "{error}");
    refused(s, "bob", &["exec", "--memory", "2G", "true"]);
    // More pids than Linux has: refused (by the CLI, before it asks), not a
    // job that fails at its start.
    let out = s.rcmd("bob", &["exec", "--pids", "5000000", "true"]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{error}");
    assert!(error.contains("at most 4194304"), "{error}");
    assert_eq!(s.ok("alice", &["list"]).lines().count(), 3, "the header and alice's two jobs");
    // Below it: taken.
    let id = s.ok("alice", &["exec", "--memory", "32M", "--pids", "10", "--cpus", "0.25", "true"]);
    assert_eq!(limits_of(s, "alice", id.trim()), json!({"memory": 32 * MIB, "pids": 10, "cpus": 0.25}));

    // An admin reaches alice's jobs, but cannot make one for her: there is
    // no route that creates a job on someone's behalf.
    for path in ["/clients/alice/jobs", "/clients/alice/jobs/1"] {
        let (status, _) = send(&http_as(s, "ops"), s, Method::PUT, path).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
            "{path}: {status}"
        );
    }
    let (status, _) = send(&http_as(s, "alice"), s, Method::PUT, "/clients/alice/jobs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(s.ok("alice", &["list"]).lines().count(), 4, "no job was made for alice");

    // A reload: a bad value keeps the old ceilings; a good one applies to
    // the next job, and the jobs already made keep theirs.
    let sleeper = s.ok("alice", &["exec", "sleep", "1000"]);
    ps.reload(&entry("alice", "memory = \"lots\""), "reload failed");
    assert!(s.log().contains("line 4, column 10: invalid size"), "{}", s.log());
    refused(s, "alice", &["exec", "--memory", "128M", "true"]);
    ps.reload(&entry("alice", "memory = \"2G\"\npids = 50"), "reloaded");
    let id = s.ok("alice", &["exec", "true"]);
    assert_eq!(limits_of(s, "alice", id.trim()), json!({"memory": 1024 * MIB, "pids": 50}));
    let error = refused(s, "alice", &["exec", "--memory", "1.5G", "true"]);
    assert!(error.contains("above this server's ceiling of 1 GiB (--job-memory)"), "{error}");
    assert_eq!(
        limits_of(s, "alice", sleeper.trim())["memory"],
        json!(64 * MIB),
        "a running job keeps its limits"
    );
    s.ok("alice", &["stop", sleeper.trim()]);
}

#[test]
#[ignore = "needs root: makes a user to run the server without cgroups"]
fn a_ceiling_this_host_cannot_enforce_stops_the_policy_from_loading() {
    // A server that is not root has no cgroups of its own here, and runs
    // jobs only as itself: its policy can name only its own user.
    let user = crate::util::users::TestUser::new("noc", false);
    let found = User::from_name(&user.name).unwrap().unwrap();
    let pki = rcmd::testing::TestPki::new();
    let dir = TempDir::new("no-cgroups-policy");
    let policy = dir.path().join("policy.toml");
    for path in [pki.path(), dir.path()] {
        let chown = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", found.uid, found.gid))
            .arg(path)
            .status();
        assert!(chown.unwrap().success());
    }
    let serve = |ceiling: &str| {
        std::fs::write(&policy, format!("[clients.alice]\nrun_as = {:?}\n{ceiling}\n", user.name)).unwrap();
        use std::os::unix::process::CommandExt;
        std::process::Command::new(RCMD)
            .arg("serve")
            .arg("--certs")
            .arg(pki.cert_dir())
            .args(["--listen", "127.0.0.1:0", "--policy"])
            .arg(&policy)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .uid(found.uid.as_raw())
            .gid(found.gid.as_raw())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for ceiling in ["memory = \"64M\"", "pids = 10", "cpus = 1", "io_write_bps = \"1M\""] {
        let out = serve(ceiling);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{ceiling}: {stderr}");
        assert!(stderr.contains("no cgroups"), "{ceiling}: {stderr}");
        assert!(
            stderr.contains("policy.toml: [clients.alice]: limits need cgroups")
                && stderr.contains("drop them"),
            "{ceiling}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "{ceiling}");
    }
}

#[tokio::test]
async fn admins_list_and_stop_every_client_s_jobs_and_no_one_else_can() {
    let ps = PolicyServer::start();
    let s = &ps.server;
    let sleeper = s.ok("bob", &["exec", "sleep", "1000"]);
    assert_eq!(sleeper.trim(), "1");
    s.ok("alice", &["run", "echo", "a"]);

    // ops sees both, each with its client, and names them CN/ID.
    let all: Value = serde_json::from_str(&s.ok("ops", &["--json", "list", "--all"])).unwrap();
    let owners: Vec<(&str, u64)> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["client"].as_str().unwrap(), j["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(owners, [("alice", 1), ("bob", 1)]);
    let table = s.ok("ops", &["list", "--all"]);
    assert!(table.contains("alice/1") && table.contains("bob/1"), "{table}");

    assert!(s.ok("ops", &["status", "bob/1"]).starts_with("Running"));
    assert_eq!(s.ok("ops", &["output", "alice/1"]), "a\n");
    let stopped = s.ok("ops", &["stop", "bob/1"]);
    assert!(stopped.contains("signal: 15"), "{stopped}");
    assert!(s.ok("bob", &["status", "1"]).contains("signal: 15"), "bob sees his job stopped");
    s.ok("ops", &["delete", "alice/1"]);
    assert!(!s.rcmd("alice", &["status", "1"]).status.success(), "alice's job is gone");

    // Unknown jobs and clients are 404 for the admin, and asking creates nothing.
    let out = s.rcmd("ops", &["status", "bob/7"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("job bob/7 not found"));
    let out = s.rcmd("ops", &["status", "nobody/1"]);
    assert_eq!(out.status.code(), Some(1));
    let all: Value = serde_json::from_str(&s.ok("ops", &["--json", "list", "--all"])).unwrap();
    assert!(all["jobs"].as_array().unwrap().iter().all(|j| j["client"] != "nobody"));

    // Not an admin: 403 on /clients/... and ?all=true, whether or not the job
    // exists; on its own routes another client's job is still 404.
    let alice = http_as(s, "alice");
    for path in [
        "/clients/bob/jobs/1/status",
        "/clients/bob/jobs/99/status",
        "/clients/alice/jobs/1/output",
        "/clients/bob/jobs",
        "/clients/bob/anything",
        "/jobs?all=true",
    ] {
        let (status, body) = send(&alice, s, Method::GET, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.contains("only admins"), "{body}");
    }
    let (status, _) = send(&alice, s, Method::POST, "/clients/bob/jobs/1/stop").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let out = s.rcmd("alice", &["stop", "bob/1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("only admins"));
    // bob's job 1 exists, but on ops's own routes job 1 is ops's: none.
    let (status, _) = send(&http_as(s, "ops"), s, Method::GET, "/jobs/1/status").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every job of an admin's `GET /jobs?all=true`, `limit` at a time,
/// following `next`: (client, id) in the order listed, and the pages' sizes.
async fn all_pages(
    admin: &reqwest::Client,
    server: &ServerProcess,
    limit: usize,
) -> (Vec<(String, u64)>, Vec<usize>) {
    let (mut listed, mut sizes) = (Vec::new(), Vec::new());
    let mut path = format!("/jobs?all=true&limit={limit}");
    loop {
        let page = get_json(admin, server, &path).await;
        let jobs = page["jobs"].as_array().unwrap_or_else(|| panic!("{path}: {page}"));
        sizes.push(jobs.len());
        listed.extend(
            jobs.iter().map(|j| (j["client"].as_str().unwrap().to_owned(), j["id"].as_u64().unwrap())),
        );
        let Some(next) = page["next"].as_str() else { break };
        assert_eq!(
            next,
            format!("{}/{}", listed.last().unwrap().0, listed.last().unwrap().1),
            "next is the last job listed"
        );
        path = format!("/jobs?all=true&limit={limit}&after={}", next.replace('/', "%2F"));
    }
    (listed, sizes)
}

#[tokio::test]
async fn an_admin_s_list_of_every_client_comes_in_pages_in_one_order_and_survives_a_restart() {
    let ps = PolicyServer::start();
    let s = &ps.server;
    // More than the CLI's page (100) over three clients.
    let mut expected = Vec::new();
    for (client, count) in [("bob", 60), ("alice", 70), ("ops", 3)] {
        let http = http_as(s, client);
        for id in 1..=count {
            let (status, body) = send(&http, s, Method::PUT, "/jobs").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            expected.push((client.to_owned(), id));
        }
    }
    expected.sort();
    let ops = http_as(s, "ops");

    // By client, then id, each once, in full pages but the last, which
    // says there is no more (133 = 19 * 7: none after a full last page).
    for limit in [7, 50, 1000] {
        let (listed, sizes) = all_pages(&ops, s, limit).await;
        assert_eq!(listed, expected, "limit {limit}");
        assert!(sizes[..sizes.len() - 1].iter().all(|&n| n == limit), "limit {limit}: {sizes:?}");
    }
    assert_eq!(all_pages(&ops, s, 7).await.1.len(), 19);
    // The CLI follows the pages: every job, once, named CN/ID.
    let all: Value = serde_json::from_str(&s.ok("ops", &["--json", "list", "--all"])).unwrap();
    let listed: Vec<(String, u64)> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["client"].as_str().unwrap().to_owned(), j["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, expected);
    let table = s.ok("ops", &["list", "--all"]);
    assert_eq!(table.lines().count(), 1 + expected.len());
    assert!(table.lines().nth(1).unwrap().trim_start().starts_with("alice/1 "), "{table}");

    // A page goes on after its cursor even once that job is gone; a cursor
    // past a client's jobs goes on with the next client, one past every
    // client ends the listing.
    let page = get_json(&ops, s, "/jobs?all=true&limit=2&after=alice%2F9").await;
    assert_eq!((page["jobs"][0]["id"].as_u64(), page["next"].as_str()), (Some(10), Some("alice/11")));
    s.ok("ops", &["delete", "alice/11"]);
    let page = get_json(&ops, s, "/jobs?all=true&limit=1&after=alice%2F11").await;
    assert_eq!(page["jobs"][0]["id"].as_u64(), Some(12));
    let page = get_json(&ops, s, "/jobs?all=true&limit=2&after=alice%2F999").await;
    assert_eq!((page["jobs"][0]["client"].as_str(), page["jobs"][0]["id"].as_u64()), (Some("bob"), Some(1)));
    let page = get_json(&ops, s, "/jobs?all=true&after=zzz%2F1").await;
    assert_eq!((page["jobs"].as_array().unwrap().len(), page.get("next")), (0, None));

    // Bad cursors are 400; a non-admin is 403 whatever the cursor.
    for bad in ["alice", "alice%2Fx", "5", "a%2Fb%2F1", "%2F1", "alice%2F-1"] {
        let (status, body) = send(&ops, s, Method::GET, &format!("/jobs?all=true&after={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("CLIENT/ID"), "{bad}: {body}");
    }
    let (status, _) = send(&ops, s, Method::GET, "/jobs?all=true&limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = send(&http_as(s, "alice"), s, Method::GET, "/jobs?all=true&after=bob%2F1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = send(&ops, s, Method::GET, "/jobs?after=alice%2F1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "on one's own jobs, after is an id");

    // After a restart, clients that have not connected since are listed too.
    let PolicyServer { server, policy, _dir } = ps;
    let server = server.restart(Signal::SIGTERM);
    let (listed, _) = all_pages(&http_as(&server, "ops"), &server, 50).await;
    expected.retain(|job| *job != ("alice".to_owned(), 11));
    assert_eq!(listed, expected);
    drop((server, policy, _dir));
}

#[tokio::test]
async fn an_invalid_policy_on_sighup_keeps_the_old_one_and_a_valid_one_applies_at_once() {
    let ps = PolicyServer::start();
    let s = &ps.server;
    s.ok("alice", &["run", "echo", "before"]);

    // A typo: logged, and nothing changes (mallory stays out, alice in).
    ps.reload(&(entry("alice", "") + "[clients.mallory]\nrun_ass = \"x\"\n"), "reload failed");
    let log = s.log();
    assert!(log.contains("policy.toml") && log.contains("run_ass"), "{log}");
    assert!(!s.rcmd("mallory", &["list"]).status.success());
    assert!(s.rcmd("alice", &["run", "ls"]).status.code() == Some(1), "alice's list still holds");

    // A valid one: alice's list goes, mallory comes in, bob and ops are out.
    ps.reload(&(entry("alice", "") + &entry("mallory", "")), "reloaded");
    assert!(s.ok("alice", &["run", "ls", "/"]).contains("tmp"));
    assert_eq!(s.ok("mallory", &["run", "echo", "in"]), "in\n");
    for dropped in ["bob", "ops"] {
        let out = s.rcmd(dropped, &["list"]);
        assert!(String::from_utf8_lossy(&out.stderr).contains("not in this server's policy"), "{dropped}");
    }
    assert!(s.log().contains("no longer lets these clients in"));
    // alice's jobs from before the reload are still hers.
    assert_eq!(s.ok("alice", &["output", "1"]), "before\n");
}

#[tokio::test]
async fn a_cn_that_breaks_the_name_rules_gets_403_never_500_and_no_path() {
    for policy in [false, true] {
        let ps;
        let server = if policy {
            ps = PolicyServer::start();
            &ps.server
        } else {
            ps = PolicyServer {
                server: ServerProcess::start(&[], &[]),
                policy: PathBuf::new(),
                _dir: TempDir::new("none"),
            };
            &ps.server
        };
        let data = server.data.path().to_str().unwrap().to_owned();
        for (label, cn) in [
            ("long", "x".repeat(160)),
            ("slash", "alice/../../etc".to_owned()),
            ("newline", "alice\nforged log line".to_owned()),
            ("dotdot", "..".to_owned()),
            ("dash", "-rf".to_owned()),
        ] {
            let dir = server.pki.client_with(&cn, |_| {}).path().to_owned();
            let errors = forbidden_everywhere(&http(server, Some(&dir)), server).await;
            for error in errors {
                assert!(error.contains("not a valid client name"), "{label}: {error}");
                assert!(!error.contains(&data) && !error.contains("/tmp"), "{label}: {error}");
            }
        }
        assert!(!server.log().contains("\nforged log line"), "a CN cannot forge log lines");
        assert_eq!(
            std::fs::read_dir(server.data.path().join("jobs/output")).map(|d| d.count()).unwrap_or(0),
            0,
            "no pool was made"
        );
    }
}

#[test]
fn job_names_that_are_not_ids_are_refused_by_the_cli() {
    let server = ServerProcess::start(&[], &[]);
    for bad in ["x", "0", "alice/", "a/b/1", "/1"] {
        let out = server.rcmd("owner", &["status", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("CLIENT/ID")
                || String::from_utf8_lossy(&out.stderr).contains("invalid client name"),
            "{bad}"
        );
    }
    // Without a policy nobody is an admin.
    let out = server.rcmd("owner", &["list", "--all"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("only admins"));
    let out = server.rcmd("owner", &["status", "owner/1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("only admins"));
}

#[test]
fn the_server_warns_of_a_ca_key_beside_it_and_of_root_without_a_policy() {
    const CA_KEY_WARNING: &str = "the CA key is in the server's cert directory";
    const ROOT_WARNING: &str = "running as root without --policy";
    let server = ServerProcess::start(&[], &[]);
    assert!(server.log().contains(CA_KEY_WARNING), "{}", server.log());
    assert_eq!(server.log().contains(ROOT_WARNING), Uid::effective().is_root());

    // Moved away as the warning says: the next reload is quiet about it.
    let certs = server.pki.cert_dir();
    std::fs::rename(certs.join("ca.key"), server.pki.path().join("ca.key")).unwrap();
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGHUP).unwrap();
    crate::util::wait_until("the reload", Duration::from_secs(10), || server.log().contains("reloaded"));
    assert_eq!(server.log().matches(CA_KEY_WARNING).count(), 1);

    let ps = PolicyServer::start();
    assert!(!ps.server.log().contains(ROOT_WARNING), "a policy answers it");
}
