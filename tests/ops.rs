//! What operators and scripts use around the server and client: the
//! environment's server for the client (RCMD_CERTS, RCMD_ADDR), shell
//! completions, the man page, json logs and Prometheus metrics, and typos
//! of subcommands.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::TempDir;
use crate::util::server::{RCMD, ServerProcess, http_as};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_environment_names_the_server_and_the_positional_form_wins() {
    let server = ServerProcess::start(&["alice"], &[]);
    let alice = server.client_dir("alice");
    let env_run = std::process::Command::new(RCMD)
        .args(["run", "echo", "from-env"])
        .env("RCMD_CERTS", &alice)
        .env("RCMD_ADDR", &server.addr)
        .output()
        .unwrap();
    assert!(env_run.status.success(), "{}", stderr(&env_run));
    assert_eq!(String::from_utf8_lossy(&env_run.stdout), "from-env\n");
    // The positional form, with the environment pointing elsewhere, still
    // talks to the server it names, as the client it names.
    let positional = server
        .command("owner", &["list", "--json"])
        .env("RCMD_CERTS", &alice)
        .env("RCMD_ADDR", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(positional.status.success(), "{}", stderr(&positional));
    assert_eq!(String::from_utf8_lossy(&positional.stdout), "{\"jobs\":[]}\n", "owner's jobs, not alice's");
    let missing = std::process::Command::new(RCMD)
        .args(["list"])
        .env("RCMD_CERTS", &alice)
        .env_remove("RCMD_ADDR")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("RCMD_ADDR not set"), "{}", stderr(&missing));
}

fn rcmd(args: &[&str]) -> std::process::Output {
    let out = Command::new(RCMD).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "rcmd {args:?}: {}", stderr(&out));
    out
}

/// The subcommands that `--help` lists after "Commands:", without `help`.
fn listed_commands(args: &[&str]) -> Vec<String> {
    let help = String::from_utf8(rcmd(&[args, &["--help"]].concat()).stdout).unwrap();
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path, as `--help` shows them: the top level, each one's
/// own subcommands (`pki init`), and the client's commands.
fn every_command() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for top in listed_commands(&[]) {
        let nested = listed_commands(&[&top]);
        paths.push(vec![top.clone()]);
        paths.extend(nested.into_iter().map(|sub| vec![top.clone(), sub]));
    }
    paths.extend(listed_commands(&["CERTDIR", "HOST:1"]).into_iter().map(|c| vec![c]));
    assert!(paths.len() > 15 && paths.contains(&vec!["pki".into(), "init".into()]), "{paths:?}");
    assert!(paths.contains(&vec!["run".into()]), "{paths:?}");
    paths
}

#[test]
#[ignore = "needs man (man-db): it renders the page"]
fn the_man_page_renders_and_names_every_command() {
    let page = rcmd(&["man"]).stdout;
    let mut man = Command::new("man")
        .args(["--warnings", "-l", "-"])
        .env("MANWIDTH", "100")
        .env_remove("MAN_KEEP_FORMATTING")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("man is installed (tests/run.sh installs man-db)");
    std::io::Write::write_all(&mut man.stdin.take().unwrap(), &page).unwrap();
    let out = man.wait_with_output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "man: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for path in every_command() {
        let heading = format!("RCMD {}", path.join(" ").to_uppercase());
        assert!(text.lines().any(|line| line == heading), "no section {heading:?} in the man page");
    }
    for section in ["SYNOPSIS", "ENVIRONMENT", "RCMD_CERTS", "--request-timeout", "Exit status"] {
        assert!(text.contains(section), "{section}");
    }
}

#[test]
#[ignore = "needs zsh and fish: the scripts are checked by their shells"]
fn completion_scripts_parse_in_their_shells_and_complete_every_command() {
    let dir = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let script = dir.path().join(format!("rcmd.{shell}"));
        std::fs::write(&script, rcmd(&["completions", shell]).stdout).unwrap();
        let check = Command::new(shell)
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("{shell} is installed (tests/run.sh installs it): {e}"));
        assert!(check.status.success(), "{shell} -n: {}", stderr(&check));
        let text = std::fs::read_to_string(&script).unwrap();
        for path in every_command() {
            assert!(text.contains(path.last().unwrap().as_str()), "{shell}: {path:?}");
        }
    }
    // Ask bash and fish for real completions, as a user's Tab would.
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(rcmd serve --request-t); COMP_CWORD=2; _rcmd rcmd --request-t serve; echo \"${{COMPREPLY[@]}}\"",
            dir.path().join("rcmd.bash").display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&bash.stdout), "--request-timeout\n", "{}", stderr(&bash));
    let fish = Command::new("fish")
        .arg("-c")
        .arg(format!("source {}; complete -C 'rcmd pki re'", dir.path().join("rcmd.fish").display()))
        .output()
        .unwrap();
    let offered: Vec<String> = String::from_utf8_lossy(&fish.stdout)
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_owned())
        .collect();
    assert_eq!(offered, ["renew", "revoke"], "{}", stderr(&fish));
}

#[test]
fn an_unknown_shell_is_refused_with_the_choices() {
    let out = Command::new(RCMD).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("[possible values: bash, zsh, fish]"), "{}", stderr(&out));
}

#[tokio::test]
async fn json_logs_parse_line_by_line_and_carry_each_request() {
    let server = ServerProcess::start(&["alice"], &["--log-format", "json"]);
    server.ok("alice", &["exec", "true"]);
    // A refused handshake is logged too.
    assert!(crate::util::server::http(&server, None).get(server.url("/jobs")).send().await.is_err());
    crate::util::wait_until("the refusal is logged", std::time::Duration::from_secs(10), || {
        server.log().contains("refused")
    });
    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}")))
        .collect();
    for event in &events {
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{event}");
    }
    let request = events
        .iter()
        .find(|e| e["message"] == "request" && e["client"] == "alice")
        .unwrap_or_else(|| panic!("no request line for alice in {log}"));
    assert_eq!((request["method"].as_str(), request["path"].as_str()), (Some("PUT"), Some("/jobs")));
    assert_eq!(request["status"], 200);
    assert!(
        events.iter().any(|e| e["level"] == "WARN" && e["message"].as_str().unwrap().contains("refused"))
    );
}

#[test]
fn text_logs_have_no_colour_when_stderr_is_not_a_terminal() {
    let server = ServerProcess::start(&[], &[]);
    server.ok("owner", &["exec", "true"]);
    crate::util::wait_until("the request is logged", std::time::Duration::from_secs(10), || {
        server.log().contains("request")
    });
    let log = server.log();
    assert!(!log.contains('\x1b'), "escape codes in a log file: {log:?}");
    assert!(log.contains("client=\"owner\""), "{log}");
}

/// Parses OpenMetrics text with Python's prometheus_client, both its strict
/// OpenMetrics parser and its classic Prometheus one, and returns the samples
/// as `(name, labels, value)`, after checking that the two parsers agree.
fn parse_metrics(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as classic
text = sys.stdin.read()
def samples(families):
    return sorted(([s.name, s.labels, s.value] for f in families for s in f.samples), key=json.dumps)
strict = samples(openmetrics(text))
assert strict == samples(classic(text)), "the parsers disagree"
print(json.dumps(strict))
"#;
    let mut python = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(&mut python.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client (tests/run.sh installs it) refused:\n{}\n{text}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
#[ignore = "needs python3's prometheus_client: it parses /metrics"]
async fn metrics_parse_as_prometheus_text_and_count_what_the_test_did() {
    let mut server = ServerProcess::start(&["alice"], &["--metrics-listen", "127.0.0.1:0"]);
    let line = server.stdout_line();
    let url = line.trim().strip_prefix("rcmd metrics on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    for _ in 0..3 {
        server.ok("alice", &["exec", "printf", "12345"]);
    }
    server.ok("alice", &["exec", "false"]);
    server.ok("alice", &["exec", "sh", "-c", "exit 7"]);
    server.ok("alice", &["exec", "sh", "-c", "kill -KILL $$"]);
    server.ok("alice", &["exec", "/no/such/program"]);
    for id in 1..=7 {
        server.rcmd("alice", &["wait", &id.to_string()]);
    }
    server.ok("owner", &["exec", "sleep", "30"]);
    // Hostile paths: ids and junk must not become series of their own.
    let alice = http_as(&server, "alice");
    for path in [
        "/jobs/01/status",
        "/jobs/4242/status",
        "/no/such/route/alice",
        "/jobs/%31",
        "/clients/owner/jobs/1/status",
    ] {
        alice.get(server.url(path)).send().await.unwrap();
    }
    assert!(crate::util::server::http(&server, None).get(server.url("/jobs")).send().await.is_err());
    crate::util::wait_until("the refusal is logged", std::time::Duration::from_secs(10), || {
        server.log().contains("refused")
    });

    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let samples = parse_metrics(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let want: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        samples.iter().find(|(n, l, _)| n == name && *l == want).map_or(0.0, |s| s.2)
    };
    assert_eq!(value("rcmd_jobs_started_total", &[]), 8.0, "{text}");
    assert_eq!(value("rcmd_jobs_finished_total", &[("outcome", "success")]), 3.0, "{text}");
    assert_eq!(value("rcmd_jobs_finished_total", &[("outcome", "failure")]), 2.0, "{text}");
    assert_eq!(value("rcmd_jobs_finished_total", &[("outcome", "signal")]), 1.0, "{text}");
    assert_eq!(value("rcmd_jobs_finished_total", &[("outcome", "error")]), 1.0, "{text}");
    assert_eq!(value("rcmd_jobs_running", &[]), 1.0, "{text}");
    assert_eq!(value("rcmd_jobs_oom_killed_total", &[]), 0.0, "{text}");
    assert_eq!(value("rcmd_output_bytes_stored", &[]), 15.0, "{text}");
    assert_eq!(value("rcmd_http_requests_total", &[("route", "/jobs"), ("status", "200")]), 8.0, "{text}");
    let status_ok = value("rcmd_http_requests_total", &[("route", "/jobs/{id}/status"), ("status", "200")]);
    assert_eq!(status_ok, 7.0, "the seven waits: {text}");
    assert_eq!(value("rcmd_http_requests_total", &[("route", "/jobs/{id}/status"), ("status", "400")]), 1.0);
    assert_eq!(value("rcmd_http_requests_total", &[("route", "/jobs/{id}/status"), ("status", "404")]), 1.0);
    assert_eq!(
        value("rcmd_http_requests_total", &[("route", "unmatched"), ("status", "404")]),
        1.0,
        "{text}"
    );
    assert_eq!(value("rcmd_handshakes_refused_total", &[("reason", "tls")]), 1.0, "{text}");
    // Low cardinality: no client names, no ids, only route templates.
    for (name, labels, _) in &samples {
        for value in labels.values() {
            assert!(
                !value.contains("alice") && !value.contains("owner") && !value.contains("4242"),
                "{name} {labels:?}"
            );
        }
        if let Some(route) = labels.get("route") {
            assert!(route == "unmatched" || !route.chars().any(|c| c.is_ascii_digit()), "{route}");
        }
    }
}

/// Whether the server closed `stream` (reads what it sent meanwhile).
fn closed_by_peer(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// The metrics endpoint has no authentication and shares the server's file
/// descriptors: a local user who floods it, or holds connections open doing
/// nothing, gets a few places for a few seconds each, and the server's
/// descriptors and its mTLS service stay as they were.
#[test]
fn a_flood_of_idle_and_slow_metrics_connections_is_capped_and_closed() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let mut server = ServerProcess::start(&[], &["--metrics-listen", "127.0.0.1:0"]);
    let line = server.stdout_line();
    let addr = line.trim().strip_prefix("rcmd metrics on http://").and_then(|a| a.strip_suffix("/metrics"));
    let addr = addr.unwrap_or_else(|| panic!("{line:?}")).to_owned();
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", server.pid())).unwrap().count();
    let before = fds();
    // Headers begun and never finished, then a flood of connections that
    // send nothing at all.
    let slow = TcpStream::connect(&addr).unwrap();
    (&slow).write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    let flood: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // 16 open and 64 waiting for a place at most: the rest are closed at once.
    crate::util::wait_until("the connections past the cap are closed", Duration::from_secs(60), || {
        flood.iter().filter(|s| closed_by_peer(s)).count() >= 300 - 80
    });
    // 80 for the metrics connections, and a few the server may open on its
    // own meanwhile (an accept under way, a record reader): far from 300.
    let held = fds().saturating_sub(before);
    assert!(held <= 80 + 8, "the server holds {held} more descriptors than before the flood");
    assert!(server.ok("owner", &["list"]).starts_with("    ID"), "the mTLS service goes on");
    // Every connection ends within its lifetime, the slow one included.
    crate::util::wait_until("every metrics connection is closed", Duration::from_secs(120), || {
        closed_by_peer(&slow) && flood.iter().all(closed_by_peer)
    });
    drop(flood);
    let mut scrape = TcpStream::connect(&addr).unwrap();
    scrape.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    scrape.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") && answer.contains("rcmd_jobs_started_total"), "{answer}");
}

#[test]
fn metrics_on_a_public_address_need_metrics_public() {
    let dir = TempDir::new("metrics-public");
    let out = Command::new(RCMD)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0", "--certs"])
        .arg(dir.path().join("certs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--metrics-public"), "{}", stderr(&out));
    assert!(!dir.path().join("certs").exists(), "refused before making a PKI");
}

/// The unit file with its ExecStart pointing at the binary under test.
fn unit_for_test(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/rcmd.service")).unwrap();
    let path = dir.join("rcmd.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/rcmd", RCMD)).unwrap();
    (path, unit)
}

#[test]
#[ignore = "needs systemd-analyze: it verifies the unit"]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let dir = TempDir::new("unit");
    let (path, unit) = unit_for_test(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (tests/run.sh installs systemd)");
    // Unknown keys and bad values are only warnings: none are allowed.
    assert!(out.status.success() && out.stderr.is_empty(), "{}", stderr(&out));
    let settings: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for wanted in
        ["Delegate=yes", "StateDirectory=rcmd", "KillMode=mixed", "ExecReload=/bin/kill -HUP $MAINPID"]
    {
        assert!(settings.contains(&wanted), "{wanted}");
    }
    assert!(!settings.iter().any(|l| l.starts_with("NoNewPrivileges")), "jobs need setuid programs");
}

#[test]
fn the_units_command_line_serves_reloads_and_stops() {
    let dir = TempDir::new("unit-run");
    let (_, unit) = unit_for_test(dir.path());
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let certs = dir.path().join("certs");
    rcmd(&["pki", "init", "--dir", certs.to_str().unwrap()]);
    // The unit's own flags, with its paths and address moved into the test's.
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|word| match word {
            "/etc/rcmd/certs" => certs.to_str().unwrap().to_owned(),
            "/var/lib/rcmd" => dir.path().join("state").to_str().unwrap().to_owned(),
            "0.0.0.0:8443" => "127.0.0.1:0".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut server = Command::new(RCMD).args(&args).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.take().unwrap()), &mut first)
        .unwrap();
    let addr = first.split_whitespace().nth(3).unwrap_or_else(|| panic!("{first:?}"));
    let run = Command::new(RCMD).arg(&certs).arg(addr).args(["run", "echo", "up"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "up\n", "{}", stderr(&run));
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    // ExecReload: SIGHUP.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    crate::util::wait_until("the reload is logged", std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(dir.path().join("log")).unwrap().contains("reloaded")
    });
    // KillMode=mixed: SIGTERM to the server alone, which then exits cleanly.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_typo_of_a_subcommand_is_answered_with_did_you_mean() {
    let cwd = TempDir::new("typo");
    for (typo, meant) in [("serv", "serve"), ("pkii", "pki"), ("stauts", "status")] {
        let out = Command::new(RCMD).args([typo, "--listen", "x"]).current_dir(cwd.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{typo}");
        let said = stderr(&out);
        assert_eq!(said.lines().count(), 1, "{typo}: one line: {said}");
        assert!(said.contains(&format!("did you mean `rcmd {meant}`?")), "{typo}: {said}");
    }
}
