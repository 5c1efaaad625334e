//! The production implementations of the ports: Azure Blob Storage, Cosmos DB and Event Grid
//! (`azure`), and Entra ID token verification (`jwks`). The in-memory fakes live in
//! `airlock-testkit`, outside the production binary.

pub mod azure;
pub mod jwks;
