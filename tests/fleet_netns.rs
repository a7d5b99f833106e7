//! Fan-out across network namespaces the tests make (root and iproute2
//! needed; CI has both): three servers, each in its own namespace with its
//! own address on a bridge and its own certificate from `pki server NAME
//! --san IP`; an address where nothing listens; one whose namespace drops
//! every packet. The client runs in the bridge's namespace. Every namespace
//! (and with it every link and rule) goes when the lab is dropped, also
//! when a test fails.

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::util::fleet::{Fleet, at};
use crate::util::netns::NetLab;
use crate::util::wait_until;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Three hosts h1..h3 at SUBNET.11..13, port 8443, labelled
/// h1 {role=web, zone=a}, h2 {role=web, zone=b}, h3 {role=db, zone=a}.
/// Fields drop in order: the servers die before their namespaces go.
struct Lab {
    fleet: Fleet,
    hub: Vec<String>,
    net: NetLab,
}

impl Lab {
    fn new() -> Lab {
        let mut net = NetLab::new();
        let mut fleet = Fleet::new();
        let labels = [
            [("role", "web"), ("zone", "a")],
            [("role", "web"), ("zone", "b")],
            [("role", "db"), ("zone", "a")],
        ];
        for (i, labels) in labels.iter().enumerate() {
            let name = format!("h{}", i + 1);
            let (wrapper, addr) = net.host(&name, 11 + i as u8);
            fleet.start(&name, &wrapper, &format!("{addr}:8443"), labels);
        }
        Lab { fleet, hub: net.in_hub(), net }
    }

    /// The client, in the hub, as "owner".
    fn rcmd(&self, targets: &str, args: &[&str]) -> Output {
        self.fleet.client(&self.hub, targets, args).output().unwrap()
    }

    /// The jobs of host `i` (0-based), as its own single-host client sees them.
    fn jobs_on(&self, i: usize) -> Vec<serde_json::Value> {
        let out = self.rcmd(&self.fleet.hosts[i].addr, &["list", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list["jobs"].as_array().unwrap().clone()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
#[ignore = "needs root, ip and nft: makes network namespaces, one firewalled"]
fn a_megabyte_from_each_host_arrives_whole_prefixed_and_in_order() {
    let lab = Lab::new();
    let inventory = lab.fleet.inventory("hosts.toml", &[]);
    // 1 MiB per host, in lines of 1,004 bytes that name the host; the last
    // line is cut short, without a newline.
    const SIZE: usize = 1 << 20;
    let script = format!(r#"yes "$RCMDT_HOST $(printf %01000d 0)" | head -c {SIZE}"#);
    let out = lab.rcmd(&at(&inventory), &["run", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("3 hosts: 3 ok"), "{}", text(&out.stderr));

    let mut got: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for line in out.stdout.split_inclusive(|&b| b == b'\n') {
        assert_eq!(line.last(), Some(&b'\n'), "every line ends whole");
        let at = line.windows(2).position(|w| w == b": ").expect("a prefix on every line");
        let name = text(&line[..at]);
        got.entry(name).or_default().extend_from_slice(&line[at + 2..]);
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), ["h1", "h2", "h3"]);
    for (name, bytes) in got {
        let line = format!("{name} {}\n", "0".repeat(1000));
        let mut expected = line.repeat(SIZE / line.len() + 1).into_bytes();
        expected.truncate(SIZE);
        // The final line without a newline still arrives, with one added.
        expected.push(b'\n');
        assert!(
            bytes == expected,
            "{name}: {} bytes, not its own stream of {} (cut into?)",
            bytes.len(),
            SIZE
        );
    }
}

#[test]
#[ignore = "needs root, ip and nft: makes network namespaces, one firewalled"]
fn exit_status_summary_and_a_rerun_of_the_failed_hosts() {
    let mut lab = Lab::new();
    let (_, idle) = lab.net.host("idle", 20);
    let hole = lab.net.black_hole("hole", 21);
    let script = "case $RCMDT_HOST in h2) exit 3;; h3) exit 7;; esac";
    let three = at(&lab.fleet.inventory("three.toml", &[]));

    // Every host answered: the largest status.
    let out = lab.rcmd(&three, &["run", "sh", "-c", script]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("rcmd: 3 hosts: 1 ok, 2 failed\n"), "{err}");
    assert!(
        err.contains("rcmd: failed h2: exit status 3\n") && err.contains("rcmd: failed h3: exit status 7\n")
    );

    // Any host unreachable: 255, and why for each.
    let idle_addr = format!("{idle}:8443");
    let hole_addr = format!("{hole}:8443");
    let five = at(&lab.fleet.inventory("five.toml", &[("idle", &idle_addr), ("hole", &hole_addr)]));
    let failed = lab.fleet.path("failed.toml");
    let failed_arg = failed.to_str().unwrap();
    let out = lab.rcmd(&five, &["--connect-timeout", "1", "--failed", failed_arg, "run", "sh", "-c", script]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("rcmd: 5 hosts: 1 ok, 2 failed, 2 unreachable\n"), "{err}");
    assert!(err.contains(&format!("rcmd: unreachable idle: cannot connect to {idle_addr}")), "{err}");
    assert!(
        err.contains(&format!("rcmd: unreachable hole: cannot connect to {hole_addr}: no answer in time")),
        "{err}"
    );

    // --failed wrote an inventory of exactly those four, labels kept.
    let inventory: toml::Table = toml::from_str(&std::fs::read_to_string(&failed).unwrap()).unwrap();
    let hosts = inventory["hosts"].as_table().unwrap();
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["h2", "h3", "hole", "idle"]);
    assert_eq!(hosts["h3"]["addr"].as_str(), Some(lab.fleet.hosts[2].addr.as_str()));
    assert_eq!(hosts["h3"]["labels"]["role"].as_str(), Some("db"));

    // Re-running @FILE goes to those four only.
    let out = lab.rcmd(&at(&failed), &["--connect-timeout", "1", "run", "sh", "-c", "echo again"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("rcmd: 4 hosts: 2 ok, 2 unreachable\n"), "{err}");
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["h2: again", "h3: again"]);
}

#[test]
#[ignore = "needs root, ip and nft: makes network namespaces, one firewalled"]
fn select_takes_the_hosts_that_match_every_label() {
    let lab = Lab::new();
    let inventory = at(&lab.fleet.inventory("hosts.toml", &[]));
    let names = |selectors: &[&str]| {
        let mut args: Vec<&str> = selectors.iter().flat_map(|s| ["--select", s]).collect();
        args.extend(["run", "sh", "-c", "echo $RCMDT_HOST"]);
        let out = lab.rcmd(&inventory, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(names(&["role=web"]), ["h1: h1", "h2: h2"]);
    assert_eq!(names(&["role=web", "zone=a"]), ["h1: h1"]);
    assert_eq!(names(&["zone=a"]), ["h1: h1", "h3: h3"]);

    let none = lab.rcmd(&inventory, &["--select", "role=mail", "run", "true"]);
    assert_eq!(none.status.code(), Some(2));
    let err = text(&none.stderr);
    assert!(err.contains("role=mail") && err.lines().count() == 1, "{err}");
    let jobs: Vec<usize> = (0..3).map(|i| lab.jobs_on(i).len()).collect();
    assert_eq!(jobs, [3, 1, 1], "a job only where selected, none from the refused run");
}

#[test]
#[ignore = "needs root, ip and nft: makes network namespaces, one firewalled"]
fn ctrl_c_stops_the_job_on_every_host() {
    let lab = Lab::new();
    let inventory = at(&lab.fleet.inventory("hosts.toml", &[]));
    let client = lab
        .fleet
        .client(&lab.hub, &inventory, &["run", "sleep", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a job runs on every host", Duration::from_secs(60), || {
        (0..3).all(|i| lab.jobs_on(i).iter().any(|j| j["status"] == "running"))
    });
    // `ip netns exec` execs rcmd, so this is the client's own pid.
    kill(Pid::from_raw(client.id() as i32), Signal::SIGINT).unwrap();
    let out = client.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("stopping the job on every host"), "{err}");
    assert_eq!(out.status.code(), Some(128 + 15), "each job ended by SIGTERM: {err}");
    assert!(err.contains("rcmd: 3 hosts: 0 ok, 3 failed\n"), "{err}");
    for i in 0..3 {
        let jobs = lab.jobs_on(i);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0]["status"], "completed", "h{}: {:?}", i + 1, jobs[0]);
        assert_eq!(jobs[0]["signal"], 15, "h{}: {:?}", i + 1, jobs[0]);
    }
}

#[test]
#[ignore = "needs root, ip and nft: makes network namespaces, one firewalled"]
fn a_server_with_another_hosts_certificate_is_refused_as_unreachable() {
    let mut lab = Lab::new();
    // A fourth namespace serves h1's certificate (issued for h1's address)
    // at its own address: a host in the inventory that is not who it says.
    let (wrapper, addr) = lab.net.host("impostor", 14);
    lab.fleet.serve("impostor", &wrapper, &format!("{addr}:8443"), &[], "h1");
    let inventory = at(&lab.fleet.inventory("hosts.toml", &[]));
    let out = lab.rcmd(&inventory, &["run", "sh", "-c", "echo $RCMDT_HOST"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("rcmd: 4 hosts: 3 ok, 1 unreachable\n"), "{err}");
    assert!(err.contains(&format!("rcmd: unreachable impostor: TLS with {addr}:8443 failed")), "{err}");
    assert!(!text(&out.stdout).contains("impostor"), "nothing ran there");
    assert!(lab.rcmd(&format!("{addr}:8443"), &["list"]).status.code() == Some(255));
}
