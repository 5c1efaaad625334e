//! What can go wrong, as a person reads it: one line saying what happened and what to do, and
//! the exit code a script acts on. Told apart by variant, never by message text.

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The airlock refused (4xx): wrong status, not allowed, a limit, a bad name.
    #[error("{0}")]
    Refused(String),
    /// Something failed on the way (5xx, storage, a hash that does not match).
    #[error("{0}")]
    Failed(String),
    /// Not logged in, or the login expired and cannot be refreshed.
    #[error("{0}")]
    Login(String),
    /// The API or storage could not be reached at all.
    #[error("{0}")]
    Unreachable(String),
    /// The command line itself is wrong (beyond what the argument parser catches).
    #[error("{0}")]
    Usage(String),
    /// `--wait` gave up before the request reached the status waited for.
    #[error("{0}")]
    TimedOut(String),
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The request was made but ended where it should not have (blocked, failed, rejected):
    /// its id is still the script's to act on (`--id` prints it).
    #[error("{message}")]
    Ended { request_id: String, message: String },
    /// Ctrl-C: the message says how to carry on from where it stopped.
    #[error("{message}")]
    Interrupted { request_id: String, message: String },
}

impl CliError {
    /// 0 done, 1 refused or failed, 2 usage, 3 timed out waiting, 130 interrupted.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::TimedOut(_) => ExitCode::from(3),
            // As a shell reports a command stopped by SIGINT.
            CliError::Interrupted { .. } => ExitCode::from(130),
            _ => ExitCode::from(1),
        }
    }

    /// The request a failure is about, when one was made.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CliError::Ended { request_id, .. } | CliError::Interrupted { request_id, .. } => {
                Some(request_id)
            }
            _ => None,
        }
    }

    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> CliError {
        CliError::Io(format!("{what}: {e}"))
    }
}

pub type CliResult<T> = Result<T, CliError>;
