//! What the airlock's REST API reads and answers, and nothing else: the request bodies, the
//! views of a request built from its stored record, the error codes. The server
//! (`airlock::api`), the `airlock` command line and the OpenAPI document all use these very
//! types, so a client and the server cannot disagree about a field, and the command line
//! builds without the server's storage SDKs.

pub mod governance;
pub mod registry;
pub mod types;
pub mod view;
