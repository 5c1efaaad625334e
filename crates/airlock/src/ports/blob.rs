//! Blob storage: one container per request in each stage account.

use super::PortError;
use crate::domain::SasPermissions;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    pub account: String,
    pub container: String,
}

impl ContainerRef {
    pub fn blob(&self, name: &str) -> BlobRef {
        BlobRef {
            account: self.account.clone(),
            container: self.container.clone(),
            name: name.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobRef {
    pub account: String,
    pub container: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub name: String,
    pub size: u64,
    pub etag: String,
    /// As listed (List Blobs returns them): lets a caller see that a blob already carries
    /// the headers it would set, and leave that version alone.
    pub content: ContentHeaders,
}

/// The versions a copy is tied to. The service checks them at the write itself, so a decision
/// taken on an earlier read (say, "the destination is not this revision's copy yet") cannot
/// be overtaken by another copy made meanwhile (a duplicated delivery doing the same).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyIf<'a> {
    /// Copy only this version of the source.
    pub source_etag: Option<&'a str>,
    pub destination: Destination<'a>,
}

/// What the destination must be for a copy to start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Destination<'a> {
    #[default]
    Any,
    /// No blob of that name yet.
    Absent,
    /// Exactly this version of the destination.
    Version(&'a str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyState {
    Pending,
    Success,
    /// Failed or aborted, with the service's description.
    Failed(String),
}

/// The blob index tag in which Defender for Storage's malware scanning records its verdict
/// (the same text as the event's `scanResultType`).
pub const DEFENDER_RESULT_TAG: &str = "Malware Scanning scan result";
/// ... and when it scanned.
pub const DEFENDER_TIME_TAG: &str = "Malware Scanning scan time UTC";

/// A blob's content headers: served with every download, and carried along by a server-side
/// copy, so they are data too (and not covered by the sha256).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
}

impl ContentHeaders {
    /// What the airlock sets on its copies: the type for the name, nothing else.
    pub fn only_type(content_type: &str) -> Self {
        ContentHeaders {
            content_type: Some(content_type.to_string()),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobProperties {
    pub size: u64,
    pub etag: String,
    /// Set when the blob is (or was) the destination of a copy.
    pub copy: Option<CopyState>,
    /// User metadata (lower-case keys); copies carry the request revision they belong to.
    pub metadata: BTreeMap<String, String>,
    pub content: ContentHeaders,
}

/// A container link to sign with a user-delegation key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SasRequest {
    pub permissions: SasPermissions,
    pub expires_at: DateTime<Utc>,
    /// A single address or `from-to` range, when the workspace restricts links.
    pub ip_range: Option<String>,
}

pub type ByteStream = BoxStream<'static, Result<Bytes, PortError>>;

/// Contract:
/// - container and blob deletes are idempotent: a missing one is success;
/// - `create_container` on an existing container is success;
/// - `list_blobs` of a missing container is empty, and lists committed blobs only;
/// - `start_copy` sets `metadata` on the destination and, like the service, copies the
///   source's content headers; with `CopyIf::source_etag`, it copies only that version of the
///   source and is `PreconditionFailed` (copying nothing) when the source has changed; with
///   `CopyIf::destination`, it is `Conflict` (copying nothing) when the destination is not
///   what the caller saw; it may return `Pending`: completion is observed through
///   `properties` (or the `BlobCreated` event in the destination), never assumed;
/// - `read` streams the blob in chunks (never the whole blob in memory) and returns the
///   properties of the version being read; a missing blob is `NotFound`;
/// - links are signed with a user-delegation key, never an account key, and are HTTPS only.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn create_container(&self, container: &ContainerRef) -> Result<(), PortError>;
    async fn delete_container(&self, container: &ContainerRef) -> Result<(), PortError>;
    async fn list_blobs(&self, container: &ContainerRef) -> Result<Vec<BlobInfo>, PortError>;
    async fn properties(&self, blob: &BlobRef) -> Result<Option<BlobProperties>, PortError>;
    async fn start_copy(
        &self,
        from: &BlobRef,
        to: &BlobRef,
        metadata: &BTreeMap<String, String>,
        only: CopyIf<'_>,
    ) -> Result<CopyState, PortError>;
    async fn read(&self, blob: &BlobRef) -> Result<(BlobProperties, ByteStream), PortError>;
    async fn delete_blob(&self, blob: &BlobRef) -> Result<(), PortError>;
    /// Deletes the blob only if it is still version `etag` (`If-Match`): `Ok(true)` when it
    /// was deleted, `Ok(false)` when it changed or is gone meanwhile (left alone). A clean-up
    /// decides on a listing; a copy written after it (a later revision's seal) must survive.
    async fn delete_blob_if(&self, blob: &BlobRef, etag: &str) -> Result<bool, PortError>;
    /// The blob's index tags: where Defender for Storage also records its verdict
    /// ([`DEFENDER_RESULT_TAG`]), independently of the event it publishes. A missing blob
    /// is `NotFound`.
    async fn tags(&self, blob: &BlobRef) -> Result<BTreeMap<String, String>, PortError>;
    /// Replaces every content header of the blob with `headers` (those left `None` are
    /// cleared), as Set Blob Properties does; the data and metadata are untouched. With
    /// `if_match`, only if the blob is still that version (else `PreconditionFailed`).
    /// Returns the blob's new eTag (new properties are a new version).
    async fn set_content_headers(
        &self,
        blob: &BlobRef,
        headers: &ContentHeaders,
        if_match: Option<&str>,
    ) -> Result<String, PortError>;
    async fn container_link(
        &self,
        container: &ContainerRef,
        sas: &SasRequest,
    ) -> Result<String, PortError>;
    /// A link to one blob (`sr=b`): it reads that blob and no other of its container. Only
    /// the read permission of `sas` applies.
    async fn blob_link(&self, blob: &BlobRef, sas: &SasRequest) -> Result<String, PortError>;
}
