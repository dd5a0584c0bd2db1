//! The TLS flags of `polis server`, with Redis's names and meaning.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use polis_tls::{AuthClients, PeerFiles, TlsFiles, TlsListen, CLUSTER_NAME_DEFAULT};

/// TLS for clients (`--tls-port` with a certificate and key); every flag
/// also reads `POLIS_<NAME>`.
#[derive(Debug, Default, Args)]
pub struct TlsArgs {
    /// Port of a TLS listener for clients, on the RESP address's host
    /// (0: none, the default).
    #[arg(long, env = "POLIS_TLS_PORT")]
    pub tls_port: Option<u16>,
    /// PEM certificate chain the TLS port presents.
    #[arg(long, env = "POLIS_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "POLIS_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificate(s) that sign client certificates.
    #[arg(long, env = "POLIS_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Whether clients must present a certificate signed by that CA:
    /// yes (default, as Redis), no, or optional.
    #[arg(long, env = "POLIS_TLS_AUTH_CLIENTS")]
    pub tls_auth_clients: Option<String>,
}

impl TlsArgs {
    /// Returns the flag's value, else the file's.
    fn or(self, file: TlsArgs) -> TlsArgs {
        TlsArgs {
            tls_port: self.tls_port.or(file.tls_port),
            tls_cert_file: self.tls_cert_file.or(file.tls_cert_file),
            tls_key_file: self.tls_key_file.or(file.tls_key_file),
            tls_ca_cert_file: self.tls_ca_cert_file.or(file.tls_ca_cert_file),
            tls_auth_clients: self.tls_auth_clients.or(file.tls_auth_clients),
        }
    }

    /// Resolves flags over `file` into a listener on `resp_addr`'s host.
    ///
    /// # Errors
    /// A TLS port without a certificate or key, or a bad
    /// `tls-auth-clients`.
    pub fn resolve(self, file: TlsArgs, resp_addr: &str) -> anyhow::Result<Option<TlsListen>> {
        let args = self.or(file);
        let Some(port) = args.tls_port.filter(|port| *port != 0) else {
            return Ok(None);
        };
        let (Some(cert_file), Some(key_file)) = (args.tls_cert_file, args.tls_key_file) else {
            bail!("--tls-port needs --tls-cert-file and --tls-key-file");
        };
        let auth_clients: AuthClients = match args.tls_auth_clients {
            Some(text) => text.parse().map_err(anyhow::Error::msg)?,
            None => AuthClients::default(),
        };
        let host = resp_addr
            .rsplit_once(':')
            .map(|(host, _)| host)
            .context("the RESP address has no port")?;
        Ok(Some(TlsListen {
            addr: format!("{host}:{port}"),
            files: TlsFiles {
                cert_file,
                key_file,
                ca_cert_file: args.tls_ca_cert_file,
                auth_clients,
            },
        }))
    }
}

/// Mutual TLS between nodes, as Redis's `tls-cluster`: the node's own
/// certificate (`--tls-cert-file`, `--tls-key-file`) as server and as
/// client, `--tls-ca-cert-file` as the cluster's CA.
#[derive(Debug, Default, Args)]
pub struct ClusterTlsArgs {
    /// Mutual TLS on the peer port and to every peer: yes, or no (the
    /// default). Every node of a cluster must say the same.
    #[arg(long, env = "POLIS_TLS_CLUSTER")]
    pub tls_cluster: Option<String>,
    /// The DNS name every node's certificate must carry (default
    /// polis-node): a certificate of the same CA without it, a client's,
    /// is refused on the peer port.
    #[arg(long, env = "POLIS_TLS_CLUSTER_NAME")]
    pub tls_cluster_name: Option<String>,
}

impl ClusterTlsArgs {
    /// Resolves flags over `file`, with the node's certificate, key and CA
    /// files (flags over file, in that order).
    ///
    /// # Errors
    /// `tls-cluster` is neither yes nor no, or yes without the files.
    pub fn resolve(
        self,
        file: ClusterTlsArgs,
        [cert_file, key_file, ca_cert_file]: [Option<PathBuf>; 3],
    ) -> anyhow::Result<Option<PeerFiles>> {
        let enabled = self.tls_cluster.or(file.tls_cluster);
        match enabled.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("no") => return Ok(None),
            Some("yes") => {}
            Some(other) => bail!("--tls-cluster takes yes or no, not '{other}'"),
        }
        let (Some(cert_file), Some(key_file), Some(ca_cert_file)) =
            (cert_file, key_file, ca_cert_file)
        else {
            bail!(
                "--tls-cluster yes needs --tls-cert-file and --tls-key-file (this node's \
                 certificate, for serving and dialling peers) and --tls-ca-cert-file (the \
                 cluster's CA)"
            );
        };
        let name = self
            .tls_cluster_name
            .or(file.tls_cluster_name)
            .unwrap_or_else(|| CLUSTER_NAME_DEFAULT.to_owned());
        Ok(Some(PeerFiles {
            cert_file,
            key_file,
            ca_cert_file,
            name,
        }))
    }
}
