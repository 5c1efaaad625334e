//! What tests and the local stack need and production never may: the in-memory fakes of every
//! port (with fault hooks), the development token issuer and its key, builders of the events
//! Azure sends, the EICAR test scanner, the one event-delivery engine that plays Event Grid
//! and the Functions host, the demo workspaces, the records tests share (`fixtures`), and an
//! in-process airlock on the fakes.
//!
//! The production `handler` does not depend on this crate; a test in `airlock-handler`
//! checks that its binary holds no private key.

pub mod builders;
pub mod delivery;
pub mod demo;
pub mod fixtures;
pub mod host_envelopes;
pub mod in_memory;
pub mod memory;
pub mod tokens;

pub use tokens::{DEV_ISSUER, DEV_JWKS, DEV_KEY_ID, TokenIssuer, TokenSpec};
