//! The data layer against a real PostgreSQL: the access matrix, keys and seeds, the pool, every rule of SPEC section 4.
//! One test binary (one link, one throwaway cluster) for all of them.

mod access;
mod keys_and_seed;
mod pool;
mod rules;
