//! The `handler` binary itself (one test binary): what it carries and refuses, the Function
//! App package, and end-to-end runs on the whole local stack (Azurite, the Cosmos emulator,
//! ClamAV, the local router) with the binary started exactly as the Functions host starts it.

mod binary;
mod package;
mod stack_chaos;
mod stack_e2e;
mod stack_faults;
mod stack_gates;
mod stack_large;
mod stack_rbac;
mod stack_review;
