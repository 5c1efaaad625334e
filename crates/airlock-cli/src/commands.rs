//! What each command does, on the API client and the transfers. Every command ends with what
//! it produced (a request, a list, a trail) so `main` prints it as text or JSON.

use crate::cli::{
    CreateArgs, Direction, DownloadArgs, JustifyArgs, ListArgs, LoginArgs, ReviewArgs, RevokeArgs,
    SendArgs, StatusArgs, WaitArgs,
};
use crate::client::{Api, ListQuery};
use crate::config::{EntraConfig, LocalLogin, Settings, default_authority};
use crate::error::{CliError, CliResult};
use crate::progress::Progress;
use crate::transfer::{self, Download, Upload, Uploaded};
use crate::{auth, output};
use airlock_api::types::{
    CreateRequest, JustifyRequest, RequestEnvelope, ReviewRequest, RevokeRequest,
};
use airlock_domain::{Decision, RequestType, Status};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a command produced.
pub enum Outcome {
    Request(Box<RequestEnvelope>),
    List(Vec<RequestEnvelope>),
    Trail(airlock_api::types::AuditTrail),
    /// A plain message (and its JSON form).
    Message(String, serde_json::Value),
}

/// How a command talks to the person running it while it works (stderr; never with
/// `--quiet`), so stdout keeps only the result.
#[derive(Clone, Copy)]
pub struct Say {
    pub quiet: bool,
}

impl Say {
    pub fn line(&self, text: &str) {
        if !self.quiet {
            eprintln!("{}", crate::output::inert(text));
        }
    }
}

// ----- login -----

pub async fn login(settings: &mut Settings, args: LoginArgs, say: Say) -> CliResult<Outcome> {
    let workspace = settings.workspace.clone();
    let http = crate::client::http_client(settings)?;
    if args.local {
        let path = args.stack.clone().unwrap_or_else(find_local_stack);
        let stack: serde_json::Value = std::fs::read(&path)
            .map_err(|e| {
                CliError::Login(format!(
                    "{} cannot be read ({e}): is the local stack running (`infra/local/run`)? Run this inside the repository, or pass --stack PATH to its target/airlock-local/stack.json",
                    path.display()
                ))
            })
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| {
                    CliError::Login(format!("{} is not the stack's summary: {e}", path.display()))
                })
            })?;
        let text = |k: &str| stack[k].as_str().map(str::to_string);
        let workspace = workspace
            .or_else(|| {
                stack["workspaces"]
                    .as_array()
                    .and_then(|w| w.first())
                    .and_then(|w| w.as_str())
                    .map(str::to_string)
            })
            .ok_or_else(|| CliError::Usage("which workspace? pass --workspace".into()))?;
        let local = LocalLogin {
            router_url: text("routerUrl")
                .ok_or_else(|| CliError::Login(format!("{} names no routerUrl", path.display())))?,
            user: args.user.clone(),
            roles: args
                .roles
                .split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect(),
        };
        // The CA must be trusted before anything is uploaded to the stack's storage.
        settings.file.ca_cert = text("caCert")
            .map(PathBuf::from)
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        settings.file.api = text("apiUrl");
        let switched = set_default_workspace(settings, &workspace);
        settings.file.entra = None;
        let token = auth::local_token(&http, &local, &workspace).await?;
        settings.file.local = Some(local);
        settings.save()?;
        let mut tokens = settings.tokens()?;
        tokens.retain(|_, t| t.refresh_token.is_none());
        tokens.insert(workspace.clone(), token);
        settings.save_tokens(&tokens)?;
        let message = format!(
            "logged in to the local stack as {} ({}) for {workspace}{switched}",
            args.user, args.roles
        );
        return Ok(Outcome::Message(
            message,
            serde_json::json!({"workspace": workspace, "user": args.user, "api": settings.file.api}),
        ));
    }
    let mut entra = settings.file.entra.clone().unwrap_or_default();
    if let Some(t) = args.tenant {
        entra.tenant = t;
    }
    if let Some(c) = args.client_id {
        entra.client_id = c;
    }
    if let Some(a) = args.authority {
        entra.authority = a;
    }
    if entra.authority.is_empty() {
        entra.authority = default_authority();
    }
    let workspace = workspace.ok_or_else(|| {
        CliError::Usage(
            "which workspace? pass --workspace (each workspace has its own sign-in scope)".into(),
        )
    })?;
    if let Some(s) = args.scope {
        entra.scopes.insert(workspace.clone(), s);
    }
    if entra.tenant.is_empty() || entra.client_id.is_empty() {
        return Err(CliError::Usage(
            "Entra ID sign-in needs --tenant and --client-id (once; they are kept in the config), or use --local for the local stack".into(),
        ));
    }
    let token = auth::device_code_login(&http, &entra, &workspace, |m| say.line(m)).await?;
    settings.file.entra = Some(EntraConfig { ..entra });
    settings.file.local = None;
    let switched = set_default_workspace(settings, &workspace);
    if let Some(api) = &settings.api {
        settings.file.api = Some(api.clone());
    }
    settings.save()?;
    let mut tokens = settings.tokens()?;
    tokens.insert(workspace.clone(), token);
    settings.save_tokens(&tokens)?;
    Ok(Outcome::Message(
        format!("logged in for {workspace}{switched}"),
        serde_json::json!({"workspace": workspace}),
    ))
}

/// Makes `workspace` the default for later commands, and says so when that changes which
/// workspace they act in. The TRE-wide API's login (`tre`) is never a default: it is not a
/// workspace.
fn set_default_workspace(settings: &mut Settings, workspace: &str) -> String {
    if workspace == auth::TRE_API {
        return String::new();
    }
    let before = settings.file.workspace.replace(workspace.to_string());
    match before {
        Some(old) if old != workspace => format!(
            "; commands now act in {workspace} by default (was {old}; --workspace {old} for it)"
        ),
        _ => String::new(),
    }
}

/// The local stack's summary: `target/airlock-local/stack.json` in this folder or the
/// nearest one above it that has one, else beside the `airlock` binary that the stack built
/// (`target/debug/airlock` → `target/airlock-local/stack.json`), so `login --local` works from
/// anywhere in or below the repository, or with the binary on the PATH.
fn find_local_stack() -> PathBuf {
    let relative = PathBuf::from("target/airlock-local/stack.json");
    let from_cwd = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|dir| dir.join(&relative))
            .find(|p| p.exists())
    });
    let beside_binary = std::env::current_exe().ok().and_then(|exe| {
        exe.parent()
            .and_then(|dir| dir.parent())
            .map(|target| target.join("airlock-local/stack.json"))
            .filter(|p| p.exists())
    });
    from_cwd.or(beside_binary).unwrap_or(relative)
}

pub fn logout(settings: &Settings) -> CliResult<Outcome> {
    let path = settings.dir.join("tokens.json");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::io(format!("removing {}", path.display()), e)),
    }
    Ok(Outcome::Message(
        "logged out".into(),
        serde_json::json!({"loggedOut": true}),
    ))
}

// ----- files -----

/// The files under `paths`, each with its blob name: a file's own name, or for a folder the
/// folder's name and the path below it. Every name is checked against the airlock's file-name
/// rules before anything is uploaded.
pub fn collect(paths: &[PathBuf]) -> CliResult<Vec<Upload>> {
    let mut out: Vec<Upload> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            CliError::Usage(format!(
                "{}: {}",
                path.display(),
                match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file or folder".to_string(),
                    _ => e.to_string(),
                }
            ))
        })?;
        let base = path
            .canonicalize()
            .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?;
        let top = base
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CliError::Usage(format!("{}: the name is not UTF-8", path.display())))?
            .to_string();
        if meta.is_file() {
            out.push(Upload {
                local: base,
                name: top,
                size: meta.len(),
            });
        } else if meta.is_dir() {
            walk(&base, &top, &mut out)?;
        } else {
            return Err(CliError::Usage(format!(
                "{}: not a file or folder",
                path.display()
            )));
        }
    }
    for file in &out {
        airlock_domain::policy::validate_file_name(&file.name).map_err(|e| {
            CliError::Refused(format!(
                "{}: the airlock would refuse this name: {e}; rename it and try again",
                file.local.display()
            ))
        })?;
    }
    let mut names: Vec<&str> = out.iter().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(CliError::Usage(format!(
            "two files would both be named {:?} in the request",
            w[0]
        )));
    }
    if out.is_empty() {
        return Err(CliError::Usage(
            "no files to upload in the paths given".into(),
        ));
    }
    Ok(out)
}

/// Files below `dir`, named `prefix/relative/path`. Symbolic links to folders are not
/// followed (a loop, or data outside what was named); links to files are.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<Upload>) -> CliResult<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CliError::io(format!("reading {}", dir.display()), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::io(format!("reading {}", dir.display()), e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().into_string().map_err(|n| {
            CliError::Usage(format!("{}: the name {n:?} is not UTF-8", path.display()))
        })?;
        let kind = entry
            .file_type()
            .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?;
        let blob = format!("{prefix}/{name}");
        if kind.is_dir() {
            walk(&path, &blob, out)?;
        } else if kind.is_symlink() {
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.is_file()
            {
                out.push(Upload {
                    local: path,
                    name: blob,
                    size: meta.len(),
                });
            }
        } else if kind.is_file() {
            let size = entry
                .metadata()
                .map_err(|e| CliError::io(format!("reading {}", path.display()), e))?
                .len();
            out.push(Upload {
                local: path,
                name: blob,
                size,
            });
        }
    }
    Ok(())
}

/// The workspace's limits, checked before anything is created or uploaded: for a new
/// request (`whole`) everything `submit` will check; for files added to a draft, each file's
/// size (the draft may hold others).
async fn preflight(api: &Api, workspace: &str, files: &[Upload], whole: bool) -> CliResult<()> {
    let limits = api.limits(workspace).await?;
    let policy = airlock_domain::WorkspacePolicy {
        max_files: limits.max_files,
        max_file_bytes: limits.max_file_bytes,
        max_total_bytes: limits.max_total_bytes,
        ..Default::default()
    };
    let checked = if whole {
        let named: Vec<(String, u64)> = files.iter().map(|f| (f.name.clone(), f.size)).collect();
        airlock_domain::policy::check_files(&named, &policy)
    } else {
        match files.iter().find(|f| f.size > policy.max_file_bytes) {
            Some(f) => Err(format!(
                "{} is {} bytes; the workspace allows at most {} bytes per file",
                f.name, f.size, policy.max_file_bytes
            )),
            None => Ok(()),
        }
    };
    checked.map_err(|why| {
        CliError::Refused(format!(
            "workspace {workspace} would refuse these files, so nothing was uploaded: {why}"
        ))
    })
}

async fn upload_files(
    api: &Api,
    workspace: &str,
    id: &str,
    files: &[Upload],
    say: Say,
) -> CliResult<Vec<Uploaded>> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new("uploading", total, say.quiet);
    let started = Instant::now();
    let result = transfer::upload(api, workspace, id, files, &progress).await;
    progress.finish();
    let uploaded = result?;
    let sent: u64 = uploaded.iter().map(|u| u.sent).sum();
    for u in &uploaded {
        say.line(&format!(
            "  {} {} ({}, sha256 {})",
            if u.skipped {
                "already uploaded"
            } else if u.sent < u.size {
                "resumed"
            } else {
                "uploaded"
            },
            u.name,
            output::bytes(u.size),
            &u.sha256[..12]
        ));
    }
    let secs = started.elapsed().as_secs_f64();
    say.line(&format!(
        "uploaded {} file(s): sent {} of {} in {secs:.1} s ({}/s)",
        uploaded.len(),
        output::bytes(sent),
        output::bytes(total),
        output::bytes((sent as f64 / secs.max(1e-3)) as u64),
    ));
    Ok(uploaded)
}

// ----- researchers and data providers -----

pub async fn send(api: &Api, direction: Direction, args: SendArgs, say: Say) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?.to_string();
    // Everything local, and the workspace's limits, are checked before the request exists.
    let files = collect(&args.paths)?;
    preflight(api, &workspace, &files, true).await?;
    let id = match interrupted_draft(api, &workspace, direction, &files, &args.paths).await? {
        Some(id) => {
            say.line(&format!("resuming draft {id}"));
            id
        }
        None => {
            let created = create(
                api,
                CreateArgs {
                    request_type: direction,
                    title: args.title,
                    justification: args.justification,
                },
            )
            .await?;
            let id = created.airlock_request.id.clone();
            say.line(&format!(
                "created {} request {id}",
                type_of(direction).as_str()
            ));
            id
        }
    };
    // Ctrl-C while uploading: what is stored stays stored (the journal knows which blocks),
    // and the person is told the command that carries on.
    let uploaded = tokio::select! {
        done = upload_files(api, &workspace, &id, &files, say) => done?,
        _ = tokio::signal::ctrl_c() => {
            return Err(CliError::Interrupted {
                message: format!(
                    "interrupted: draft {id} keeps what was uploaded. Resume with `airlock upload {id} {}`, then `airlock submit {id}` (or `airlock cancel {id}`)",
                    shell_words(&args.paths)
                ),
                request_id: id,
            });
        }
    };
    check_before_submit(api, &workspace, &id, say).await?;
    let submitted = api
        .submit(&workspace, &id, &submit_context(&args.context)?)
        .await?;
    say.line(&format!("submitted {id}"));
    tokio::select! {
        done = finish_submit(api, &workspace, submitted, &args.wait, Some(&uploaded), say) => done,
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted {
            message: format!(
                "stopped following {id}; it is submitted and goes on without you: `airlock status {id} --watch`"
            ),
            request_id: id,
        }),
    }
}

/// A draft of this workspace and direction that an interrupted run of the same command left
/// with part of these very files (its upload journals say so): at a terminal the person is
/// asked whether to carry on with it; without one, it is named and a new request is made
/// (a script decides for itself, with `airlock upload ID`).
async fn interrupted_draft(
    api: &Api,
    workspace: &str,
    direction: Direction,
    files: &[Upload],
    paths: &[PathBuf],
) -> CliResult<Option<String>> {
    for id in crate::transfer::interrupted_uploads_of(&api.settings.transfers_dir(), files) {
        let Ok(found) = api.get(workspace, &id).await else {
            continue;
        };
        let r = &found.airlock_request;
        if r.status != Status::Draft || r.request_type != type_of(direction) {
            continue;
        }
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            eprint!(
                "Draft {id} (\"{}\") holds part of these files from an interrupted run. Carry on with it? [Y/n] ",
                r.title
            );
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).ok();
            if !answer.trim().eq_ignore_ascii_case("n") {
                return Ok(Some(id));
            }
        } else {
            eprintln!(
                "draft {id} holds part of these files from an interrupted run: `airlock upload {id} {}` carries on with it (making a new request now)",
                shell_words(paths)
            );
        }
        return Ok(None);
    }
    Ok(None)
}

/// Paths as a shell reads them back: quoted where they need it.
fn shell_words(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            let s = p.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn type_of(direction: Direction) -> RequestType {
    match direction {
        Direction::Export => RequestType::Export,
        Direction::Import => RequestType::Import,
    }
}

pub async fn create(api: &Api, args: CreateArgs) -> CliResult<RequestEnvelope> {
    let workspace = api.settings.workspace()?;
    api.create(
        workspace,
        &CreateRequest {
            request_type: type_of(args.request_type),
            title: args.title,
            business_justification: args.justification,
            properties: None,
        },
    )
    .await
}

pub async fn upload(api: &Api, id: &str, paths: &[PathBuf], say: Say) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?.to_string();
    let files = collect(paths)?;
    preflight(api, &workspace, &files, false).await?;
    let uploaded = upload_files(api, &workspace, id, &files, say).await?;
    let json = serde_json::json!({
        "requestId": id,
        "files": uploaded.iter().map(|u| serde_json::json!({
            "name": u.name, "size": u.size, "sha256": u.sha256, "sentBytes": u.sent, "skipped": u.skipped,
        })).collect::<Vec<_>>(),
    });
    let text = uploaded
        .iter()
        .map(|u| format!("{}  {}  sha256 {}", u.name, output::bytes(u.size), u.sha256))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Outcome::Message(text, json))
}

/// `NAME=TEXT` pairs, split at the first `=`.
fn pairs(values: &[String], flag: &str) -> CliResult<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .map(|(n, t)| (n.trim().to_string(), t.to_string()))
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| CliError::Usage(format!("{flag} takes NAME=TEXT, not {v:?}")))
        })
        .collect()
}

/// The submit body from `--purpose`, `--describe` and `--controls`.
fn submit_context(
    args: &crate::cli::ContextArgs,
) -> CliResult<airlock_domain::request::SubmitContext> {
    use airlock_domain::request::FileContext;
    let mut files: Vec<FileContext> = Vec::new();
    let mut entry = |name: String| -> usize {
        match files.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                files.push(FileContext {
                    name,
                    ..FileContext::default()
                });
                files.len() - 1
            }
        }
    };
    let mut described = Vec::new();
    for (name, text) in pairs(&args.descriptions, "--describe")? {
        described.push((entry(name), text));
    }
    let mut controlled = Vec::new();
    for (name, text) in pairs(&args.controls, "--controls")? {
        controlled.push((entry(name), text));
    }
    let supporting: Vec<usize> = args.supporting.iter().map(|n| entry(n.clone())).collect();
    for (i, text) in described {
        files[i].description = Some(text);
    }
    for (i, text) in controlled {
        files[i].disclosure_controls = Some(text);
    }
    for i in supporting {
        files[i].supporting = true;
    }
    Ok(airlock_domain::request::SubmitContext {
        purpose: args.purpose.clone(),
        files,
    })
}

pub async fn comment(api: &Api, args: crate::cli::CommentArgs) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let made = api
        .comment(
            workspace,
            &args.id,
            &airlock_api::types::CommentRequest {
                text: args.text,
                file: args.file,
                visibility: if args.reviewers_only {
                    airlock_domain::request::Visibility::Reviewers
                } else {
                    airlock_domain::request::Visibility::Everyone
                },
            },
        )
        .await?;
    Ok(Outcome::Message(
        format!("comment {} added", made.id),
        serde_json::to_value(&made).expect("API documents serialise"),
    ))
}

pub async fn submit(
    api: &Api,
    id: &str,
    context: &crate::cli::ContextArgs,
    wait: &WaitArgs,
    say: Say,
) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?.to_string();
    let submitted = api
        .submit(&workspace, id, &submit_context(context)?)
        .await?;
    say.line(&format!("submitted {id}"));
    finish_submit(api, &workspace, submitted, wait, None, say).await
}

/// After submit: with `--wait`, follow the request to review and check that what was sealed
/// is what was uploaded.
async fn finish_submit(
    api: &Api,
    workspace: &str,
    submitted: RequestEnvelope,
    wait: &WaitArgs,
    uploaded: Option<&[Uploaded]>,
    say: Say,
) -> CliResult<Outcome> {
    if !wait.wait {
        return Ok(Outcome::Request(Box::new(submitted)));
    }
    let id = submitted.airlock_request.id.clone();
    // From the entry that submitted it: a seal faster than the first poll still shows
    // `submitted`.
    let since = submitted.airlock_request.history_head.length.checked_sub(1);
    let done = follow(
        api,
        workspace,
        &id,
        since,
        |s| s == Status::InReview || s.is_terminal(),
        Duration::from_secs(wait.timeout),
        say,
    )
    .await?;
    let r = &done.airlock_request;
    if r.status != Status::InReview {
        return Err(CliError::Ended {
            message: format!(
                "{id} ended {}{}",
                r.status.as_str(),
                r.status_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            request_id: id,
        });
    }
    if let Some(uploaded) = uploaded {
        for u in uploaded {
            let sealed = r.files.iter().find(|f| f.name == u.name);
            match sealed.and_then(|f| f.sha256.as_deref()) {
                Some(sha) if sha == u.sha256 => {}
                Some(sha) => {
                    return Err(CliError::Failed(format!(
                        "{}: the sealed copy's sha256 {sha} is not the uploaded file's {}",
                        u.name, u.sha256
                    )));
                }
                None => {
                    return Err(CliError::Failed(format!(
                        "{}: uploaded but not sealed in the request",
                        u.name
                    )));
                }
            }
        }
        say.line(&format!(
            "sealed: every file's sha256 matches what was uploaded ({} file(s))",
            uploaded.len()
        ));
    }
    Ok(Outcome::Request(Box::new(done)))
}

/// Polls the request, printing each status it passes through, until `until` holds.
async fn follow(
    api: &Api,
    workspace: &str,
    id: &str,
    since: Option<u64>,
    until: impl Fn(Status) -> bool,
    timeout: Duration,
    say: Say,
) -> CliResult<RequestEnvelope> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut last: Option<Status> = None;
    // The trail's entries already shown: a status that came and went between two polls is
    // read from the trail, so every transition is shown, not only the ones a poll caught.
    let mut shown_up_to: Option<u64> = since;
    let mut pause = Duration::from_millis(250);
    loop {
        let current = api.get(workspace, id).await?;
        let status = current.airlock_request.status;
        if last != Some(status) {
            let line = |seconds: f64, to: Status, message: Option<&str>| {
                format!(
                    "  {seconds:>6.1} s  {}{}",
                    to.as_str(),
                    message
                        .filter(|_| to.is_terminal())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            };
            let trail = match shown_up_to {
                Some(from) => api
                    .history(workspace, id)
                    .await
                    .ok()
                    .map(|t| (from, t.history)),
                None => None,
            };
            match trail {
                Some((from, history)) => {
                    for e in history.iter().filter(|e| e.seq >= from) {
                        if let Some(to) = e.to {
                            let at = (e.at - started_at).num_milliseconds().max(0) as f64 / 1000.0;
                            say.line(&line(at, to, e.message.as_deref()));
                        }
                    }
                    shown_up_to = Some(history.len() as u64);
                }
                None => {
                    say.line(&line(
                        started.elapsed().as_secs_f64(),
                        status,
                        current.airlock_request.status_message.as_deref(),
                    ));
                    shown_up_to = Some(current.airlock_request.history_head.length);
                }
            }
            last = Some(status);
        }
        if until(status) {
            return Ok(current);
        }
        if started.elapsed() > timeout {
            return Err(CliError::TimedOut(format!(
                "{id} is still {} after {} s: run `airlock status {id} --watch` to keep following it",
                status.as_str(),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(3));
    }
}

pub async fn cancel(api: &Api, id: &str) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    Ok(Outcome::Request(Box::new(api.cancel(workspace, id).await?)))
}

pub async fn status(api: &Api, args: StatusArgs, say: Say) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let current = if args.watch {
        follow(
            api,
            workspace,
            &args.id,
            None,
            Status::is_terminal,
            Duration::from_secs(args.timeout),
            say,
        )
        .await?
    } else {
        api.get(workspace, &args.id).await?
    };
    Ok(Outcome::Request(Box::new(current)))
}

pub async fn list(api: &Api, args: ListArgs) -> CliResult<Outcome> {
    let query = ListQuery {
        status: args.status,
        request_type: args.request_type.map(|d| type_of(d).as_str().to_string()),
        creator: None,
    };
    if args.awaiting_review || args.mine {
        // Each workspace is its own audience: ask with each workspace token there is.
        let mut workspaces: Vec<String> = if api.settings.token.is_some() {
            vec![api.settings.workspace()?.to_string()]
        } else {
            api.settings.tokens()?.into_keys().collect()
        };
        if workspaces.is_empty() {
            workspaces.push(api.settings.workspace()?.to_string());
        }
        let mut all: Vec<RequestEnvelope> = Vec::new();
        for ws in workspaces {
            for r in api.mine(&ws, &query, args.awaiting_review).await? {
                if !all
                    .iter()
                    .any(|a| a.airlock_request.id == r.airlock_request.id)
                {
                    all.push(r);
                }
            }
        }
        return Ok(Outcome::List(all));
    }
    let workspace = api.settings.workspace()?;
    Ok(Outcome::List(api.list(workspace, &query).await?))
}

/// The record's files, as downloads into `dir` (names are the airlock's, already checked by
/// it; checked again here so no name can climb out of `dir`).
fn downloads(request: &RequestEnvelope, dir: &Path) -> CliResult<Vec<Download>> {
    let r = &request.airlock_request;
    // A partial release leaves the rejected files out of the approved stage.
    r.files
        .iter()
        .filter(|f| !f.withheld() && !f.supporting)
        .map(|f| {
            airlock_domain::policy::validate_file_name(&f.name).map_err(|e| {
                CliError::Failed(format!("{}: not a safe file name to write: {e}", f.name))
            })?;
            let sha256 = f.sha256.clone().ok_or_else(|| {
                CliError::Refused(format!(
                    "{} has no sha256 on the record yet ({}): nothing to verify it against",
                    f.name,
                    r.status.as_str()
                ))
            })?;
            Ok(Download {
                name: f.name.clone(),
                size: f.size,
                sha256,
                dest: dir.join(&f.name),
            })
        })
        .collect()
}

async fn download_files(
    api: &Api,
    workspace: &str,
    request: &RequestEnvelope,
    dir: &Path,
    say: Say,
) -> CliResult<()> {
    let files = downloads(request, dir)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let progress = Progress::new("downloading", total, say.quiet);
    let started = Instant::now();
    let result = transfer::download(
        api,
        workspace,
        &request.airlock_request.id,
        &files,
        &progress,
    )
    .await;
    progress.finish();
    let skipped = result?;
    for (f, skipped) in files.iter().zip(&skipped) {
        say.line(&format!(
            "  {} {} ({}, sha256 {} verified)",
            if *skipped {
                "already here"
            } else {
                "downloaded"
            },
            f.dest.display(),
            output::bytes(f.size),
            &f.sha256[..12]
        ));
    }
    say.line(&format!(
        "{} file(s), {} in {:.1} s, every sha256 verified",
        files.len(),
        output::bytes(total),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

pub async fn download(api: &Api, args: DownloadArgs, say: Say) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?.to_string();
    let mut request = api.get(&workspace, &args.id).await?;
    if request.airlock_request.status == Status::ApprovalInProgress {
        // Approved a moment ago: the approved copy is being made and verified.
        say.line("waiting for the approved copy to be made and verified");
        request = follow(
            api,
            &workspace,
            &args.id,
            None,
            |s| !s.is_transitional(),
            Duration::from_secs(args.timeout),
            say,
        )
        .await?;
    }
    if request.airlock_request.status != Status::Approved {
        return Err(CliError::Refused(format!(
            "{} is {}, not approved: only approved data can be downloaded",
            args.id,
            request.airlock_request.status.as_str()
        )));
    }
    download_files(api, &workspace, &request, &args.dir, say).await?;
    Ok(Outcome::Request(Box::new(request)))
}

// ----- airlock managers -----

pub async fn review(api: &Api, args: ReviewArgs, say: Say) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?.to_string();
    let decision = match (args.approve, args.reject, args.request_changes) {
        (true, _, _) => Some(Decision::Approved),
        (_, true, _) => Some(Decision::Rejected),
        (_, _, true) => Some(Decision::ChangesRequested),
        _ => None,
    };
    if matches!(
        decision,
        Some(Decision::Rejected | Decision::ChangesRequested)
    ) && args
        .explanation
        .as_deref()
        .is_none_or(|e| e.trim().is_empty())
    {
        return Err(CliError::Usage(
            "say why with --explanation: the researcher needs it to act on the decision".into(),
        ));
    }
    let request = api.get(&workspace, &args.id).await?;
    let r = &request.airlock_request;
    if r.status != Status::InReview {
        return Err(CliError::Refused(format!(
            "{} is {}, not in review",
            args.id,
            r.status.as_str()
        )));
    }
    say.line(&output::request(&request));
    if let Some(dir) = &args.download {
        download_files(api, &workspace, &request, dir, say).await?;
    }
    let mut files: Vec<airlock_domain::request::FileDecision> = pairs(&args.files, "--file")?
        .into_iter()
        .map(|(name, word)| {
            let decision = match word.trim() {
                "approve" | "approved" => Decision::Approved,
                "reject" | "rejected" => Decision::Rejected,
                "changes" | "changes_requested" => Decision::ChangesRequested,
                other => {
                    return Err(CliError::Usage(format!(
                        "--file {name}=... takes approve, reject or changes, not {other:?}"
                    )));
                }
            };
            Ok(airlock_domain::request::FileDecision::new(name, decision))
        })
        .collect::<CliResult<_>>()?;
    if args.approve_clean {
        for f in r.files.iter().filter(|f| f.findings.is_empty()) {
            if !files.iter().any(|d| d.name == f.name) {
                files.push(airlock_domain::request::FileDecision::new(
                    f.name.clone(),
                    Decision::Approved,
                ));
            }
        }
    }
    // Overrides go with the file's decision: an approval (given with --file, or --approve).
    for (target, reason) in pairs(&args.overrides, "--override")? {
        let Some((name, rule)) = target.rsplit_once(':') else {
            return Err(CliError::Usage(format!(
                "--override takes NAME:RULE=REASON, not {target:?}"
            )));
        };
        let index = match files.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                files.push(airlock_domain::request::FileDecision::new(
                    name.to_string(),
                    decision.unwrap_or(Decision::Approved),
                ));
                files.len() - 1
            }
        };
        files[index]
            .overrides
            .push(airlock_domain::request::Override {
                rule: rule.to_string(),
                rationale: reason,
            });
    }
    if decision.is_none() && files.is_empty() {
        return Ok(Outcome::Request(Box::new(request)));
    }
    // The revision shown is the revision decided on: if it changed meanwhile, the airlock
    // refuses (409) rather than apply this decision to data nobody looked at.
    let decided = api
        .review(
            &workspace,
            &args.id,
            &ReviewRequest {
                decision,
                explanation: Some(args.explanation.unwrap_or_else(|| "approved".into())),
                revision: Some(r.revision),
                files: (!files.is_empty()).then_some(files),
                ..ReviewRequest::default()
            },
        )
        .await?;
    say.line(&format!(
        "reviewed {} (revision {}): now {}",
        args.id,
        r.revision,
        decided.airlock_request.status.as_str()
    ));
    Ok(Outcome::Request(Box::new(decided)))
}

pub async fn justify(api: &Api, args: JustifyArgs) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    Ok(Outcome::Request(Box::new(
        api.justify(
            workspace,
            &args.id,
            &JustifyRequest {
                file: args.file,
                justification: args.justification,
            },
        )
        .await?,
    )))
}

pub async fn revoke(api: &Api, args: RevokeArgs) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    Ok(Outcome::Request(Box::new(
        api.revoke(
            workspace,
            &args.id,
            &RevokeRequest {
                reason: args.reason,
            },
        )
        .await?,
    )))
}

pub async fn gates(api: &Api, id: &str) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let report = api.gates(workspace, id).await?;
    Ok(Outcome::Message(
        crate::output::gates(&report),
        serde_json::to_value(&report).expect("API documents serialise"),
    ))
}

/// `airlock diff ID`: what changed in the current revision.
pub async fn diff(api: &Api, id: &str) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let diff = api.diff(workspace, id).await?;
    Ok(Outcome::Message(
        output::diff(&diff),
        serde_json::to_value(&diff).expect("API documents serialise"),
    ))
}

/// `airlock check ID`: the pre-flight report of a draft.
pub async fn check(api: &Api, id: &str) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let report = api.preflight(workspace, id).await?;
    Ok(Outcome::Message(
        output::preflight(&report),
        serde_json::to_value(&report).expect("API documents serialise"),
    ))
}

/// Before `export`/`import` submits: the pre-flight check, its findings shown; a request that
/// would be blocked is submitted only if the person at the terminal says so (never when no one
/// is there to ask).
async fn check_before_submit(api: &Api, workspace: &str, id: &str, say: Say) -> CliResult<()> {
    let report = api.preflight(workspace, id).await?;
    let findings: usize = report.files.iter().map(|f| f.findings.len()).sum();
    if findings == 0 && report.problems.is_empty() {
        say.line("pre-flight check: no findings");
        return Ok(());
    }
    eprint!("{}", output::preflight(&report));
    if !report.would_block {
        return Ok(());
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("Submit anyway? The request would be blocked. [y/N] ");
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_ok()
            && matches!(answer.trim(), "y" | "Y" | "yes")
        {
            return Ok(());
        }
    }
    Err(CliError::Refused(format!(
        "{id} was not submitted: a submit now would be blocked (above). Fix the files and upload them again (airlock upload {id} PATH...), check with airlock check {id}, then airlock submit {id}"
    )))
}

pub async fn history(api: &Api, id: &str) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    Ok(Outcome::Trail(api.history(workspace, id).await?))
}

/// `airlock record ID`: saves the governance record of a finished request.
pub async fn record(api: &Api, args: crate::cli::RecordArgs) -> CliResult<Outcome> {
    let workspace = api.settings.workspace()?;
    let text = api.record(workspace, &args.id, &args.format).await?;
    let path = args.output.unwrap_or_else(|| match args.format.as_str() {
        "html" => format!("record-{}.html", args.id).into(),
        "ro-crate" => "ro-crate-metadata.json".into(),
        _ => format!("record-{}.json", args.id).into(),
    });
    std::fs::write(&path, text.as_bytes())
        .map_err(|e| CliError::Failed(format!("saving {}: {e}", path.display())))?;
    Ok(Outcome::Message(
        format!(
            "saved the governance record of {} to {}",
            args.id,
            path.display()
        ),
        serde_json::json!({"requestId": args.id, "path": path}),
    ))
}

/// `airlock verify FILE [--files DIR]`: the record's trail, and the files, checked offline.
pub fn verify(args: &crate::cli::VerifyArgs) -> CliResult<Outcome> {
    use airlock_api::governance::GovernanceRecord;
    use sha2::Digest;
    let text = std::fs::read_to_string(&args.record)
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", args.record.display())))?;
    let record: GovernanceRecord = serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not a governance record (JSON, `airlock record ID`): {e}",
            args.record.display()
        ))
    })?;
    record
        .verify()
        .map_err(|e| CliError::Failed(format!("{}: {e}", args.record.display())))?;
    let mut said = format!(
        "the audit trail of request {} verifies: {} entries, from {} to {}",
        record.request.id,
        record.history.len(),
        record
            .history
            .first()
            .map(|h| h.at.to_rfc3339())
            .unwrap_or_default(),
        record
            .history
            .last()
            .map(|h| h.at.to_rfc3339())
            .unwrap_or_default(),
    );
    if let Some(folder) = &args.files {
        let mut checked = 0;
        for file in record.request.files.iter().filter(|f| f.sha256.is_some()) {
            let path = folder.join(&file.name);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            record
                .check_file(&file.name, &hex::encode(sha2::Sha256::digest(&bytes)))
                .map_err(|e| CliError::Failed(e.to_string()))?;
            checked += 1;
        }
        if checked == 0 {
            return Err(CliError::Failed(format!(
                "none of the record's files is in {}",
                folder.display()
            )));
        }
        said.push_str(&format!(
            "; {checked} file(s) in {} are the ones it records",
            folder.display()
        ));
    }
    Ok(Outcome::Message(
        said,
        serde_json::json!({"requestId": record.request.id, "verified": true}),
    ))
}
