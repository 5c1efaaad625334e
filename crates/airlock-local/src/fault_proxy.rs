//! A TCP proxy in front of an emulator that makes its calls fail or slow down on demand, so
//! the real `handler` binary meets a flaky Blob service or Cosmos DB without one line of test
//! code inside it. TLS passes through untouched (the emulators' certificates name 127.0.0.1,
//! which the proxy also is).
//!
//! Faults, all changeable while running:
//! - **delay**: every chunk the client sends waits this long first (a slow service);
//! - **refusal rate**: this share of new connections is closed at once (calls fail while
//!   connecting, as when a service sheds load);
//! - **cut**: every open connection is dropped now (calls in flight fail mid-way; clients
//!   that pool connections must reconnect, and meet the refusal rate again);
//! - **down**: no byte passes either way and every connection, open or new, is closed: the
//!   service is gone for its callers. Put in front of an emulator that is about to stop, it
//!   makes the stop what a crash of the real service is: no answer given after this point
//!   reaches anyone (see [`FaultProxy::go_down`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub connections: u64,
    /// New connections closed at once by the refusal rate.
    pub refused: u64,
    /// Open connections dropped by [`FaultProxy::cut`].
    pub cut: u64,
    /// Connections whose backend could not be reached (e.g. while it restarts).
    pub backend_down: u64,
}

#[derive(Default)]
struct Faults {
    delay_ms: AtomicU64,
    refuse_per_mille: AtomicU32,
    down: std::sync::atomic::AtomicBool,
    rng: AtomicU64,
    connections: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    backend_down: AtomicU64,
}

impl Faults {
    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// A xorshift step: cheap, lock-free and reproducible enough for fault injection.
    fn roll_per_mille(&self) -> u32 {
        let mut x = self.rng.load(Ordering::Relaxed) | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x % 1000) as u32
    }
}

/// A fault-injecting proxy listening on `127.0.0.1:{port}`; stops when dropped.
pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Faults>,
    cuts: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl FaultProxy {
    /// Listens on `listen_port` (0: any free port) and forwards to `127.0.0.1:backend_port`.
    pub async fn start(listen_port: u16, backend_port: u16) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", listen_port)).await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults {
            rng: AtomicU64::new(0x2545_F491_4F6C_DD1D ^ u64::from(port)),
            ..Faults::default()
        });
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let accepting = faults.clone();
        let cut_signal = cuts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let faults = accepting.clone();
                faults.connections.fetch_add(1, Ordering::Relaxed);
                if faults.is_down()
                    || faults.roll_per_mille() < faults.refuse_per_mille.load(Ordering::Relaxed)
                {
                    faults.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let cut = cut_signal.subscribe();
                tokio::spawn(forward(client, backend_port, faults, cut));
            }
        });
        Ok(FaultProxy {
            port,
            faults,
            cuts,
            task,
        })
    }

    pub fn set_delay(&self, delay: Duration) {
        self.faults
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Closes this share (‰) of new connections at once; 0 for none.
    pub fn set_refusals_per_mille(&self, per_mille: u32) {
        self.faults
            .refuse_per_mille
            .store(per_mille.min(1000), Ordering::Relaxed);
    }

    /// Drops every open connection now.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Takes the service away from its callers at once: every connection is closed, new
    /// ones are refused, and not one more byte is passed either way, so no answer the backend
    /// gives from now on reaches a caller (a connection accepted a moment ago, or an answer
    /// already read from the backend, is closed before its next write too).
    ///
    /// Why: Azurite, told to stop, still answers the calls it had in hand while it saves, and
    /// whether a write so answered is in the save is down to timing inside it; a caller told
    /// "done" of a write the restarted emulator no longer has would meet what Azure never
    /// does. Taken down first, no such answer arrives: the caller sees a dropped connection
    /// and retries, as it would on Azure.
    pub fn go_down(&self) {
        self.faults.down.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Passes traffic again after [`FaultProxy::go_down`].
    pub fn come_up(&self) {
        self.faults.down.store(false, Ordering::SeqCst);
    }

    /// Back to a plain proxy.
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        self.set_refusals_per_mille(0);
    }

    pub fn counts(&self) -> ProxyCounts {
        let f = &self.faults;
        ProxyCounts {
            connections: f.connections.load(Ordering::Relaxed),
            refused: f.refused.load(Ordering::Relaxed),
            cut: f.cut.load(Ordering::Relaxed),
            backend_down: f.backend_down.load(Ordering::Relaxed),
        }
    }
}

async fn forward(
    client: TcpStream,
    backend_port: u16,
    faults: Arc<Faults>,
    mut cut: tokio::sync::watch::Receiver<u64>,
) {
    let Ok(backend) = TcpStream::connect(("127.0.0.1", backend_port)).await else {
        faults.backend_down.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut backend_read, mut backend_write) = backend.into_split();
    let delaying = faults.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return backend_write.shutdown().await;
            }
            let delay = delaying.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if delaying.is_down() {
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
            backend_write.write_all(&buf[..n]).await?;
        }
    };
    let answering = faults.clone();
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = backend_read.read(&mut buf).await?;
            if n == 0 {
                return client_write.shutdown().await;
            }
            if answering.is_down() {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionAborted));
            }
            client_write.write_all(&buf[..n]).await?;
        }
    };
    let both = async { tokio::try_join!(upstream, downstream) };
    tokio::select! {
        _ = both => {}
        _ = cut.changed() => {
            faults.cut.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    async fn round_trip(port: u16) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn forwards_refuses_delays_and_cuts() {
        let backend = echo_server().await;
        let proxy = FaultProxy::start(0, backend).await.unwrap();
        assert_eq!(round_trip(proxy.port).await.unwrap(), b"ping");

        proxy.set_refusals_per_mille(1000);
        assert!(round_trip(proxy.port).await.is_err(), "refused");
        proxy.set_refusals_per_mille(0);

        proxy.set_delay(Duration::from_millis(300));
        let started = std::time::Instant::now();
        assert_eq!(round_trip(proxy.port).await.unwrap(), b"ping");
        assert!(started.elapsed() >= Duration::from_millis(300));
        proxy.heal();

        let mut open = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        open.read_exact(&mut buf).await.unwrap();
        proxy.cut();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .expect("the cut connection closes");
        assert!(read.map(|n| n == 0).unwrap_or(true));
        let counts = proxy.counts();
        assert_eq!((counts.refused, counts.cut), (1, 1), "{counts:?}");
        assert_eq!(counts.connections, 4);

        // Down: an open connection is closed with nothing more passed, a new one refused;
        // up again, it passes.
        let mut open = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        open.read_exact(&mut buf).await.unwrap();
        proxy.go_down();
        let _ = open.write_all(b"pong").await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .expect("the connection closes");
        assert!(
            read.is_err() || rest.is_empty(),
            "no answer passes while down: {rest:?}"
        );
        assert!(round_trip(proxy.port).await.is_err(), "refused while down");
        proxy.come_up();
        assert_eq!(round_trip(proxy.port).await.unwrap(), b"ping");
    }
}
