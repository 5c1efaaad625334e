//! The production adapters: Azure Blob Storage and Cosmos DB through the official Azure SDK
//! for Rust; Event Grid, the Storage work queue and Defender's on-demand scan through their
//! REST APIs, on one client built on the SDK's own pipeline (`rest`).

pub mod app_insights;
pub mod blob;
pub mod cosmos;
pub mod credential;
pub mod defender;
pub mod errors;
pub mod eventgrid;
pub mod queue;
pub mod rest;

pub use blob::AzureBlobStore;
pub use credential::credential_from_mode;
