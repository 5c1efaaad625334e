//! Running the CLI as a person would, each person with their own config directory.

use std::path::{Path, PathBuf};
use std::process::Output;

pub use airlock_system_tests::{airlock_bin, handler_bin};

/// A fresh directory for a test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "airlock-cli-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Someone at a terminal, with their own settings and logins.
#[derive(Clone)]
pub struct Person {
    pub config: PathBuf,
    pub cwd: PathBuf,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// Exit code 0, or fail the test showing what the person saw.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// A clean refusal: this exit code, one line on stderr naming the problem, no panic.
    pub fn refused(self, code: i32, says: &str) -> Run {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(says),
            "expected {says:?} in:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "{}",
            self.stderr
        );
        self
    }
}

impl Person {
    pub fn new(root: &Path, name: &str) -> Person {
        let config = root.join(format!("{name}-config"));
        std::fs::create_dir_all(&config).unwrap();
        Person {
            config,
            cwd: root.to_path_buf(),
        }
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(airlock_bin());
        command
            .args(args)
            .current_dir(&self.cwd)
            .env("AIRLOCK_CONFIG_DIR", &self.config)
            .env_remove("AIRLOCK_TOKEN")
            .env_remove("AIRLOCK_API")
            .env_remove("AIRLOCK_WORKSPACE")
            .env_remove("AIRLOCK_CA_CERT");
        command
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        let out: Output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("the airlock binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
