//! Writing the audit log from a request: who (the signed-in user, and the admin acting as
//! them when one is), from which address, what, on what. A failure to write is logged, never
//! the request's failure: what it records has happened already.

use sambung_db::audit::{self, Action, Event};
use sambung_db::auth::User;
use serde_json::Value;

use crate::auth::{ClientIp, SignedIn};
use crate::state::AppState;

/// Who did it: a user, or nobody signed in.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    Nobody,
    User(&'a User),
    Session(&'a SignedIn),
}

/// Record `action` on `target` by `actor` from `client`, with `detail` (never a secret).
pub async fn record(
    state: &AppState,
    actor: Actor<'_>,
    client: ClientIp,
    action: Action,
    target: Option<(&'static str, String)>,
    detail: Value,
) {
    let mut detail = match detail {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let user = match actor {
        Actor::Nobody => None,
        Actor::User(user) => Some(user),
        Actor::Session(signed_in) => {
            if let Some(admin) = signed_in.session.impersonated_by {
                detail.insert("impersonatedBy".into(), admin.to_string().into());
            }
            // What a program did with a token is told apart from what its owner did.
            if let Some(token) = &signed_in.access {
                detail.insert(
                    "accessToken".into(),
                    serde_json::json!({"id": token.id, "name": token.name}),
                );
            }
            Some(&signed_in.user)
        }
    };
    let event = Event {
        actor: user.map(|u| (u.id, u.email.as_str())),
        action,
        target,
        ip_address: client.0.map(|ip| ip.to_string()),
        detail: Value::Object(detail),
    };
    if let Err(e) = audit::record(&state.pool, event).await {
        tracing::error!(error = %e, action = action.as_str(), "cannot write the audit log");
    }
}
