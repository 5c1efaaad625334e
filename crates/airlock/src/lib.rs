//! Airlock: the data airlock of a Trusted Research Environment, served as Azure Functions
//! custom handlers. This crate is everything the production `handler` binary runs, and
//! nothing else (fakes, the development token issuer and the local stack live in
//! `airlock-testkit` and `airlock-local`).
//!
//! Layers, each importing only from the ones above it:
//! - [`domain`]: pure rules (lifecycle, stages, access, policy, the events we publish), its own
//!   crate `airlock-domain` so the command line shares them without linking the server;
//! - [`ports`]: one trait per IO capability, with its contract;
//! - [`app`]: the dependencies a function gets, and the workflow shared by functions and API
//!   (conditional writes, the outbox, data movement);
//! - [`functions`]: one module per event-triggered function, on typed events;
//! - [`api`]: the REST API (the `Api` function); what it reads and answers (`api::types`,
//!   `api::view`) is the crate `airlock-api`, which the command line uses too;
//! - [`host`]: the custom-handler protocol that ties them to the Functions host;
//! - [`adapters`]: the ports' production implementations (Azure, Entra ID);
//! - [`config`]: the app settings, validated at start-up.

pub mod adapters;
pub mod api;
pub mod app;
pub mod config;
pub use airlock_domain as domain;
pub mod functions;
pub mod host;
pub mod ports;
