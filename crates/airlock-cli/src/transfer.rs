//! Uploads and downloads straight to storage through the airlock's container links (a SAS
//! URL): block blobs, several blocks or ranges in flight, a fixed memory budget, progress,
//! and resume.
//!
//! - **Upload**: each file is read once, in order, hashing as it goes; its blocks go up
//!   `parallel` at a time (Put Block), then one Put Block List commits them with the file's
//!   sha256 as metadata. A journal in the config directory records each block sent, so a run
//!   that was interrupted sends only what is missing (uncommitted blocks live a week in Azure
//!   Storage); a file already committed with the same size and sha256 is skipped. Upload
//!   links cannot read (`acwdl`), so the journal, not Get Block List, is what remembers.
//! - **Download**: ranges `parallel` at a time, written in place into `NAME.airlock-part`;
//!   a journal records the ranges done. The whole file is then hashed and must match the
//!   sha256 on the record, or it is an error that names the file; only then is it renamed
//!   into place.
//! - A link that expires within two minutes is renewed (a new `GET .../link`) before the next
//!   block or range; a block refused with 403 is retried once with a fresh link.

use crate::client::{Api, root_cause};
use crate::error::{CliError, CliResult};
use crate::progress::Progress;
use airlock_api::types::ContainerLink;
use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

/// The Blob service version we speak (supported by Azure and Azurite 3.37).
const STORAGE_VERSION: &str = "2025-01-05";
/// Metadata key carrying the sha256 the CLI computed while uploading.
const SHA_METADATA: &str = "airlocksha256";
/// Memory for blocks or ranges in flight, per transfer.
pub const MEMORY_BUDGET: u64 = 64 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;
/// Azure's limit of blocks in one blob.
const MAX_BLOCKS: u64 = 50_000;
const ATTEMPTS: u32 = 5;

/// Block (or range) size for a file: 8 MiB, larger when the file would need more than
/// Azure's 50,000 blocks.
pub fn block_size(size: u64) -> u64 {
    let needed = size.div_ceil(MAX_BLOCKS);
    needed.div_ceil(MIB).max(8) * MIB
}

/// How many blocks may be in flight within the memory budget (at least 2).
fn parallel(block: u64) -> usize {
    ((MEMORY_BUDGET / block).max(2)) as usize
}

/// The link of one request, renewed when it is about to expire.
pub struct Link<'a> {
    api: &'a Api,
    workspace: String,
    id: String,
    current: Mutex<ContainerLink>,
}

impl<'a> Link<'a> {
    pub async fn get(api: &'a Api, workspace: &str, id: &str) -> CliResult<Link<'a>> {
        let link = api.link(workspace, id).await?;
        Ok(Link {
            api,
            workspace: workspace.into(),
            id: id.into(),
            current: Mutex::new(link),
        })
    }

    pub async fn permissions(&self) -> String {
        self.current.lock().await.permissions.clone()
    }

    /// The container URL, renewed first when it expires within two minutes (or `force`).
    async fn container(&self, force: bool) -> CliResult<Url> {
        let mut link = self.current.lock().await;
        if force || link.expires_at < chrono::Utc::now() + chrono::Duration::minutes(2) {
            *link = self.api.link(&self.workspace, &self.id).await?;
        }
        Url::parse(&link.container_url).map_err(|e| {
            CliError::Failed(format!("the airlock gave a link that is not a URL: {e}"))
        })
    }

    /// The URL of a blob in the container, with the SAS and `extra` query parameters.
    async fn blob(&self, name: &str, extra: &[(&str, &str)], force: bool) -> CliResult<Url> {
        let mut url = self.container(force).await?;
        url.path_segments_mut()
            .map_err(|()| CliError::Failed("the link cannot name a blob".into()))?
            .extend(name.split('/'));
        if !extra.is_empty() {
            url.query_pairs_mut().extend_pairs(extra);
        }
        Ok(url)
    }
}

/// One storage call with retries; `url` builds the URL for an attempt (`true` after a 403:
/// renew the link first).
async fn storage_call<F>(
    what: &str,
    link: &Link<'_>,
    name: &str,
    extra: &[(&str, &str)],
    build: F,
) -> CliResult<reqwest::Response>
where
    F: Fn(Url) -> reqwest::RequestBuilder,
{
    let mut renewed = false;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt.min(5))).await;
        }
        let url = link.blob(name, extra, renewed).await?;
        let result = build(url)
            .header("x-ms-version", STORAGE_VERSION)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return Ok(r),
            Ok(r) if r.status() == StatusCode::FORBIDDEN && !renewed => {
                renewed = true;
                last = storage_error(r).await;
            }
            Ok(r)
                if r.status().is_server_error()
                    || r.status() == StatusCode::REQUEST_TIMEOUT
                    || r.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                last = storage_error(r).await;
            }
            Ok(r) => {
                return Err(CliError::Failed(format!(
                    "{what} {name}: storage refused: {}",
                    storage_error(r).await
                )));
            }
            Err(e) => last = root_cause(&e),
        }
    }
    Err(CliError::Failed(format!(
        "{what} {name}: gave up after {ATTEMPTS} attempts: {last}"
    )))
}

async fn storage_error(r: reqwest::Response) -> String {
    let status = r.status();
    let code = r
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match code {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}

/// A blob as a container listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub size: u64,
    pub sha256: Option<String>,
}

/// The container's blobs (the link must allow `l`).
pub async fn list(http: &reqwest::Client, link: &Link<'_>) -> CliResult<BTreeMap<String, Listed>> {
    let mut out = BTreeMap::new();
    let mut marker = String::new();
    loop {
        let mut url = link.container(false).await?;
        url.query_pairs_mut()
            .append_pair("restype", "container")
            .append_pair("comp", "list")
            .append_pair("include", "metadata");
        if !marker.is_empty() {
            url.query_pairs_mut().append_pair("marker", &marker);
        }
        let response = http
            .get(url)
            .header("x-ms-version", STORAGE_VERSION)
            .send()
            .await
            .map_err(|e| CliError::Unreachable(format!("storage: {}", root_cause(&e))))?;
        if !response.status().is_success() {
            return Err(CliError::Failed(format!(
                "listing the container: {}",
                storage_error(response).await
            )));
        }
        let xml = response
            .text()
            .await
            .map_err(|e| CliError::Failed(format!("listing the container: {e}")))?;
        let page = parse_listing(&xml)
            .map_err(|e| CliError::Failed(format!("listing the container: {e}")))?;
        for blob in page.blobs.blob {
            let listed = Listed {
                size: blob.properties.content_length,
                sha256: blob.metadata.sha256,
            };
            out.insert(blob.name, listed);
        }
        marker = page.next_marker.unwrap_or_default();
        if marker.is_empty() {
            return Ok(out);
        }
    }
}

/// A journal of what a transfer finished: a header line (what the transfer is of) and one
/// line per block or range done, appended as each finishes, so a crash loses at most the
/// blocks in flight.
struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// Opens the journal at `path` for a transfer described by `header`: the lines done so
    /// far when the header matches (same file, same size, same block size), none otherwise.
    fn open(path: &Path, header: &str) -> CliResult<(Journal, Vec<String>)> {
        let io = |e| CliError::io(format!("the transfer journal {}", path.display()), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = existing.lines();
        let done: Vec<String> = if lines.next() == Some(header) {
            lines.map(str::to_string).collect()
        } else {
            Vec::new()
        };
        let mut file = std::fs::File::create(path).map_err(io)?;
        writeln!(file, "{header}").map_err(io)?;
        for line in &done {
            writeln!(file, "{line}").map_err(io)?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            done,
        ))
    }

    fn record(&mut self, line: &str) -> CliResult<()> {
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(|e| CliError::io(format!("the transfer journal {}", self.path.display()), e))
    }

    fn remove(self) {
        std::fs::remove_file(&self.path).ok();
    }
}

/// The requests whose upload journals hold an unfinished upload of one of `files` (same blob
/// name, size and modification time) and a journal for every one of them: an export of the
/// same folder that was interrupted. Newest journal first.
pub fn interrupted_uploads_of(dir: &Path, files: &[Upload]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, String)> = Vec::new();
    for entry in entries.flatten() {
        let request = entry.file_name().to_string_lossy().into_owned();
        let mut all_known = true;
        let mut unfinished = false;
        let mut newest = std::time::UNIX_EPOCH;
        for file in files {
            let path = journal_path(dir, &request, &file.name, "upload");
            let Ok(text) = std::fs::read_to_string(&path) else {
                all_known = false;
                break;
            };
            let mut lines = text.lines();
            let header: serde_json::Value = lines
                .next()
                .and_then(|h| serde_json::from_str(h).ok())
                .unwrap_or_default();
            let modified = std::fs::metadata(&file.local)
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            if header["upload"] != file.name.as_str()
                || header["size"] != file.size
                || header["modified"] != modified.to_string().as_str()
            {
                all_known = false;
                break;
            }
            unfinished |= !lines.any(|l| l.starts_with("committed "));
            if let Ok(t) = std::fs::metadata(&path).and_then(|m| m.modified()) {
                newest = newest.max(t);
            }
        }
        if all_known && unfinished && !files.is_empty() {
            found.push((newest, request));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found.into_iter().map(|(_, r)| r).collect()
}

fn journal_path(dir: &Path, request: &str, name: &str, kind: &str) -> PathBuf {
    let key = hex::encode(Sha256::digest(name.as_bytes()));
    dir.join(request).join(format!("{}.{kind}", &key[..32]))
}

fn block_id(index: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("airlock-block-{index:08}"))
}

/// A local file to upload and the blob name it gets.
#[derive(Clone, Debug)]
pub struct Upload {
    pub local: PathBuf,
    pub name: String,
    pub size: u64,
}

/// What an upload did with one file.
#[derive(Clone, Debug)]
pub struct Uploaded {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// Already in the container from an earlier run: nothing sent.
    pub skipped: bool,
    /// Bytes sent by this run (less than `size` when an interrupted upload resumed).
    pub sent: u64,
}

/// Uploads `files` through the request's upload link.
pub async fn upload(
    api: &Api,
    workspace: &str,
    id: &str,
    files: &[Upload],
    progress: &Progress,
) -> CliResult<Vec<Uploaded>> {
    let link = Link::get(api, workspace, id).await?;
    let permissions = link.permissions().await;
    if !permissions.contains('w') {
        return Err(CliError::Refused(format!(
            "the request's link only allows {permissions:?}: files can be uploaded to a draft only"
        )));
    }
    let listed = list(&api.http, &link).await?;
    let dir = api.settings.transfers_dir();
    let mut done = Vec::new();
    for file in files {
        let bar = progress.file(&file.name, file.size);
        let result = upload_one(
            &api.http,
            &link,
            id,
            file,
            listed.get(&file.name),
            &dir,
            progress,
            &bar,
        )
        .await;
        bar.finish_and_clear();
        done.push(result?);
    }
    Ok(done)
}

#[allow(clippy::too_many_arguments)]
async fn upload_one(
    http: &reqwest::Client,
    link: &Link<'_>,
    id: &str,
    file: &Upload,
    listed: Option<&Listed>,
    dir: &Path,
    progress: &Progress,
    bar: &indicatif::ProgressBar,
) -> CliResult<Uploaded> {
    let meta = std::fs::metadata(&file.local)
        .map_err(|e| CliError::io(format!("reading {}", file.local.display()), e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let block = block_size(file.size);
    let header = serde_json::json!({"upload": file.name, "size": file.size, "modified": modified.to_string(), "block": block}).to_string();
    let path = journal_path(dir, id, &file.name, "upload");
    let (mut journal, lines) = Journal::open(&path, &header)?;
    // Committed before, and still there as committed: nothing to send.
    let committed = lines.iter().find_map(|l| l.strip_prefix("committed "));
    if let (Some(sha), Some(listed)) = (committed, listed)
        && listed.size == file.size
        && listed.sha256.as_deref() == Some(sha)
    {
        progress.advance(bar, file.size);
        return Ok(Uploaded {
            name: file.name.clone(),
            size: file.size,
            sha256: sha.to_string(),
            skipped: true,
            sent: 0,
        });
    }
    if file.size == 0 {
        // Nothing to put in a block (a block cannot be empty): one Put Blob.
        let sha256 = hex::encode(Sha256::digest([]));
        storage_call("uploading", link, &file.name, &[], |url| {
            http.put(url)
                .header("x-ms-blob-type", "BlockBlob")
                .header(format!("x-ms-meta-{SHA_METADATA}"), &sha256)
                .body(Vec::new())
        })
        .await?;
        journal.record(&format!("committed {sha256}"))?;
        return Ok(Uploaded {
            name: file.name.clone(),
            size: 0,
            sha256,
            skipped: false,
            sent: 0,
        });
    }
    let sent: BTreeSet<u64> = lines.iter().filter_map(|l| l.parse().ok()).collect();
    let blocks = file.size.div_ceil(block);

    // Read in order (hashing), send out of order, `parallel` blocks in memory at most.
    let reader = tokio::fs::File::open(&file.local)
        .await
        .map_err(|e| CliError::io(format!("reading {}", file.local.display()), e))?;
    let hasher = Arc::new(std::sync::Mutex::new(Sha256::new()));
    let state = (reader, 0u64, hasher.clone());
    let local = file.local.clone();
    let size = file.size;
    let reads = futures::stream::try_unfold(state, move |(mut reader, index, hasher)| {
        let local = local.clone();
        async move {
            if index >= blocks {
                return Ok(None);
            }
            let len = (size - index * block).min(block) as usize;
            let mut buffer = vec![0u8; len];
            reader.read_exact(&mut buffer).await.map_err(|e| {
                CliError::io(
                    format!(
                        "reading {} (did it change during the upload?)",
                        local.display()
                    ),
                    e,
                )
            })?;
            hasher.lock().unwrap().update(&buffer);
            Ok(Some((
                (index, Bytes::from(buffer)),
                (reader, index + 1, hasher),
            )))
        }
    });
    let journal_ref = &std::sync::Mutex::new(&mut journal);
    let sent_bytes = &std::sync::atomic::AtomicU64::new(0);
    reads
        .try_filter_map(|(index, data)| {
            let skip = sent.contains(&index);
            if skip {
                progress.advance(bar, data.len() as u64);
            }
            async move { Ok((!skip).then_some((index, data))) }
        })
        .map_ok(|(index, data)| async move {
            let id = block_id(index);
            let len = data.len() as u64;
            storage_call(
                "uploading",
                link,
                &file.name,
                &[("comp", "block"), ("blockid", &id)],
                |url| http.put(url).body(data.clone()),
            )
            .await?;
            journal_ref.lock().unwrap().record(&index.to_string())?;
            sent_bytes.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            progress.advance(bar, len);
            Ok::<_, CliError>(())
        })
        .try_buffer_unordered(parallel(block))
        .try_collect::<Vec<()>>()
        .await?;
    let sha256 = hex::encode(hasher.lock().unwrap().clone().finalize());
    let list: String = (0..blocks)
        .map(|i| format!("<Latest>{}</Latest>", block_id(i)))
        .collect();
    let body = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>");
    let commit = storage_call(
        "committing",
        link,
        &file.name,
        &[("comp", "blocklist")],
        |url| {
            http.put(url)
                .header(format!("x-ms-meta-{SHA_METADATA}"), &sha256)
                .header(
                    "x-ms-blob-content-type",
                    airlock_domain::policy::content_type_for(&file.name),
                )
                .body(body.clone())
        },
    )
    .await;
    if let Err(e) = commit {
        // Blocks the journal remembers may be gone (a week unused, or the blob replaced):
        // start this file over next time.
        journal.remove();
        return Err(e);
    }
    journal.record(&format!("committed {sha256}"))?;
    Ok(Uploaded {
        name: file.name.clone(),
        size: file.size,
        sha256,
        skipped: false,
        sent: sent_bytes.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// A file to download and what the record says it must be.
#[derive(Clone, Debug)]
pub struct Download {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub dest: PathBuf,
}

/// Downloads `files` through the request's read link, each verified against its sha256.
pub async fn download(
    api: &Api,
    workspace: &str,
    id: &str,
    files: &[Download],
    progress: &Progress,
) -> CliResult<Vec<bool>> {
    let link = Link::get(api, workspace, id).await?;
    let permissions = link.permissions().await;
    if !permissions.contains('r') {
        return Err(CliError::Refused(format!(
            "the request's link allows {permissions:?}, not reading: nothing can be downloaded now"
        )));
    }
    let dir = api.settings.transfers_dir();
    let mut skipped = Vec::new();
    for file in files {
        let bar = progress.file(&file.name, file.size);
        let result = download_one(&api.http, &link, id, file, &dir, progress, &bar).await;
        bar.finish_and_clear();
        skipped.push(result?);
    }
    Ok(skipped)
}

/// The sha256 (hex) of a local file, read in 8 MiB pieces.
pub async fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 8 * MIB as usize];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Returns whether the file was already there, complete and verified.
async fn download_one(
    http: &reqwest::Client,
    link: &Link<'_>,
    id: &str,
    file: &Download,
    dir: &Path,
    progress: &Progress,
    bar: &indicatif::ProgressBar,
) -> CliResult<bool> {
    let io = |what: &str, e| CliError::io(format!("{what} {}", file.dest.display()), e);
    if let Ok(meta) = std::fs::metadata(&file.dest)
        && meta.len() == file.size
        && sha256_file(&file.dest).await.ok().as_deref() == Some(file.sha256.as_str())
    {
        progress.advance(bar, file.size);
        return Ok(true);
    }
    if let Some(parent) = file.dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the folder of", e))?;
    }
    let part = PathBuf::from(format!("{}.airlock-part", file.dest.display()));
    let chunk = block_size(file.size);
    let header = serde_json::json!({"download": file.name, "size": file.size, "sha256": file.sha256, "chunk": chunk}).to_string();
    let path = journal_path(dir, id, &file.name, "download");
    let (mut journal, lines) = Journal::open(&path, &header)?;
    let mut done: BTreeSet<u64> = lines.iter().filter_map(|l| l.parse().ok()).collect();
    if !part.exists() {
        done.clear();
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .map_err(|e| io("writing", e))?;
    out.set_len(file.size).map_err(|e| io("writing", e))?;
    let out = Arc::new(out);
    let chunks = file.size.div_ceil(chunk);
    for index in &done {
        progress.advance(bar, (file.size - index * chunk).min(chunk));
    }
    let journal_ref = &std::sync::Mutex::new(&mut journal);
    futures::stream::iter((0..chunks).filter(|i| !done.contains(i)))
        .map(|index| {
            let out = out.clone();
            async move {
                let start = index * chunk;
                let end = (start + chunk).min(file.size) - 1;
                let range = format!("bytes={start}-{end}");
                let response = storage_call("downloading", link, &file.name, &[], |url| {
                    http.get(url).header("x-ms-range", &range)
                })
                .await?;
                // Into a buffer of exactly the range's size: what is in flight stays within
                // the budget (collecting the body otherwise grows by doubling).
                let mut response = response;
                let mut data = Vec::with_capacity((end - start + 1) as usize);
                while let Some(piece) = response.chunk().await.map_err(|e| {
                    CliError::Failed(format!("downloading {}: {}", file.name, root_cause(&e)))
                })? {
                    data.extend_from_slice(&piece);
                }
                if data.len() as u64 != end - start + 1 {
                    return Err(CliError::Failed(format!(
                        "downloading {}: storage sent {} bytes for a range of {}",
                        file.name,
                        data.len(),
                        end - start + 1
                    )));
                }
                let len = data.len() as u64;
                tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    out.write_all_at(&data, start)
                })
                .await
                .map_err(|e| CliError::Failed(format!("writing {}: {e}", file.name)))?
                .map_err(|e| io("writing", e))?;
                journal_ref.lock().unwrap().record(&index.to_string())?;
                progress.advance(bar, len);
                Ok::<_, CliError>(())
            }
        })
        .buffer_unordered(parallel(chunk))
        .try_collect::<Vec<()>>()
        .await?;
    out.sync_all().map_err(|e| io("writing", e))?;
    let got = sha256_file(&part).await.map_err(|e| io("reading", e))?;
    if got != file.sha256 {
        std::fs::remove_file(&part).ok();
        journal.remove();
        return Err(CliError::Failed(format!(
            "{}: the download does not match the sha256 on the record (expected {}, got {got}); it was removed, run the command again",
            file.name, file.sha256
        )));
    }
    std::fs::rename(&part, &file.dest).map_err(|e| io("moving into place", e))?;
    journal.remove();
    Ok(false)
}

/// A page of the Blob service's List Blobs answer (only what the CLI reads; the rest of the
/// XML is ignored).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default)]
    blobs: ListedBlobs,
    #[serde(default)]
    next_marker: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListedBlobs {
    #[serde(rename = "Blob", default)]
    blob: Vec<ListedBlob>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedBlob {
    name: String,
    #[serde(default)]
    properties: ListedProperties,
    #[serde(default)]
    metadata: ListedMetadata,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListedProperties {
    #[serde(rename = "Content-Length", default)]
    content_length: u64,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListedMetadata {
    #[serde(rename = "airlocksha256", default)]
    sha256: Option<String>,
}

fn parse_listing(xml: &str) -> Result<Listing, quick_xml::DeError> {
    quick_xml::de::from_str(xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_stay_within_azure_limits() {
        for (size, block) in [
            (0, 8 * MIB),
            (1, 8 * MIB),
            (10 * 1024 * MIB, 8 * MIB),
            (400 * 1024 * MIB, 9 * MIB),
            (4 * 1024 * 1024 * MIB, 84 * MIB),
        ] {
            assert_eq!(block_size(size), block, "{size}");
            assert!(size.div_ceil(block_size(size)) <= MAX_BLOCKS);
        }
        assert_eq!(parallel(8 * MIB), 8);
        assert_eq!(parallel(84 * MIB), 2);
    }

    #[test]
    fn listing_xml() {
        let xml = "<EnumerationResults><Blobs><Blob><Name>a &amp; b/c.csv</Name><Properties><Content-Length>16</Content-Length></Properties><Metadata><airlocksha256>ab</airlocksha256></Metadata></Blob><Blob><Name>d</Name><Properties><Content-Length>0</Content-Length></Properties></Blob></Blobs><NextMarker/></EnumerationResults>";
        let page = parse_listing(xml).unwrap();
        let blobs = &page.blobs.blob;
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0].name, "a & b/c.csv");
        assert_eq!(blobs[0].properties.content_length, 16);
        assert_eq!(blobs[0].metadata.sha256.as_deref(), Some("ab"));
        assert_eq!(blobs[1].metadata.sha256, None);
        assert_eq!(page.next_marker.unwrap_or_default(), "");
        let next = parse_listing(
            "<EnumerationResults><Blobs /><NextMarker>2!abc&lt;</NextMarker></EnumerationResults>",
        )
        .unwrap();
        assert!(next.blobs.blob.is_empty());
        assert_eq!(next.next_marker.as_deref(), Some("2!abc<"));
        assert!(parse_listing("<EnumerationResults><Blobs><Blob>").is_err());
    }

    #[test]
    fn journal_keeps_lines_only_for_the_same_transfer() {
        let dir = std::env::temp_dir().join(format!("airlock-cli-journal-{}", std::process::id()));
        let path = dir.join("j");
        let (mut j, done) = Journal::open(&path, "h1").unwrap();
        assert!(done.is_empty());
        j.record("3").unwrap();
        j.record("5").unwrap();
        drop(j);
        let (_, done) = Journal::open(&path, "h1").unwrap();
        assert_eq!(done, vec!["3", "5"]);
        let (_, done) = Journal::open(&path, "h2").unwrap();
        assert!(done.is_empty(), "another file's progress is never reused");
        std::fs::remove_dir_all(dir).ok();
    }
}
