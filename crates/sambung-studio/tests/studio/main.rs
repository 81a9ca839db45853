//! Studio over HTTP and in Chromium.
//! One test binary (one link, one throwaway cluster) for all of them.

mod browser;
mod common;
mod http;
