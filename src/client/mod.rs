//! The command-line client: `rcmd CERTDIR HOST:PORT COMMAND ...`, or
//! `rcmd COMMAND ...` with the server in the environment.
//!
//! [`invocation`] tells the two forms apart;
//! [`connection`] builds the mTLS HTTPS client from a client directory and
//! turns transport failures into clear errors; [`commands`] sends each
//! command's requests and prints the answers.

mod commands;
mod connection;
mod error;
mod invocation;
mod job_ref;
mod limits;
mod run;
mod sink;
mod stdin;

use std::path::PathBuf;

pub use error::{ClientError, exit};
pub use invocation::{ADDR_VAR, CERTS_VAR, client_commands, parse_args};
pub use job_ref::JobRef;

use commands::Format;
use connection::Connection;
use sink::Unbuffered;

use crate::jobs::Stream;
use limits::LimitFlags;

/// `rcmd CERTDIR HOST:PORT COMMAND ...`
#[derive(Debug, clap::Parser)]
#[command(
    name = "rcmd",
    bin_name = "rcmd",
    override_usage = "rcmd <CERTDIR> <ADDR> [--json] <COMMAND> [ARGS]...\n       rcmd <COMMAND> [ARGS]...    (with RCMD_CERTS and RCMD_ADDR set)",
    no_binary_name = true,
    about = "Run and manage jobs on an rcmd server",
    after_help = EXIT_STATUS_HELP
)]
pub struct ClientArgs {
    /// A client directory: ca.crt, client.crt, client.key.
    pub certdir: PathBuf,

    /// The server, as HOST:PORT or [IPV6]:PORT. TLS checks that the server's
    /// certificate names HOST.
    pub addr: String,

    /// Print JSON (exec, status, list, wait, stop), for scripts.
    #[arg(long, global = true)]
    pub json: bool,

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
  the command could not start).";

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Start CMD with ARGS and print its job id. Everything after CMD is
    /// passed on as it is, `-la` and `--help` included.
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
    /// another client's job (admins only).
    Status { id: JobRef },
    /// Write a job's stdout to stdout and its stderr to stderr, bytes as they are.
    Output {
        id: JobRef,
        /// Keep streaming until the job ends (same as `logs -f`).
        #[arg(short, long)]
        follow: bool,
    },
    /// Print a job's output so far, or follow it to the end with -f.
    Logs {
        id: JobRef,
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop a job: SIGTERM to its process group, then SIGKILL after a grace period.
    Stop { id: JobRef },
    /// Wait for a job to end, print its status and exit with it.
    Wait { id: JobRef },
    /// Delete a job (killing it if it runs) and its stored output.
    Delete { id: JobRef },
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
    let conn = Connection::new(&args.certdir, &args.addr)?;
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
        ClientCommand::Status { id } => commands::status(&conn, &id, format).await,
        ClientCommand::Output { id, follow } | ClientCommand::Logs { id, follow } => {
            commands::output(&conn, &id, follow).await
        }
        ClientCommand::Stop { id } => commands::stop(&conn, &id, format).await,
        ClientCommand::Wait { id } => commands::wait(&conn, &id, format).await,
        ClientCommand::Delete { id } => commands::delete(&conn, &id).await,
        ClientCommand::List { all } => commands::list(&conn, all, format).await,
    }
}
