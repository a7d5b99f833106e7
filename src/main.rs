//! The rcmd binary: parse the command line and hand over to the library.

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};

/// Run commands on remote Linux machines over mutual TLS.
///
/// One binary, three roles: a certificate authority (`rcmd pki`), the job
/// server (`rcmd serve`: HTTPS, TLS 1.3 only, a client certificate required,
/// each client seeing only its own jobs), and the client that starts, follows,
/// stops and deletes jobs on a server, or runs a command there like ssh.
#[derive(Debug, Parser)]
#[command(
    name = "rcmd",
    version,
    allow_external_subcommands = true,
    override_usage = "rcmd pki init|client|list|revoke|renew|show ...\n       rcmd serve [OPTIONS]\n       rcmd completions bash|zsh|fish\n       rcmd man\n       rcmd CERTDIR HOST:PORT exec|run|status|output|logs|stop|wait|delete|list ...\n       rcmd exec|run|... ...    (with RCMD_CERTS=CERTDIR and RCMD_ADDR=HOST:PORT set)",
    after_help = "Client commands: rcmd CERTDIR HOST:PORT --help\n\n".to_owned() + rcmd::client::EXIT_STATUS_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The certificate authority: create a CA, issue client certificates.
    #[command(subcommand)]
    Pki(rcmd::pki::cli::PkiCommand),
    /// Run the HTTPS job server (mTLS, TLS 1.3 only).
    Serve(Box<rcmd::server::ServeArgs>),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    #[command(after_help = "Install, e.g.: rcmd completions bash > /etc/bash_completion.d/rcmd\n\
        rcmd completions zsh > \"${fpath[1]}/_rcmd\"\n\
        rcmd completions fish > ~/.config/fish/completions/rcmd.fish")]
    Completions { shell: rcmd::docs::Shell },
    /// Print the manual page (roff) on stdout: `rcmd man | man -l -`.
    Man,
    /// Internal: the guard that kills jobs if the server is killed.
    #[command(name = "__guard", hide = true)]
    Guard { cgroup_folders: Vec<std::path::PathBuf> },
    /// Internal: process 1 of an isolated job.
    #[command(name = "__init", hide = true)]
    Init {
        program: OsString,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<OsString>,
    },
    /// CERTDIR HOST:PORT COMMAND: talk to a server.
    #[command(external_subcommand)]
    Client(Vec<OsString>),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Pki(command) => report(rcmd::pki::cli::run(command)),
        Command::Serve(args) => {
            rcmd::server::logging::init(args.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
            report(runtime.map_err(anyhow::Error::from).and_then(|runtime| {
                let served = runtime.block_on(rcmd::server::serve(*args));
                runtime.shutdown_timeout(rcmd::server::RUNTIME_SHUTDOWN_LIMIT);
                served
            }))
        }
        Command::Completions { shell } => {
            rcmd::docs::completions(Cli::command(), shell, &mut std::io::stdout());
            0
        }
        Command::Man => {
            report(rcmd::docs::man_page(Cli::command(), &mut std::io::stdout()).map_err(Into::into))
        }
        Command::Guard { cgroup_folders } => rcmd::server::guard::run(&cgroup_folders),
        Command::Init { program, argv } => rcmd::jobs::isolate::init(&program, &argv),
        Command::Client(words) => {
            let cli = Cli::command();
            let others: Vec<&str> =
                cli.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name()).collect();
            let args = rcmd::client::parse_args(words, &others);
            // One thread is plenty for a client, and starts faster.
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(rcmd::client::run(args)),
                Err(e) => report(Err(e.into())),
            }
        }
    };
    std::process::exit(code);
}

/// One line on stderr for a failure, and exit status 1.
fn report(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rcmd: {}", rcmd::one_line(&e));
            1
        }
    }
}
