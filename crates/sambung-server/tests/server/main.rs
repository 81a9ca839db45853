//! The server over real HTTP: Better Auth's contract, the access matrix, bad input, the JSON API, turns, the AI SDK's and Better Auth's own clients, the hostile user's attacks, the web UI in Chromium.
//! One test binary (one link, one throwaway cluster) for all of them.

mod access;
mod ai_sdk_client;
mod api;
mod auth;
mod bad_input;
mod better_auth_client;
mod common;
mod files;
mod generate;
mod hardening;
mod instance;
mod oidc;
mod openai;
mod sso;
mod transfer;
mod two_factor;
mod upstream;
mod web;
