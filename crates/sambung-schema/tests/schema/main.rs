//! The schema: the differ, catalog introspection, the migrations up and down, the schema's own rules.
//! One test binary (one link, one throwaway cluster) for all of them.

mod diff;
mod introspect;
mod migrations;
mod rules;
