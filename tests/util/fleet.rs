//! Many `rcmd serve` processes of one CA for fan-out tests, each with its
//! own certificate from `pki server NAME`: on loopback, or behind a wrapper
//! such as `ip netns exec NS` to run inside a network namespace.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

pub mod hostile;

use super::TempDir;
use super::server::{RCMD, spawn_serve};
use rcmd::testing::TestPki;

/// One server of the fleet. Killed and reaped when dropped.
pub struct Host {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub name: String,
    pub addr: String,
    pub labels: Vec<(String, String)>,
}

impl Host {
    pub fn port(&self) -> u16 {
        self.addr.rsplit_once(':').unwrap().1.parse().unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Fleet {
    pub pki: TestPki,
    pub hosts: Vec<Host>,
    dir: TempDir,
}

impl Fleet {
    /// A CA (with the "owner" client) and no hosts yet.
    pub fn new() -> Fleet {
        Fleet { pki: TestPki::new(), hosts: Vec::new(), dir: TempDir::new("fleet") }
    }

    /// `n` servers on 127.0.0.1, named `{prefix}1`...
    pub fn loopback(n: usize, prefix: &str) -> Fleet {
        let mut fleet = Fleet::new();
        for i in 1..=n {
            fleet.start(&format!("{prefix}{i}"), &[], "127.0.0.1:0", &[]);
        }
        fleet
    }

    /// Issues host `name` a certificate for `listen`'s IP with `rcmd pki
    /// server NAME --san IP`, and starts its server there, run through
    /// `wrapper`, with `RCMDT_HOST=name` in its environment (so that its
    /// jobs can say which host they ran on).
    pub fn start(&mut self, name: &str, wrapper: &[String], listen: &str, labels: &[(&str, &str)]) {
        let ip = listen.rsplit_once(':').unwrap().0;
        let issued = Command::new(RCMD)
            .args(["pki", "server", name, "--san", ip, "--dir"])
            .arg(self.pki.cert_dir())
            .output()
            .unwrap();
        assert!(issued.status.success(), "pki server: {}", String::from_utf8_lossy(&issued.stderr));
        self.serve(name, wrapper, listen, labels, name);
    }

    /// Starts a server for host `name` with the certificate `pki server`
    /// issued to host `certs_of` (an impostor, when they differ).
    pub fn serve(
        &mut self,
        name: &str,
        wrapper: &[String],
        listen: &str,
        labels: &[(&str, &str)],
        certs_of: &str,
    ) {
        let certs = self.pki.cert_dir().join("servers").join(certs_of);
        let data = self.dir.path().join(format!("data-{name}"));
        let mut command = rcmd_through(wrapper);
        command.arg("serve").arg("--certs").arg(certs).args(["--listen", listen]).arg("--data-dir").arg(data);
        command.env("RCMDT_HOST", name);
        let (child, stdout, addr) = spawn_serve(command, &self.dir.path().join(format!("{name}.log")));
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.hosts.push(Host { child, _stdout: stdout, name: name.to_owned(), addr, labels });
    }

    /// Writes an inventory of every host plus `extra` (name, addr) entries
    /// to a file and returns its path.
    pub fn inventory(&self, file: &str, extra: &[(&str, &str)]) -> PathBuf {
        let mut text = String::new();
        for host in &self.hosts {
            text += &format!("[hosts.{}]\naddr = \"{}\"\n", host.name, host.addr);
            let labels: Vec<String> = host.labels.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
            text += &format!("labels = {{ {} }}\n\n", labels.join(", "));
        }
        for (name, addr) in extra {
            text += &format!("[hosts.{name}]\naddr = \"{addr}\"\n\n");
        }
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The warnings and errors every host's server logged, for a failed
    /// assertion's message.
    pub fn server_errors(&self) -> String {
        let mut errors = String::new();
        for host in &self.hosts {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", host.name)))
                .unwrap_or_default();
            for line in log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")) {
                errors += &format!("{}: {line}\n", host.name);
            }
        }
        errors
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The client binary as "owner" with `targets`, run through `wrapper`,
    /// stdin from /dev/null.
    pub fn client(&self, wrapper: &[String], targets: &str, args: &[&str]) -> Command {
        let mut command = rcmd_through(wrapper);
        command.arg(self.pki.cert_dir()).arg(targets).args(args).stdin(Stdio::null());
        command
    }

    pub fn certs(&self) -> PathBuf {
        self.pki.cert_dir()
    }
}

/// The rcmd binary, run through `wrapper` (such as `ip netns exec NS`).
fn rcmd_through(wrapper: &[String]) -> Command {
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(RCMD);
            command
        }
        None => Command::new(RCMD),
    }
}

/// `@PATH`, the targets argument for an inventory.
pub fn at(path: &Path) -> String {
    format!("@{}", path.display())
}

/// Connections open to any of `ports` (IPv4, this network namespace): the
/// server's end is ESTABLISHED and so is the client's. A client's end leaves
/// ESTABLISHED inside its close(), so a connection the client has closed
/// never counts, even before the server's end has seen the FIN.
///
/// /proc/net/tcp is not one snapshot: it is read bucket by bucket, so a
/// connection closed and another opened during the read can both show. The
/// table is read in one read() call to keep that window small, and callers
/// confirm a surprising count with a second read (see [`open_connections`]).
fn established_once(ports: &[u16]) -> usize {
    use std::io::Read;
    let mut table = Vec::with_capacity(16 << 20);
    let mut file = std::fs::File::open("/proc/net/tcp").unwrap();
    while file.read_to_end(&mut table).is_err() {}
    let table = String::from_utf8_lossy(&table);
    let rows: Vec<(&str, &str, &str)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((*fields.get(1)?, *fields.get(2)?, *fields.get(3)?))
        })
        .collect();
    let port = |addr: &str| addr.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let client_open: std::collections::HashSet<(&str, &str)> = rows
        .iter()
        .filter(|(_, _, state)| *state == "01")
        .map(|(local, remote, _)| (*local, *remote))
        .collect();
    rows.iter()
        .filter(|(local, remote, state)| {
            *state == "01"
                && port(local).is_some_and(|p| ports.contains(&p))
                && client_open.contains(&(*remote, *local))
        })
        .count()
}

/// [`established_once`], read again when above `bound` to rule out a
/// connection that closed during the read.
pub fn open_connections(ports: &[u16], bound: usize) -> usize {
    let first = established_once(ports);
    if first <= bound { first } else { first.min(established_once(ports)) }
}
