//! `sambung`: SambungChat in one binary. It manages the local PostgreSQL cluster (or uses the
//! one `DATABASE_URL` names), the schema, the data and its backups, and serves Studio; later
//! the API server.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    return_large_allocations_to_the_system();
    exit_on_output_errors();
    let cli = cli::Cli::parse();
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

fn hint(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<sambung_config::ConfigError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_pg::ClusterError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_pg::fetch::FetchError>() {
            Some(match e {
                sambung_pg::fetch::FetchError::HashMismatch { .. } => "nothing was installed; try again, or install Debian's server (`apt-get install postgresql`)".into(),
                _ => "check the network, or install Debian's server (`apt-get install postgresql`), or run `scripts/fetch-postgres 18`".into(),
            })
        } else if let Some(e) = cause.downcast_ref::<sambung_db::ConnectError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_schema::MigrateError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_schema::WorkflowError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_backup::BackupError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_studio::StudioError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_server::ServerError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<sambung_bench::BenchError>() {
            e.hint()
        } else if let Some(sambung_db::DomainError::Decrypt) = cause.downcast_ref::<sambung_db::DomainError>() {
            Some("ENCRYPTION_KEY must be the key the API keys were encrypted with; nothing was changed".into())
        } else {
            None
        }
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
