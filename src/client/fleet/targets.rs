//! Which hosts a fleet command goes to: a comma-separated list of
//! `HOST:PORT`, or `@FILE`, an inventory (see [`super::inventory`]),
//! narrowed by `--select KEY=VALUE`.
//!
//! Invariants: every [`Host`] has a valid address and a name that is one
//! word (so `NAME: ` prefixes and `NAME ID` pairs can be read back); names
//! are unique within one target list. A list's and an inventory's names
//! follow the one rule of [`check_name`], so that any host, however it was
//! given, can be written to an inventory (`--failed`) that loads back.

use std::collections::BTreeMap;
use std::path::Path;

use super::inventory;
use crate::client::ClientError;
use crate::client::connection::parse_addr;

/// One host of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    /// The inventory name, else `HOST:PORT`: what output is prefixed with.
    pub name: String,
    pub addr: String,
    pub labels: BTreeMap<String, String>,
}

/// Whether `name` can name a host: one word of printable characters.
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("a host name is not empty")
    } else if name.contains(char::is_whitespace) {
        Err("a host name is one word, without whitespace")
    } else if name.contains(char::is_control) {
        Err("a host name has no control characters")
    } else {
        Ok(())
    }
}

/// `--select KEY=VALUE`: a host matches when its label KEY is VALUE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    key: String,
    value: String,
}

/// Text that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected KEY=VALUE, such as role=web, not {0:?}")]
pub struct SelectorError(String);

impl std::str::FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Selector, SelectorError> {
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                Ok(Selector { key: key.to_owned(), value: value.to_owned() })
            }
            _ => Err(SelectorError(text.to_owned())),
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Where a command goes: one server (the single-host commands, unchanged),
/// or a fleet, which fans out.
#[derive(Debug)]
pub(crate) enum Targets {
    One(String),
    Fleet(Vec<Host>),
}

impl Targets {
    /// Reads the targets argument. A single `HOST:PORT` is one server,
    /// unless `fleet` (fleet options were given) or a `select` asks for a
    /// fleet; a list or an inventory is a fleet, even of one host, so that a
    /// script gets the same output shape whatever its inventory holds.
    pub fn parse(spec: &str, select: &[Selector], fleet: bool) -> Result<Targets, ClientError> {
        let (hosts, source) = if let Some(file) = spec.strip_prefix('@') {
            (inventory::load(Path::new(file))?, file)
        } else if spec.contains(',') || fleet || !select.is_empty() {
            (list(spec)?, "the target list")
        } else {
            return Ok(Targets::One(spec.to_owned()));
        };
        if select.is_empty() {
            return Ok(Targets::Fleet(hosts));
        }
        let total = hosts.len();
        let chosen: Vec<Host> = hosts
            .into_iter()
            .filter(|h| select.iter().all(|s| h.labels.get(&s.key) == Some(&s.value)))
            .collect();
        if chosen.is_empty() {
            let wanted: Vec<String> = select.iter().map(ToString::to_string).collect();
            return Err(ClientError::Targets(format!(
                "none of the {total} hosts in {source} has the labels {} (an inventory gives labels: [hosts.NAME] labels = {{ KEY = \"VALUE\" }})",
                wanted.join(", ")
            )));
        }
        Ok(Targets::Fleet(chosen))
    }
}

/// `HOST:PORT,HOST:PORT,...`: each named by its address.
fn list(spec: &str) -> Result<Vec<Host>, ClientError> {
    let mut hosts: Vec<Host> = Vec::new();
    for addr in spec.split(',') {
        if addr.is_empty() {
            return Err(ClientError::Targets(format!(
                "empty entry in the target list {spec:?}: expected HOST:PORT,HOST:PORT,..."
            )));
        }
        parse_addr(addr)?;
        check_name(addr).map_err(|rule| {
            ClientError::Targets(format!("{addr:?} in the target list cannot be a host: {rule}"))
        })?;
        if hosts.iter().any(|h| h.addr == addr) {
            return Err(ClientError::Targets(format!("{addr} is twice in the target list")));
        }
        hosts.push(Host { name: addr.to_owned(), addr: addr.to_owned(), labels: BTreeMap::new() });
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(spec: &str, select: &[&str]) -> Result<Vec<Host>, String> {
        let select: Vec<Selector> = select.iter().map(|s| s.parse().unwrap()).collect();
        match Targets::parse(spec, &select, false).map_err(|e| e.to_string())? {
            Targets::Fleet(hosts) => Ok(hosts),
            Targets::One(addr) => Err(format!("one: {addr}")),
        }
    }

    #[test]
    fn one_address_is_one_server_and_a_list_is_a_fleet_named_by_address() {
        assert!(matches!(Targets::parse("h:1", &[], false).unwrap(), Targets::One(a) if a == "h:1"));
        assert!(matches!(Targets::parse("h:1", &[], true).unwrap(), Targets::Fleet(h) if h.len() == 1));
        let hosts = fleet("a:1,[::1]:2", &[]).unwrap();
        assert_eq!(hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["a:1", "[::1]:2"]);
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        assert!(fleet("a:1,,b:2", &[]).unwrap_err().contains("empty entry"));
        assert!(fleet("a:1,a:1", &[]).unwrap_err().contains("twice"));
        assert!(fleet("a:1,nope", &[]).unwrap_err().contains("invalid address"));
        assert!(fleet("a:1,b c:2", &[]).unwrap_err().contains("one word"));
        assert!(fleet("a:1,b\u{7}:2", &[]).unwrap_err().contains("control"));
        assert!(fleet("a:1,b:2", &["role=web"]).unwrap_err().contains("none of the 2 hosts"));
    }

    #[test]
    fn selectors_need_a_key_and_an_equals_sign() {
        assert!("role=web".parse::<Selector>().is_ok());
        assert!("role=".parse::<Selector>().is_ok());
        assert!("=web".parse::<Selector>().is_err());
        assert!("role".parse::<Selector>().is_err());
    }
}
