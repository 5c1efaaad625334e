//! Azure Blob Storage on `azure_storage_blob` with an Entra token credential; links and copy
//! sources are user-delegation SAS (never an account key), HTTPS only.

use super::errors::{error_code, port_error};
use crate::ports::{
    BlobInfo, BlobProperties, BlobRef, BlobStore, ByteStream, ContainerRef, ContentHeaders, CopyIf,
    CopyState, Destination, PortError, SasRequest,
};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{RequestContent, Url, XmlFormat};
use azure_core::time::{Duration, OffsetDateTime};
use azure_storage_blob::models::{
    BlobClientGetPropertiesResultHeaders, BlobClientStartCopyFromUrlOptions,
    BlobContainerClientCreateOptions, CopyStatus, KeyInfo,
};
use azure_storage_blob::{
    BlobClient, BlobContainerClient, BlobServiceClient, BlobServiceClientOptions,
};
use azure_storage_common::models::UserDelegationKey;
use azure_storage_sas::{SasBuilder, SasIpRange, SasProtocol};
use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Mutex;

/// How long a user-delegation key is asked for, and when it is renewed.
const KEY_LIFETIME: Duration = Duration::hours(12);
const KEY_RENEW_BEFORE: Duration = Duration::hours(2);
/// Lifetime of the read-only, single-blob SAS on a copy source; copies that take longer fail
/// and are restarted. Kept short because the destination shows it as `x-ms-copy-source`
/// until its properties are next set (the approved copy's are; the sealed copy's are not, as
/// that would change the version its scan verdict is about). A server-side copy within a
/// region moves a 50 GiB blob well inside an hour.
const COPY_SOURCE_LIFETIME: Duration = Duration::hours(1);

/// Ranges one read downloads at once, and their size: at most 8 MiB in memory per read,
/// and enough requests in flight to keep a stream going.
const READ_PARALLEL: usize = 4;
const READ_PARTITION: usize = 2 * 1024 * 1024;

pub struct AzureBlobStore {
    /// `https://{account}.blob.core.windows.net` on Azure, `https://127.0.0.1:10000/{account}`
    /// on Azurite.
    endpoint_template: String,
    credential: Arc<dyn TokenCredential>,
    services: std::sync::Mutex<HashMap<String, Arc<BlobServiceClient>>>,
    keys: Mutex<HashMap<String, UserDelegationKey>>,
}

impl AzureBlobStore {
    /// Replaces a blob's index tags. Not a port: only the local stand-in for Defender writes
    /// verdict tags (on Azure, Defender does).
    pub async fn set_tags(
        &self,
        b: &BlobRef,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), PortError> {
        let tags: std::collections::HashMap<String, String> = tags.clone().into_iter().collect();
        let content: RequestContent<azure_storage_blob::models::BlobTags, XmlFormat> =
            azure_storage_blob::models::BlobTags::from(tags)
                .try_into()
                .map_err(|e: azure_core::Error| PortError::Permanent(format!("blob tags: {e}")))?;
        self.blob(b)?
            .set_tags(content, None)
            .await
            .map(|_| ())
            .map_err(|e| port_error("writing blob tags", e))
    }

    /// Writes a small blob whole. Not a port: only the local stand-in for Event Grid writes
    /// dead letters with it (on Azure, Event Grid does).
    pub async fn put_blob(&self, b: &BlobRef, bytes: Vec<u8>) -> Result<(), PortError> {
        self.blob(b)?
            .upload(RequestContent::from(bytes), None)
            .await
            .map(|_| ())
            .map_err(|e| port_error("writing a blob", e))
    }

    pub fn new(
        endpoint_template: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, String> {
        if !endpoint_template.contains("{account}") {
            return Err(format!(
                "the blob endpoint template {endpoint_template:?} has no {{account}}"
            ));
        }
        if !endpoint_template.starts_with("https://") {
            return Err(format!(
                "the blob endpoint {endpoint_template:?} must use https"
            ));
        }
        Ok(AzureBlobStore {
            endpoint_template: endpoint_template.trim_end_matches('/').to_string(),
            credential,
            services: std::sync::Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        })
    }

    pub fn account_url(&self, account: &str) -> String {
        self.endpoint_template.replace("{account}", account)
    }

    fn service(&self, account: &str) -> Result<Arc<BlobServiceClient>, PortError> {
        let mut services = self.services.lock().expect("not poisoned");
        if let Some(s) = services.get(account) {
            return Ok(s.clone());
        }
        let url = Url::parse(&self.account_url(account))
            .map_err(|e| PortError::Permanent(format!("blob endpoint: {e}")))?;
        let client = Arc::new(
            BlobServiceClient::new(
                url,
                Some(self.credential.clone()),
                Some(BlobServiceClientOptions::default()),
            )
            .map_err(|e| PortError::Permanent(format!("blob client for {account}: {e}")))?,
        );
        services.insert(account.to_string(), client.clone());
        Ok(client)
    }

    fn container(&self, c: &ContainerRef) -> Result<BlobContainerClient, PortError> {
        Ok(self
            .service(&c.account)?
            .blob_container_client(&c.container))
    }

    /// Names of the account's containers (the local router watches stage accounts with it).
    pub async fn list_containers(&self, account: &str) -> Result<Vec<String>, PortError> {
        let mut pager = self
            .service(account)?
            .list_containers(None)
            .map_err(|e| port_error("listing containers", e))?;
        let mut out = Vec::new();
        while let Some(item) = pager
            .try_next()
            .await
            .map_err(|e| port_error("listing containers", e))?
        {
            if let Some(name) = item.name {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The blob's URL, with `/` in the name kept as a path separator.
    pub fn blob_url(&self, b: &BlobRef) -> String {
        format!(
            "{}/{}/{}",
            self.account_url(&b.account),
            b.container,
            crate::domain::url::encode_path(&b.name)
        )
    }

    fn blob(&self, b: &BlobRef) -> Result<BlobClient, PortError> {
        let url = Url::parse(&self.blob_url(b))
            .map_err(|e| PortError::Permanent(format!("blob url: {e}")))?;
        BlobClient::new(url, Some(self.credential.clone()), None)
            .map_err(|e| PortError::Permanent(e.to_string()))
    }

    /// A user-delegation key for the account that stays valid until at least `until` (a SAS
    /// is only as valid as the key it is signed with), cached until shortly before it
    /// expires. Keys live at most 7 days (the service's limit).
    async fn delegation_key(
        &self,
        account: &str,
        until: OffsetDateTime,
    ) -> Result<UserDelegationKey, PortError> {
        let mut keys = self.keys.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(key) = keys.get(account)
            && key
                .signed_expiry
                .is_some_and(|e| e - now > KEY_RENEW_BEFORE && e >= until)
        {
            return Ok(key.clone());
        }
        let expiry = (now + KEY_LIFETIME)
            .max(until + Duration::hours(1))
            .min(now + Duration::days(7));
        let info = KeyInfo {
            start: Some(now - Duration::minutes(5)),
            expiry: Some(expiry),
            ..Default::default()
        };
        let content: RequestContent<KeyInfo, XmlFormat> = info
            .try_into()
            .map_err(|e: azure_core::Error| PortError::Permanent(format!("key info: {e}")))?;
        let key: UserDelegationKey = self
            .service(account)?
            .get_user_delegation_key(content, None)
            .await
            .map_err(|e| port_error("getting a user delegation key", e))?
            .into_model()
            .map_err(|e| PortError::Permanent(format!("user delegation key: {e}")))?;
        keys.insert(account.to_string(), key.clone());
        Ok(key)
    }

    async fn sas(
        &self,
        c: &ContainerRef,
        sas: &SasRequest,
        blob: Option<&str>,
    ) -> Result<String, PortError> {
        let expiry = OffsetDateTime::from_unix_timestamp(sas.expires_at.timestamp())
            .map_err(|e| PortError::Permanent(format!("expiry: {e}")))?;
        let key = self.delegation_key(&c.account, expiry).await?;
        let builder = SasBuilder::new(c.account.clone(), &key, expiry)
            .map_err(|e| PortError::Permanent(format!("SAS: {e}")))?
            .protocol(SasProtocol::Https);
        let builder = match &sas.ip_range {
            None => builder,
            Some(range) => builder.ip_range(parse_ip_range(range)?),
        };
        let p = sas.permissions;
        Ok(match blob {
            Some(name) => {
                let mut b = builder.blob(c.container.clone(), name.to_string());
                if p.read {
                    b = b.read();
                }
                b.build()
            }
            None => {
                let mut b = builder.container(c.container.clone());
                if p.read {
                    b = b.read();
                }
                if p.add {
                    b = b.add();
                }
                if p.create {
                    b = b.create();
                }
                if p.write {
                    b = b.write();
                }
                if p.delete {
                    b = b.delete();
                }
                if p.list {
                    b = b.list();
                }
                b.build()
            }
        })
    }
}

fn parse_ip_range(range: &str) -> Result<SasIpRange, PortError> {
    let bad = || {
        PortError::Permanent(format!(
            "IP range {range:?} is not an IPv4 address or a-b range"
        ))
    };
    match range.split_once('-') {
        Some((a, b)) => Ok(SasIpRange::InclusiveRange {
            start: a.parse().map_err(|_| bad())?,
            end: b.parse().map_err(|_| bad())?,
        }),
        None => Ok(SasIpRange::Address(range.parse().map_err(|_| bad())?)),
    }
}

fn copy_state(status: Option<CopyStatus>, description: Option<String>) -> Option<CopyState> {
    status.map(|s| match s {
        CopyStatus::Pending => CopyState::Pending,
        CopyStatus::Success => CopyState::Success,
        other => CopyState::Failed(format!("{other:?}: {}", description.unwrap_or_default())),
    })
}

/// ETags in their quoted HTTP form, whichever way the service returned them (listings give
/// them bare, headers quoted), so versions compare equal across calls.
fn etag(e: Option<azure_core::http::Etag>) -> String {
    let raw = e.map(|e| e.to_string()).unwrap_or_default();
    let bare = raw.trim_matches('"');
    if bare.is_empty() {
        String::new()
    } else {
        format!("\"{bare}\"")
    }
}

fn lower(metadata: HashMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    async fn create_container(&self, c: &ContainerRef) -> Result<(), PortError> {
        match self
            .container(c)?
            .create(Some(BlobContainerClientCreateOptions::default()))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("ContainerAlreadyExists") => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("ContainerBeingDeleted") => Err(
                PortError::Transient(format!("container {} is still being deleted", c.container)),
            ),
            Err(e) => Err(port_error("creating a container", e)),
        }
    }

    async fn delete_container(&self, c: &ContainerRef) -> Result<(), PortError> {
        match self.container(c)?.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("ContainerBeingDeleted") => Ok(()),
            Err(e) => Err(port_error("deleting a container", e)),
        }
    }

    async fn list_blobs(&self, c: &ContainerRef) -> Result<Vec<BlobInfo>, PortError> {
        let mut pager = self
            .container(c)?
            .list_blobs(None)
            .map_err(|e| port_error("listing blobs", e))?;
        let mut out = Vec::new();
        loop {
            match pager.try_next().await {
                Ok(Some(item)) => {
                    let props = item.properties.unwrap_or_default();
                    if matches!(props.copy_status, Some(CopyStatus::Pending)) {
                        continue;
                    }
                    // An absent header may be listed as an empty element.
                    let given = |h: Option<String>| h.filter(|v| !v.is_empty());
                    out.push(BlobInfo {
                        name: item.name.unwrap_or_default(),
                        size: props.content_length.unwrap_or(0),
                        etag: etag(props.etag),
                        content: ContentHeaders {
                            content_type: given(props.content_type),
                            cache_control: given(props.cache_control),
                            content_disposition: given(props.content_disposition),
                            content_encoding: given(props.content_encoding),
                            content_language: given(props.content_language),
                        },
                    });
                }
                Ok(None) => return Ok(out),
                Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                    return Ok(vec![]);
                }
                Err(e) => return Err(port_error("listing blobs", e)),
            }
        }
    }

    async fn properties(&self, b: &BlobRef) -> Result<Option<BlobProperties>, PortError> {
        let response = match self.blob(b)?.get_properties(None).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => {
                return Ok(None);
            }
            Err(e) => return Err(port_error("reading blob properties", e)),
        };
        let h = |e: azure_core::Error| PortError::Permanent(format!("blob properties: {e}"));
        Ok(Some(BlobProperties {
            size: response.content_length().map_err(h)?.unwrap_or(0),
            etag: response
                .etag()
                .map_err(h)?
                .map(|e| e.to_string())
                .unwrap_or_default(),
            copy: copy_state(
                response.copy_status().map_err(h)?,
                response.copy_status_description().map_err(h)?,
            ),
            metadata: lower(response.metadata().map_err(h)?),
            content: ContentHeaders {
                content_type: response.content_type().map_err(h)?,
                cache_control: response.cache_control().map_err(h)?,
                content_disposition: response.content_disposition().map_err(h)?,
                content_encoding: response.content_encoding().map_err(h)?,
                content_language: response.content_language().map_err(h)?,
            },
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
        // The source is read with a short-lived, read-only user-delegation SAS, so copies
        // work across accounts without the destination holding any key.
        let source_container = ContainerRef {
            account: from.account.clone(),
            container: from.container.clone(),
        };
        let sas = SasRequest {
            permissions: crate::domain::SasPermissions {
                read: true,
                ..Default::default()
            },
            expires_at: chrono::Utc::now()
                + chrono::Duration::seconds(COPY_SOURCE_LIFETIME.whole_seconds()),
            ip_range: None,
        };
        let token = self.sas(&source_container, &sas, Some(&from.name)).await?;
        let source = format!("{}?{token}", self.blob_url(from));
        let options = BlobClientStartCopyFromUrlOptions {
            metadata: Some(metadata.clone().into_iter().collect()),
            source_if_match: source_etag.map(azure_core::http::Etag::from),
            if_none_match: (only.destination == Destination::Absent)
                .then(|| azure_core::http::Etag::from("*")),
            if_match: match only.destination {
                Destination::Version(etag) => Some(azure_core::http::Etag::from(etag)),
                Destination::Any | Destination::Absent => None,
            },
            ..Default::default()
        };
        let response = self
            .blob(to)?
            .start_copy_from_url(source, Some(options))
            .await
            .map_err(|e| match e.http_status() {
                // The service reports a missing source as 404 (or 403 CannotVerifyCopySource).
                Some(azure_core::http::StatusCode::NotFound) => PortError::NotFound(format!(
                    "copy source {}/{}/{}",
                    from.account, from.container, from.name
                )),
                // The destination condition: it was copied or written meanwhile. (409 is
                // what the service answers `If-None-Match: *` on an existing blob.)
                Some(azure_core::http::StatusCode::Conflict) => PortError::Conflict(format!(
                    "copy destination {}/{}/{} exists",
                    to.account, to.container, to.name
                )),
                Some(azure_core::http::StatusCode::PreconditionFailed) => {
                    PortError::PreconditionFailed(format!(
                        "copy source {}/{}/{} is no longer version {}",
                        from.account,
                        from.container,
                        from.name,
                        source_etag.unwrap_or("?")
                    ))
                }
                _ => port_error("starting a copy", e),
            });
        // A 412 does not say reliably which condition failed (Azure names the source's
        // `SourceConditionNotMet`, Azurite says `ConditionNotMet` for both): with both set, the
        // source's version decides.
        let response = match response {
            Err(PortError::PreconditionFailed(why)) if only.destination != Destination::Any => {
                let source_changed = match source_etag {
                    None => false,
                    Some(wanted) => self
                        .properties(from)
                        .await?
                        .is_none_or(|p| p.etag != wanted),
                };
                return Err(if source_changed {
                    PortError::PreconditionFailed(why)
                } else {
                    PortError::Conflict(format!(
                        "copy destination {}/{}/{} is no longer the version seen",
                        to.account, to.container, to.name
                    ))
                });
            }
            other => other?,
        };
        use azure_storage_blob::models::BlobClientStartCopyFromUrlResultHeaders;
        let status = response
            .copy_status()
            .map_err(|e| PortError::Permanent(format!("copy status: {e}")))?;
        Ok(copy_state(status, None).unwrap_or(CopyState::Pending))
    }

    async fn read(&self, b: &BlobRef) -> Result<(BlobProperties, ByteStream), PortError> {
        // The SDK downloads in parallel ranges and holds each range in memory until it is
        // read in order: its default (8 to 96 ranges of 4 MiB, by CPU count) would hold up to
        // 384 MiB per read. Bounded here: READ_PARALLEL × READ_PARTITION per read.
        let options = azure_storage_blob::models::BlobClientDownloadOptions {
            parallel: std::num::NonZero::new(READ_PARALLEL),
            partition_size: std::num::NonZero::new(READ_PARTITION),
            ..Default::default()
        };
        let result = match self.blob(b)?.download(Some(options)).await {
            Ok(r) => r,
            Err(e) => return Err(port_error(&format!("reading {}", b.name), e)),
        };
        let p = result.properties;
        let props = BlobProperties {
            size: p.content_length.unwrap_or(0),
            etag: etag(p.etag),
            copy: copy_state(p.copy_status, p.copy_status_description),
            metadata: lower(p.metadata),
            content: ContentHeaders {
                content_type: p.content_type,
                cache_control: p.cache_control,
                content_disposition: p.content_disposition,
                content_encoding: p.content_encoding,
                content_language: p.content_language,
            },
        };
        let name = b.name.clone();
        let stream = result
            .body
            .map(move |chunk| chunk.map_err(|e| port_error(&format!("reading {name}"), e)));
        Ok((props, Box::pin(stream)))
    }

    async fn set_content_headers(
        &self,
        b: &BlobRef,
        headers: &ContentHeaders,
        if_match: Option<&str>,
    ) -> Result<String, PortError> {
        let options = azure_storage_blob::models::BlobClientSetPropertiesOptions {
            blob_content_type: headers.content_type.clone(),
            blob_cache_control: headers.cache_control.clone(),
            blob_content_disposition: headers.content_disposition.clone(),
            blob_content_encoding: headers.content_encoding.clone(),
            blob_content_language: headers.content_language.clone(),
            if_match: if_match.map(azure_core::http::Etag::from),
            ..Default::default()
        };
        let response = self
            .blob(b)?
            .set_properties(Some(options))
            .await
            .map_err(|e| match e.http_status() {
                Some(azure_core::http::StatusCode::PreconditionFailed) => {
                    PortError::PreconditionFailed(format!(
                        "{}/{}/{} is no longer version {}",
                        b.account,
                        b.container,
                        b.name,
                        if_match.unwrap_or("?")
                    ))
                }
                _ => port_error("setting content headers", e),
            })?;
        response
            .headers()
            .get_optional_string(&azure_core::http::headers::ETAG)
            .ok_or_else(|| PortError::Permanent("Set Blob Properties returned no ETag".into()))
    }

    async fn tags(&self, b: &BlobRef) -> Result<BTreeMap<String, String>, PortError> {
        let response = self
            .blob(b)?
            .get_tags(None)
            .await
            .map_err(|e| match e.http_status() {
                Some(azure_core::http::StatusCode::NotFound) => {
                    PortError::NotFound(format!("blob {}/{}/{}", b.account, b.container, b.name))
                }
                _ => port_error("reading blob tags", e),
            })?;
        let tags = response
            .into_model()
            .map_err(|e| PortError::Permanent(format!("blob tags: {e}")))?;
        Ok(std::collections::HashMap::from(tags).into_iter().collect())
    }

    async fn delete_blob(&self, b: &BlobRef) -> Result<(), PortError> {
        match self.blob(b)?.delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => Ok(()),
            Err(e) => Err(port_error("deleting a blob", e)),
        }
    }

    async fn delete_blob_if(&self, b: &BlobRef, etag: &str) -> Result<bool, PortError> {
        let options = azure_storage_blob::models::BlobClientDeleteOptions {
            if_match: Some(azure_core::http::Etag::from(etag.to_string())),
            ..Default::default()
        };
        match self.blob(b)?.delete(Some(options)).await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.http_status(),
                    Some(
                        azure_core::http::StatusCode::NotFound
                            | azure_core::http::StatusCode::PreconditionFailed
                    )
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("deleting a blob", e)),
        }
    }

    async fn container_link(
        &self,
        c: &ContainerRef,
        sas: &SasRequest,
    ) -> Result<String, PortError> {
        let token = self.sas(c, sas, None).await?;
        Ok(format!(
            "{}/{}?{token}",
            self.account_url(&c.account),
            c.container
        ))
    }

    async fn blob_link(&self, b: &BlobRef, sas: &SasRequest) -> Result<String, PortError> {
        let c = ContainerRef {
            account: b.account.clone(),
            container: b.container.clone(),
        };
        let token = self.sas(&c, sas, Some(&b.name)).await?;
        let mut url = reqwest::Url::parse(&self.account_url(&b.account))
            .map_err(|e| PortError::Permanent(format!("the account URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| PortError::Permanent("the account URL has no path".into()))?
            .pop_if_empty()
            .push(&b.container)
            .extend(b.name.split('/'));
        url.set_query(Some(&token));
        Ok(url.to_string())
    }
}
