//! `rcmd pki ...`: the certificate commands and what they print.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    CertInfo, ClientName, DEFAULT_DAYS, Entry, Index, InitOptions, Renewal, San, ServerName,
    default_client_name, files, format_time,
};

#[derive(Debug, clap::Subcommand)]
pub enum PkiCommand {
    /// Create a CA, a server certificate and a first client identity.
    ///
    /// Writes DIR/ca.crt, ca.key, server.crt, server.key, client.crt,
    /// client.key and index.json. The server certificate names localhost,
    /// 127.0.0.1, ::1, this host's name and every --san. Keys are mode 0600.
    /// An existing CA is never replaced without --force.
    Init {
        /// The cert directory to create.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Another name (DNS name or IP address) for the server certificate.
        #[arg(long, value_name = "NAME_OR_IP")]
        san: Vec<San>,
        /// Validity of the server and client certificates, in days.
        #[arg(long, default_value_t = DEFAULT_DAYS)]
        days: u32,
        /// The first client's name (its certificate's CN) [default: your user name].
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// Replace an existing CA, invalidating every certificate it issued.
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate: writes DIR/NAME/ with ca.crt, client.crt
    /// and client.key, a self-contained directory to hand to NAME.
    Client {
        /// The client's name: its certificate's CN and its identity on servers:
        /// at most 64 bytes, no `/`, `\`, control characters or leading `-`.
        name: String,
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// Issue a server certificate for host NAME: writes DIR/servers/NAME/
    /// with ca.crt, server.crt and server.key, the folder to copy to that
    /// host for `rcmd serve --certs`. Its CN is NAME; it names NAME (when
    /// NAME is a DNS name or IP address) and every --san.
    Server {
        /// The host's name: its certificate's CN, and its name in inventories.
        name: String,
        /// Another name (DNS name or IP address) clients use to reach the host.
        #[arg(long, value_name = "NAME_OR_IP")]
        san: Vec<San>,
        #[command(flatten)]
        issue: IssueArgs,
    },
    /// List every certificate issued: CN, kind, serial, expiry, days left,
    /// and whether it is valid, expired or revoked.
    List {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a certificate by CN (every certificate of that name) or serial:
    /// marks it in the index and rewrites DIR/crl.pem, signed by the CA.
    /// Servers refuse it after `kill -HUP`. Revoking twice is harmless.
    Revoke {
        /// A client's name, or a serial number in hex.
        target: String,
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
    /// Issue a new certificate for a client, the server (`server`) or host
    /// NAME of `pki server` (`server NAME`) with a new key and serial and the
    /// same names, replacing its files. The old one stays valid until it
    /// expires or is revoked, so the switch needs no downtime.
    Renew {
        /// A client's name, or `server`.
        name: String,
        /// After `server`: the host whose DIR/servers/HOST/ to renew.
        host: Option<String>,
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_DAYS)]
        days: u32,
    },
    /// Show a certificate: subject, names, usages, validity, serial and
    /// SHA-256 fingerprint.
    Show {
        /// A PEM certificate file.
        file: PathBuf,
    },
}

/// Where and how `pki client` and `pki server` issue.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The cert directory holding the CA.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// Validity in days.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    days: u32,
    /// Replace an existing folder for NAME.
    #[arg(long)]
    force: bool,
}

pub fn run(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { dir, san, days, client, force } => init(dir, san, days, client, force)?,
        PkiCommand::Client { name, issue } => issue_client(&name, issue)?,
        PkiCommand::Server { name, san, issue } => issue_server(&name, &san, issue)?,
        PkiCommand::List { dir, json } => list(&dir, json)?,
        PkiCommand::Revoke { target, dir } => revoke(&target, &dir)?,
        PkiCommand::Renew { name, host, dir, days } => renew(&name, host.as_deref(), &dir, days)?,
        PkiCommand::Show { file } => show(&super::read_info(&file)?),
    }
    Ok(())
}

/// `pki init`: creates the CA and first identities, then prints what was
/// written and the two commands to try next.
fn init(dir: PathBuf, sans: Vec<San>, days: u32, client: Option<String>, force: bool) -> anyhow::Result<()> {
    let options = InitOptions {
        sans,
        days,
        client: match client {
            Some(name) => ClientName::parse(&name)?,
            None => default_client_name(),
        },
        force,
        ..InitOptions::new(dir)
    };
    let written = super::init(&options)?;
    println!("created:");
    for path in &written {
        println!("  {}", path.display());
    }
    let dir = options.dir.display();
    println!("the first client identity is {:?}; next:", options.client.as_str());
    println!("  rcmd serve --certs {dir}");
    println!("  rcmd {dir} 127.0.0.1:8443 exec echo hello");
    Ok(())
}

/// `pki client NAME`: issues the client's folder and says who gets it.
fn issue_client(name: &str, IssueArgs { dir, days, force }: IssueArgs) -> anyhow::Result<()> {
    let target = super::issue_client_dir(&dir, &ClientName::parse(name)?, days, force)?;
    println!("created {} (ca.crt, client.crt, client.key) for {name:?}", target.display());
    println!("hand that folder to {name}, who runs: rcmd {} HOST:PORT exec echo hello", target.display());
    Ok(())
}

/// `pki server NAME`: issues a host's server folder and says where it goes.
fn issue_server(name: &str, sans: &[San], IssueArgs { dir, days, force }: IssueArgs) -> anyhow::Result<()> {
    let target = super::issue_server_dir(&dir, &ServerName::parse(name)?, sans, days, force)?;
    println!("created {} (ca.crt, server.crt, server.key) for host {name:?}", target.display());
    println!("copy that folder to {name}, which runs: rcmd serve --certs FOLDER --listen ADDR:8443");
    Ok(())
}

/// `pki revoke TARGET`: revokes, then tells the operator which CRL copies
/// servers must reload, since revocation only bites once they do.
fn revoke(target: &str, dir: &Path) -> anyhow::Result<()> {
    let revoked = super::revoke(dir, target)?;
    if revoked.is_empty() {
        println!("{target} was already revoked");
    }
    for entry in &revoked {
        println!("revoked {} {} (serial {})", entry.kind.name(), entry.cn, entry.serial);
    }
    println!("wrote {}; make servers reload it: kill -HUP <server pid>", dir.join(files::CRL).display());
    let hosts = super::lifecycle::host_folders(dir)?;
    if !hosts.is_empty() {
        println!(
            "and wrote crl.pem into the {} host folder(s) under {}: copy it to each host, then kill -HUP there",
            hosts.len(),
            dir.join(super::SERVERS_DIR).display()
        );
    }
    Ok(())
}

/// `pki renew NAME [HOST]`: renews, then says how the new certificate
/// reaches its user without downtime.
fn renew(name: &str, host: Option<&str>, dir: &Path, days: u32) -> anyhow::Result<()> {
    let what = renewal(name, host)?;
    let folder = super::renew(dir, what, days)?;
    println!("renewed {} in {}", host.unwrap_or(name), folder.display());
    match what {
        Renewal::Server => {
            println!("make the server use it, without downtime: kill -HUP <server pid>")
        }
        Renewal::Host(host) => println!(
            "copy server.crt and server.key to {host}, then without downtime: kill -HUP <server pid>"
        ),
        Renewal::Client(_) => {}
    }
    Ok(())
}

/// Which certificate `renew NAME [HOST]` means: only `server` takes a host.
fn renewal<'a>(name: &'a str, host: Option<&'a str>) -> anyhow::Result<Renewal<'a>> {
    Ok(match (name, host) {
        ("server", None) => Renewal::Server,
        ("server", Some(host)) => Renewal::Host(host),
        (_, Some(extra)) => {
            anyhow::bail!("unexpected {extra:?} after {name:?}: only `renew server HOST` takes a second name")
        }
        (client, None) => Renewal::Client(client),
    })
}

/// Whether an index entry is usable now, and its days left.
fn state(entry: &Entry, now: OffsetDateTime) -> (&'static str, Option<i64>) {
    let not_after = OffsetDateTime::parse(&entry.not_after, &Rfc3339).ok();
    let state = match (&entry.revoked_at, not_after) {
        (Some(_), _) => "revoked",
        (None, Some(t)) if t < now => "expired",
        _ => "valid",
    };
    (state, not_after.map(|t| (t - now).whole_days()))
}

fn list(dir: &Path, json: bool) -> anyhow::Result<()> {
    let index = Index::load(dir)?;
    let now = OffsetDateTime::now_utc();
    if json {
        let rows: Vec<_> = index
            .certificates
            .iter()
            .map(|e| {
                let (state, days_left) = state(e, now);
                serde_json::json!({
                    "cn": e.cn, "kind": e.kind, "serial": e.serial, "not_after": e.not_after,
                    "days_left": days_left, "state": state, "revoked_at": e.revoked_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<24} {:<7} {:<34} {:<21} {:>9}  STATE", "CN", "KIND", "SERIAL", "NOT AFTER", "DAYS LEFT");
    for e in &index.certificates {
        let (state, days_left) = state(e, now);
        let days = days_left.map_or("?".to_owned(), |d| d.to_string());
        println!(
            "{:<24} {:<7} {:<34} {:<21} {:>9}  {state}",
            e.cn,
            e.kind.name(),
            e.serial,
            e.not_after,
            days
        );
    }
    Ok(())
}

fn show(info: &CertInfo) {
    let mut usages = Vec::new();
    if info.server_auth {
        usages.push("serverAuth");
    }
    if info.client_auth {
        usages.push("clientAuth");
    }
    let names: Vec<String> =
        info.dns_names.iter().cloned().chain(info.ip_addresses.iter().map(ToString::to_string)).collect();
    let or_dash = |list: Vec<String>| {
        if list.is_empty() { "-".to_owned() } else { list.join(", ") }
    };
    println!("subject:     {}", info.subject);
    println!("CA:          {}", if info.is_ca { "yes" } else { "no" });
    println!("names:       {}", or_dash(names));
    println!("usages:      {}", or_dash(usages.iter().map(ToString::to_string).collect()));
    println!("not before:  {}", format_time(info.not_before));
    let days_left = info.days_left(OffsetDateTime::now_utc());
    println!("not after:   {} ({days_left} days left)", format_time(info.not_after));
    println!("serial:      {}", info.serial);
    println!("SHA-256:     {}", info.sha256_fingerprint);
}
