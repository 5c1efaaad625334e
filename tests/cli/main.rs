//! The `airlock` binary driven as a person drives it: spawned with arguments, reading its
//! output and exit code. On the whole local stack (Azurite, the Cosmos emulator, ClamAV, the
//! router, the `handler` binary) for the flows, and against a stand-in for Entra ID for the
//! device-code login.

mod admin;
mod flows;
mod interrupt;
mod login;
mod retries;
mod support;
