//! The `sambung` binary as a user runs it: the cluster's life cycle, data commands, the declarative workflow, replicas, schema commands.
//! One test binary (one link, one throwaway cluster) for all of them.

mod cluster;
mod common;
mod data;
mod declarative;
mod replicas;
mod schema;
