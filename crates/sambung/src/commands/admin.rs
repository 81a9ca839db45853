//! `sambung admin create-user | set-role | reset-password`: the machine's operator
//! administers accounts directly in the database, for when no admin can sign in (the first
//! admin, a lost password, the last admin gone). Every change is in the audit log.

use std::io::BufRead as _;

use anyhow::{bail, Context};
use sambung_config::Config;
use sambung_db::admin::{self, UserChanges};
use sambung_db::audit::{self, Action, Event};
use sambung_db::auth::{self, LinkPurpose};
use serde_json::json;

use crate::cli::{CreateUserArgs, DisableTwoFactorArgs, ResetPasswordArgs, SetRoleArgs};

/// Where the audit log says these changes came from.
fn from_the_command_line(
    action: Action,
    target: String,
    detail: serde_json::Value,
) -> Event<'static> {
    Event {
        target: Some(("user", target)),
        detail: json!({"via": "sambung admin", "detail": detail}),
        ..Event::new(action)
    }
}

pub async fn create_user(config: &Config, args: &CreateUserArgs) -> anyhow::Result<()> {
    let password = match args.no_password {
        true => None,
        false => {
            eprintln!("Password for {} (one line on standard input):", args.email);
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            auth::validate_password(&line)?;
            Some(line)
        }
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| args.email.split('@').next().unwrap_or("").to_owned());
    let pool = super::connect(config).await?;
    let user = admin::create_user(
        &pool,
        &name,
        &args.email,
        password.as_deref(),
        Some(&args.role),
    )
    .await?;
    audit::record(
        &pool,
        from_the_command_line(
            Action::UserCreated,
            user.id.to_string(),
            json!({"email": user.email, "role": user.role}),
        ),
    )
    .await?;
    pool.close().await;
    println!("Made the account {} ({}).", user.email, user.role);
    if password.is_none() {
        println!("It has no password yet: `sambung admin reset-password {}` prints a link to choose one.", user.email);
    }
    Ok(())
}

pub async fn set_role(config: &Config, args: &SetRoleArgs) -> anyhow::Result<()> {
    let role = admin::validate_role(&args.role)?;
    let pool = super::connect(config).await?;
    let Some(user) = auth::get_user_by_email(&pool, &args.email).await? else {
        bail!("no account has the email {}", args.email);
    };
    let before = user.role.clone();
    // The operator acts as nobody in particular: the actor is the account itself, so the
    // self-ban rule does not apply and the last-admin rule does.
    let user = admin::update_user(
        &pool,
        user.id,
        user.id,
        UserChanges {
            role: Some(role),
            ..UserChanges::default()
        },
    )
    .await?;
    audit::record(
        &pool,
        from_the_command_line(
            Action::RoleChanged,
            user.id.to_string(),
            json!({"from": before, "to": user.role}),
        ),
    )
    .await?;
    pool.close().await;
    println!("{} is now {}.", user.email, user.role);
    Ok(())
}

pub async fn reset_password(config: &Config, args: &ResetPasswordArgs) -> anyhow::Result<()> {
    let pool = super::connect(config).await?;
    let Some(user) = auth::get_user_by_email(&pool, &args.email).await? else {
        bail!("no account has the email {}", args.email);
    };
    let token = auth::issue_link_token(&pool, LinkPurpose::ResetPassword, user.id).await?;
    audit::record(
        &pool,
        from_the_command_line(
            Action::PasswordResetRequested,
            user.id.to_string(),
            json!({"email": user.email}),
        ),
    )
    .await?;
    pool.close().await;
    let base = args
        .url
        .clone()
        .or_else(|| config.public_url.clone())
        .unwrap_or_else(|| "http://localhost:3000".into());
    println!(
        "{}/api/auth/reset-password/{token}?callbackURL=%2F%23%2Freset-password",
        base.trim_end_matches('/')
    );
    eprintln!(
        "Open it within an hour to choose a new password for {} (it works once).",
        user.email
    );
    Ok(())
}

/// `admin disable-two-factor`: for an account whose second factor is lost with its phone.
pub async fn disable_two_factor(
    config: &Config,
    args: &DisableTwoFactorArgs,
) -> anyhow::Result<()> {
    let pool = super::connect(config).await?;
    let Some(user) = auth::get_user_by_email(&pool, &args.email).await? else {
        bail!("no account has the email {}", args.email);
    };
    if !user.two_factor_enabled {
        bail!("{} has no two-factor sign-in to turn off", user.email);
    }
    sambung_db::two_factor::disable(&pool, user.id, None).await?;
    audit::record(
        &pool,
        from_the_command_line(
            Action::TwoFactorChanged,
            user.id.to_string(),
            json!({"enabled": false}),
        ),
    )
    .await?;
    pool.close().await;
    println!(
        "{}'s two-factor sign-in is off: their password alone signs in until they set it up again.",
        user.email
    );
    Ok(())
}
