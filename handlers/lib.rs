//! Airlock: the data airlock of a Trusted Research Environment, served as Azure Functions
//! custom handlers.
//!
//! - [`domain`]: pure rules (lifecycle, stages, access, policy);
//! - [`functions`]: one module per function, reacting to events through the ports;
//! - [`api`]: the REST API (the `Api` function);
//! - [`adapters`]: the ports and their implementations;
//! - [`host`]: the custom-handler protocol that ties them to the Functions host.

pub mod adapters;
pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod functions;
pub mod host;
pub mod local;
