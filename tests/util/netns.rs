//! Network namespaces a test makes, all deleted when dropped.
//!
//! A hub namespace holds a bridge with the address `SUBNET.1`, and the
//! client runs there; each host gets a namespace of its own, joined to the
//! bridge by a veth pair, with the address `SUBNET.N`. Every link lives in
//! a namespace the lab made, so the root namespace is never touched, and
//! deleting the namespaces deletes every link, bridge and firewall rule in
//! them. Processes run inside (servers) belong to their own guards, which a
//! test declares after the lab, so they are killed first.

use std::process::Command;

/// The private /24 inside every lab (each lab has its own hub, so two labs
/// never see each other's addresses).
pub const SUBNET: &str = "10.77.0";

pub struct NetLab {
    prefix: String,
    hub: String,
    /// Every namespace made so far, deleted in reverse order on drop.
    namespaces: Vec<String>,
}

impl NetLab {
    /// Makes the hub and its bridge. Needs root and `ip` (iproute2): the
    /// test fails saying so otherwise.
    pub fn new() -> NetLab {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        assert!(
            nix::unistd::geteuid().is_root(),
            "network-namespace tests need root (CI runs as root): run them as root, or skip this file"
        );
        let prefix = format!("rcmdt-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let hub = format!("{prefix}-hub");
        let mut lab = NetLab { prefix, hub: hub.clone(), namespaces: Vec::new() };
        lab.add_namespace(&hub);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "addr", "add", &format!("{SUBNET}.1/24"), "dev", "br0"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        lab
    }

    /// The wrapper that runs a command in the hub, where the client goes.
    pub fn in_hub(&self) -> Vec<String> {
        exec_in(&self.hub)
    }

    /// A namespace `label` on the bridge with the address `SUBNET.n`;
    /// returns the wrapper that runs a command in it, and its address.
    pub fn host(&mut self, label: &str, n: u8) -> (Vec<String>, String) {
        let ns = format!("{}-{label}", self.prefix);
        self.add_namespace(&ns);
        let veth = format!("v{n}");
        ip(&["-n", &self.hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["-n", &self.hub, "link", "set", &veth, "master", "br0", "up"]);
        let addr = format!("{SUBNET}.{n}");
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        (exec_in(&ns), addr)
    }

    /// A namespace at `SUBNET.n` that silently drops every packet coming in
    /// (an nftables input policy of drop): connecting there gets no answer
    /// at all, as to a firewalled or powered-off host.
    pub fn black_hole(&mut self, label: &str, n: u8) -> String {
        let (wrapper, addr) = self.host(label, n);
        let nft = |args: &[&str]| run(Command::new(&wrapper[0]).args(&wrapper[1..]).arg("nft").args(args));
        nft(&["add", "table", "inet", "rcmdt"]);
        nft(&[
            "add",
            "chain",
            "inet",
            "rcmdt",
            "input",
            "{ type filter hook input priority 0; policy drop; }",
        ]);
        addr
    }

    fn add_namespace(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn exec_in(ns: &str) -> Vec<String> {
    ["ip", "netns", "exec", ns].map(String::from).to_vec()
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e} (is iproute2 installed?)"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}
