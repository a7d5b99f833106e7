//! `rcmd pki ...`: the certificate commands and what they print.

use std::path::PathBuf;

use super::{DEFAULT_DAYS, InitOptions, San, default_client_name};

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
        /// The client's name: its certificate's CN and its identity on servers.
        name: String,
        /// The cert directory holding the CA.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = DEFAULT_DAYS)]
        days: u32,
        /// Replace an existing client directory for NAME.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init {
            dir,
            san,
            days,
            client,
            force,
        } => {
            let options = InitOptions {
                sans: san,
                days,
                client: client.unwrap_or_else(default_client_name),
                force,
                ..InitOptions::new(dir)
            };
            let written = super::init(&options)?;
            println!("created:");
            for path in &written {
                println!("  {}", path.display());
            }
            let dir = options.dir.display();
            println!("the first client identity is {:?}; next:", options.client);
            println!("  rcmd serve --certs {dir}");
            println!("  rcmd {dir} 127.0.0.1:8443 exec echo hello");
        }
        PkiCommand::Client {
            name,
            dir,
            days,
            force,
        } => {
            let target = super::issue_client_dir(&dir, &name, days, force)?;
            println!(
                "created {} (ca.crt, client.crt, client.key) for {name:?}",
                target.display()
            );
            println!(
                "hand that folder to {name}, who runs: rcmd {} HOST:PORT exec echo hello",
                target.display()
            );
        }
    }
    Ok(())
}
