//! What operators and scripts use around the server and client: the
//! environment's server for the client (RCMD_CERTS, RCMD_ADDR).

mod support;

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
