//! TLS from a client of the nodes (the gateway, `--tls-upstream`): the
//! nodes' CA to check them, and a client certificate to show them when
//! they ask for one (`tls-auth-clients yes`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::{provider, read_certs, read_roots};

/// The files of a TLS client (Redis's `tls-client-cert-file` and
/// `tls-client-key-file`, and the CA of the servers).
#[derive(Debug, Clone)]
pub struct ClientFiles {
    pub ca_cert_file: PathBuf,
    /// The client certificate and its key, if the servers ask for one.
    pub cert: Option<(PathBuf, PathBuf)>,
}

/// A TLS client's configuration, ready to dial.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl ClientTls {
    /// Reads `files`.
    ///
    /// # Errors
    /// A file does not read, or the key does not match the certificate.
    pub fn load(files: &ClientFiles) -> Result<Self, String> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(read_roots(&files.ca_cert_file)?);
        let config = match &files.cert {
            Some((cert_file, key_file)) => {
                let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| {
                    format!(
                        "reading the private key from {}: {error}",
                        key_file.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(read_certs(cert_file)?, key)
                    .map_err(|error| format!("the client certificate and key: {error}"))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the handshake over `stream` with the server at `addr`
    /// (`HOST:PORT`), whose certificate must name `HOST`.
    ///
    /// # Errors
    /// The host is not a name or address, or the handshake failed.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        addr: &str,
    ) -> Result<TlsStream<TcpStream>, String> {
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|error| format!("{host} is not a server name: {error}"))?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(|error| format!("TLS handshake with {addr}: {error}"))
    }
}
