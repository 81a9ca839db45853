//! `sambung`: SambungChat in one binary. It manages the local PostgreSQL cluster (or uses the
//! one `DATABASE_URL` names), the schema, the data and its backups, serves the app and
//! Studio, seeds and benchmarks. This library is the whole command line (`cli` parses,
//! `commands` wires the crates together); `main.rs` only calls [`main`], as sqlx-cli does.

pub mod cli;
pub mod commands;

use std::process::ExitCode;

use clap::Parser;

/// Run the command line: parse it, run the command, report an error as one line and a hint.
pub fn main() -> ExitCode {
    return_large_allocations_to_the_system();
    exit_on_output_errors();
    let cli = cli::Cli::parse();
    if let cli::Command::ReadPdf = cli.command {
        // Before any runtime or thread: the limits it sets are the whole process's.
        return commands::read_pdf::run();
    }
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Allocations of a mebibyte or more (a password hash's 19 MiB, a long message rendered) are
/// mapped and given back to the system when freed. glibc's default raises that threshold as
/// such blocks are freed, after which they stay in its per-thread arenas: a storm of sign-ins
/// left a server holding 870 MB.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Output that cannot be written ends the program: quietly for a closed pipe (`sambung db
/// schema --json | head -1`), as ripgrep does, and with one clear line otherwise (a full disk),
/// never with a panic's message. `println!` reports such failures by panicking: this hook
/// turns exactly those into an exit. (An interrupted transaction rolls back when the process
/// and its connection go.)
fn exit_on_output_errors() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let reason = message
            .strip_prefix("failed printing to stdout: ")
            .or_else(|| message.strip_prefix("failed printing to stderr: "));
        match reason {
            Some(reason) if reason.starts_with("Broken pipe") => std::process::exit(0),
            Some(reason) => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "error: cannot write the output: {reason}"
                );
                std::process::exit(1);
            }
            None => default(info),
        }
    }));
}

/// `error: …` on one line (with its causes), then a `hint: …` when one is known.
fn report(error: &anyhow::Error) {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        message.push_str(": ");
        message.push_str(&cause.to_string());
    }
    eprintln!("error: {message}");
    if let Some(hint) = hint(error) {
        eprintln!("hint: {hint}");
    }
}

/// The first hint in the error's chain: every error type a command can end with implements
/// [`sambung_config::Hint`]; this list names them.
fn hint(error: &anyhow::Error) -> Option<String> {
    use sambung_config::Hint;
    fn of<T: Hint + std::error::Error + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<Option<String>> {
        cause.downcast_ref::<T>().map(Hint::hint)
    }
    error.chain().find_map(|cause| {
        of::<sambung_config::ConfigError>(cause)
            .or_else(|| of::<sambung_pg::ClusterError>(cause))
            .or_else(|| of::<sambung_pg::fetch::FetchError>(cause))
            .or_else(|| of::<sambung_db::ConnectError>(cause))
            .or_else(|| of::<sambung_db::DomainError>(cause))
            .or_else(|| of::<sambung_schema::MigrateError>(cause))
            .or_else(|| of::<sambung_schema::WorkflowError>(cause))
            .or_else(|| of::<sambung_backup::BackupError>(cause))
            .or_else(|| of::<sambung_studio::StudioError>(cause))
            .or_else(|| of::<sambung_server::ServerError>(cause))
            .or_else(|| of::<sambung_bench::BenchError>(cause))
            .flatten()
    })
}

/// Logs go to stderr: warnings by default, more with `-v`/`-vv`, or as `RUST_LOG` says.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        // sqlx warns of every statement over a second: migrations and seeds run such on purpose.
        0 => "warn,sqlx::query=error",
        1 => "info,sqlx::query=error",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
