//! SambungChat's data layer (the design's Drizzle ORM part): the connection pool, a typed
//! row type for every table, and the domain's rules and access control as functions that take
//! the acting user. The server, the chat turn (`sambung-chat`) and the benchmarks call it.
//! Queries written whole are checked at compile time against the schema (sqlx's offline data
//! in `.sqlx`); those assembled at run time (filters, keyset pages) are exercised by the tests
//! against the real schema.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chats;
pub mod connections;
mod error;
pub mod exports;
pub mod files;
pub mod folders;
pub mod identity_providers;
mod ids;
pub mod imports;
pub mod instance;
pub mod mail;
pub mod models;
mod pool;
pub mod prompts;
pub mod quotas;
pub mod secret;
pub mod seed;
pub mod tags;
pub mod teams;
pub mod tokens;
pub mod two_factor;
pub mod upstream;
pub mod usage;

pub use error::{DomainError, Result};
pub use ids::*;
pub use pool::{connect, replica_lag, ConnectError};
