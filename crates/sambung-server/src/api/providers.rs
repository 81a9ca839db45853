//! The AI providers the server knows (`sambung-providers`' list), for the forms that pick
//! one, and that list as the OpenAPI document's enum of every `provider` field.

use std::sync::Arc;

use axum::Json;
use sambung_providers::Provider;
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SignedIn;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list_providers))
}

/// The schema of a `provider` field: a string, one of the providers' names.
pub fn provider_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(Provider::ALL.map(Provider::as_str)))
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOut {
    #[schema(schema_with = provider_schema)]
    pub name: &'static str,
    pub label: &'static str,
    /// Whether calls need an API key.
    pub needs_key: bool,
    /// Where requests go when a model names no base URL (`null`: it must name one).
    pub default_base_url: Option<&'static str>,
}

/// Every provider a key or a model may be for, in the order forms list them.
#[utoipa::path(get, path = "/providers", tag = "models",
    responses((status = 200, body = Vec<ProviderOut>)))]
async fn list_providers(_: SignedIn) -> Json<Vec<ProviderOut>> {
    Json(
        Provider::ALL
            .into_iter()
            .map(|p| ProviderOut {
                name: p.as_str(),
                label: p.label(),
                needs_key: p.needs_key(),
                default_base_url: p.default_base_url(),
            })
            .collect(),
    )
}
