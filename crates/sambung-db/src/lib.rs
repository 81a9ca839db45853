//! SambungChat's data layer (the design's Drizzle ORM part): the PostgreSQL connection pool,
//! built in one place with the configured settings, and the errors that explain a failed
//! connection. Typed models, domain rules and access control build on it.

mod pool;

pub use pool::{connect, ConnectError};
