//! The local stack: everything Azure provides around the `handler`, on this machine, for
//! development and the end-to-end tests. Never linked into the `handler`.
//!
//! - [`app_insights`]: Application Insights' ingestion endpoint for the handler's metrics;
//! - [`chaos`]: the chaos run (mixed flows under injected faults, then every request checked);
//! - [`example_gate`]: an external gate as an organisation would run one (docs/gates.md);
//! - [`emulators`]: Azurite and the Cosmos DB emulator as child processes;
//! - [`fault_proxy`]: makes the handler's Blob and Cosmos calls fail or slow down on demand;
//! - [`clamav`]: clamd with an offline signature set, and its INSTREAM client (plays Defender);
//! - [`front`]: the Functions host's front door: `/api/...` forwarded, functions unreachable;
//! - [`identity`]: App Service's managed identity endpoint for the handler, and the local
//!   principals of Azure's own services;
//! - [`rbac`]: the role assignments of `infra/rbac.json`, enforced on Azurite's Blob and Queue;
//! - [`router`]: Event Grid's publish endpoint and the local token issuer, feeding the one
//!   delivery engine (`airlock_testkit::delivery`);
//! - [`sign_in`]: Entra ID's sign-in for the web app (authorization code with PKCE), with a
//!   user and role picker instead of a password;
//! - [`watcher`]: raises `BlobCreated` for Azurite (which emits no events) and scans;
//! - [`stack`]: all of it plus the `handler` binary, started as the Functions host starts it;
//! - [`supervisor`]: restarts the handler when it exits, as the Functions host does;
//! - [`testing`]: helpers for tests on the emulators and the stack;
//! - [`tls`]: serving a stand-in over HTTPS with the local CA's certificate.

pub mod app_insights;
pub mod chaos;
pub mod clamav;
pub mod emulators;
pub mod example_gate;
pub mod fault_proxy;
pub mod front;
pub mod identity;
pub mod rbac;
pub mod router;
pub mod sign_in;
pub mod stack;
pub mod supervisor;
pub mod testing;
pub mod tls;
pub mod watcher;
pub mod work_queue;
