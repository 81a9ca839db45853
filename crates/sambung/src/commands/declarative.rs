//! `sambung db generate|push|check`: the declarative schema files against the migrations or
//! a live database, through scratch databases on the configured server.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use sambung_config::Config;
use sambung_schema::{Ambiguity, Renames, Schema, Shadows, SourceTree};

use super::{ask, ask_yes, connect};
use crate::cli::{GenerateArgs, PushArgs, RenameArgs, SourceArgs};

fn source_tree(args: &SourceArgs) -> anyhow::Result<SourceTree> {
    let root = std::env::current_dir().context("cannot read the working directory")?;
    let default = SourceTree::at(&root);
    Ok(SourceTree {
        schema_dir: args.schema_dir.clone().unwrap_or(default.schema_dir),
        migrations_dir: args
            .migrations_dir
            .clone()
            .unwrap_or(default.migrations_dir),
    })
}

pub async fn generate(config: &Config, args: &GenerateArgs) -> anyhow::Result<()> {
    let tree = source_tree(&args.source)?;
    let existing = tree.migrations()?;
    let admin = super::cluster::database_url(config)?.connect_options();
    connect(config).await?.close().await; // a clear error when the server is not there
    let shadows = Shadows::build(&admin, &tree).await?;
    let renames = resolve_renames(
        &shadows.migrated_schema,
        &shadows.declared_schema,
        &args.renames,
    )?;
    let generated = sambung_schema::generate(&shadows, &existing, &args.name, &renames).await?;
    shadows.remove().await?;
    let Some(migration) = generated else {
        println!("No schema changes: the migrations already build what the schema files describe.");
        return Ok(());
    };
    let dir = sambung_schema::write_migration(&tree, &migration)?;
    println!("Wrote {} (verified: up gives the schema files exactly, down gives the previous schema back)", dir.display());
    if !migration.hazards.is_empty() {
        println!("warning: this migration can lose data or fail on existing rows:");
        for hazard in &migration.hazards {
            println!("  * {}", hazard.description);
        }
    }
    for lint in &migration.lints {
        println!("lint [{}]: {}", lint.rule, lint.message);
    }
    Ok(())
}

pub async fn check(config: &Config, args: &SourceArgs) -> anyhow::Result<()> {
    let tree = source_tree(args)?;
    let admin = super::cluster::database_url(config)?.connect_options();
    connect(config).await?.close().await;
    let shadows = Shadows::build(&admin, &tree).await?;
    let differences =
        sambung_schema::differences(&shadows.migrated_schema, &shadows.declared_schema);
    shadows.remove().await?;
    if !differences.is_empty() {
        anyhow::bail!(
            "the schema files and the migrations disagree (- only in the migrations, + only in the schema files, ~ different):\n{}\nhint: run `sambung db generate --name …` to write the missing migration",
            differences.join("\n")
        );
    }
    println!(
        "OK: the {} migrations build exactly what the schema files describe.",
        tree.migrations()?.len()
    );
    Ok(())
}

pub async fn push(config: &Config, args: &PushArgs) -> anyhow::Result<()> {
    let files = schema_files(args.schema_dir.clone())?;
    let admin = super::cluster::database_url(config)?.connect_options();
    let pool = connect(config).await?;
    let declared = sambung_schema::declared_schema(&admin, &files).await?;
    let live = sambung_schema::live_schema(&pool).await?;
    let renames = resolve_renames(&live, &declared, &args.renames)?;
    let plan = sambung_schema::plan_push(&pool, &declared, &renames).await?;
    if plan.steps.is_empty() {
        println!("No changes: the database already matches the schema files.");
        return Ok(());
    }
    for (hazard, rows) in &plan.hazards {
        println!("warning: {} ({rows} rows concerned)", hazard.description);
    }
    if args.dry_run {
        print!("{}", plan.script());
        return Ok(());
    }
    if plan.loses_data() && !args.force {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("refusing to push: it would lose data or fail on existing rows (see the warnings); nothing was changed\nhint: review it with --dry-run, then pass --force to apply it anyway");
        }
        print!("{}", plan.script());
        if !ask_yes("Apply these changes and lose that data? [y/N] ")? {
            anyhow::bail!("push cancelled; nothing was changed");
        }
    }
    sambung_schema::apply_push(&pool, &plan).await?;
    println!("Pushed {} changes in one transaction.", plan.steps.len());
    Ok(())
}

/// The schema files of `dir`, of the repository checkout, or else the ones built into sambung.
fn schema_files(dir: Option<PathBuf>) -> anyhow::Result<Vec<(String, String)>> {
    let default = SourceTree::at(&std::env::current_dir()?).schema_dir;
    let dir = match dir {
        Some(dir) => dir,
        None if default.is_dir() => default,
        None => {
            return Ok(sambung_schema::schema_files()
                .iter()
                .map(|(name, sql)| (name.to_string(), sql.to_string()))
                .collect())
        }
    };
    let tree = SourceTree {
        schema_dir: dir,
        migrations_dir: PathBuf::new(),
    };
    Ok(tree.schema_files()?)
}

/// Turn the hints into renames, asking about what stays ambiguous on a terminal, and refusing
/// to guess without one.
fn resolve_renames(from: &Schema, to: &Schema, args: &RenameArgs) -> anyhow::Result<Renames> {
    let mut renames = Renames::parse(&args.renames, args.no_rename).map_err(anyhow::Error::msg)?;
    loop {
        let open = sambung_schema::ambiguities(from, to, &renames);
        let Some(ambiguity) = open.first() else {
            return Ok(renames);
        };
        if !std::io::stdin().is_terminal() {
            let list: Vec<String> = open.iter().map(|a| format!("  {a}")).collect();
            anyhow::bail!(
                "ambiguous changes: a rename, or a drop and a create?\n{}\nhint: say which with --rename old=new (tables) or --rename table.old=new (columns), or --no-rename to drop and create",
                list.join("\n")
            );
        }
        match ambiguity {
            Ambiguity::Tables { removed, added } => {
                let answer = ask(&format!(
                    "Table {} is new. Is it created, or renamed from one of: {}? [create/{}] ",
                    added[0],
                    removed.join(", "),
                    removed.join("/")
                ))?;
                match removed.iter().find(|r| **r == answer) {
                    Some(old) => renames.tables.push((old.clone(), added[0].clone())),
                    None => renames.created.push(added[0].clone()),
                }
            }
            Ambiguity::Columns {
                table,
                removed,
                added,
            } => {
                let answer = ask(&format!(
                    "Column {table}.{} is new. Is it created, or renamed from one of: {}? [create/{}] ",
                    added[0],
                    removed.join(", "),
                    removed.join("/")
                ))?;
                match removed.iter().find(|r| **r == answer) {
                    Some(old) => {
                        renames
                            .columns
                            .push((table.clone(), old.clone(), added[0].clone()))
                    }
                    None => renames.created.push(format!("{table}.{}", added[0])),
                }
            }
        }
    }
}
