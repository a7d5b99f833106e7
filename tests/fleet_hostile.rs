//! What hosts that are hostile, broken or slow can do to a fleet command,
//! on loopback: a host answering with a flood, the receive windows a host
//! gets, a host still connecting at Ctrl-C, and a host that never answers
//! the stop. The hostile hosts are small servers of the test's own
//! (tests/util/fleet/hostile.rs) with this PKI's server certificate, so
//! the client trusts them; the others are real servers.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::util::fleet::Fleet;
use crate::util::fleet::hostile::{Answer, Door, Hostile, WindowProbe};
use crate::util::wait_until;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The server certificate of the fleet's PKI, which names 127.0.0.1.
fn tls(fleet: &Fleet) -> rustls::ServerConfig {
    (*fleet.pki.server_config()).clone()
}

/// A client run whose stdout and stderr are read as they come; killed and
/// reaped if the test fails first.
struct Running {
    child: Child,
    stdout: Arc<(Mutex<String>, Condvar)>,
    stderr: Arc<(Mutex<String>, Condvar)>,
}

impl Running {
    fn spawn(command: &mut Command) -> Running {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running { child, stdout, stderr }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until the client has said `text` on stderr.
    fn wait_stderr(&self, text: &str) {
        let (lock, changed) = &*self.stderr;
        let (said, _) = changed
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(60), |s| !s.contains(text))
            .unwrap();
        assert!(said.contains(text), "the client did not say {text:?}: {said}");
    }

    /// Waits for the client to exit: its status, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let mut status = None;
        wait_until("the client exits", Duration::from_secs(60), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let text = |output: &Arc<(Mutex<String>, Condvar)>| {
            let (lock, changed) = &**output;
            // The reader marks the end of its stream with a NUL.
            let done = changed
                .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(60), |s| !s.ends_with('\0'));
            done.unwrap().0.trim_end_matches('\0').to_owned()
        };
        (status.unwrap().code(), text(&self.stdout), text(&self.stderr))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` to its end on a thread, appending to a string that ends
/// with a NUL once the stream has.
fn collect(mut stream: impl Read + Send + 'static) -> Arc<(Mutex<String>, Condvar)> {
    let shared = Arc::new((Mutex::new(String::new()), Condvar::new()));
    let output = Arc::clone(&shared);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap_or(0);
            let (lock, changed) = &*output;
            let mut text = lock.lock().unwrap();
            if n == 0 {
                text.push('\0');
                changed.notify_all();
                return;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            changed.notify_all();
        }
    });
    shared
}

/// The jobs of a real host, as its own client sees them.
fn jobs_on(fleet: &Fleet, host: &crate::util::fleet::Host) -> Vec<serde_json::Value> {
    let out = fleet.client(&[], &host.addr, &["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["jobs"].as_array().unwrap().clone()
}

/// Runs `sleep 300` on the fleet's one real host and on `hostile`; once
/// `ready` has seen the hostile host get as far as the test wants and the
/// real host's job runs, sends SIGINT. The client's exit status and stderr;
/// the real host's job must have been stopped.
fn interrupt_beside(fleet: &Fleet, hostile: &Hostile, ready: impl FnOnce()) -> (Option<i32>, String) {
    let targets = format!("{},{}", fleet.hosts[0].addr, hostile.addr);
    let client = Running::spawn(&mut fleet.client(&[], &targets, &["run", "sleep", "300"]));
    ready();
    wait_until("the real host's job runs", Duration::from_secs(60), || {
        jobs_on(fleet, &fleet.hosts[0]).iter().any(|j| j["status"] == "running")
    });
    kill(client.pid(), Signal::SIGINT).unwrap();
    let (status, _, err) = client.finish();
    let jobs = jobs_on(fleet, &fleet.hosts[0]);
    assert_eq!(jobs[0]["signal"], 15, "the real host's job was stopped: {jobs:?}\n{err}");
    (status, err)
}

#[test]
fn a_hosts_oversized_answer_is_refused_without_reading_it() {
    const FLOOD: usize = 256 << 20;
    let fleet = Fleet::loopback(1, "ok");
    // One floods the answer to the job's creation, without saying how long
    // it is; the other floods an error and says so up front.
    let unsaid = Hostile::start(tls(&fleet), |request| match request {
        "PUT /jobs" => Answer::Flood { status: 200, bytes: FLOOD, length: false },
        _ => Answer::Silence,
    });
    let said = Hostile::start(tls(&fleet), |request| match request {
        "PUT /jobs" => Answer::Flood { status: 500, bytes: FLOOD, length: true },
        _ => Answer::Silence,
    });
    let targets = format!("{},{},{}", fleet.hosts[0].addr, unsaid.addr, said.addr);
    let out = fleet.client(&[], &targets, &["run", "echo", "hi"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("rcmd: 3 hosts: 1 ok, 2 unreachable\n"), "{err}");
    for hostile in [&unsaid, &said] {
        let line = format!("rcmd: unreachable {0}: the answer from {0} is over 4 MiB", hostile.addr);
        assert!(err.contains(&line), "{err}");
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}: hi\n", fleet.hosts[0].addr));
    // The client stopped taking the flood at its cap (plus what was in
    // flight), and took none of the one whose length was said.
    assert!(unsaid.flooded() < 16 << 20, "the client took {} bytes of an answer", unsaid.flooded());
    assert!(said.flooded() < 1 << 20, "the client took {} bytes of an answer", said.flooded());
}

#[test]
fn fleet_connections_offer_small_http2_receive_windows() {
    let fleet = Fleet::new();
    let probe = WindowProbe::start(tls(&fleet));
    let out = fleet.client(&[], &probe.addr, &["--fanout", "1", "run", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", String::from_utf8_lossy(&out.stderr));
    let (per_stream, connection) = probe.windows();
    // hyper's defaults are 2 MiB and 5 MiB: what a host could park in the
    // client behind a slow terminal, per host.
    assert!(per_stream <= 256 << 10, "a stream's receive window is {per_stream} bytes");
    assert!(connection <= 512 << 10, "the connection's receive window is {connection} bytes");
}

#[test]
fn ctrl_c_abandons_a_host_still_connecting_and_starts_no_job_there() {
    let fleet = Fleet::loopback(2, "c");
    let (running, late) = (&fleet.hosts[0], &fleet.hosts[1]);
    // c2 is reached through a door that holds the connection unanswered:
    // that host is still connecting when Ctrl-C comes.
    let door = Door::start(&late.addr);
    let targets = format!("{},{}", running.addr, door.addr);
    let client = Running::spawn(&mut fleet.client(
        &[],
        &targets,
        &["--connect-timeout", "600", "run", "sleep", "300"],
    ));
    door.wait_knocked();
    wait_until("c1's job runs", Duration::from_secs(60), || {
        jobs_on(&fleet, running).iter().any(|j| j["status"] == "running")
    });
    kill(client.pid(), Signal::SIGINT).unwrap();
    client.wait_stderr("stopping the job on every host");
    // Only now can the host behind the door answer: too late.
    door.open();
    let (status, _, err) = client.finish();
    assert_eq!(status, Some(128 + 15), "{err}");
    assert!(err.contains("rcmd: 2 hosts: 0 ok, 2 failed\n"), "{err}");
    assert!(
        err.contains(&format!("rcmd: failed {}: not started: interrupted while connecting\n", door.addr)),
        "{err}"
    );
    assert_eq!(jobs_on(&fleet, late), Vec::<serde_json::Value>::new(), "no job on the host still connecting");
    let jobs = jobs_on(&fleet, running);
    assert_eq!((jobs.len(), &jobs[0]["signal"]), (1, &serde_json::json!(15)), "{jobs:?}");
}

#[test]
fn ctrl_c_gives_up_on_a_host_that_never_answers_the_stop_and_names_it() {
    let fleet = Fleet::loopback(1, "s");
    let mute = Hostile::start(tls(&fleet), |request| match request {
        "PUT /jobs" => Answer::Json(200, r#"{"id":1}"#),
        r if r.starts_with("GET /jobs/1/output/") => Answer::Endless,
        _ => Answer::Silence,
    });
    let (status, err) = interrupt_beside(&fleet, &mute, || mute.wait_for("GET /jobs/1/output/", 2));
    assert!(mute.requests().iter().any(|r| r == "POST /jobs/1/stop"), "{:?}", mute.requests());
    assert_eq!(status, Some(255), "{err}");
    assert!(
        err.contains(&format!(
            "rcmd: could not stop the job on {}: job 1: no answer to the stop in 10 s\n",
            mute.addr
        )),
        "{err}"
    );
    assert!(err.contains("rcmd: 2 hosts: 0 ok, 1 failed, 1 unreachable\n"), "{err}");
}

#[test]
fn a_job_list_page_over_the_cap_is_asked_for_again_in_smaller_pages() {
    // A page of jobs with long, escaped command lines can be over the cap
    // on answers: the client asks again for half as many jobs a page.
    let fleet = Fleet::new();
    let host = Hostile::start(tls(&fleet), |request| match request {
        "GET /jobs?" => Answer::Flood { status: 200, bytes: 8 << 20, length: false },
        "GET /jobs?limit=50" => Answer::Json(200, r#"{"jobs":[]}"#),
        _ => Answer::Silence,
    });
    let out = fleet.client(&[], &host.addr, &["--fanout", "1", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(host.requests(), ["GET /jobs?", "GET /jobs?limit=50"]);
}

#[test]
fn ctrl_c_gives_up_on_a_host_that_never_answers_the_request_for_its_job() {
    let fleet = Fleet::loopback(1, "q");
    let mute = Hostile::start(tls(&fleet), |_| Answer::Silence);
    let (status, err) = interrupt_beside(&fleet, &mute, || mute.wait_for("PUT /jobs", 1));
    assert_eq!(status, Some(255), "{err}");
    let line = format!(
        "rcmd: unreachable {}: interrupted, and the request for the job got no answer in 10 s: a job may have started there\n",
        mute.addr
    );
    assert!(err.contains(&line), "{err}");
}
