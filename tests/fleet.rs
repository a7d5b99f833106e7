//! Fan-out on loopback: `pki server` identities, targets and inventories,
//! prefixed output, the summary, exit statuses, `--failed` re-runs and
//! `--fanout`, against real servers (one process each).

mod support;

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::fleet::{Fleet, at, open_connections};
use support::wait_until;

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

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    let mut expected: Vec<String> = (1..=50).map(|i| format!("h{i}: done")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    assert!(stderr(&out).contains("50 hosts: 50 ok"), "{}", stderr(&out));
    let most = most.load(Ordering::Relaxed);
    assert!(most <= 8, "{most} connections were open at once with --fanout 8");
}
