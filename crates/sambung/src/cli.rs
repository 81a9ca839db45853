//! The command line: every command, its flags and its help text.

use clap::{Args, Parser, Subcommand};

/// SambungChat: a self-hosted, privacy-first AI chat platform.
///
/// Configuration comes from the environment and from a `.env` file in the working directory
/// (DATABASE_URL, SAMBUNG_DATA_DIR, SAMBUNG_PG_PORT, SAMBUNG_PG_BIN, SAMBUNG_PG_USER,
/// DATABASE_POOL_MAX, DATABASE_IDLE_TIMEOUT, DATABASE_CONNECT_TIMEOUT, ENCRYPTION_KEY,
/// AUTH_SECRET, PUBLIC_URL, TRUSTED_ORIGINS).
#[derive(Debug, Parser)]
#[command(name = "sambung", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start everything a newcomer needs: the managed database (unless DATABASE_URL is set),
    /// migrated and ready, then serve SambungChat and Studio until Ctrl-C.
    Up(UpArgs),
    /// Manage the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Manage the master key that encrypts provider API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Administer accounts from this machine (when no admin can sign in).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bring data in from elsewhere.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Serve SambungChat: sign-in (Better Auth's contract) and the JSON API, until Ctrl-C.
    /// Applies pending migrations first.
    Serve(ServeArgs),
    /// Measure SPEC section 6's workloads and Studio's pages on a seeded database
    /// (`db seed --scale N` first).
    Bench(BenchArgs),
    /// Print the text of the PDF on standard input, within limits of memory and time (the
    /// server runs this in a process of its own for each uploaded PDF).
    #[command(hide = true)]
    ReadPdf,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make an account (the first account of an instance is its admin). The password is read
    /// from standard input (one line) unless --no-password.
    CreateUser(CreateUserArgs),
    /// Make an account an admin, or an ordinary user again (the last admin stays one).
    SetRole(SetRoleArgs),
    /// Print a one-time link (valid an hour) that lets the account choose a new password.
    ResetPassword(ResetPasswordArgs),
    /// Turn the account's two-factor sign-in off (its phone and backup codes are lost): its
    /// password alone signs in again, until it sets up a new second factor.
    DisableTwoFactor(DisableTwoFactorArgs),
}

#[derive(Debug, Args)]
pub struct DisableTwoFactorArgs {
    pub email: String,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub email: String,
    /// Shown in the app (default: the part of the email before @).
    #[arg(long)]
    pub name: Option<String>,
    /// `user` (default) or `admin`.
    #[arg(long, default_value = "user")]
    pub role: String,
    /// Make it without a password (it gets one with `admin reset-password`).
    #[arg(long)]
    pub no_password: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// An upstream SambungChat database (the original TypeScript platform) into this one, in
    /// one transaction: users (their old passwords still sign in), chats, messages, folders,
    /// prompts and their versions, models and API keys. Run again, it adds only what is new.
    Upstream(UpstreamArgs),
}

#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// The upstream database (read only: nothing there is changed).
    #[arg(long = "from", value_name = "URL")]
    pub from: String,
    /// Upstream's ENCRYPTION_KEY, which opens its API keys (sealed again with this instance's
    /// ENCRYPTION_KEY); without it the keys are left out. Better given in the environment.
    #[arg(long, env = "UPSTREAM_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Import although this database holds other accounts (the same email: one account).
    #[arg(long)]
    pub merge: bool,
    /// Report what would be imported, keep nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    pub email: String,
    /// `admin` or `user`.
    pub role: String,
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    pub email: String,
    /// The address browsers reach the server at (default: PUBLIC_URL, else
    /// http://localhost:3000).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// list-chats, chat-messages, append-message, search-prompts, can-access-chat,
    /// search-messages (the two searches: for words of each frequency band, or one band with
    /// -common, -middling or -rare), studio-first-page, studio-filtered-page, http-list-chats,
    /// http-chat-messages, http-append-message, http-search-messages, all; or generate (turns
    /// through the server against a fake provider: time to first token and memory); or
    /// attacks (`/health` while each hostile client runs; `attacks:NAME` for one of none,
    /// deep-markdown, sign-in-storm, endless-reply, endless-line, slow-readers, idle-sockets,
    /// huge-headers); or people (--users N simulated people on `sambung serve`, --servers 1
    /// or 2: page latency, time added to the first token, memory per person); or branches
    /// (a chat with 50 branches of 100 messages opened against a flat one of the same path);
    /// or files (a 20 MB file up and down through the server, then 20 uploads at once: time
    /// and memory); or transfer (a ChatGPT export of --mb megabytes imported through the
    /// server and the account exported back: time and memory); or completions (the
    /// OpenAI-compatible endpoint against the provider called directly and a chat's turn,
    /// --turns requests each at concurrency 1 and 10).
    #[arg(long, default_value = "all")]
    pub workload: String,
    /// people: how many simulated people (several, comma-separated, run one after another:
    /// `50,100,200`).
    #[arg(long, default_value = "50")]
    pub users: String,
    /// generate: how many turns to time, after as many unmeasured as the larger of 30 per
    /// concurrent client and six per pooled connection (completions: requests of each kind).
    #[arg(long, default_value_t = 200)]
    pub turns: usize,
    /// generate: how many replies stream at once while memory is watched.
    #[arg(long, default_value_t = 500)]
    pub streams: usize,
    /// generate: the fake provider's pause before each token, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub pace_ms: u64,
    /// transfer: the size of the generated ChatGPT export, in megabytes.
    #[arg(long, default_value_t = 200)]
    pub mb: usize,
    /// How long to measure each workload (after a warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Operations in flight at once (and connections in the pool).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub concurrency: u32,
    /// Also run each workload as hand-written SQL and report ours / baseline.
    #[arg(long)]
    pub baseline: bool,
    /// http-*: how many servers (in this process, on the one database) the requests take
    /// turns among; with DATABASE_READ_URL set, each reads lists and searches on the replicas.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub servers: u32,
    /// One JSON object per workload per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random 32-byte key (base64) for ENCRYPTION_KEY.
    Generate,
    /// Re-encrypt every stored API key from ENCRYPTION_KEY to NEW_ENCRYPTION_KEY, in one
    /// transaction; then set ENCRYPTION_KEY to the new key.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Start the managed PostgreSQL cluster (initialised on first use) and print its DATABASE_URL.
    Start,
    /// Stop the managed PostgreSQL cluster (fast shutdown: open sessions are ended).
    Stop,
    /// Stop, then start the managed PostgreSQL cluster.
    Restart,
    /// Show the managed PostgreSQL cluster's server log.
    Logs(LogsArgs),
    /// Streaming standbys of the managed cluster: make one, promote one.
    #[command(subcommand)]
    Replica(ReplicaCommand),
    /// Apply pending migrations, each in its own transaction, under a lock.
    Migrate,
    /// Undo the last applied migrations with their down scripts, newest first.
    Rollback(RollbackArgs),
    /// Applied, pending, modified and unknown migrations.
    Status(StatusArgs),
    /// The live schema: tables, columns, keys, indexes, constraints, triggers.
    Schema(SchemaArgs),
    /// Drop every table and object of the schema, the migrations table included.
    Drop(DropArgs),
    /// Write the next migration (up and down) from the difference between the schema files
    /// and the migrations, verified on scratch databases.
    Generate(GenerateArgs),
    /// Apply the schema files directly to the database (development), in one transaction.
    Push(PushArgs),
    /// Check that the migrations and the schema files agree (exit 1 with the difference).
    Check(SourceArgs),
    /// Load the sample data (idempotent), and with --scale a deterministic synthetic dataset.
    Seed(SeedArgs),
    /// Back the database up with pg_dump: written atomically, verified, with a manifest.
    Backup(BackupArgs),
    /// Restore a backup in one transaction, verified against its manifest.
    Restore(RestoreArgs),
    /// Serve Studio, the web GUI to browse, edit and query the data, until Ctrl-C.
    Studio(StudioArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Get the database ready, then exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Serve SambungChat without Studio beside it.
    #[arg(long)]
    pub no_studio: bool,
    /// The port SambungChat listens on.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// The port Studio listens on.
    #[arg(long, default_value_t = 4983)]
    pub studio_port: u16,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct StudioArgs {
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 4983)]
    pub port: u16,
    /// The address to listen on. Studio can change every row: keep it on loopback unless the
    /// network is yours; it still needs the printed URL's token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Run every statement in a read-only transaction and refuse edits.
    #[arg(long)]
    pub read_only: bool,
    /// Longest a statement may run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub statement_timeout: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackupFormat {
    /// pg_dump's compressed archive (.dump)
    Custom,
    /// plain SQL (.sql)
    Sql,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write it [default: backups/sambungchat-YYYYMMDD-HHMMSS.dump]
    pub path: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "custom")]
    pub format: BackupFormat,
    /// Instead: copy the managed cluster's files into this new directory (pg_basebackup).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["path", "format"])]
    pub physical: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (its format is detected).
    #[arg(required_unless_present = "physical")]
    pub path: Option<std::path::PathBuf>,
    /// Replace a database that holds data (or a managed cluster's data directory, kept aside),
    /// or restore a backup of a newer schema version.
    #[arg(long)]
    pub force: bool,
    /// Instead: make this physical backup the managed cluster's data directory and start it.
    #[arg(long, value_name = "DIR", conflicts_with = "path")]
    pub physical: Option<std::path::PathBuf>,
    /// Longest one statement of the file may run, in seconds (a file that would hold the
    /// restore's transaction open is cut off; the database stays as it was).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub statement_timeout: u64,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Also load the synthetic load dataset at this scale (1 = 1,000 users, 20,000 chats,
    /// 400,000 messages, ...; fractions like 0.1 allowed).
    #[arg(long)]
    pub scale: Option<f64>,
}

/// Where the schema files and migrations are (default: this repository's layout).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Directory of the declarative schema files [default: crates/sambung-schema/schema]
    #[arg(long)]
    pub schema_dir: Option<std::path::PathBuf>,
    /// Directory of the migrations [default: crates/sambung-schema/migrations]
    #[arg(long)]
    pub migrations_dir: Option<std::path::PathBuf>,
}

/// How to read a table or column that disappears while another appears.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Treat a change as a rename: `old_table=new_table` or `table.old_column=new_column`
    /// (repeatable). Without it, and without a terminal to ask on, an ambiguous change is refused.
    #[arg(long = "rename", value_name = "OLD=NEW")]
    pub renames: Vec<String>,
    /// Treat every remaining ambiguous change as a drop and a create.
    #[arg(long)]
    pub no_rename: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Name of the migration (its directory becomes NNNN_name).
    #[arg(long, default_value = "schema_change")]
    pub name: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub renames: RenameArgs,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Apply even when it loses data or fails on existing rows (no question asked).
    #[arg(long)]
    pub force: bool,
    /// Print the SQL and what it would destroy; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Directory of the declarative schema files [default: crates/sambung-schema/schema, else the files built into sambung]
    #[arg(long)]
    pub schema_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub renames: RenameArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// How many migrations to undo.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: u32,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (one object per migration) for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print JSON for scripts.
    #[arg(long, conflicts_with = "mermaid")]
    pub json: bool,
    /// Print a Mermaid erDiagram of the tables and their foreign keys.
    #[arg(long)]
    pub mermaid: bool,
}

#[derive(Debug, Args)]
pub struct DropArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Make a streaming standby of the running managed cluster in DIR (pg_basebackup -R,
    /// through a replication slot of its own) and start it; start and stop it later like the
    /// primary, with SAMBUNG_DATA_DIR=DIR and SAMBUNG_PG_PORT=PORT.
    Init(ReplicaInitArgs),
    /// Promote the standby of SAMBUNG_DATA_DIR to a primary (failover), waiting until it
    /// accepts writes.
    Promote,
}

#[derive(Debug, Args)]
pub struct ReplicaInitArgs {
    /// Where the standby's data directory goes (new or empty).
    pub dir: std::path::PathBuf,
    /// Its port (default: the primary's plus one).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines as they are written (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to print.
    #[arg(short = 'n', long = "lines", default_value_t = 50)]
    pub lines: usize,
}
