//! `polis dev --secure` (and `--tls`, the same without the password):
//! certificates, TLS ports and a password for the local cluster.
//!
//! ```text
//!  DATA/tls/{ca,server,client,node}.{crt,key}   made once (polis tls certs), kept
//!  DATA/password                                made once (256 random bits, hex), kept
//!  node i: --tls-port PORT+400+i --tls-cert-file node.crt ... --tls-auth-clients optional
//!          --tls-cluster yes (peers speak mutual TLS, node.crt as server and client)
//!  once ready: CONFIG SET requirepass <password> (a restarted cluster has it already)
//!  DATA/master.key (--secure)                   made once, kept: --encryption-key-file for
//!                                               every node, unless their data predates it
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use polis_resp::Reply;

/// The files of a secure dev cluster.
pub struct Secure {
    tls_dir: PathBuf,
    /// The password's file and the password, with `--secure`.
    password: Option<(PathBuf, String)>,
    /// The master key of encryption at rest, with `--secure`.
    master_key: Option<PathBuf>,
}

/// Returns node `index`'s TLS port.
///
/// # Errors
/// The port would pass 65535.
pub fn tls_port(port: u16, index: u16) -> anyhow::Result<u16> {
    match port
        .checked_add(400)
        .and_then(|port| port.checked_add(index))
    {
        Some(port) => Ok(port),
        None => bail!("--port is too high for TLS ports at --port + 400"),
    }
}

/// Makes (or finds) the certificates, and the password when
/// `with_password`, under `data`.
///
/// # Errors
/// A file cannot be read or written.
pub fn prepare(data: &Path, with_password: bool) -> anyhow::Result<Secure> {
    let tls_dir = data.join("tls");
    // node.crt came last: a directory without it predates tls-cluster.
    if !tls_dir.join("node.crt").is_file() {
        crate::tls_certs::write_certs(&tls_dir, false)?;
    }
    if !with_password {
        return Ok(Secure {
            tls_dir,
            password: None,
            master_key: None,
        });
    }
    let password_file = data.join("password");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(text) => text.trim().to_owned(),
        Err(_) => {
            let bytes: [u8; 32] = rand::random();
            let password = polis_commands::acl::hex(&bytes);
            crate::tls_certs::write_private(&password_file, &format!("{password}\n"))?;
            password
        }
    };
    // polis dev's own admin requests (a restarted cluster has the
    // password already).
    polis_client::admin::set_credentials(polis_commands::acl::DEFAULT_USER, &password);
    Ok(Secure {
        tls_dir,
        password: Some((password_file, password)),
        master_key: master_key(data)?,
    })
}

/// Returns the master key file of the nodes' encryption at rest, made
/// the first time; `None` if the nodes already store data without it (a
/// data directory is encrypted from its creation or never).
fn master_key(data: &Path) -> anyhow::Result<Option<PathBuf>> {
    let file = data.join("master.key");
    if file.is_file() {
        return Ok(Some(file));
    }
    if data.join("node-1").join("log").exists() {
        println!(
            "encryption at rest: off (the nodes' data in {} predates it; a new --data has it)",
            data.display()
        );
        return Ok(None);
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    crate::encryption::write_new_key(&file)?;
    Ok(Some(file))
}

impl Secure {
    /// With `--secure`: how the gateway reaches the nodes, over TLS
    /// checked with the CA, showing the client certificate.
    pub fn upstream(&self) -> Option<polis_tls::ClientFiles> {
        self.password.as_ref()?;
        Some(polis_tls::ClientFiles {
            ca_cert_file: self.tls_dir.join("ca.crt"),
            cert: Some((
                self.tls_dir.join("client.crt"),
                self.tls_dir.join("client.key"),
            )),
        })
    }

    /// Returns the certificate files, as a TLS listener takes them.
    pub fn files(&self) -> polis_tls::TlsFiles {
        polis_tls::TlsFiles {
            cert_file: self.tls_dir.join("server.crt"),
            key_file: self.tls_dir.join("server.key"),
            ca_cert_file: Some(self.tls_dir.join("ca.crt")),
            auth_clients: polis_tls::AuthClients::Optional,
        }
    }

    /// Returns the flags every node gets.
    pub fn server_args(&self) -> Vec<String> {
        let file = |name: &str| self.tls_dir.join(name).display().to_string();
        vec![
            "--tls-cert-file".to_owned(),
            file("node.crt"),
            "--tls-key-file".to_owned(),
            file("node.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.crt"),
            "--tls-auth-clients".to_owned(),
            "optional".to_owned(),
            "--tls-cluster".to_owned(),
            "yes".to_owned(),
        ]
        .into_iter()
        .chain(self.master_key.iter().flat_map(|key| {
            [
                "--encryption-key-file".to_owned(),
                key.display().to_string(),
            ]
        }))
        .collect()
    }

    /// Gives the default user the password (once: a restarted cluster
    /// asks for it already), then lets this process's gateway use it.
    ///
    /// # Errors
    /// No node took the password.
    pub async fn require_password(&self, resp_addrs: &[String]) -> anyhow::Result<()> {
        let Some((_, password)) = &self.password else {
            return Ok(());
        };
        let addr = resp_addrs.first().context("no node")?;
        let args = ["CONFIG", "SET", "requirepass", password];
        let reply = polis_gateway::topology::ask(addr, &args, Duration::from_secs(10))
            .await
            .map_err(anyhow::Error::msg)?;
        match reply {
            Reply::Simple(_) => {}
            Reply::Error(error) if error.to_string().starts_with("NOAUTH") => {}
            other => bail!("setting the password: {addr} answered {other:?}"),
        }
        polis_gateway::auth::set_credentials(polis_gateway::auth::Credentials {
            user: polis_commands::acl::DEFAULT_USER.to_owned(),
            password: password.clone(),
        });
        Ok(())
    }

    /// Returns the password's file, with `--secure`.
    pub fn password_file(&self) -> Option<&Path> {
        self.password.as_ref().map(|(file, _)| file.as_path())
    }

    /// Returns the nodes' TLS addresses, on loopback.
    pub fn tls_addrs(&self, port: u16, nodes: u16) -> Vec<String> {
        (0..nodes)
            .filter_map(|index| tls_port(port, index).ok())
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Prints how to reach the secure cluster.
    pub fn describe(&self, port: u16, nodes: u16) {
        let ca = self.tls_dir.join("ca.crt");
        let ports: Vec<String> = (0..nodes)
            .filter_map(|index| tls_port(port, index).ok())
            .map(|port| port.to_string())
            .collect();
        println!(
            "tls: ports {}, CA {}, client certificate {} (optional)",
            ports.join(","),
            ca.display(),
            self.tls_dir.join("client.crt").display(),
        );
        if let Some(key) = &self.master_key {
            println!(
                "encryption at rest: on, master key {} (the data cannot be read without it)",
                key.display()
            );
        }
        let first = ports.first().map_or("", String::as_str);
        match &self.password {
            Some((file, _)) => {
                println!(
                    "password: in {} (user default; polis status and the admin API take it as POLIS_PASSWORD)",
                    file.display()
                );
                println!(
                    "try:    redis-cli --tls --cacert {} -p {first} --pass \"$(cat {})\" ping",
                    ca.display(),
                    file.display(),
                );
            }
            None => println!(
                "try:    redis-cli --tls --cacert {} -p {first} ping",
                ca.display()
            ),
        }
    }
}
