use airlock::domain::SasPermissions;
use airlock::ports::{
    BlobInfo, BlobProperties, BlobRef, BlobStore, ByteStream, Clock, ContainerRef, ContentHeaders,
    CopyIf, CopyState, Destination, PortError, SasRequest,
};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How server-side copies behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// Finish at once (as on Azurite).
    Instant,
    /// Stay pending until `complete_copies` (as large copies on Azure).
    Pending,
}

/// A blob appeared (committed) or disappeared: what Event Grid would report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobNotice {
    pub blob: BlobRef,
    pub etag: String,
    pub size: u64,
    pub deleted: bool,
}

#[derive(Clone)]
struct Stored {
    data: Bytes,
    etag: String,
    copy: Option<CopyState>,
    metadata: BTreeMap<String, String>,
    content: ContentHeaders,
    /// Index tags (not copied, as the service's Copy Blob does not by default).
    tags: BTreeMap<String, String>,
    /// Content a pending copy will have when it completes.
    pending: Option<Bytes>,
}

type Containers = HashMap<(String, String), BTreeMap<String, Stored>>;

/// Blob storage in memory, with container links that a [`SasClient`] can use.
pub struct MemoryBlobStore {
    containers: Mutex<Containers>,
    mode: Mutex<CopyMode>,
    notices: Mutex<Vec<BlobNotice>>,
    next_etag: AtomicU64,
    clock: Arc<dyn Clock>,
    /// Signs links, standing in for a user-delegation key.
    key: String,
    chunk: usize,
}

impl MemoryBlobStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryBlobStore {
            containers: Mutex::new(HashMap::new()),
            mode: Mutex::new(CopyMode::Instant),
            notices: Mutex::new(Vec::new()),
            next_etag: AtomicU64::new(0),
            clock,
            key: uuid::Uuid::new_v4().to_string(),
            chunk: 64 * 1024,
        }
    }

    pub fn set_copy_mode(&self, mode: CopyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn etag(&self) -> String {
        format!(
            "\"0x{:016X}\"",
            self.next_etag.fetch_add(1, Ordering::SeqCst) + 1
        )
    }

    fn notify(&self, blob: BlobRef, stored: &Stored, deleted: bool) {
        self.notices.lock().unwrap().push(BlobNotice {
            blob,
            etag: stored.etag.clone(),
            size: stored.data.len() as u64,
            deleted,
        });
    }

    /// Replaces a blob's index tags (as Defender does with its verdict); the eTag is kept,
    /// as on the service. `false` when there is no such blob.
    pub fn set_tags(&self, blob: &BlobRef, tags: BTreeMap<String, String>) -> bool {
        let mut containers = self.containers.lock().unwrap();
        match containers
            .get_mut(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get_mut(&blob.name))
        {
            Some(stored) => {
                stored.tags = tags;
                true
            }
            None => false,
        }
    }

    /// Blob events since the last call.
    pub fn take_notices(&self) -> Vec<BlobNotice> {
        std::mem::take(&mut *self.notices.lock().unwrap())
    }

    /// Writes a blob directly (creating the container), as a user with storage access would.
    pub fn put(&self, blob: &BlobRef, data: impl Into<Bytes>) -> String {
        self.put_with_headers(blob, data, ContentHeaders::default())
    }

    /// Writes a blob with content headers, as an upload that sets them would.
    pub fn put_with_headers(
        &self,
        blob: &BlobRef,
        data: impl Into<Bytes>,
        content: ContentHeaders,
    ) -> String {
        let stored = Stored {
            data: data.into(),
            etag: self.etag(),
            copy: None,
            metadata: BTreeMap::new(),
            content,
            tags: BTreeMap::new(),
            pending: None,
        };
        self.containers
            .lock()
            .unwrap()
            .entry((blob.account.clone(), blob.container.clone()))
            .or_default()
            .insert(blob.name.clone(), stored.clone());
        self.notify(blob.clone(), &stored, false);
        stored.etag
    }

    /// Reads a whole blob (tests only).
    pub fn get(&self, blob: &BlobRef) -> Option<Bytes> {
        self.containers
            .lock()
            .unwrap()
            .get(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get(&blob.name))
            .filter(|s| s.copy != Some(CopyState::Pending))
            .map(|s| s.data.clone())
    }

    /// Replaces a blob's content without any notice, as an attacker with storage access might.
    pub fn tamper(&self, blob: &BlobRef, data: impl Into<Bytes>) -> bool {
        let etag = self.etag();
        let mut containers = self.containers.lock().unwrap();
        match containers
            .get_mut(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get_mut(&blob.name))
        {
            Some(s) => {
                s.data = data.into();
                s.etag = etag;
                true
            }
            None => false,
        }
    }

    /// Every (account, container) that holds at least one blob, with the blob names.
    pub fn inventory(&self) -> BTreeMap<(String, String), Vec<String>> {
        self.containers
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, blobs)| !blobs.is_empty())
            .map(|(k, blobs)| (k.clone(), blobs.keys().cloned().collect()))
            .collect()
    }

    pub fn container_exists(&self, container: &ContainerRef) -> bool {
        self.containers
            .lock()
            .unwrap()
            .contains_key(&(container.account.clone(), container.container.clone()))
    }

    /// Finishes every pending copy; each then raises its blob notice.
    pub fn complete_copies(&self) -> usize {
        let mut done = Vec::new();
        {
            let mut containers = self.containers.lock().unwrap();
            for ((account, container), blobs) in containers.iter_mut() {
                for (name, s) in blobs.iter_mut() {
                    if let Some(data) = s.pending.take() {
                        s.data = data;
                        s.copy = Some(CopyState::Success);
                        s.etag = format!(
                            "\"0x{:016X}\"",
                            self.next_etag.fetch_add(1, Ordering::SeqCst) + 1
                        );
                        done.push((
                            BlobRef {
                                account: account.clone(),
                                container: container.clone(),
                                name: name.clone(),
                            },
                            s.clone(),
                        ));
                    }
                }
            }
        }
        let n = done.len();
        for (blob, s) in done {
            self.notify(blob, &s, false);
        }
        n
    }

    fn signature(&self, account: &str, container: &str, sp: &str, se: &str, sip: &str) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "{}\n{account}\n{container}\n{sp}\n{se}\n{sip}",
            self.key
        ));
        hex::encode(h.finalize())
    }

    /// A client that uses a container link the way AzCopy or Storage Explorer would.
    pub fn sas_client(self: &Arc<Self>, url: &str) -> Result<SasClient, SasError> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| SasError::Refused("links must be https".into()))?;
        let (host_path, query) = rest
            .split_once('?')
            .ok_or_else(|| SasError::Refused("no SAS token".into()))?;
        let (host, path) = host_path
            .split_once('/')
            .ok_or_else(|| SasError::Refused("no container".into()))?;
        // A blob link (`sr=b`) names its blob after the container.
        let (container, blob) = match path.split_once('/') {
            Some((c, b)) => (
                c,
                Some(
                    percent_encoding::percent_decode_str(b)
                        .decode_utf8_lossy()
                        .into_owned(),
                ),
            ),
            None => (path, None),
        };
        let account = host.split('.').next().unwrap_or_default().to_string();
        let params: HashMap<&str, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.replace("%3A", ":")))
            .collect();
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let (sp, se, sip, sig) = (get("sp"), get("se"), get("sip"), get("sig"));
        let resource = match (&blob, get("sr").as_str()) {
            (Some(name), "b") => format!("{container}/{name}"),
            (None, "c") => container.to_string(),
            _ => {
                return Err(SasError::Refused(
                    "the link's resource does not match its path".into(),
                ));
            }
        };
        if sig != self.signature(&account, &resource, &sp, &se, &sip) {
            return Err(SasError::Refused("signature mismatch".into()));
        }
        let expires = DateTime::parse_from_rfc3339(&se)
            .map_err(|_| SasError::Refused("bad expiry".into()))?
            .with_timezone(&Utc);
        Ok(SasClient {
            store: self.clone(),
            container: ContainerRef {
                account,
                container: container.to_string(),
            },
            permissions: SasPermissions::parse(&sp),
            expires,
            blob,
        })
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// The service refuses (403): bad signature, expired, or a permission the link lacks.
    #[error("refused: {0}")]
    Refused(String),
    #[error("not found")]
    NotFound,
}

/// Uses a container link; every call is checked against the link's permissions and expiry,
/// as the storage service itself would.
pub struct SasClient {
    store: Arc<MemoryBlobStore>,
    container: ContainerRef,
    permissions: SasPermissions,
    expires: DateTime<Utc>,
    /// A blob link's blob: it reaches that one only.
    blob: Option<String>,
}

impl SasClient {
    fn check(&self, needed: bool, what: &str) -> Result<(), SasError> {
        if self.store.clock.now() >= self.expires {
            return Err(SasError::Refused("the link has expired".into()));
        }
        if self.blob.is_some() && what != "reading" {
            return Err(SasError::Refused(format!(
                "a link to one blob does not allow {what}"
            )));
        }
        if !needed {
            return Err(SasError::Refused(format!("the link does not allow {what}")));
        }
        Ok(())
    }

    pub fn upload(&self, name: &str, data: impl Into<Bytes>) -> Result<(), SasError> {
        self.check(self.permissions.create && self.permissions.write, "writing")?;
        self.store.put(&self.container.blob(name), data);
        Ok(())
    }

    pub fn download(&self, name: &str) -> Result<Bytes, SasError> {
        self.check(self.permissions.read, "reading")?;
        if self.blob.as_deref().is_some_and(|b| b != name) {
            return Err(SasError::Refused(format!(
                "the link is for {:?}, not {name:?}",
                self.blob.as_deref().unwrap_or_default()
            )));
        }
        self.store
            .get(&self.container.blob(name))
            .ok_or(SasError::NotFound)
    }

    pub fn list(&self) -> Result<Vec<String>, SasError> {
        self.check(self.permissions.list, "listing")?;
        Ok(self
            .store
            .inventory()
            .get(&(
                self.container.account.clone(),
                self.container.container.clone(),
            ))
            .cloned()
            .unwrap_or_default())
    }

    pub fn delete(&self, name: &str) -> Result<(), SasError> {
        self.check(self.permissions.delete, "deleting")?;
        let mut containers = self.store.containers.lock().unwrap();
        if let Some(c) = containers.get_mut(&(
            self.container.account.clone(),
            self.container.container.clone(),
        )) {
            c.remove(name);
        }
        Ok(())
    }
}

fn missing_container(c: &ContainerRef) -> PortError {
    PortError::NotFound(format!("container {}/{}", c.account, c.container))
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn create_container(&self, container: &ContainerRef) -> Result<(), PortError> {
        self.containers
            .lock()
            .unwrap()
            .entry((container.account.clone(), container.container.clone()))
            .or_default();
        Ok(())
    }

    async fn delete_container(&self, container: &ContainerRef) -> Result<(), PortError> {
        let removed = self
            .containers
            .lock()
            .unwrap()
            .remove(&(container.account.clone(), container.container.clone()));
        for (name, s) in removed.into_iter().flatten() {
            self.notify(container.blob(&name), &s, true);
        }
        Ok(())
    }

    async fn list_blobs(&self, container: &ContainerRef) -> Result<Vec<BlobInfo>, PortError> {
        Ok(self
            .containers
            .lock()
            .unwrap()
            .get(&(container.account.clone(), container.container.clone()))
            .map(|blobs| {
                blobs
                    .iter()
                    .filter(|(_, s)| s.copy != Some(CopyState::Pending))
                    .map(|(name, s)| BlobInfo {
                        name: name.clone(),
                        size: s.data.len() as u64,
                        etag: s.etag.clone(),
                        content: s.content.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn properties(&self, blob: &BlobRef) -> Result<Option<BlobProperties>, PortError> {
        Ok(self
            .containers
            .lock()
            .unwrap()
            .get(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get(&blob.name))
            .map(|s| BlobProperties {
                size: s.data.len() as u64,
                etag: s.etag.clone(),
                copy: s.copy.clone(),
                metadata: s.metadata.clone(),
                content: s.content.clone(),
            }))
    }

    async fn start_copy(
        &self,
        from: &BlobRef,
        to: &BlobRef,
        metadata: &BTreeMap<String, String>,
        only: CopyIf<'_>,
    ) -> Result<CopyState, PortError> {
        let source_etag = only.source_etag;
        let mode = *self.mode.lock().unwrap();
        let etag = self.etag();
        let stored = {
            let mut containers = self.containers.lock().unwrap();
            let source = containers
                .get(&(from.account.clone(), from.container.clone()))
                .and_then(|c| c.get(&from.name))
                .filter(|s| s.copy != Some(CopyState::Pending))
                .ok_or_else(|| {
                    PortError::NotFound(format!(
                        "source blob {}/{}/{}",
                        from.account, from.container, from.name
                    ))
                })?;
            if let Some(wanted) = source_etag
                && source.etag != wanted
            {
                return Err(PortError::PreconditionFailed(format!(
                    "copy source {}/{}/{} is no longer version {wanted}",
                    from.account, from.container, from.name
                )));
            }
            let source = (source.data.clone(), source.content.clone());
            let dest = containers
                .get_mut(&(to.account.clone(), to.container.clone()))
                .ok_or_else(|| {
                    missing_container(&ContainerRef {
                        account: to.account.clone(),
                        container: to.container.clone(),
                    })
                })?;
            let (source, content) = source;
            let current = dest.get(&to.name).map(|b| b.etag.as_str());
            let allowed = match only.destination {
                Destination::Any => true,
                Destination::Absent => current.is_none(),
                Destination::Version(seen) => current == Some(seen),
            };
            if !allowed {
                return Err(PortError::Conflict(format!(
                    "copy destination {}/{}/{} is not the version seen",
                    to.account, to.container, to.name
                )));
            }
            // As the service does: a copy takes the source's content headers along.
            let stored = match mode {
                CopyMode::Instant => Stored {
                    data: source,
                    etag,
                    copy: Some(CopyState::Success),
                    metadata: metadata.clone(),
                    content,
                    tags: BTreeMap::new(),
                    pending: None,
                },
                CopyMode::Pending => Stored {
                    data: Bytes::new(),
                    etag,
                    copy: Some(CopyState::Pending),
                    metadata: metadata.clone(),
                    content,
                    tags: BTreeMap::new(),
                    pending: Some(source),
                },
            };
            dest.insert(to.name.clone(), stored.clone());
            stored
        };
        if mode == CopyMode::Instant {
            self.notify(to.clone(), &stored, false);
        }
        Ok(stored.copy.expect("set above"))
    }

    async fn read(&self, blob: &BlobRef) -> Result<(BlobProperties, ByteStream), PortError> {
        let stored = self
            .containers
            .lock()
            .unwrap()
            .get(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get(&blob.name))
            .cloned()
            .ok_or_else(|| {
                PortError::NotFound(format!(
                    "blob {}/{}/{}",
                    blob.account, blob.container, blob.name
                ))
            })?;
        let props = BlobProperties {
            size: stored.data.len() as u64,
            etag: stored.etag.clone(),
            copy: stored.copy.clone(),
            metadata: stored.metadata.clone(),
            content: stored.content.clone(),
        };
        let data = stored.data;
        let chunk = self.chunk;
        let chunks: Vec<Result<Bytes, PortError>> = (0..data.len())
            .step_by(chunk)
            .map(|start| Ok(data.slice(start..(start + chunk).min(data.len()))))
            .collect();
        Ok((props, Box::pin(futures::stream::iter(chunks))))
    }

    async fn tags(&self, blob: &BlobRef) -> Result<BTreeMap<String, String>, PortError> {
        self.containers
            .lock()
            .unwrap()
            .get(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.get(&blob.name))
            .map(|s| s.tags.clone())
            .ok_or_else(|| {
                PortError::NotFound(format!(
                    "blob {}/{}/{}",
                    blob.account, blob.container, blob.name
                ))
            })
    }

    async fn set_content_headers(
        &self,
        blob: &BlobRef,
        headers: &ContentHeaders,
        if_match: Option<&str>,
    ) -> Result<String, PortError> {
        let etag = self.etag();
        // As on Azure: the call's URL is built from the name, and `.`/`..` segments in it are
        // resolved on the way, so it addresses another blob (or none) than the one listed.
        let name = resolve_dot_segments(&blob.name);
        let mut containers = self.containers.lock().unwrap();
        let stored = name
            .and_then(|name| {
                containers
                    .get_mut(&(blob.account.clone(), blob.container.clone()))
                    .and_then(|c| c.get_mut(&name))
            })
            .ok_or_else(|| {
                PortError::NotFound(format!(
                    "blob {}/{}/{}",
                    blob.account, blob.container, blob.name
                ))
            })?;
        if let Some(wanted) = if_match
            && stored.etag != wanted
        {
            return Err(PortError::PreconditionFailed(format!(
                "{}/{}/{} is no longer version {wanted}",
                blob.account, blob.container, blob.name
            )));
        }
        stored.content = headers.clone();
        // As on the service: new properties are a new version of the blob, and a concluded
        // copy's details (its source URL) are no longer shown.
        stored.etag = etag.clone();
        if stored.copy != Some(CopyState::Pending) {
            stored.copy = None;
        }
        Ok(etag)
    }

    async fn delete_blob_if(&self, blob: &BlobRef, etag: &str) -> Result<bool, PortError> {
        let removed = {
            let mut containers = self.containers.lock().unwrap();
            let Some(c) = containers.get_mut(&(blob.account.clone(), blob.container.clone()))
            else {
                return Ok(false);
            };
            match c.get(&blob.name) {
                Some(stored) if stored.etag == etag => c.remove(&blob.name),
                _ => None,
            }
        };
        match removed {
            Some(s) => {
                self.notify(blob.clone(), &s, true);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_blob(&self, blob: &BlobRef) -> Result<(), PortError> {
        let removed = self
            .containers
            .lock()
            .unwrap()
            .get_mut(&(blob.account.clone(), blob.container.clone()))
            .and_then(|c| c.remove(&blob.name));
        if let Some(s) = removed {
            self.notify(blob.clone(), &s, true);
        }
        Ok(())
    }

    async fn container_link(
        &self,
        container: &ContainerRef,
        sas: &SasRequest,
    ) -> Result<String, PortError> {
        let sp = sas.permissions.as_sas();
        let se = sas
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let sip = sas.ip_range.clone().unwrap_or_default();
        let sig = self.signature(&container.account, &container.container, &sp, &se, &sip);
        let mut url = format!(
            "https://{}.blob.memory.invalid/{}?sv=2026-04-06&sr=c&sp={sp}&se={}&spr=https",
            container.account,
            container.container,
            se.replace(':', "%3A")
        );
        if !sip.is_empty() {
            url.push_str(&format!("&sip={sip}"));
        }
        url.push_str(&format!("&sig={sig}"));
        Ok(url)
    }

    async fn blob_link(&self, blob: &BlobRef, sas: &SasRequest) -> Result<String, PortError> {
        // Read only, for this blob: the resource signed is `container/name`.
        let sp = if sas.permissions.read { "r" } else { "" };
        let se = sas
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let sip = sas.ip_range.clone().unwrap_or_default();
        let resource = format!("{}/{}", blob.container, blob.name);
        let sig = self.signature(&blob.account, &resource, sp, &se, &sip);
        let path: Vec<String> = blob
            .name
            .split('/')
            .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        let mut url = format!(
            "https://{}.blob.memory.invalid/{}/{}?sv=2026-04-06&sr=b&sp={sp}&se={}&spr=https",
            blob.account,
            blob.container,
            path.join("/"),
            se.replace(':', "%3A")
        );
        if !sip.is_empty() {
            url.push_str(&format!("&sip={sip}"));
        }
        url.push_str(&format!("&sig={sig}"));
        Ok(url)
    }
}

/// What a blob link's path escapes in a name's segment (as a URL path does).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A blob name as a URL path resolves it (RFC 3986 dot segments); `None` when it climbs out of
/// its container.
fn resolve_dot_segments(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for segment in name.split('/') {
        match segment {
            "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}
