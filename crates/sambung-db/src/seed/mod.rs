//! `sambung db seed`: the design's sample data (idempotent), and SPEC section 6's deterministic
//! synthetic dataset for load (`--scale N`), bulk-loaded with COPY in one transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::prompts::template_variables;
use crate::secret::hash_password;

mod binary;
mod text;
pub use text::{vocabulary, Frequency, Vocabulary, VOCABULARY_SIZE};

/// The demo account the sample data signs in with.
pub const DEMO_EMAIL: &str = "demo@sambung.chat";
pub const DEMO_PASSWORD: &str = "sambung-demo";

/// Fixed ids, so that seeding twice finds what it made the first time.
fn sample_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// What `seed_sample` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSeed {
    /// False when the sample data was there already (nothing changed).
    pub created: bool,
    pub email: &'static str,
    pub password: &'static str,
}

/// The design's sample data: a demo user (and a teammate), a team, folders, tags, chats with
/// messages and the "Code Review" prompt. Running it again changes nothing.
pub async fn seed_sample(pool: &PgPool) -> Result<SampleSeed> {
    let report = |created| SampleSeed {
        created,
        email: DEMO_EMAIL,
        password: DEMO_PASSWORD,
    };
    let demo = sample_id(1);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 OR email = $2)")
            .bind(demo)
            .bind(DEMO_EMAIL)
            .fetch_one(pool)
            .await?;
    if exists {
        return Ok(report(false));
    }
    let (teammate, team) = (sample_id(2), sample_id(10));
    let (work, projects, shared) = (sample_id(20), sample_id(21), sample_id(22));
    let (important, ideas, roadmap) = (sample_id(30), sample_id(31), sample_id(32));
    let (sample_chat, team_chat) = (sample_id(40), sample_id(41));
    let code_review = "Review this code:\n```\n{code}\n```";
    let mut tx = pool.begin().await?;
    let statements: Vec<sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>> = vec![
        sqlx::query("INSERT INTO users (id, name, email, email_verified) VALUES ($1, 'Demo User', $2, true), ($3, 'Teammate', 'teammate@sambung.chat', true) ON CONFLICT DO NOTHING")
            .bind(demo).bind(DEMO_EMAIL).bind(teammate),
        sqlx::query("INSERT INTO accounts (user_id, account_id, provider_id, password) VALUES ($1, $1::text, 'credential', $2) ON CONFLICT DO NOTHING")
            .bind(demo).bind(hash_password(DEMO_PASSWORD).await?),
        sqlx::query("INSERT INTO teams (id, name, slug, description, created_by) VALUES ($1, 'Demo Team', 'demo-team', 'A team to try shared chats with', $2) ON CONFLICT DO NOTHING")
            .bind(team).bind(demo),
        sqlx::query("INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'admin'), ($1, $3, 'member') ON CONFLICT DO NOTHING")
            .bind(team).bind(demo).bind(teammate),
        sqlx::query("INSERT INTO folders (id, user_id, team_id, name, parent_id) VALUES ($1, $4, NULL, 'Work', NULL), ($2, $4, NULL, 'Projects', $1), ($3, NULL, $5, 'Shared', NULL) ON CONFLICT DO NOTHING")
            .bind(work).bind(projects).bind(shared).bind(demo).bind(team),
        sqlx::query("INSERT INTO tags (id, name, color, user_id, team_id) VALUES ($1, 'important', '#ff5733', NULL, NULL), ($2, 'ideas', '#33a1ff', $4, NULL), ($3, 'roadmap', '#2ecc71', NULL, $5) ON CONFLICT DO NOTHING")
            .bind(important).bind(ideas).bind(roadmap).bind(demo).bind(team),
        sqlx::query("INSERT INTO chats (id, user_id, team_id, folder_id, title, model, provider, settings) VALUES ($1, $3, NULL, $4, 'Sample Chat', 'gpt-4', 'openai', '{\"temperature\": 0.7}'), ($2, $3, $5, $6, 'Team Planning', 'claude-3-opus', 'anthropic', '{}') ON CONFLICT DO NOTHING")
            .bind(sample_chat).bind(team_chat).bind(demo).bind(work).bind(team).bind(shared),
        sqlx::query("INSERT INTO messages (id, chat_id, role, content, metadata, created_at) VALUES
                ($1, $3, 'user', 'Hello, AI!', NULL, now() - interval '2 minutes'),
                ($2, $3, 'assistant', 'Hello! How can I help you today?', '{\"model\": \"gpt-4\", \"tokens\": 9, \"finishReason\": \"stop\"}', now() - interval '1 minute'),
                ($4, $5, 'user', 'What should we ship next quarter?', NULL, now()) ON CONFLICT DO NOTHING")
            .bind(sample_id(50)).bind(sample_id(51)).bind(sample_chat).bind(sample_id(52)).bind(team_chat),
        sqlx::query("INSERT INTO chat_tags (chat_id, tag_id) VALUES ($1, $2), ($1, $3), ($4, $5) ON CONFLICT DO NOTHING")
            .bind(sample_chat).bind(important).bind(ideas).bind(team_chat).bind(roadmap),
        sqlx::query("INSERT INTO prompts (id, user_id, name, content, variables, category, is_public) VALUES ($1, $2, 'Code Review', $3, $4, 'coding', true) ON CONFLICT DO NOTHING")
            .bind(sample_id(60)).bind(demo).bind(code_review).bind(sqlx::types::Json(template_variables(code_review))),
    ];
    for statement in statements {
        statement.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(report(true))
}

/// Row counts of the synthetic dataset per unit of scale (SPEC section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleCounts {
    pub users: u64,
    pub teams: u64,
    pub team_members: u64,
    pub folders: u64,
    pub tags: u64,
    pub chats: u64,
    pub chat_tags: u64,
    pub messages: u64,
    pub prompts: u64,
}

impl ScaleCounts {
    /// The counts for scale `n` (fractions allowed: 0.1 is a tenth of everything).
    pub fn for_scale(n: f64) -> Result<ScaleCounts> {
        if !(n.is_finite() && (0.01..=1000.0).contains(&n)) {
            return Err(DomainError::invalid("scale", "from 0.01 to 1000"));
        }
        let of = |base: f64| (base * n).round() as u64;
        let chats = of(20_000.0);
        Ok(ScaleCounts {
            users: of(1_000.0),
            teams: of(100.0),
            team_members: of(100.0) * 10,
            folders: of(2_000.0),
            tags: of(1_000.0),
            chats,
            chat_tags: chats.div_ceil(4),
            messages: of(400_000.0),
            prompts: of(5_000.0),
        })
    }

    pub fn total(&self) -> u64 {
        self.users
            + self.teams
            + self.team_members
            + self.folders
            + self.tags
            + self.chats
            + self.chat_tags
            + self.messages
            + self.prompts
    }
}

/// What `seed_scale` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleSeed {
    /// False when this dataset was loaded already (nothing changed).
    pub loaded: bool,
    pub rows: u64,
    pub elapsed: Duration,
}

/// splitmix64: a tiny, fast, deterministic generator, one stream per row.
struct Rng(u64);

impl Rng {
    fn for_row(kind: u64, index: u64) -> Rng {
        Rng(kind.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The synthetic dataset's epoch: every timestamp is an offset from it.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

const KIND_USER: u64 = 1;
const KIND_TEAM: u64 = 2;
const KIND_MEMBER: u64 = 3;
const KIND_FOLDER: u64 = 4;
const KIND_TAG: u64 = 5;
const KIND_CHAT: u64 = 6;
const KIND_MESSAGE: u64 = 7;
const KIND_PROMPT: u64 = 8;

/// A deterministic UUIDv7-shaped id: the row's time in the first 48 bits (so ids sort like
/// rows), its kind and index in the rest.
fn row_id(kind: u64, index: u64) -> Uuid {
    let millis = (epoch().timestamp_millis() as u64 + index) & 0xFFFF_FFFF_FFFF;
    let mut rng = Rng::for_row(kind, index);
    let high = (millis << 16) | 0x7000 | (kind & 0x0FFF);
    let low = (rng.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    Uuid::from_u64_pair(high, low)
}

/// A value in COPY's text format.
fn copy_text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// A fixed timestamp for row `index`: the same scale always gives the same data.
fn at_row(index: u64) -> String {
    ts(epoch() + chrono::Duration::minutes(index as i64))
}

/// Rows of one table, produced in batches and sent with COPY.
struct Table {
    copy: &'static str,
    rows: u64,
    row: Rows,
}

/// How a table's rows are written.
enum Rows {
    /// COPY's text format, a line per row.
    Text(Box<dyn Fn(u64) -> String + Send + Sync>),
    /// COPY's binary format (`FORMAT binary`): messages, whose words are sent computed, which
    /// PostgreSQL reads in binary at a tenth of the cost of their text form.
    Binary(Box<WriteRow>),
}

/// Appends row `n` to the buffer.
type WriteRow = dyn Fn(u64, &mut Vec<u8>) + Send + Sync;

/// Rows per COPY message.
const BATCH: u64 = 20_000;

/// The COPY data of `table` in batches of `BATCH` rows, made on `workers` blocking threads
/// (batch k on thread k % workers), each handing its batches over in order: read them
/// round-robin. A thread stops when its receiver is dropped.
fn generate_batches(table: Table, workers: usize) -> Vec<mpsc::Receiver<Vec<u8>>> {
    let table = Arc::new(table);
    let batches = table.rows.div_ceil(BATCH);
    (0..workers)
        .map(|worker| {
            let (tx, rx) = mpsc::channel(2);
            let table = table.clone();
            tokio::task::spawn_blocking(move || {
                for batch in (worker as u64..batches).step_by(workers) {
                    let (start, end) = (batch * BATCH, ((batch + 1) * BATCH).min(table.rows));
                    let mut data = Vec::with_capacity(((end - start) * 420) as usize);
                    for i in start..end {
                        match &table.row {
                            Rows::Text(row) => data.extend_from_slice(row(i).as_bytes()),
                            Rows::Binary(row) => row(i, &mut data),
                        }
                    }
                    if tx.blocking_send(data).is_err() {
                        return;
                    }
                }
            });
            rx
        })
        .collect()
}

/// Whether anyone has signed up yet (`sambung up` seeds the sample data on a first run).
pub async fn has_users(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?)
}

/// Where a scale seed is: `rows` loaded of `total`, and the step under way (a table's name,
/// `indexes`, `foreign keys`, `statistics`).
#[derive(Debug, Clone, Copy)]
pub struct SeedProgress<'a> {
    pub rows: u64,
    pub total: u64,
    pub step: &'a str,
}

/// Load SPEC section 6's dataset for scale `n`: the same `n` always gives the same rows. In
/// one transaction: interrupted, it leaves nothing. Loaded already: changes nothing. The rows
/// are made on every core while one connection sends them.
pub async fn seed_scale(
    pool: &PgPool,
    n: f64,
    progress: &(dyn Fn(SeedProgress<'_>) + Sync),
) -> Result<ScaleSeed> {
    let counts = ScaleCounts::for_scale(n)?;
    let started = Instant::now();
    let loaded: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(row_id(KIND_USER, 0))
        .fetch_one(pool)
        .await?;
    if loaded {
        return Ok(ScaleSeed {
            loaded: false,
            rows: 0,
            elapsed: started.elapsed(),
        });
    }
    let c = counts;
    let words = vocabulary();
    let team_of_user = move |u: u64| (u / 10) % c.teams;
    let chat_created = |chat: u64| epoch() + chrono::Duration::seconds(chat as i64 * 37);
    let tables = vec![
        Table {
            copy: "COPY users (id, name, email, email_verified, created_at, updated_at) FROM STDIN",
            rows: c.users,
            row: Rows::Text(Box::new(|u| {
                let at = at_row(u);
                format!("{}\tLoad User {u}\tuser{u}@load.sambung.test\tt\t{at}\t{at}\n", row_id(KIND_USER, u))
            })),
        },
        Table {
            copy: "COPY teams (id, name, slug, created_by, created_at, updated_at) FROM STDIN",
            rows: c.teams,
            row: Rows::Text(Box::new(move |t| {
                let at = at_row(t);
                format!("{}\tLoad Team {t}\tload-team-{t}\t{}\t{at}\t{at}\n", row_id(KIND_TEAM, t), row_id(KIND_USER, (t * 10) % c.users))
            })),
        },
        Table {
            copy: "COPY team_members (id, team_id, user_id, role, joined_at) FROM STDIN",
            rows: c.team_members,
            row: Rows::Text(Box::new(move |i| {
                let (t, k) = (i / 10, i % 10);
                let role = if k == 0 { "admin" } else { "member" };
                format!("{}\t{}\t{}\t{role}\t{}\n", row_id(KIND_MEMBER, i), row_id(KIND_TEAM, t), row_id(KIND_USER, (t * 10 + k) % c.users), at_row(i))
            })),
        },
        Table {
            copy: "COPY folders (id, user_id, team_id, name, created_at, updated_at) FROM STDIN",
            rows: c.folders,
            row: Rows::Text(Box::new(move |f| {
                let (id, at) = (row_id(KIND_FOLDER, f), at_row(f));
                if f % 5 == 0 {
                    format!("{id}\t\\N\t{}\tTeam folder {f}\t{at}\t{at}\n", row_id(KIND_TEAM, (f / 5) % c.teams))
                } else {
                    format!("{id}\t{}\t\\N\tFolder {f}\t{at}\t{at}\n", row_id(KIND_USER, f % c.users))
                }
            })),
        },
        Table {
            copy: "COPY tags (id, name, color, user_id, team_id, created_at) FROM STDIN",
            rows: c.tags,
            row: Rows::Text(Box::new(move |g| {
                let mut rng = Rng::for_row(KIND_TAG, g);
                let color = format!("#{:06x}", rng.below(0x100_0000));
                let (user, team) = match g % 10 {
                    0 => ("\\N".to_owned(), "\\N".to_owned()),
                    1 | 2 => ("\\N".to_owned(), row_id(KIND_TEAM, g % c.teams).to_string()),
                    _ => (row_id(KIND_USER, g % c.users).to_string(), "\\N".to_owned()),
                };
                format!("{}\ttag-{g}\t{color}\t{user}\t{team}\t{}\n", row_id(KIND_TAG, g), at_row(g))
            })),
        },
        Table {
            copy: "COPY chats (id, user_id, team_id, folder_id, title, model, provider, created_at, updated_at) FROM STDIN",
            rows: c.chats,
            row: Rows::Text(Box::new(move |ch| {
                let mut rng = Rng::for_row(KIND_CHAT, ch);
                let user = ch % c.users;
                let team = if ch % 5 == 0 { row_id(KIND_TEAM, team_of_user(user)).to_string() } else { "\\N".to_owned() };
                // A user's personal folder is folder number `user` (when that one is personal).
                let folder = if ch % 5 != 0 && ch % 3 == 0 && user % 5 != 0 && user < c.folders {
                    row_id(KIND_FOLDER, user).to_string()
                } else {
                    "\\N".to_owned()
                };
                let title = copy_text(&words.sentence(&mut rng, 24));
                let created = chat_created(ch);
                let updated = created + chrono::Duration::minutes(rng.below(60 * 24 * 30) as i64);
                format!("{}\t{}\t{team}\t{folder}\t{title}\tgpt-4o\topenai\t{}\t{}\n", row_id(KIND_CHAT, ch), row_id(KIND_USER, user), ts(created), ts(updated))
            })),
        },
        Table {
            copy: "COPY chat_tags (chat_id, tag_id, created_at) FROM STDIN",
            rows: c.chat_tags,
            // Every fourth chat carries a public tag (tags 0, 10, 20, … are public).
            row: Rows::Text(Box::new(move |i| {
                let public_tags = c.tags.div_ceil(10).max(1);
                format!("{}\t{}\t{}\n", row_id(KIND_CHAT, i * 4), row_id(KIND_TAG, (i % public_tags) * 10), at_row(i))
            })),
        },
        Table {
            copy: "COPY messages (id, chat_id, role, content, created_at, content_tsv, parent_id) FROM STDIN (FORMAT binary)",
            rows: c.messages,
            row: Rows::Binary(Box::new(move |m, out| {
                let mut rng = Rng::for_row(KIND_MESSAGE, m);
                let per_chat = (c.messages / c.chats.max(1)).max(1);
                let chat_of = |m: u64| (m / per_chat).min(c.chats - 1);
                let chat = chat_of(m);
                let role = if m % 2 == 0 { "user" } else { "assistant" };
                let content = words.sentence(&mut rng, 300);
                let at = chat_created(chat) + chrono::Duration::seconds((m % per_chat) as i64 * 30);
                // Each chat is one path: a message follows the one before it in its chat.
                let parent = (m > 0 && chat_of(m - 1) == chat).then(|| row_id(KIND_MESSAGE, m - 1));
                binary::row(out, &[
                    Some(row_id(KIND_MESSAGE, m).as_bytes()),
                    Some(row_id(KIND_CHAT, chat).as_bytes()),
                    Some(role.as_bytes()),
                    Some(content.as_bytes()),
                    Some(&binary::timestamp(at)),
                    Some(&binary::words(&content)),
                    parent.as_ref().map(|p| p.as_bytes().as_slice()),
                ]);
            })),
        },
        Table {
            copy: "COPY prompts (id, user_id, name, content, variables, category, is_public, created_at, updated_at) FROM STDIN",
            rows: c.prompts,
            row: Rows::Text(Box::new(move |p| {
                let mut rng = Rng::for_row(KIND_PROMPT, p);
                let name = copy_text(&format!("Prompt {p}: {}", words.sentence(&mut rng, 20)));
                let content = copy_text(&format!("{} {{input}} {}", words.sentence(&mut rng, 100), words.sentence(&mut rng, 100)));
                let category = ["general", "coding", "writing", "analysis"][(p % 4) as usize];
                let public = if p % 10 == 0 { "t" } else { "f" };
                let at = at_row(p);
                format!("{}\t{}\t{name}\t{content}\t[\"input\"]\t{category}\t{public}\t{at}\t{at}\n", row_id(KIND_PROMPT, p), row_id(KIND_USER, p % c.users))
            })),
        },
    ];

    let total = counts.total();
    let mut done = 0;
    let mut tx = pool.begin().await?;
    // Indexes and foreign keys cost far more row by row than built or checked once over the
    // loaded tables (as pg_restore does): the GIN indexes took 12 s of a 17 s load of 400,000
    // messages, against a 2.3 s build. Inside the transaction the foreign keys and the indexes
    // that back no constraint are dropped, then made again from their own definitions, so an
    // interruption loses nothing and the schema ends as it began.
    let loaded_tables: Vec<String> = tables
        .iter()
        .filter_map(|t| t.copy.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect();
    // (A regclass prints as an identifier, quoted where it needs to be.)
    let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, quote_ident(c.conname),
                pg_get_constraintdef(c.oid)
           FROM pg_constraint c
          WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
            AND c.conrelid::regclass::text = ANY($1)",
    )
    .bind(&loaded_tables)
    .fetch_all(&mut *tx)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(i.indexname), i.indexdef FROM pg_indexes i
          WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)",
    )
    .bind(&loaded_tables)
    .fetch_all(&mut *tx)
    .await?;
    for (table, name, _) in &foreign_keys {
        sqlx::raw_sql(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(&mut *tx)
            .await?;
    }
    for (name, _) in &indexes {
        sqlx::raw_sql(&format!("DROP INDEX {name}"))
            .execute(&mut *tx)
            .await?;
    }
    // Every message's words are computed here, in `binary::words` (30 µs a row for
    // `to_tsvector` in the one backend that loads them, a fraction of that here, on every core):
    // the trigger that would compute them again is off for this load, inside its transaction.
    // So is the one that finds a new message's parent: the rows come with theirs (and it would
    // search, without the indexes dropped above, every message loaded so far).
    sqlx::raw_sql(
        "ALTER TABLE messages DISABLE TRIGGER messages_set_content_tsv;
         ALTER TABLE messages DISABLE TRIGGER messages_follow_path",
    )
    .execute(&mut *tx)
    .await?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    for (table, name) in tables.into_iter().zip(&loaded_tables) {
        tracing::debug!(step = name, elapsed = ?started.elapsed(), "seed step");
        progress(SeedProgress {
            rows: done,
            total,
            step: name,
        });
        let (rows, before) = (table.rows, done);
        let binary = matches!(table.row, Rows::Binary(_));
        let mut copy = tx.copy_in_raw(table.copy).await?;
        let mut batches = generate_batches(table, workers);
        let mut sent = Ok(());
        if binary {
            sent = copy.send(binary::HEADER).await.map(drop);
        }
        for batch in 0..rows.div_ceil(BATCH) {
            if sent.is_err() {
                break;
            }
            let Some(data) = batches[batch as usize % workers].recv().await else {
                sent = Err(sqlx::Error::Protocol("a seed worker stopped".into()));
                break;
            };
            sent = copy.send(data).await.map(drop);
            done = before + rows.min((batch + 1) * BATCH);
            progress(SeedProgress {
                rows: done,
                total,
                step: name,
            });
        }
        if sent.is_ok() && binary {
            sent = copy.send(binary::TRAILER).await.map(drop);
        }
        if let Err(e) = sent {
            let _ = copy.abort("batch failed").await;
            return Err(e.into());
        }
        copy.finish().await?;
    }
    sqlx::raw_sql(
        "ALTER TABLE messages ENABLE TRIGGER messages_set_content_tsv;
         ALTER TABLE messages ENABLE TRIGGER messages_follow_path",
    )
    .execute(&mut *tx)
    .await?;
    let step = |step| {
        tracing::debug!(step, elapsed = ?started.elapsed(), "seed step");
        progress(SeedProgress {
            rows: done,
            total,
            step,
        })
    };
    step("indexes");
    sqlx::raw_sql("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    for (_, definition) in &indexes {
        sqlx::raw_sql(definition).execute(&mut *tx).await?;
    }
    step("foreign keys");
    for (table, name, definition) in &foreign_keys {
        sqlx::raw_sql(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // Fresh statistics (and GIN pending lists merged) so the planner knows the new data.
    step("statistics");
    for table in &loaded_tables {
        sqlx::raw_sql(&format!("VACUUM ANALYZE {table}"))
            .execute(pool)
            .await?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "seed done");
    Ok(ScaleSeed {
        loaded: true,
        rows: counts.total(),
        elapsed: started.elapsed(),
    })
}
