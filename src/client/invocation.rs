//! How the words after `rcmd` name a server and a command. Two forms:
//!
//! * `rcmd CERTDIR HOST:PORT COMMAND ...`, the positional form;
//! * `rcmd COMMAND ...` with [`CERTS_VAR`] and [`ADDR_VAR`] set in the
//!   environment, as `VAULT_ADDR` or `DOCKER_HOST` work.
//!
//! The first word decides: a client command's name (`run`, `list`, ...)
//! starts the environment form; anything else is a client directory, and the
//! positional form ignores the environment (it wins). A client directory named
//! like a command is written with a slash (`./run`). A first word without a
//! slash that is no path but is close to a command's name (`rcmd serv`) is a
//! typo, and is answered with "did you mean", not with the client's usage.

use std::ffi::{OsStr, OsString};

use clap::{CommandFactory, Parser};

use super::ClientArgs;

/// The client directory, when the command line does not give one.
pub const CERTS_VAR: &str = "RCMD_CERTS";
/// The server's HOST:PORT, when the command line does not give one.
pub const ADDR_VAR: &str = "RCMD_ADDR";

/// Parses the client's words, given the other (non-client) subcommands of
/// `rcmd`. Like clap's `parse`, it exits with status 2 on a bad command line.
pub fn parse_args(words: Vec<OsString>, other_commands: &[&str]) -> ClientArgs {
    let env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let is_path = |word: &OsStr| std::path::Path::new(word).exists();
    match resolve(words, other_commands, env, is_path) {
        Ok(words) => ClientArgs::parse_from(words),
        Err(message) => {
            eprintln!("rcmd: {message}");
            std::process::exit(2);
        }
    }
}

/// The names of the client's commands: `exec`, `run`, ...
pub fn client_commands() -> Vec<String> {
    ClientArgs::command().get_subcommands().map(|c| c.get_name().to_owned()).collect()
}

/// The words for [`ClientArgs`]: the positional form as it is, the
/// environment form with the server put in front.
fn resolve(
    mut words: Vec<OsString>,
    other_commands: &[&str],
    env: impl Fn(&str) -> Option<OsString>,
    is_path: impl Fn(&OsStr) -> bool,
) -> Result<Vec<OsString>, String> {
    let first = words.first().and_then(|w| w.to_str()).unwrap_or_default().to_owned();
    let client_commands = client_commands();
    if client_commands.contains(&first) {
        let (certs, addr) = (env(CERTS_VAR), env(ADDR_VAR));
        let (Some(certs), Some(addr)) = (certs.clone(), addr.clone()) else {
            let missing: Vec<&str> = [(CERTS_VAR, certs), (ADDR_VAR, addr)]
                .into_iter()
                .filter_map(|(name, value)| value.is_none().then_some(name))
                .collect();
            return Err(format!(
                "`rcmd {first}` needs a server: give it as `rcmd CERTDIR HOST:PORT {first} ...`, or set {CERTS_VAR} and {ADDR_VAR} ({} not set)",
                missing.join(" and ")
            ));
        };
        words.splice(0..0, [certs, addr]);
        return Ok(words);
    }
    let looks_like_a_name = !first.is_empty() && !first.contains('/');
    if looks_like_a_name && !is_path(OsStr::new(&first)) {
        let names = other_commands.iter().copied().chain(client_commands.iter().map(String::as_str));
        if let Some(near) =
            names.filter(|name| is_near(&first, name)).min_by_key(|name| edit_distance(&first, name))
        {
            return Err(format!(
                "{first:?} is neither a command nor a client directory: did you mean `rcmd {near}`?"
            ));
        }
    }
    Ok(words)
}

/// A likely typo of `name`: at most two edits, and at most half its letters.
fn is_near(word: &str, name: &str) -> bool {
    let distance = edit_distance(word, name);
    distance <= 2 && distance * 2 <= name.len().max(word.len())
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OTHERS: &[&str] = &["pki", "serve", "completions", "man"];

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn resolve_with(list: &[&str], env: &[(&str, &str)], paths: &[&str]) -> Result<Vec<OsString>, String> {
        let env: Vec<(String, OsString)> =
            env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        resolve(
            words(list),
            OTHERS,
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            |word| paths.iter().any(|p| OsStr::new(p) == word),
        )
    }

    const SERVER: &[(&str, &str)] = &[("RCMD_CERTS", "/c"), ("RCMD_ADDR", "h:1")];

    #[test]
    fn a_command_first_takes_the_server_from_the_environment() {
        assert_eq!(
            resolve_with(&["run", "ls", "-l"], SERVER, &[]).unwrap(),
            words(&["/c", "h:1", "run", "ls", "-l"])
        );
    }

    #[test]
    fn the_positional_form_wins_over_the_environment() {
        let positional = ["certs", "x:2", "run", "ls"];
        assert_eq!(resolve_with(&positional, SERVER, &["certs"]).unwrap(), words(&positional));
        assert_eq!(
            resolve_with(&["./run", "x:2", "list"], SERVER, &[]).unwrap(),
            words(&["./run", "x:2", "list"])
        );
    }

    #[test]
    fn a_command_without_a_server_says_which_variable_is_missing() {
        let error = resolve_with(&["list"], &[("RCMD_CERTS", "/c")], &[]).unwrap_err();
        assert!(
            error.contains("rcmd CERTDIR HOST:PORT list") && error.contains("RCMD_ADDR not set"),
            "{error}"
        );
    }

    #[test]
    fn a_near_miss_of_a_command_is_a_typo() {
        let error = resolve_with(&["serv", "--listen", "x"], &[], &[]).unwrap_err();
        assert!(error.ends_with("did you mean `rcmd serve`?"), "{error}");
        assert!(resolve_with(&["exce", "ls"], &[], &[]).unwrap_err().contains("`rcmd exec`"));
        // An existing directory is a client directory, however it is named.
        assert!(resolve_with(&["serv", "h:1", "list"], &[], &["serv"]).is_ok());
        // Far from every name: a client directory, whose loading will say what is wrong.
        assert!(resolve_with(&["mycerts", "h:1", "list"], &[], &[]).is_ok());
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("serv", "serve"), 1);
        assert_eq!(edit_distance("sever", "serve"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert!(!is_near("a", "man"));
    }
}
