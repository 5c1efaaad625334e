//! A researcher's pre-flight check of a draft: the workspace's built-in gates over each file,
//! with the same runner and the same streaming read as the seal (bounded memory whatever the
//! size: `GateRunner` keeps only its sniff, zip-tail and table-prefix buffers), but nothing is
//! sealed, copied or changed. External gates and the malware scan run only on a submitted
//! request, and the release ledger needs the sealed table: the report says so.

use super::Deps;
use super::movement::container;
use super::settle::hash_stream;
use crate::domain::gates::{
    Checked, Evidence, GateKind, GateMode, GateRunner, SealedFile, acro_gate, assess,
    workspace_threshold,
};
use crate::domain::{AirlockRequest, StageRole, Workspace};
use crate::ports::PortError;
use airlock_api::types::{FilePreflight, PreflightReport};

pub async fn check_draft(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<PreflightReport, PortError> {
    let draft = container(deps, ws, request, StageRole::Draft);
    let listed = deps.blobs.list_blobs(&draft).await?;
    let named: Vec<(String, u64)> = listed.iter().map(|b| (b.name.clone(), b.size)).collect();
    let problems: Vec<String> = crate::domain::policy::check_files(&named, &ws.policy)
        .err()
        .into_iter()
        .collect();
    let mut files = Vec::with_capacity(listed.len());
    // Each file's sha256 and ACRO evidence, for checking an ACRO record against the files as
    // the seal will.
    let mut sealed: Vec<(String, Option<Evidence>)> = Vec::with_capacity(listed.len());
    for blob in &listed {
        let mut checked = Checked::default();
        let mut sha256 = String::new();
        if let Some(runner) = GateRunner::new(&ws.policy.gates, &blob.name) {
            let (_, stream) = deps.blobs.read(&draft.blob(&blob.name)).await?;
            (sha256, _, checked) = hash_stream(stream, Some(runner)).await?;
        }
        files.push(FilePreflight {
            name: blob.name.clone(),
            size: blob.size,
            findings: checked.findings,
        });
        sealed.push((sha256, checked.evidence));
    }
    if let Some(gate) = acro_gate(&ws.policy.gates)
        && sealed.iter().any(|(_, e)| e.is_some())
    {
        // The outputs ACRO's record names are hashed too (a second read of those files
        // only, when no gate read them), to compare with what ACRO recorded.
        let threshold = workspace_threshold(&ws.policy.gates);
        let mapped = assess(&sealed_view(&files, &sealed), &gate, threshold).outputs;
        for (f, (sha256, _)) in files.iter().zip(sealed.iter_mut()) {
            if sha256.is_empty() && mapped.contains_key(&f.name) {
                let (_, stream) = deps.blobs.read(&draft.blob(&f.name)).await?;
                (*sha256, _, _) = hash_stream(stream, None).await?;
            }
        }
        let found = assess(&sealed_view(&files, &sealed), &gate, threshold).findings;
        for (name, finding) in found {
            if let Some(f) = files.iter_mut().find(|f| f.name == name) {
                f.findings.push(finding);
            }
        }
    }
    let would_block = !problems.is_empty()
        || files
            .iter()
            .flat_map(|f| &f.findings)
            .any(|f| f.mode == GateMode::Block);
    let mut not_checked =
        vec!["the malware scan (it runs on the sealed copy after submit)".to_string()];
    for gate in ws.policy.gates.iter().filter(|g| g.mode != GateMode::Off) {
        match &gate.kind {
            GateKind::External(_) => not_checked.push(format!(
                "{:?}: an external gate, asked after submit",
                gate.name
            )),
            GateKind::ReleaseLedger {} => not_checked.push(format!(
                "{:?}: compares the sealed tables with earlier releases at the seal",
                gate.name
            )),
            _ => {}
        }
    }
    Ok(PreflightReport {
        request_id: request.id.clone(),
        would_block,
        problems,
        files,
        not_checked,
    })
}

/// The draft's files as ACRO's record is checked against them (a file no gate read has no
/// sha256 yet).
fn sealed_view<'a>(
    files: &'a [FilePreflight],
    sealed: &'a [(String, Option<Evidence>)],
) -> Vec<SealedFile<'a>> {
    files
        .iter()
        .zip(sealed)
        .map(|(f, (sha256, evidence))| SealedFile {
            name: &f.name,
            sha256: (!sha256.is_empty()).then_some(sha256.as_str()),
            evidence: evidence.as_ref(),
        })
        .collect()
}
