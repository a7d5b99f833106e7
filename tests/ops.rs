//! What operators and scripts use around the server and client: the
//! environment's server for the client (RCMD_CERTS, RCMD_ADDR), shell
//! completions and the man page.

mod support;

use std::process::{Command, Stdio};

use support::TempDir;
use support::server::{RCMD, TestServer};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_environment_names_the_server_and_the_positional_form_wins() {
    let server = TestServer::start(&["alice"], &[]);
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
        .expect("man is installed (.ci/run installs man-db)");
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
fn completion_scripts_parse_in_their_shells_and_complete_every_command() {
    let dir = TempDir::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let script = dir.path().join(format!("rcmd.{shell}"));
        std::fs::write(&script, rcmd(&["completions", shell]).stdout).unwrap();
        let check = Command::new(shell)
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("{shell} is installed (.ci/run installs it): {e}"));
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
    let server = TestServer::start(&["alice"], &["--log-format", "json"]);
    server.ok("alice", &["exec", "true"]);
    // A refused handshake is logged too.
    assert!(support::server::http(&server, None).get(server.url("/jobs")).send().await.is_err());
    support::wait_until("the refusal is logged", std::time::Duration::from_secs(10), || {
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
    let server = TestServer::start(&[], &[]);
    server.ok("owner", &["exec", "true"]);
    support::wait_until("the request is logged", std::time::Duration::from_secs(10), || {
        server.log().contains("request")
    });
    let log = server.log();
    assert!(!log.contains('\x1b'), "escape codes in a log file: {log:?}");
    assert!(log.contains("client=\"owner\""), "{log}");
}
