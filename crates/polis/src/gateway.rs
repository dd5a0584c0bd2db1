//! `polis gateway`: one Redis endpoint for a whole polis cluster.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

/// Flags of `polis gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address clients connect to.
    #[arg(long, default_value = "127.0.0.1:6379")]
    listen: SocketAddr,
    /// RESP addresses of one or more nodes (comma-separated); the gateway
    /// learns the rest of the cluster from them.
    #[arg(long, value_delimiter = ',', required = true)]
    cluster: Vec<String>,
    /// ACL user the gateway authenticates as on its connections to the
    /// nodes: it needs every command its clients may run, and ACL LIST.
    #[arg(long, default_value = "default")]
    user: String,
    /// File holding that user's password (its first line). Without it,
    /// the environment variable POLIS_GATEWAY_PASSWORD, else no AUTH.
    #[arg(long)]
    password_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    tls: crate::tls_args::TlsArgs,
}

/// Reads the gateway's password: `--password-file`, else the
/// environment's `POLIS_GATEWAY_PASSWORD`.
fn password(args: &GatewayArgs) -> anyhow::Result<Option<String>> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the gateway's password from {}", path.display()))?;
        return Ok(Some(text.lines().next().unwrap_or_default().to_owned()));
    }
    Ok(std::env::var("POLIS_GATEWAY_PASSWORD").ok())
}

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(mut args: GatewayArgs) -> anyhow::Result<()> {
    if let Some(password) = password(&args)? {
        polis_gateway::auth::set_credentials(polis_gateway::auth::Credentials {
            user: args.user.clone(),
            password,
        });
    }
    let tls = std::mem::take(&mut args.tls).resolve(
        crate::tls_args::TlsArgs::default(),
        &args.listen.to_string(),
    )?;
    let mut gateway = polis_gateway::Gateway::bind(args.listen, args.cluster.clone())
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "starting the gateway (is a node of the cluster listening at {}?)",
                args.cluster.join(",")
            )
        })?;
    if let Some(tls) = tls {
        let listen = tls
            .addr
            .parse()
            .with_context(|| format!("the TLS address {}", tls.addr))?;
        gateway
            .bind_tls(listen, tls.files)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let addr = gateway.local_addr().context("the gateway has no address")?;
    println!(
        "polis gateway: listening on {addr} for {}",
        args.cluster.join(",")
    );
    if let Some(tls_addr) = gateway.tls_local_addr() {
        println!("polis gateway: TLS on {tls_addr}");
    }
    println!("try:    redis-cli -p {}", addr.port());
    let serving = tokio::spawn(gateway.serve());
    crate::server::shutdown_signal().await;
    serving.abort();
    println!("polis gateway: stopped");
    Ok(())
}

/// Starts a gateway in this process for `polis dev`, with a TLS listener
/// too when `tls` is given; returns its addresses (plaintext, TLS), or why
/// it did not start (the cluster keeps running without it).
pub async fn start_beside(
    listen: SocketAddr,
    cluster: Vec<String>,
    tls: Option<(SocketAddr, polis_tls::TlsFiles)>,
) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let mut gateway = polis_gateway::Gateway::bind(listen, cluster).await?;
    if let Some((tls_listen, files)) = tls {
        gateway.bind_tls(tls_listen, files).await?;
    }
    let addr = gateway.local_addr().ok_or("the gateway has no address")?;
    let tls_addr = gateway.tls_local_addr();
    tokio::spawn(gateway.serve());
    Ok((addr, tls_addr))
}
