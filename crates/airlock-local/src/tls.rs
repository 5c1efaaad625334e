//! Serving a stand-in over HTTPS with the local CA's server certificate, as the Azure
//! service it plays is only reachable over TLS (the SDK's pipeline will not send a bearer
//! token in clear, so a plain-HTTP stand-in would be kinder than Azure).

use std::path::Path;
use std::sync::Arc;

/// A TLS acceptor for `tls_dir`'s `server.pem` and `server.key` (made by `infra/local/tls.sh`).
pub fn acceptor(tls_dir: &Path) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |e: String| std::io::Error::other(e);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_dir.join("server.pem"))
            .map_err(|e| fail(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| fail(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(tls_dir.join("server.key"))
        .map_err(|e| fail(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| fail(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// An HTTP client builder that trusts the local CA in `tls_dir` (`ca.pem`), for the stack's
/// own calls to the stand-ins it serves over TLS.
pub fn trusting_local_ca(tls_dir: &Path) -> std::io::Result<reqwest::ClientBuilder> {
    let ca = std::fs::read(tls_dir.join("ca.pem"))?;
    let ca =
        reqwest::Certificate::from_pem(&ca).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(reqwest::Client::builder()
        .add_root_certificate(ca)
        // A proxy or a set-up call takes the service's answer as it is.
        .redirect(reqwest::redirect::Policy::none()))
}

/// Serves `app` over HTTPS (HTTP/1.1) on `listener` until the task is aborted. A connection
/// whose handshake fails is dropped; the others are unaffected.
pub fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}
