//! The command-line client: `rcmd CERTDIR HOST:PORT COMMAND ...`, or
//! `rcmd COMMAND ...` with the server in the environment.
//!
//! [`invocation`] tells the two forms apart;
//! [`connection`] builds the mTLS HTTPS client from a client directory and
//! turns transport failures into clear errors; [`commands`] sends each
//! command's requests and prints the answers, and [`run`] streams a job
//! live (with [`stdin`] forwarding ours); [`sink`] writes what we print;
//! [`job_ref`] reads `ID` and `CN/ID`; [`limits`] holds the `exec` and
//! `run` flags for a job's limits (typed by [`crate::limits`], so a value
//! that is no limit is refused before the server is asked); [`error`] is
//! every failure with its exit status; [`fleet`] runs a command on many
//! hosts at once through the same pieces.

mod commands;
mod connection;
mod error;
mod fleet;
mod invocation;
mod job_ref;
mod limits;
mod run;
mod sink;
mod stdin;

use std::path::PathBuf;
use std::time::Duration;

pub use error::{ClientError, exit};
pub use fleet::{JobArg, JobArgError, Selector, SelectorError};
pub use invocation::{ADDR_VAR, CERTS_VAR, client_commands, parse_args};
pub use job_ref::{JobRef, JobRefError};

use commands::Format;
use connection::Connection;
use fleet::Targets;
use sink::Unbuffered;

use crate::jobs::Stream;
use limits::LimitFlags;

/// `rcmd CERTDIR HOST:PORT COMMAND ...`
#[derive(Debug, clap::Parser)]
#[command(
    name = "rcmd",
    bin_name = "rcmd",
    override_usage = "rcmd <CERTDIR> <ADDR> [--json] <COMMAND> [ARGS]...\n       \
        rcmd <COMMAND> [ARGS]...    (with RCMD_CERTS and RCMD_ADDR set)\n       \
        rcmd <CERTDIR> <ADDR,ADDR,...|@INVENTORY> [--select KEY=VALUE]... [--fanout N] [--connect-timeout S] [--no-prefix] [--failed FILE] [--json] <COMMAND> [ARGS]...",
    no_binary_name = true,
    about = "Run and manage jobs on an rcmd server",
    after_help = EXIT_STATUS_HELP
)]
pub struct ClientArgs {
    /// A client directory: ca.crt, client.crt, client.key.
    pub certdir: PathBuf,

    /// The server, as HOST:PORT or [IPV6]:PORT. TLS checks that the server's
    /// certificate names HOST. Several servers: HOST:PORT,HOST:PORT,... or
    /// @FILE, an inventory of [hosts.NAME] tables with addr and labels.
    pub addr: String,

    /// Print JSON (exec, status, list, wait, stop), for scripts. With several
    /// hosts: one object per host (run included, its output capped at 1 MiB
    /// per stream).
    #[arg(long, global = true)]
    pub json: bool,

    /// Only the inventory's hosts whose label KEY is VALUE; repeated, all
    /// must match.
    #[arg(long, value_name = "KEY=VALUE")]
    pub select: Vec<Selector>,

    /// How many hosts at a time, that is open connections [default: 32].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub fanout: Option<u32>,

    /// Give up connecting to a host after S seconds (fractions allowed).
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,

    /// Several hosts: print output lines without the `NAME: ` prefix.
    #[arg(long)]
    pub no_prefix: bool,

    /// Several hosts: write those that failed or were unreachable to FILE,
    /// an inventory to re-run them with @FILE.
    #[arg(long, value_name = "FILE")]
    pub failed: Option<PathBuf>,

    #[command(subcommand)]
    pub command: ClientCommand,
}

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success
  1    the server refused: job not found, invalid request, ...
  2    invalid command line
  141  the reader of the output went away (a closed pipe), as for a
       pipeline's writer; run then stops the job, output -f leaves it
  255  cannot talk to the server: client directory, connection or TLS
  run and wait exit with the job's own status (128+N for signal N, 127 if
  the command could not start).
  Several hosts: 0 if every host succeeded, 255 if any was unreachable,
  else the largest status of a host.";

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Start CMD with ARGS and print its job id. Everything after CMD is
    /// passed on as it is, `-la` and `--help` included. Several hosts: one
    /// `NAME ID` line per host, which @FILE or - take back as ID.
    Exec {
        #[command(flatten)]
        limits: LimitFlags,
        cmd: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start CMD, stream its output live, and exit with its status, like ssh.
    /// Our stdin goes to the job's as it comes (EOF too). Ctrl-C stops the
    /// remote job; so does a closed pipe on our stdout or stderr (exit 141).
    /// Several hosts: each output line is prefixed with `NAME: `, and a
    /// summary goes to stderr.
    Run {
        /// Delete the job and its stored output once it has ended.
        #[arg(long)]
        rm: bool,
        /// Give the job no stdin (it reads /dev/null), as `ssh -n`. Also
        /// what happens when our stdin is /dev/null.
        #[arg(short = 'n', long = "no-stdin")]
        no_stdin: bool,
        #[command(flatten)]
        limits: LimitFlags,
        cmd: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print a job's status: Running, Completed (exit status or signal), or Error.
    ///
    /// Wherever a command takes a job, it is its ID, or CLIENT/ID for
    /// another client's job (admins only); with several hosts, also @FILE
    /// or - for the `NAME ID` lines that exec printed.
    Status { id: JobArg },
    /// Write a job's stdout to stdout and its stderr to stderr, bytes as they are.
    Output {
        id: JobArg,
        /// Keep streaming until the job ends (same as `logs -f`).
        #[arg(short, long)]
        follow: bool,
    },
    /// Print a job's output so far, or follow it to the end with -f.
    Logs {
        id: JobArg,
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop a job: SIGTERM to its process group, then SIGKILL after a grace period.
    Stop { id: JobArg },
    /// Wait for a job to end, print its status and exit with it.
    Wait { id: JobArg },
    /// Delete a job (killing it if it runs) and its stored output.
    Delete { id: JobArg },
    /// List your jobs.
    List {
        /// Every client's jobs, each with its client (admins only).
        #[arg(long)]
        all: bool,
    },
}

/// Runs one client command and returns the process's exit status. Errors
/// are printed as one line on stderr.
pub async fn run(args: ClientArgs) -> i32 {
    match dispatch(args).await {
        Ok(code) => code,
        Err(e) => {
            if !e.is_silent() {
                sink::warn(&e);
            }
            e.exit_code()
        }
    }
}

async fn dispatch(args: ClientArgs) -> Result<i32, ClientError> {
    let fleet_options = args.fanout.is_some() || args.no_prefix || args.failed.is_some();
    let targets = Targets::parse(&args.addr, &args.select, fleet_options)?;
    let addr = match targets {
        Targets::One(addr) => addr,
        Targets::Fleet(hosts) => return fleet::run(args, hosts).await,
    };
    let conn = Connection::new(&args.certdir, &addr, args.connect_timeout)?;
    let format = if args.json { Format::Json } else { Format::Human };
    match args.command {
        ClientCommand::Exec { limits, cmd, args } => {
            commands::exec(&conn, &cmd, &args, &limits, format).await
        }
        ClientCommand::Run { rm, no_stdin, limits, cmd, args } => {
            let stdin = if no_stdin { None } else { stdin::LocalStdin::open() };
            let request = run::RunRequest { cmd: &cmd, args: &args, stdin, remove: rm, limits: &limits };
            let (mut stdout, mut stderr) =
                (Unbuffered::new(Stream::Stdout)?, Unbuffered::new(Stream::Stderr)?);
            run::run(&conn, request, run::Sinks { stdout: &mut stdout, stderr: &mut stderr }).await
        }
        ClientCommand::Status { id } => commands::status(&conn, &id.single()?, format).await,
        ClientCommand::Output { id, follow } | ClientCommand::Logs { id, follow } => {
            commands::output(&conn, &id.single()?, follow).await
        }
        ClientCommand::Stop { id } => commands::stop(&conn, &id.single()?, format).await,
        ClientCommand::Wait { id } => commands::wait(&conn, &id.single()?, format).await,
        ClientCommand::Delete { id } => commands::delete(&conn, &id.single()?).await,
        ClientCommand::List { all } => commands::list(&conn, all, format).await,
    }
}

/// Text that is not a number of seconds above 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a number of seconds above 0, such as 10 or 0.5, not {0:?}")]
pub(crate) struct SecondsError(String);

fn parse_seconds(text: &str) -> Result<Duration, SecondsError> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
        _ => Err(SecondsError(text.to_owned())),
    }
}
