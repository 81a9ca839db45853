//! What the common identity providers need filled in: an OpenID Connect issuer (from a
//! tenant, realm or domain the operator gives as `issuer`) or GitHub's OAuth 2.0 endpoints.

use crate::ProviderConfig;

pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    /// The issuer, when the provider has one for everybody.
    issuer: Option<&'static str>,
    /// What the operator must give as `issuer` when there is none for everybody.
    issuer_hint: &'static str,
    scopes: &'static [&'static str],
}

pub const PRESETS: [Preset; 6] = [
    Preset {
        id: "keycloak",
        name: "Keycloak",
        issuer: None,
        issuer_hint: "the realm's address, https://HOST/realms/REALM",
        scopes: &["openid", "email", "profile"],
    },
    Preset {
        id: "entra",
        name: "Microsoft",
        issuer: None,
        issuer_hint: "https://login.microsoftonline.com/TENANT-ID/v2.0",
        scopes: &["openid", "email", "profile"],
    },
    Preset {
        id: "google",
        name: "Google",
        issuer: Some("https://accounts.google.com"),
        issuer_hint: "",
        scopes: &["openid", "email", "profile"],
    },
    Preset {
        id: "okta",
        name: "Okta",
        issuer: None,
        issuer_hint: "https://YOUR-ORG.okta.com (or an authorization server's issuer)",
        scopes: &["openid", "email", "profile"],
    },
    Preset {
        id: "gitlab",
        name: "GitLab",
        issuer: Some("https://gitlab.com"),
        issuer_hint: "",
        scopes: &["openid", "email", "profile"],
    },
    Preset {
        id: "github",
        name: "GitHub",
        issuer: None,
        issuer_hint: "",
        scopes: &["read:user", "user:email"],
    },
];

/// Fill `config` in from `preset`; what the operator gave wins.
pub(crate) fn apply(preset: &Preset, config: &mut ProviderConfig) -> Result<(), String> {
    if preset.id == "github" {
        let endpoints = [
            (
                &mut config.authorization_endpoint,
                "https://github.com/login/oauth/authorize",
            ),
            (
                &mut config.token_endpoint,
                "https://github.com/login/oauth/access_token",
            ),
            (&mut config.userinfo_endpoint, "https://api.github.com/user"),
        ];
        for (field, default) in endpoints {
            field.get_or_insert_with(|| default.to_owned());
        }
    } else if config.issuer.is_none() {
        match preset.issuer {
            Some(issuer) => config.issuer = Some(issuer.to_owned()),
            None => {
                return Err(format!(
                    "the {} preset needs an issuer: {}",
                    preset.name, preset.issuer_hint
                ))
            }
        }
    }
    if config.scopes.is_none() {
        config.scopes = Some(preset.scopes.iter().map(|s| (*s).to_owned()).collect());
    }
    Ok(())
}
