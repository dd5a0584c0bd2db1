//! `polis tls certs`: a CA, and a server and a client certificate it
//! signs, as PEM files, for `polis dev --secure`, the tests, and trying TLS
//! out. Production clusters bring certificates of their own CA.
//!
//! ```text
//!  DIR/ca.crt ca.key          the CA (ECDSA P-256)
//!  DIR/server.crt server.key  signed by it: localhost, 127.0.0.1, ::1 (server auth)
//!  DIR/client.crt client.key  signed by it: CN polis-client (client auth)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// `polis tls ...`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Writes a new CA and a server and a client certificate it signs.
    Certs(CertsArgs),
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory the PEM files go to (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Every certificate expired long ago (to test that they are refused).
    #[arg(long)]
    expired: bool,
}

/// Runs `polis tls ...`.
pub fn run(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::Certs(args) => {
            write_certs(&args.dir, args.expired)?;
            println!(
                "polis tls: wrote ca.crt, server.crt/.key, client.crt/.key and node.crt/.key \
                 (tls-cluster) to {}",
                args.dir.display()
            );
            Ok(())
        }
    }
}

fn params(names: &[&str], common_name: &str, expired: bool) -> anyhow::Result<CertificateParams> {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).context("certificate names")?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if expired {
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2001, 1, 1);
    }
    Ok(params)
}

/// Writes `text` to `path`, readable by its owner alone (keys and
/// passwords; certificates too, harmlessly).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    write_private(&dir.join(name), text)
}

/// Writes a CA, and a server and a client certificate it signs, to `dir`.
///
/// # Errors
/// A file cannot be written, or a certificate cannot be made.
pub fn write_certs(dir: &Path, expired: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = params(&[], "polis CA", expired)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).context("signing the CA")?;
    let issue = |names: &[&str],
                 common_name: &str,
                 usages: Vec<ExtendedKeyUsagePurpose>|
     -> anyhow::Result<(Certificate, KeyPair)> {
        let key = KeyPair::generate().context("generating a key")?;
        let mut params = params(names, common_name, expired)?;
        params.extended_key_usages = usages;
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .with_context(|| format!("signing the certificate of {common_name}"))?;
        Ok((cert, key))
    };
    let (server, server_key) = issue(
        &["localhost", "127.0.0.1", "::1"],
        "polis node",
        vec![ExtendedKeyUsagePurpose::ServerAuth],
    )?;
    let (client, client_key) = issue(
        &[],
        "polis-client",
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    // A node's own: server and client of its peers (tls-cluster), named
    // for the cluster as well as for loopback.
    let (node, node_key) = issue(
        &[
            polis_tls::CLUSTER_NAME_DEFAULT,
            "localhost",
            "127.0.0.1",
            "::1",
        ],
        "polis node",
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    write(dir, "ca.crt", &ca.pem())?;
    write(dir, "ca.key", &ca_key.serialize_pem())?;
    write(dir, "server.crt", &server.pem())?;
    write(dir, "server.key", &server_key.serialize_pem())?;
    write(dir, "client.crt", &client.pem())?;
    write(dir, "client.key", &client_key.serialize_pem())?;
    write(dir, "node.crt", &node.pem())?;
    write(dir, "node.key", &node_key.serialize_pem())?;
    Ok(())
}
