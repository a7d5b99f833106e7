//! Fan-out on loopback: `pki server` identities, targets and inventories,
//! prefixed output, the summary, exit statuses, `--failed` re-runs and
//! `--fanout`, against real servers (one process each).

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::fleet::{Fleet, at, open_connections};
use crate::util::wait_until;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

#[test]
fn fanout_8_never_has_more_than_8_connections_open_and_all_50_hosts_answer() {
    let fleet = Fleet::loopback(50, "h");
    let inventory = fleet.inventory("fifty.toml", &[]);
    let ports: Vec<u16> = fleet.hosts.iter().map(|h| h.port()).collect();
    let flag = fleet.path("go");
    // Each job holds its host's connection open until the flag exists, so
    // the first wave is certain to fill every slot.
    let script = format!("while [ ! -e {} ]; do sleep 0.02; done; echo done", flag.display());
    let client = fleet
        .client(&[], &at(&inventory), &["--fanout", "8", "run", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let most = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (most, stop, ports) = (most.clone(), stop.clone(), ports.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(open_connections(&ports, 8), Ordering::Relaxed);
            }
        })
    };
    wait_until("8 connections are open", Duration::from_secs(60), || open_connections(&ports, 8) >= 8);
    std::fs::write(&flag, "").unwrap();
    let out = client.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert_eq!(out.status.code(), Some(0), "{}\nservers logged:\n{}", stderr(&out), fleet.server_errors());
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    let mut expected: Vec<String> = (1..=50).map(|i| format!("h{i}: done")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert!(stderr(&out).contains("50 hosts: 50 ok"), "{}", stderr(&out));
    let most = most.load(Ordering::Relaxed);
    assert!(most <= 8, "{most} connections were open at once with --fanout 8");
}

/// The jobs of one host, as its own client sees them.
fn jobs_on(fleet: &Fleet, host: &crate::util::fleet::Host) -> Vec<serde_json::Value> {
    let out = fleet.client(&[], &host.addr, &["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["jobs"].as_array().unwrap().clone()
}

#[test]
fn a_closed_pipe_ends_a_fleet_run_with_141_and_kills_the_job_on_every_host() {
    use std::io::BufRead;
    let fleet = Fleet::loopback(3, "p");
    let targets: Vec<&str> = fleet.hosts.iter().map(|h| h.addr.as_str()).collect();
    let mut client = fleet
        .client(&[], &targets.join(","), &["run", "yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(client.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.ends_with(": y\n"), "{first:?}");
    // The reader is gone now, as after `| head -1`.
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "a closed pipe ends quietly");
    for host in &fleet.hosts {
        let mut jobs = Vec::new();
        wait_until("the job has ended", Duration::from_secs(30), || {
            jobs = jobs_on(&fleet, host);
            jobs.iter().all(|j| j["status"] == "completed")
        });
        assert_eq!(jobs.len(), 1, "{}: {jobs:?}", host.name);
        assert!(jobs[0]["signal"].is_number(), "{}: killed, not finished: {:?}", host.name, jobs[0]);
    }
}

#[test]
fn piped_stdin_reaches_every_host_whole() {
    let fleet = Fleet::loopback(3, "s");
    let inventory = fleet.inventory("three.toml", &[]);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let input = fleet.path("input");
    std::fs::write(&input, &data).unwrap();
    let out = fleet
        .client(&[], &at(&inventory), &["run", "wc", "-c"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["s1: 3000000", "s2: 3000000", "s3: 3000000"]);

    // Stdin goes to every host at once, so a fan-out below the host count
    // could not give it to the later ones: refused before anything runs.
    let refused = fleet
        .client(&[], &at(&inventory), &["--fanout", "2", "run", "wc", "-c"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("raise --fanout to 3, or give run -n"), "{}", stderr(&refused));
    let no_stdin = fleet
        .client(&[], &at(&inventory), &["--fanout", "2", "run", "-n", "wc", "-c"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(no_stdin.status.code(), Some(0), "{}", stderr(&no_stdin));
    assert_eq!(text(&no_stdin.stdout).lines().filter(|l| l.ends_with(": 0")).count(), 3);
    for host in &fleet.hosts {
        assert!(jobs_on(&fleet, host).iter().all(|j| j["status"] == "completed"));
    }
}

/// The client's peak resident memory so far, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_host_printing_a_huge_line_without_newlines_cannot_make_the_client_hold_it() {
    use std::io::Read;
    const SIZE: usize = 128 << 20;
    let fleet = Fleet::loopback(2, "big");
    let targets: Vec<&str> = fleet.hosts.iter().map(|h| h.addr.as_str()).collect();
    let script = format!("case $RCMDT_HOST in big1) head -c {SIZE} /dev/zero;; *) echo small;; esac");
    let mut client = fleet
        .client(&[], &targets.join(","), &["--no-prefix", "run", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = client.id();
    let mut stdout = client.stdout.take().unwrap();
    let counter = std::thread::spawn(move || {
        let (mut bytes, mut lines, mut peak) = (0usize, 0usize, 0u64);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
            match stdout.read(&mut buf).unwrap() {
                0 => return (bytes, lines, peak),
                n => {
                    bytes += n;
                    lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
                }
            }
        }
    });
    let (bytes, lines, peak_kib) = counter.join().unwrap();
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Pieces of 64 KiB, each a line of its own, and "small".
    assert_eq!(lines, SIZE / (64 << 10) + 1);
    assert_eq!(bytes, SIZE + lines + "small".len());
    assert!(peak_kib < 64 << 10, "the client peaked at {peak_kib} KiB for a {SIZE}-byte line");
}

/// An address on loopback where nothing listens (a port just closed).
fn closed_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// What is in `dir` besides `expected`: leftovers, such as temp files.
fn others_in(dir: &std::path::Path, expected: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.retain(|n| !expected.contains(&n.as_str()));
    names
}

#[test]
fn failed_hosts_of_a_list_are_written_atomically_past_a_symlink_and_reload_as_the_same_hosts() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = Fleet::loopback(2, "f");
    let (dead1, dead2) = (closed_addr(), closed_addr());
    let (good, bad) = (&fleet.hosts[0].addr, &fleet.hosts[1].addr);
    let targets = format!("{good},{dead1},{bad},{dead2}");
    let dir = fleet.path("out");
    std::fs::create_dir(&dir).unwrap();
    // FILE is a symlink to a file that must survive: it is replaced, not
    // written through.
    std::fs::write(dir.join("precious"), "keep me").unwrap();
    std::os::unix::fs::symlink("precious", dir.join("failed.toml")).unwrap();
    let failed = dir.join("failed.toml");
    let script = "case $RCMDT_HOST in f2) exit 4;; esac";
    let out = fleet
        .client(
            &[],
            &targets,
            &["--connect-timeout", "5", "--failed", failed.to_str().unwrap(), "run", "sh", "-c", script],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(dir.join("precious")).unwrap(), "keep me");
    let meta = std::fs::symlink_metadata(&failed).unwrap();
    assert!(meta.file_type().is_file(), "FILE is a file of its own now");
    assert_eq!(meta.permissions().mode() & 0o022, 0, "nobody else may write it");
    assert_eq!(others_in(&dir, &["precious", "failed.toml"]), Vec::<String>::new(), "no temp file left");

    // @FILE reaches exactly the three hosts that did not succeed, named as before.
    let again = fleet
        .client(&[], &at(&failed), &["--connect-timeout", "5", "run", "sh", "-c", "echo again"])
        .output()
        .unwrap();
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(255), "{err}");
    assert!(err.contains("rcmd: 3 hosts: 1 ok, 2 unreachable\n"), "{err}");
    for dead in [&dead1, &dead2] {
        assert!(err.contains(&format!("rcmd: unreachable {dead}: cannot connect to {dead}")), "{err}");
    }
    assert_eq!(text(&again.stdout), format!("{bad}: again\n"));
}

#[test]
fn failed_file_that_the_command_reads_or_in_no_folder_is_refused_before_anything_runs() {
    let fleet = Fleet::loopback(1, "r");
    let inventory = fleet.inventory("hosts.toml", &[]);
    let original = std::fs::read_to_string(&inventory).unwrap();
    std::os::unix::fs::symlink(&inventory, fleet.path("link.toml")).unwrap();
    std::fs::hard_link(&inventory, fleet.path("hard.toml")).unwrap();
    let pairs = fleet.path("jobs.txt");
    std::fs::write(&pairs, "r1 1\n").unwrap();
    let pairs_arg = at(&pairs);
    let cases: [(&str, Vec<&str>); 4] = [
        ("hosts.toml", vec!["run", "true"]),
        ("link.toml", vec!["run", "true"]),
        ("hard.toml", vec!["run", "true"]),
        ("jobs.txt", vec!["status", &pairs_arg]),
    ];
    for (file, command) in &cases {
        let failed = fleet.path(file);
        let mut args = vec!["--failed", failed.to_str().unwrap()];
        args.extend(command);
        let out = fleet.client(&[], &at(&inventory), &args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains("which this command reads: give --failed another file"), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
    }
    let nowhere = fleet.path("no/such/folder/failed.toml");
    let out = fleet
        .client(&[], &at(&inventory), &["--failed", nowhere.to_str().unwrap(), "run", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("its folder does not exist"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&inventory).unwrap(), original);
    assert_eq!(std::fs::read_to_string(&pairs).unwrap(), "r1 1\n");
    assert_eq!(jobs_on(&fleet, &fleet.hosts[0]).len(), 0, "nothing ran");
}

#[test]
fn a_host_whose_certificate_is_revoked_is_refused_by_a_client_with_the_crl() {
    let fleet = Fleet::loopback(2, "v");
    let targets = at(&fleet.inventory("hosts.toml", &[]));
    let before = fleet.client(&[], &targets, &["run", "true"]).output().unwrap();
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    // The CA's folder is also the "owner" client's: revoke writes its crl.pem.
    let revoked = std::process::Command::new(crate::util::server::RCMD)
        .args(["pki", "revoke", "v1", "--dir"])
        .arg(fleet.certs())
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(fleet.certs().join("crl.pem").exists());
    let out = fleet.client(&[], &targets, &["run", "sh", "-c", "echo $RCMDT_HOST"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains(&format!("rcmd: unreachable v1: TLS with {} failed", fleet.hosts[0].addr)), "{err}");
    assert!(err.to_lowercase().contains("revoked"), "{err}");
    assert_eq!(text(&out.stdout), "v2: v2\n");
    // A single-host command checks it too.
    let one = fleet.client(&[], &fleet.hosts[0].addr, &["list"]).output().unwrap();
    assert_eq!(one.status.code(), Some(255), "{}", stderr(&one));
}

/// Waits for `child`: its exit code and its peak RSS in KiB, the high-water
/// mark of its own memory (`VmHWM`), read until it exits. Not wait4's
/// `ru_maxrss`: a child spawned with vfork (as `Command` does) starts out
/// sharing this process's memory, and exec carries that memory's high-water
/// mark, this whole test binary's, into the child's.
fn wait_with_peak_rss(mut child: std::process::Child) -> (Option<i32>, i64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let mut status = None;
    crate::util::wait_until("the client exits", std::time::Duration::from_secs(300), || {
        // Read before try_wait: a child that has not been waited for still
        // has its /proc entry, and VmHWM is there until it is a zombie.
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        });
        peak_kib = peak_kib.max(hwm.unwrap_or(0));
        status = child.try_wait().unwrap();
        status.is_some()
    });
    (status.unwrap().code(), peak_kib)
}

#[test]
fn a_huge_inventory_costs_the_client_its_list_not_a_part_per_host() {
    const HOSTS: usize = 20_000;
    let fleet = Fleet::new();
    let dead = closed_addr();
    let names: Vec<String> = (0..HOSTS).map(|i| format!("d{i}")).collect();
    let extra: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), dead.as_str())).collect();
    let inventory = fleet.inventory("huge.toml", &extra);
    let client = fleet
        .client(&[], &at(&inventory), &["--fanout", "64", "run", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (code, peak_kib) = wait_with_peak_rss(client);
    assert_eq!(code, Some(255));
    // Every host's part made up front took about 8 KiB each: 174 MiB here.
    assert!(peak_kib < 100 << 10, "the client peaked at {peak_kib} KiB for {HOSTS} hosts");
}
