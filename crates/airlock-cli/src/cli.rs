//! The command line: every command and flag, with the help text `--help` shows.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Move data in and out of a Trusted Research Environment through its airlock: export
/// results, import data, review what crosses, download what was approved.
///
/// Exit codes: 0 done, 1 refused or failed, 2 usage, 3 timed out waiting, 130 interrupted
/// (Ctrl-C; it says how to carry on).
#[derive(Debug, Parser)]
#[command(name = "airlock", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The airlock API, e.g. https://airlock.example.org/api [default: from `airlock login`]
    #[arg(long, env = "AIRLOCK_API", global = true)]
    pub api: Option<String>,
    /// The workspace to work in [default: from `airlock login`]
    #[arg(long, short = 'w', env = "AIRLOCK_WORKSPACE", global = true)]
    pub workspace: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's
    #[arg(long, env = "AIRLOCK_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// A bearer token to use instead of the login's
    #[arg(
        long,
        env = "AIRLOCK_TOKEN",
        global = true,
        hide_env_values = true,
        hide = true
    )]
    pub token: Option<String>,
    /// Print JSON for scripts instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only the request's id (one per line for lists): `ID=$(airlock export ... --id)`
    #[arg(long = "id", id = "id_only", global = true, conflicts_with = "json")]
    pub id_only: bool,
    /// No progress bars or step lines
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in: Entra ID's device code, or a token from the local stack with --local
    Login(LoginArgs),
    /// Forget the cached tokens
    Logout,
    /// Export files and folders from the workspace: create, upload, submit (and --wait)
    Export(SendArgs),
    /// Import files and folders into the workspace: create, upload, submit (and --wait)
    Import(SendArgs),
    /// Create a draft request (then `upload` and `submit`)
    Create(CreateArgs),
    /// Upload files and folders to a draft request (resumes an interrupted upload)
    Upload(UploadArgs),
    /// Check a draft before submitting it: what the workspace's gates find in each file, and
    /// what to do about it (nothing is submitted or changed)
    Check(IdArgs),
    /// Submit a draft request for scanning and review
    Submit(SubmitArgs),
    /// Cancel a request
    Cancel(IdArgs),
    /// Show a request: status, files with sha256 and scan result, reviews
    Status(StatusArgs),
    /// List requests
    List(ListArgs),
    /// Download an approved request's files, each verified against its sha256
    Download(DownloadArgs),
    /// Justify a file's gate warnings (why they are acceptable), while the request is in review
    Justify(JustifyArgs),
    /// Airlock managers: show a request's files (or download them) and decide
    Review(ReviewArgs),
    /// Airlock managers: withdraw an approval
    Revoke(RevokeArgs),
    /// The request's audit trail, and whether its hash chain verifies
    History(IdArgs),
    /// What changed in a resubmission: each file added, changed, unchanged or removed since
    /// the previous revision and since your last vote (unchanged files keep your vote)
    Diff(IdArgs),
    /// Comment on a request or one of its files (researchers and reviewers)
    Comment(CommentArgs),
    /// Each gate's result on the request (malware scan, policy gates, external gates), with
    /// the evidence per file
    Gates(IdArgs),
    /// Save the governance record of a finished request: files and sealed sha256, gate
    /// evidence, votes, overrides, comments, policy versions and the hash-chained trail
    Record(RecordArgs),
    /// Check a saved governance record offline: its trail's hash chain and, with --files, that
    /// the files in a folder are the ones it records
    Verify(VerifyArgs),
    /// Service statistics over a time range: requests by type and status, time in each
    /// status, review turnaround, overrides, gate findings by rule, what was released
    /// (owners, airlock managers, TRE admins, auditors)
    Stats(StatsArgs),
    /// TRE admins: register workspaces and set their airlock policy (every change audited).
    /// Signs in for the TRE-wide API: `airlock login --local --user NAME --roles TREAdmin`
    /// locally; on Azure `airlock login ... --workspace tre --scope api://<TRE API>/...`
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Take a token from the local stack's issuer (`infra/local/run`)
    #[arg(long)]
    pub local: bool,
    /// The local stack's summary [default: target/airlock-local/stack.json]
    #[arg(long, requires = "local")]
    pub stack: Option<PathBuf>,
    /// The user to be (local)
    #[arg(long, requires = "local", default_value = "researcher")]
    pub user: String,
    /// Roles, comma separated (local): WorkspaceResearcher, AirlockManager, WorkspaceOwner
    #[arg(long, requires = "local", default_value = "WorkspaceResearcher")]
    pub roles: String,
    /// Entra ID tenant (id or domain)
    #[arg(long, conflicts_with = "local")]
    pub tenant: Option<String>,
    /// The application (client) id the CLI signs in as
    #[arg(long, conflicts_with = "local")]
    pub client_id: Option<String>,
    /// The workspace API's scope, e.g. api://<workspace app id>/user_impersonation
    #[arg(long, conflicts_with = "local")]
    pub scope: Option<String>,
    /// Entra ID's sign-in address (a sovereign cloud's, or a test's)
    #[arg(long, conflicts_with = "local")]
    pub authority: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Files and folders (a folder's files keep their paths below it, with its name first)
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[arg(long)]
    pub title: String,
    /// Why this data should cross the airlock
    #[arg(long)]
    pub justification: String,
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// What to tell the reviewer at submit (a workspace may require it).
#[derive(Debug, Default, Args)]
pub struct ContextArgs {
    /// What the request is for
    #[arg(long)]
    pub purpose: Option<String>,
    /// A file's description, as NAME=TEXT (NAME as the request names it); repeat per file
    #[arg(long = "describe", value_name = "NAME=TEXT")]
    pub descriptions: Vec<String>,
    /// The disclosure controls applied to a file, as NAME=TEXT; repeat per file
    #[arg(long = "controls", value_name = "NAME=TEXT")]
    pub controls: Vec<String>,
    /// A supporting file (code, a log, a checking tool's record): reviewed, never released;
    /// repeat per file
    #[arg(long = "supporting", value_name = "NAME")]
    pub supporting: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Follow the request until it is in review (or ends), printing each step
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit code 3)
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Direction {
    Export,
    Import,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long = "type", value_enum)]
    pub request_type: Direction,
    #[arg(long)]
    pub title: String,
    #[arg(long)]
    pub justification: String,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    pub id: String,
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    pub id: String,
    #[command(flatten)]
    pub context: ContextArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct CommentArgs {
    pub id: String,
    /// The comment (markdown)
    pub text: String,
    /// About this file of the request
    #[arg(long)]
    pub file: Option<String>,
    /// Airlock managers: only reviewers see it
    #[arg(long)]
    pub reviewers_only: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    pub id: String,
    /// Keep following the request, printing each change, until it ends
    #[arg(long)]
    pub watch: bool,
    /// Give up watching after this many seconds (exit code 3)
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these statuses (comma separated), e.g. in_review,approved
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long = "type", value_enum)]
    pub request_type: Option<Direction>,
    /// My requests, across my workspaces
    #[arg(long, conflicts_with = "awaiting_review")]
    pub mine: bool,
    /// Requests I can review now, across the workspaces I am logged in to
    #[arg(long)]
    pub awaiting_review: bool,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    pub id: String,
    /// Where to put the files (created if missing)
    pub dir: PathBuf,
    /// How long to wait for an approval in progress to finish (exit code 3 after)
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("decision").args(["approve", "reject", "request_changes"])))]
pub struct ReviewArgs {
    pub id: String,
    /// Download the sealed files here (verified) to look at them first
    #[arg(long)]
    pub download: Option<PathBuf>,
    #[arg(long)]
    pub approve: bool,
    #[arg(long)]
    pub reject: bool,
    #[arg(long)]
    pub request_changes: bool,
    /// Why (required to reject or request changes)
    #[arg(long)]
    pub explanation: Option<String>,
    /// A decision on one file, as NAME=approve|reject|changes; repeat per file (files not
    /// listed take --approve/--reject/--request-changes). In a consolidation, the files the
    /// reviewers disagree about
    #[arg(long = "file", value_name = "NAME=DECISION")]
    pub files: Vec<String>,
    /// Approve a file over a gate's warning, as NAME:RULE=REASON (RULE as `airlock gates`
    /// shows it, e.g. small_count); one per file and kind of warning
    #[arg(long = "override", value_name = "NAME:RULE=REASON")]
    pub overrides: Vec<String>,
    /// Approve every file nothing was found in (each still its own decision); decide the
    /// others with --file or --approve/--reject/--request-changes
    #[arg(long)]
    pub approve_clean: bool,
}

#[derive(Debug, Args)]
pub struct JustifyArgs {
    pub id: String,
    /// The file's name in the request (as `airlock status` shows it)
    pub file: String,
    /// Why the warnings are acceptable
    pub justification: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub id: String,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Workspaces: list, show, register, disable, enable
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// A workspace's airlock policy: get, set, history, diff
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Every registered workspace, its short id, state and policy version
    List,
    /// A workspace's record as written, its policy in force and the record's etag
    Show { id: String },
    /// Register a workspace from a JSON record (`-` reads standard input); see
    /// docs/configuration.md for its fields
    Register { file: PathBuf },
    /// Turn a workspace's airlock off: its requests stay, nobody can act on them
    Disable { id: String },
    /// Turn a workspace's airlock back on
    Enable { id: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// The policy the workspace's record sets (the rest comes from the operator's defaults)
    Get {
        id: String,
        /// The whole policy in force instead, defaults included
        #[arg(long)]
        in_force: bool,
    },
    /// Replace the policy the record sets with a JSON file (`-` reads standard input);
    /// validated, and refused if someone changed the workspace since it was read
    Set { id: String, file: PathBuf },
    /// Every change to the workspace, who made it, what it changed, the policy version after
    History { id: String },
    /// What differs between two versions of the policy as set [default: the last change]
    Diff {
        id: String,
        /// The earlier change's number (#N in `history`) [default: the one before --to]
        #[arg(long)]
        from: Option<u64>,
        /// The later change's number [default: the latest]
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Requests created from this time (RFC 3339, e.g. 2026-11-01T00:00:00Z) [default: 30
    /// days before --to]
    #[arg(long)]
    pub from: Option<String>,
    /// Requests created before this time [default: now]
    #[arg(long)]
    pub to: Option<String>,
    /// Every workspace added up (TRE admins and auditors; the TRE-wide API's login, `tre`)
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    pub id: String,
    /// json (what `airlock verify` checks), html (print-ready) or ro-crate (Five Safes
    /// RO-Crate metadata)
    #[arg(long, default_value = "json", value_parser = ["json", "html", "ro-crate"])]
    pub format: String,
    /// Where to save it [default: record-ID.json / .html, or ro-crate-metadata.json]
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A record saved by `airlock record` (JSON)
    pub record: PathBuf,
    /// A folder of the request's files (as `airlock download` saves them) to check against
    /// the sealed sha256 the record holds
    #[arg(long)]
    pub files: Option<PathBuf>,
}
