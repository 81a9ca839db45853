//! `GET /me`: the signed-in user.

use std::sync::Arc;

use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::routes::UserOut;
use crate::auth::SignedIn;
use crate::error::ErrorBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
async fn me(signed_in: SignedIn) -> Json<UserOut> {
    Json(signed_in.user.into())
}
