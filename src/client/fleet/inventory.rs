//! Inventory files: TOML naming each host, its address and its labels.
//!
//! ```toml
//! [hosts.web1]
//! addr = "10.1.0.1:8443"
//! labels = { role = "web", zone = "a" }
//! ```
//!
//! A bad inventory is refused whole, with one line naming the file, the line
//! and the problem. Hosts keep the order of the file. [`render`] writes the
//! same format back (for `--failed FILE`): names follow the one rule of
//! [`check_name`] whether they came from a list or a file, so what it
//! writes always loads back as the same hosts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::targets::{Host, check_name};
use crate::client::ClientError;
use crate::client::connection::parse_addr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    #[serde(default)]
    hosts: BTreeMap<String, Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    addr: Spanned<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads an inventory; every problem is one line: `FILE:LINE: problem`.
pub(crate) fn load(path: &Path) -> Result<Vec<Host>, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Targets(format!("cannot read the inventory {}: {e}", path.display())))?;
    let at = |offset: usize, problem: &str| {
        let line = text[..offset.min(text.len())].matches('\n').count() + 1;
        ClientError::Targets(format!("inventory {}:{line}: {problem}", path.display()))
    };
    let file: InventoryFile = toml::from_str(&text).map_err(|e| {
        let problem = e.message().trim().replace('\n', "; ");
        at(e.span().map_or(0, |s| s.start), &problem)
    })?;
    let mut entries: Vec<(String, Spanned<Entry>)> = file.hosts.into_iter().collect();
    entries.sort_by_key(|(_, entry)| entry.span().start);
    let mut hosts = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let start = entry.span().start;
        check_name(&name).map_err(|rule| at(start, &format!("host {name:?}: {rule}")))?;
        let Entry { addr, labels } = entry.into_inner();
        parse_addr(addr.get_ref()).map_err(|e| at(addr.span().start, &format!("host {name:?}: {e}")))?;
        hosts.push(Host { name, addr: addr.into_inner(), labels });
    }
    if hosts.is_empty() {
        return Err(at(
            0,
            "no hosts: an inventory has a [hosts.NAME] table with addr = \"HOST:PORT\" for each host",
        ));
    }
    Ok(hosts)
}

#[derive(Serialize)]
struct Written<'a> {
    hosts: BTreeMap<&'a str, WrittenEntry<'a>>,
}

#[derive(Serialize)]
struct WrittenEntry<'a> {
    addr: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

/// `hosts` as an inventory, in the order of their names.
pub(crate) fn render(hosts: &[&Host]) -> String {
    let inventory = Written {
        hosts: hosts
            .iter()
            .map(|h| (h.name.as_str(), WrittenEntry { addr: &h.addr, labels: &h.labels }))
            .collect(),
    };
    let mut text = String::from("# written by rcmd --failed: re-run these hosts with @FILE\n");
    text += &toml::to_string(&inventory).expect("an inventory serialises");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Vec<Host>, String> {
        let dir =
            std::env::temp_dir().join(format!("rcmd-inventory-{}-{:x}", std::process::id(), rand_suffix()));
        std::fs::write(&dir, text).unwrap();
        let result = load(&dir).map_err(|e| e.to_string().replace(&dir.display().to_string(), "FILE"));
        std::fs::remove_file(&dir).unwrap();
        result
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn hosts_keep_the_order_of_the_file_with_their_labels() {
        let hosts = load_text(
            "[hosts.web2]\naddr = \"10.0.0.2:8443\"\nlabels = { role = \"web\" }\n\n[hosts.db]\naddr = \"[::1]:1\"\n",
        )
        .unwrap();
        assert_eq!(hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["web2", "db"]);
        assert_eq!(hosts[0].labels["role"], "web");
        assert!(hosts[1].labels.is_empty());
    }

    #[test]
    fn each_problem_is_one_line_with_file_and_line() {
        let cases = [
            ("[hosts.a]\naddr = \"h:1\"\n\n[hosts.b]\naddr = \"nope\"\n", "FILE:5:", "invalid address"),
            ("[hosts.a]\naddr = \"h:1\"\nport = 3\n", "FILE:3:", "unknown field `port`"),
            ("[hosts.a]\nlabels = { x = \"y\" }\n", "FILE:1:", "missing field `addr`"),
            ("[hosts.a]\naddr = \"h:1\"\nlabels = { n = 3 }\n", "FILE:3:", "invalid type"),
            ("[hosts.a]\naddr = \"h:1\"\n[hosts.a]\naddr = \"h:2\"\n", "FILE:3:", "duplicate"),
            ("[hosts.\"a b\"]\naddr = \"h:1\"\n", "FILE:1:", "whitespace"),
            ("[hosts.a\naddr = 1", "FILE:1:", ""),
            ("# nothing\n", "FILE:1:", "no hosts"),
        ];
        for (text, place, problem) in cases {
            let err = load_text(text).unwrap_err();
            assert!(err.starts_with(&format!("inventory {place} ")), "{text:?}: {err}");
            assert!(err.contains(problem), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_written_inventory_loads_back_as_the_same_hosts_whatever_their_names() {
        // Names as lists give them (the address) and as files may: long DNS
        // names, brackets, a leading dash, slashes, quotes, non-ASCII.
        let long = format!("{}.example.com:8443", "a".repeat(80));
        let list = format!("[::1]:9,127.0.0.1:1,localhost:2,-dash:3,a/b\\c:4,{long}");
        let mut hosts = match super::super::Targets::parse(&list, &[], true).unwrap() {
            super::super::Targets::Fleet(hosts) => hosts,
            other => panic!("{other:?}"),
        };
        hosts.push(Host {
            name: "wéb\"1'#=".into(),
            addr: "10.0.0.1:8443".into(),
            labels: [("role".to_owned(), "web \"front\"\n=#".to_owned()), ("é k".to_owned(), String::new())]
                .into(),
        });
        let written: Vec<&Host> = hosts.iter().collect();
        let back = load_text(&render(&written)).unwrap();
        let mut expected = hosts.clone();
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, expected);
    }
}
