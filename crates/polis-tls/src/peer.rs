//! Mutual TLS between nodes (`tls-cluster yes`): every peer connection
//! is TLS both ways, with the node's own certificate as server and as
//! client, checked against the cluster's CA and a cluster name.
//!
//! ```text
//!  node A ── dial, present A's certificate ──> node B's peer port
//!     checks B's certificate: signed by the CA, valid for the cluster name
//!                        B checks A's certificate: signed by the CA, carrying the cluster name
//!  either check fails ──> the handshake fails, B logs the refusal; nothing is read
//! ```
//!
//! The name is what keeps a certificate the same CA signed for a client
//! (or any other service) from acting as a node: only certificates with
//! the cluster name as a DNS name (`polis-node` unless configured) are
//! peers.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::{provider, read_certs, read_roots};

/// The name peers' certificates carry unless configured otherwise.
pub const CLUSTER_NAME_DEFAULT: &str = "polis-node";

/// The files and the name of a cluster's mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFiles {
    /// The node's certificate (used as server and as client) and its key.
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    /// The cluster's CA.
    pub ca_cert_file: std::path::PathBuf,
    /// The DNS name every peer's certificate must carry.
    pub name: String,
}

/// The rustls configurations of both ends of a peer connection.
#[derive(Debug, Clone)]
pub struct PeerTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
    /// The name a dialled peer's certificate is checked for.
    pub name: ServerName<'static>,
}

impl PeerTls {
    /// Reads `files`.
    ///
    /// # Errors
    /// A file does not read, the key does not match the certificate, or
    /// the name is not a DNS name.
    pub fn load(files: &PeerFiles) -> Result<Self, String> {
        let name = ServerName::try_from(files.name.clone())
            .map_err(|_| format!("tls-cluster-name {:?} is not a DNS name", files.name))?;
        let ServerName::DnsName(_) = &name else {
            return Err(format!(
                "tls-cluster-name {:?} is not a DNS name",
                files.name
            ));
        };
        let roots = Arc::new(read_roots(&files.ca_cert_file)?);
        let certs = read_certs(&files.cert_file)?;
        let key = || {
            PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| {
                format!(
                    "reading the private key from {}: {error}",
                    files.key_file.display()
                )
            })
        };
        let inner = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|error| format!("the CA of {}: {error}", files.ca_cert_file.display()))?;
        let verifier = Arc::new(NamedPeers {
            inner,
            name: name.clone(),
        });
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key()?)
            .map_err(|error| format!("the node's certificate and key: {error}"))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key()?)
            .map_err(|error| format!("the node's certificate and key: {error}"))?;
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
            name,
        })
    }
}

/// The CA's check of a client certificate, then the cluster name's.
#[derive(Debug)]
struct NamedPeers {
    inner: Arc<dyn ClientCertVerifier>,
    name: ServerName<'static>,
}

impl ClientCertVerifier for NamedPeers {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|error| rustls::Error::General(format!("a peer's certificate: {error}")))?;
        cert.verify_is_valid_for_subject_name(&self.name)
            .map_err(|_| {
                rustls::Error::General(format!(
                    "the peer's certificate is not for the cluster name {:?}",
                    self.name.to_str()
                ))
            })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use std::path::Path;

    use rcgen::{
        BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    struct Ca {
        cert: Certificate,
        key: KeyPair,
    }

    fn ca(common_name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Writes a certificate for `names` signed by `ca`, usable as server and
    /// client, into `dir`; returns its files with `ca`'s as the CA.
    fn issue(dir: &Path, ca: &Ca, label: &str, names: &[&str]) -> PeerFiles {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
        let files = PeerFiles {
            cert_file: dir.join(format!("{label}.crt")),
            key_file: dir.join(format!("{label}.key")),
            ca_cert_file: dir.join(format!("{label}-ca.crt")),
            name: CLUSTER_NAME_DEFAULT.to_owned(),
        };
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        std::fs::write(&files.ca_cert_file, ca.cert.pem()).unwrap();
        files
    }

    fn text(error: std::io::Error) -> String {
        error.to_string()
    }

    /// Runs a handshake from `dialer` to `listener` and one byte each way;
    /// returns each side's outcome.
    async fn handshake(
        dialer: &PeerTls,
        listener: &PeerTls,
    ) -> (Result<(), String>, Result<(), String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, far) = tokio::io::duplex(64 * 1024);
        let acceptor = TlsAcceptor::from(listener.server.clone());
        let connector = TlsConnector::from(dialer.client.clone());
        let name = dialer.name.clone();
        tokio::join!(
            async move {
                let mut stream = acceptor.accept(far).await.map_err(text)?;
                let mut byte = [0_u8; 1];
                stream.read_exact(&mut byte).await.map_err(text)?;
                stream.write_all(b"y").await.map_err(text)?;
                stream.flush().await.map_err(text)
            },
            async move {
                let mut stream = connector.connect(name, near).await.map_err(text)?;
                stream.write_all(b"x").await.map_err(text)?;
                stream.flush().await.map_err(text)?;
                // TLS 1.3 clients learn of a refused certificate here.
                let mut byte = [0_u8; 1];
                stream.read_exact(&mut byte).await.map_err(text)?;
                Ok(())
            }
        )
    }

    #[tokio::test]
    async fn nodes_of_one_ca_and_name_connect_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = ca("cluster CA");
        let stranger_ca = ca("another CA");
        let node_a = PeerTls::load(&issue(
            dir.path(),
            &cluster,
            "a",
            &["polis-node", "localhost"],
        ))
        .unwrap();
        let node_b = PeerTls::load(&issue(dir.path(), &cluster, "b", &["polis-node"])).unwrap();
        let (accepted, connected) = handshake(&node_a, &node_b).await;
        assert_eq!(accepted, Ok(()));
        assert!(connected.is_ok(), "{connected:?}");

        // Signed by the cluster's CA, but for another name (a client's).
        let client =
            PeerTls::load(&issue(dir.path(), &cluster, "client", &["app.example"])).unwrap();
        let (accepted, _) = handshake(&client, &node_b).await;
        let refused = accepted.unwrap_err();
        assert!(refused.contains("not for the cluster name"), "{refused}");

        // A node's name, signed by another CA.
        let stranger = PeerTls::load(&issue(
            dir.path(),
            &stranger_ca,
            "stranger",
            &["polis-node"],
        ))
        .unwrap();
        let (accepted, connected) = handshake(&stranger, &node_b).await;
        assert!(accepted.is_err(), "a stranger's certificate was accepted");
        // ... and the stranger does not trust the cluster's node either.
        assert!(connected.is_err());
    }

    #[test]
    fn a_cluster_name_must_be_a_dns_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = issue(dir.path(), &ca("cluster CA"), "a", &["polis-node"]);
        files.name = "127.0.0.1".into();
        assert!(PeerTls::load(&files)
            .unwrap_err()
            .contains("not a DNS name"));
        files.name = "not a name".into();
        assert!(PeerTls::load(&files).is_err());
    }
}
