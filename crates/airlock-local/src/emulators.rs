//! Starts the emulators the local stack and the real-stack tests run on: Azurite (Blob, over
//! HTTPS with `--oauth basic`, so the production bearer-token path is exercised) and the Cosmos
//! DB emulator (through a launcher that patches its known bugs). Each runs as a child process
//! that is killed when its handle drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The well-known Azurite development key; it is never used by the handler (which has no
/// shared-key code path), only required by Azurite's account list.
const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The repository's root (this crate is `crates/airlock-local`).
pub fn repo_root() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or(crate_dir)
}

/// The repository's `infra/local` folder.
pub fn infra_local() -> PathBuf {
    repo_root().join("infra/local")
}

/// Ports [`free_port`] and [`free_listener`] handed out in this process.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port nothing listens on now, and that this process has not handed out before: stacks
/// started at once in one process (parallel tests) pick their ports before their servers
/// bind them, and the system may offer a port just released by another's pick.
pub fn free_port() -> std::io::Result<u16> {
    for _ in 0..64 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed.contains(&port) {
            handed.push(port);
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port that was not handed out already",
    ))
}

/// A loopback listener on a port the system picks, never one [`free_port`] has handed out:
/// a listener bound to port 0 in the same moment could otherwise take the port a child
/// process is about to bind (a stack's router took another stack's handler port, whose
/// front door then forwarded the API to a router: every call answered 404).
pub async fn free_listener() -> std::io::Result<tokio::net::TcpListener> {
    let mut refused = Vec::new();
    for _ in 0..64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !handed.contains(&port) {
            handed.push(port);
            return Ok(listener);
        }
        // Held until a different port is found, so the system does not offer it again.
        refused.push(listener);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port that was not handed out already",
    ))
}

/// Whether the loopback listener on `port` belongs to a process of the group `group` (a
/// child started with `process_group(0)` leads its own): a readiness probe that any
/// listener answers cannot tell a child that failed to bind from another process that
/// holds the port. `None` where `/proc` cannot say (then the probe is all there is).
pub fn listener_in_group(port: u16, group: u32) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(9).map(|i| i.to_string()))
            .flatten()
    });
    let Some(inode) = inode else {
        return Some(false);
    };
    let socket = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name in parentheses: state, parent, process group.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        if pgrp != Some(group) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == socket) {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// A child process killed (with its process group) on drop.
pub struct ChildGuard {
    pub name: String,
    child: Child,
}

impl ChildGuard {
    pub fn spawn(name: &str, command: Command, log: &Path) -> std::io::Result<ChildGuard> {
        std::fs::File::create(log)?;
        Self::spawn_appending(name, command, log)
    }

    /// [`ChildGuard::spawn`], appending to `log` (a restarted process keeps its history).
    pub fn spawn_appending(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> std::io::Result<ChildGuard> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        command
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command
            .spawn()
            .map_err(|e| std::io::Error::other(format!("starting {name}: {e}")))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child,
        })
    }

    /// Wraps a child spawned elsewhere (in its own process group).
    pub fn adopt(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            name: name.to_string(),
            child,
        }
    }

    /// SIGKILL, no chance to finish anything: a crash.
    pub fn kill_now(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Signals the child's whole process group (npx and node, or a shell and its children),
    /// with kill(1) rather than `unsafe` libc: this crate forbids `unsafe`.
    fn signal_group(&self, signal: &str) {
        #[cfg(unix)]
        {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &group])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// How it exited, once it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stop(&mut self) {
        self.stop_within(Duration::from_secs(3));
    }

    /// SIGTERM to the process group, `grace` to exit, then SIGKILL.
    pub fn stop_within(&mut self, grace: Duration) {
        self.signal_group("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.has_exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `port` accepts TCP connections, or the child exits, or time runs out.
pub fn wait_for_port(
    child: &mut ChildGuard,
    port: u16,
    log: &Path,
    within: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if child.has_exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = tail
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(std::io::Error::other(format!(
        "{} did not start on port {port}:\n{tail}",
        child.name
    )))
}

/// Makes the local CA and server certificate in `dir` (idempotent; one thread at a time).
pub fn ensure_tls(dir: &Path) -> std::io::Result<()> {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new("bash")
        .arg(infra_local().join("tls.sh"))
        .arg(dir)
        .stdout(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("infra/local/tls.sh failed"))
    }
}

/// Installs the emulators from the lockfile when they are missing. Tests start emulators
/// from several threads at once: one installs, the others wait for it.
pub fn ensure_npm() -> std::io::Result<()> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = infra_local();
    if dir.join("node_modules/azurite").exists()
        && dir.join("node_modules/@vercel/cosmosdb-server").exists()
    {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("npm ci in infra/local failed"))
    }
}

pub struct Azurite {
    pub port: u16,
    /// `https://127.0.0.1:{port}/{account}`
    pub endpoint_template: String,
    pub child: ChildGuard,
    /// The queue service (the `Work` queue), on its own port.
    pub queue_port: u16,
    /// `https://127.0.0.1:{queue_port}/{account}`
    pub queue_endpoint_template: String,
    pub queue_child: ChildGuard,
    /// How it was started, to start it again the same way.
    setup: AzuriteSetup,
}

struct AzuriteSetup {
    tls_dir: PathBuf,
    accounts: String,
    log_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    queue_port: u16,
}

impl Azurite {
    /// Starts Azurite over HTTPS with OAuth, serving `accounts`, keeping blobs and queues on
    /// disk under `data_dir` (a multi-GiB file and its stage copies would not fit in memory,
    /// and a restarted emulator keeps its data).
    pub fn start(
        tls_dir: &Path,
        accounts: &[String],
        log_dir: &Path,
        data_dir: &Path,
    ) -> std::io::Result<Azurite> {
        ensure_npm()?;
        std::fs::create_dir_all(data_dir.join("blob"))?;
        std::fs::create_dir_all(data_dir.join("queue"))?;
        let list: Vec<String> = accounts
            .iter()
            .map(|a| format!("{a}:{DEV_ACCOUNT_KEY}"))
            .collect();
        let (port, queue_port) = (free_port()?, free_port()?);
        let setup = AzuriteSetup {
            tls_dir: tls_dir.to_path_buf(),
            accounts: list.join(";"),
            log_dir: log_dir.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            port,
            queue_port,
        };
        Ok(Azurite {
            port,
            endpoint_template: format!("https://127.0.0.1:{port}/{{account}}"),
            child: setup.spawn_blob()?,
            queue_port,
            queue_endpoint_template: format!("https://127.0.0.1:{queue_port}/{{account}}"),
            queue_child: setup.spawn_queue()?,
            setup,
        })
    }

    /// Stops Blob and Queue (SIGTERM: Azurite saves its metadata), keeps them down for
    /// `down`, and starts them again on the same ports with the same data on disk: an
    /// emulator restart, or a storage outage.
    ///
    /// Told to stop, Azurite still answers the calls it had in hand while it saves; whether
    /// their writes are in the save is down to timing inside it. The local stack takes it
    /// away from every caller first ([`crate::fault_proxy::FaultProxy::go_down`]), so no
    /// such answer reaches anyone. An error if either service did not say it had saved
    /// within a minute (it is killed then, and its last writes may be gone).
    pub fn restart(&mut self, down: Duration) -> std::io::Result<()> {
        let grace = Duration::from_secs(60);
        let blob_saved = stop_saved(
            &mut self.child,
            &self.setup.log_dir.join("azurite.log"),
            grace,
        );
        let queue_saved = stop_saved(
            &mut self.queue_child,
            &self.setup.log_dir.join("azurite-queue.log"),
            grace,
        );
        std::thread::sleep(down);
        self.child = self.setup.spawn_blob()?;
        self.queue_child = self.setup.spawn_queue()?;
        if blob_saved && queue_saved {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "Azurite did not say it had saved its state within {grace:?} (blob {blob_saved}, queue {queue_saved}) and was killed: its last writes may be lost"
            )))
        }
    }
}

/// What Azurite prints once it has closed its stores (saved its state).
const AZURITE_CLOSED: &str = "service successfully closed";

fn times_closed(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|text| text.matches(AZURITE_CLOSED).count())
        .unwrap_or(0)
}

/// SIGTERM, then waits for Azurite to say it has saved, then makes sure it is gone: after
/// its save it can linger for minutes on connections it will never answer (calls that came
/// in after it stopped listening). Whether it saved within `grace`.
fn stop_saved(child: &mut ChildGuard, log: &Path, grace: Duration) -> bool {
    let before = times_closed(log);
    child.signal_group("TERM");
    let deadline = Instant::now() + grace;
    let saved = loop {
        if times_closed(log) > before {
            break true;
        }
        if child.has_exited() || Instant::now() >= deadline {
            break times_closed(log) > before;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Saved (or out of time): a second SIGTERM finds no handler and ends node at once.
    child.stop_within(Duration::from_secs(2));
    saved
}

impl AzuriteSetup {
    fn spawn_blob(&self) -> std::io::Result<ChildGuard> {
        let mut command = Command::new("node");
        command
            .arg(infra_local().join("node_modules/azurite/dist/src/blob/main.js"))
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &self.port.to_string(),
            ])
            .args(["--oauth", "basic", "--disableTelemetry", "--loose"])
            .arg("--location")
            .arg(self.data_dir.join("blob"))
            .arg("--cert")
            .arg(self.tls_dir.join("server.pem"))
            .arg("--key")
            .arg(self.tls_dir.join("server.key"))
            .env("AZURITE_ACCOUNTS", &self.accounts)
            // Azurite reads copy sources over HTTPS itself: it must trust the local CA too.
            .env("NODE_EXTRA_CA_CERTS", self.tls_dir.join("ca.pem"));
        // Azurite's debug log grows by megabytes a minute: only when asked for.
        if std::env::var_os("AIRLOCK_AZURITE_DEBUG").is_some() {
            command
                .arg("--debug")
                .arg(self.log_dir.join("azurite-debug.log"));
        }
        let log = self.log_dir.join("azurite.log");
        let mut child = ChildGuard::spawn_appending("azurite", command, &log)?;
        wait_for_port(&mut child, self.port, &log, Duration::from_secs(30))?;
        Ok(child)
    }

    fn spawn_queue(&self) -> std::io::Result<ChildGuard> {
        let mut queue = Command::new("node");
        queue
            .arg(infra_local().join("node_modules/azurite/dist/src/queue/main.js"))
            .args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &self.queue_port.to_string(),
            ])
            .args(["--oauth", "basic", "--disableTelemetry", "--loose"])
            .arg("--location")
            .arg(self.data_dir.join("queue"))
            .arg("--cert")
            .arg(self.tls_dir.join("server.pem"))
            .arg("--key")
            .arg(self.tls_dir.join("server.key"))
            .env("AZURITE_ACCOUNTS", &self.accounts);
        let log = self.log_dir.join("azurite-queue.log");
        let mut child = ChildGuard::spawn_appending("azurite queue", queue, &log)?;
        wait_for_port(&mut child, self.queue_port, &log, Duration::from_secs(30))?;
        Ok(child)
    }
}

/// The Cosmos DB emulator's well-known key (accepted, not checked, by the emulator).
pub const COSMOS_EMULATOR_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

pub struct CosmosEmulator {
    pub port: u16,
    pub endpoint: String,
    pub child: ChildGuard,
}

impl CosmosEmulator {
    /// Starts `@vercel/cosmosdb-server` over HTTPS with the local certificate, patched by
    /// `infra/local/cosmos-emulator.js`.
    pub fn start(tls_dir: &Path, log_dir: &Path) -> std::io::Result<CosmosEmulator> {
        Self::start_behind(tls_dir, log_dir, None)
    }

    /// [`CosmosEmulator::start`], advertising `proxy_port` as its address in the account
    /// document (the SDK sends every call to the address the account advertises), so that
    /// calls go through a [`crate::fault_proxy::FaultProxy`] listening there.
    pub fn start_behind(
        tls_dir: &Path,
        log_dir: &Path,
        proxy_port: Option<u16>,
    ) -> std::io::Result<CosmosEmulator> {
        ensure_npm()?;
        let port = free_port()?;
        let mut command = Command::new("node");
        command
            .arg(infra_local().join("cosmos-emulator.js"))
            .args(["--port", &port.to_string()])
            .args(["--advertise-port", &proxy_port.unwrap_or(port).to_string()])
            .arg("--cert")
            .arg(tls_dir.join("server.pem"))
            .arg("--key")
            .arg(tls_dir.join("server.key"));
        let log = log_dir.join("cosmos.log");
        let mut child = ChildGuard::spawn("cosmos emulator", command, &log)?;
        wait_for_port(&mut child, port, &log, Duration::from_secs(30))?;
        Ok(CosmosEmulator {
            port,
            endpoint: format!("https://127.0.0.1:{port}/"),
            child,
        })
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    fn own_group() -> u32 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (_, rest) = stat.rsplit_once(')').unwrap();
        rest.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn a_listener_is_known_by_its_owners_group_only() {
        let listener = free_listener().await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_in_group(port, own_group()), Some(true));
        assert_eq!(listener_in_group(port, own_group() + 1), Some(false));
        drop(listener);
        assert_eq!(listener_in_group(port, own_group()), Some(false), "gone");
    }

    #[tokio::test]
    async fn a_listener_never_takes_a_port_handed_out() {
        let handed: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        for _ in 0..20 {
            let listener = free_listener().await.unwrap();
            let port = listener.local_addr().unwrap().port();
            assert!(!handed.contains(&port), "{port} was handed out");
        }
    }
}
