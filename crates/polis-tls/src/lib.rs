//! TLS for clients, with Redis's options: `tls-port`, `tls-cert-file`,
//! `tls-key-file`, `tls-ca-cert-file` and `tls-auth-clients yes|no|optional`,
//! through rustls (ring). The certificate, key and CA files are read again
//! when they change, without a restart: new connections use the new ones,
//! open ones keep theirs.
//!
//! ```text
//!  tls-port ─ accept ─> handshake (10 s at most) ─┬─ ok ──> the same connection loop as plaintext
//!                                                 └─ fails ─> logged, counted (tls_handshake_failures), closed
//!  every second: files' modification times changed? ─> reload; a bad file keeps the old config (logged)
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

mod client;
mod peer;

pub use client::{ClientFiles, ClientTls};
pub use peer::{PeerFiles, PeerTls, CLUSTER_NAME_DEFAULT};
pub use tokio_rustls::client::TlsStream as ClientTlsStream;

/// How often the certificate files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts the next connection on `listener`, with TCP_NODELAY set. An
/// accept that fails (out of file descriptors and the like) is logged as
/// accepting `what` and tried again after a short pause rather than spun
/// on.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    what: &str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                return (stream, addr);
            }
            Err(error) => {
                tracing::warn!(%error, "accepting {what} failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a client's handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailure {
    #[error("TLS handshake refused: {0}")]
    Refused(std::io::Error),
    #[error("TLS handshake not finished in {}s", HANDSHAKE_TIMEOUT.as_secs())]
    TimedOut,
}

/// Runs a client's handshake on `stream`, for `HANDSHAKE_TIMEOUT` at most.
///
/// # Errors
/// The client was refused (a plaintext client, a certificate the CA did
/// not sign, ...) or was too slow.
pub async fn handshake(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, HandshakeFailure> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(HandshakeFailure::Refused(error)),
        Err(_) => Err(HandshakeFailure::TimedOut),
    }
}

/// Whether clients must present a certificate (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthClients {
    /// A certificate signed by the CA is required (Redis's default).
    #[default]
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is checked when presented, and not required.
    Optional,
}

impl std::str::FromStr for AuthClients {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Ok(Self::Yes),
            "no" => Ok(Self::No),
            "optional" => Ok(Self::Optional),
            _ => Err(format!(
                "tls-auth-clients takes yes, no or optional, not '{text}'"
            )),
        }
    }
}

/// The files and policy of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA that signs client certificates; needed unless
    /// `auth_clients` is `No`.
    pub ca_cert_file: Option<PathBuf>,
    pub auth_clients: AuthClients,
}

/// A TLS listener: where it binds (`tls-port` on the RESP address's host)
/// and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub addr: String,
    pub files: TlsFiles,
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("reading certificates from {}: {error}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|error| format!("reading certificates from {}: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// ring's algorithms. rustls deprecates this provider because ring has no
/// post-quantum key exchange; aws-lc-rs has one but needs a C/C++ build of
/// several minutes, which this project keeps out of its tree for now.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Returns the roots of trust in `path` (a CA bundle).
///
/// # Errors
/// The file does not read, or holds no usable certificate.
pub fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|error| format!("a CA certificate of {}: {error}", path.display()))?;
    }
    Ok(roots)
}

/// Builds a rustls server configuration from `files`.
///
/// # Errors
/// A file does not read, the key does not match, or a CA is missing where
/// clients must be checked.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let certs = read_certs(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| {
        format!(
            "reading the private key from {}: {error}",
            files.key_file.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let builder = match (files.auth_clients, &files.ca_cert_file) {
        (AuthClients::No, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(
                "tls-auth-clients yes or optional needs tls-ca-cert-file (the CA that signs \
                 client certificates), or set tls-auth-clients no"
                    .into(),
            )
        }
        (auth, Some(ca)) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider());
            let verifier = if auth == AuthClients::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|error| format!("the client CA of {}: {error}", ca.display()))?,
            )
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|error| format!("the certificate and key do not make a pair: {error}"))
}

/// A TLS acceptor that follows its files.
pub struct Reloading {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
    stamps: RwLock<Vec<Option<SystemTime>>>,
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    std::iter::once(&files.cert_file)
        .chain(std::iter::once(&files.key_file))
        .chain(files.ca_cert_file.iter())
        .map(|path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        })
        .collect()
}

impl Reloading {
    /// Reads `files` once.
    ///
    /// # Errors
    /// As [`server_config`]: a node with bad TLS files does not start.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, String> {
        let config = server_config(&files)?;
        Ok(Arc::new(Self {
            stamps: RwLock::new(stamps(&files)),
            current: RwLock::new(TlsAcceptor::from(Arc::new(config))),
            files,
        }))
    }

    /// Returns the acceptor of the files as last read.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads the files again when one changed; returns true when the new
    /// ones took. A bad file keeps the configuration as it was.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.files);
        {
            let mut seen = self
                .stamps
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *seen == now {
                return false;
            }
            *seen = now;
        }
        match server_config(&self.files) {
            Ok(config) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    TlsAcceptor::from(Arc::new(config));
                tracing::info!(cert = %self.files.cert_file.display(), "TLS certificates reloaded");
                true
            }
            Err(error) => {
                tracing::error!(%error, "TLS files changed but do not read: the previous ones stay");
                false
            }
        }
    }

    /// Checks the files every second, until the task is dropped.
    pub async fn keep_reloading(self: Arc<Self>) {
        loop {
            tokio::time::sleep(RELOAD_EVERY).await;
            self.reload_if_changed();
        }
    }
}
