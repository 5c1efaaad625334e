//! The fast tests: the whole airlock in-process on the in-memory fakes (one test binary, so
//! it links once). The tests on the emulators are in `tests/emulators`, and the ones on the
//! whole local stack in the top-level `tests/stack`.

mod acro;
mod api;
mod architecture;
mod auditor;
mod common;
mod connections;
mod conversation;
mod delivery;
mod docs;
mod events;
mod functions;
mod gates;
mod infra;
mod lifecycle;
mod preflight;
mod record;
mod registry;
mod revisions;
mod stats;
mod web;
