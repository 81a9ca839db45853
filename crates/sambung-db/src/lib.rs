//! SambungChat's data layer (the design's Drizzle ORM part): the connection pool, a typed
//! row type for every table, and the domain's rules and access control as functions that take
//! the acting user. Studio, the API server and the benchmarks all call it. Every query is
//! checked at run time and exercised by the tests against the real schema.

pub mod api_keys;
pub mod auth;
pub mod chats;
mod error;
pub mod folders;
mod ids;
pub mod lease;
pub mod models;
mod pool;
pub mod prompts;
pub mod relay;
pub mod secret;
pub mod seed;
pub mod tags;
pub mod teams;

pub use error::{DomainError, Result};
pub use ids::*;
pub use pool::{connect, replica_lag, ConnectError};
