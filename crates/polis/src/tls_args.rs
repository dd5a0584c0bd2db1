//! The TLS flags of `polis server`, with Redis's names and meaning.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use polis_tls::{AuthClients, TlsFiles, TlsListen};

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
