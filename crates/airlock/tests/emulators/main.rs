//! Tests on the real emulators (one test binary): the adapters' contracts on Azurite and the
//! Cosmos emulator, the Event Grid publisher against a local topic, and the ClamAV client.
//! TLS trust comes from `.cargo/config.toml` (`SSL_CERT_FILE`); the emulators are installed
//! from `infra/local/package-lock.json` on first use.

mod blob_contract;
mod clamav;
mod eventgrid;
mod store_contract;
