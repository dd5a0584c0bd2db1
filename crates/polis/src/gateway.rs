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
    /// Requests per second each ACL user may make, over all its
    /// connections: RATE or RATE:BURST (the burst is RATE unless given).
    /// Past it, requests get -RATELIMITED. No limit unless set.
    #[arg(long, value_name = "RATE[:BURST]")]
    rate_limit_user: Option<polis_gateway::rate::Rate>,
    /// Requests per second each client IP address may make, over all its
    /// connections and users: RATE or RATE:BURST. No limit unless set.
    #[arg(long, value_name = "RATE[:BURST]")]
    rate_limit_address: Option<polis_gateway::rate::Rate>,
    /// Share of requests logged (0 to 1): client, user, command, argument
    /// count, latency and outcome, never keys or values. Logged at info
    /// under the target polis_gateway::requests.
    #[arg(long, default_value_t = 0.0, value_name = "RATIO")]
    log_requests: f64,
    /// Address of the HTTP/JSON API (keys, counters, publish, streams;
    /// described at /openapi.json). None unless set.
    #[arg(long, value_name = "HOST:PORT")]
    http_listen: Option<SocketAddr>,
    /// Address of the admin endpoints: `/metrics` for Prometheus, the
    /// probes, and the web dashboard at `/dashboard` (with
    /// `--admin-nodes`). None unless set; bind it where only operators
    /// reach it.
    #[arg(long, value_name = "HOST:PORT")]
    admin_listen: Option<SocketAddr>,
    /// Admin addresses of nodes (comma-separated), for the dashboard: its
    /// requests go to the first that answers, with the browser's
    /// credentials. No dashboard unless set.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT")]
    admin_nodes: Vec<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `warn`.
    #[arg(long, default_value = "info")]
    log: String,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    #[command(flatten)]
    tls: crate::tls_args::TlsArgs,
    #[command(flatten)]
    traces: crate::telemetry::TraceArgs,
    /// Connects to the nodes over TLS, checked with `--tls-ca-cert-file`:
    /// `--cluster` names their TLS addresses, and CLUSTER SHARDS their
    /// `tls-port`s.
    #[arg(long)]
    tls_upstream: bool,
    /// The client certificate the gateway shows the nodes over TLS (for
    /// nodes with `tls-auth-clients yes`), as Redis's option.
    #[arg(long, requires = "tls_client_key_file", requires = "tls_upstream")]
    tls_client_cert_file: Option<std::path::PathBuf>,
    /// The key of `--tls-client-cert-file`.
    #[arg(long, requires = "tls_client_cert_file")]
    tls_client_key_file: Option<std::path::PathBuf>,
}

/// Sets up TLS to the nodes when `--tls-upstream` is given.
fn upstream_tls(args: &GatewayArgs) -> anyhow::Result<()> {
    if !args.tls_upstream {
        return Ok(());
    }
    let Some(ca_cert_file) = args.tls.tls_ca_cert_file.clone() else {
        anyhow::bail!(
            "--tls-upstream needs --tls-ca-cert-file: the CA that signs the nodes' certificates"
        );
    };
    let files = polis_tls::ClientFiles {
        ca_cert_file,
        cert: args
            .tls_client_cert_file
            .clone()
            .zip(args.tls_client_key_file.clone()),
    };
    let tls = polis_tls::ClientTls::load(&files).map_err(anyhow::Error::msg)?;
    polis_gateway::node_stream::set_upstream_tls(tls);
    Ok(())
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
    let origin = crate::telemetry::Origin {
        service: "polis-gateway",
        instance: args.listen.to_string(),
    };
    crate::telemetry::init(&args.log_format, &args.log, &args.traces, origin)?;
    let options = polis_gateway::Options {
        rate_limits: polis_gateway::rate::RateLimits {
            per_user: args.rate_limit_user,
            per_address: args.rate_limit_address,
        },
        request_sampling: polis_gateway::requests::Sampling::new(args.log_requests)
            .map_err(anyhow::Error::msg)
            .context("--log-requests")?,
    };
    if let Some(password) = password(&args)? {
        polis_gateway::auth::set_credentials(polis_gateway::auth::Credentials {
            user: args.user.clone(),
            password,
        });
    }
    upstream_tls(&args)?;
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
    gateway.set_options(options);
    if let Some(listen) = args.admin_listen {
        gateway
            .bind_admin(listen, args.admin_nodes.clone())
            .await
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(listen) = args.http_listen {
        gateway
            .bind_http(listen)
            .await
            .map_err(anyhow::Error::msg)?;
    }
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
    if let Some(http_addr) = gateway.http_local_addr() {
        println!("polis gateway: HTTP API on http://{http_addr} (described at /openapi.json)");
    }
    if let Some(admin_addr) = gateway.admin_local_addr() {
        println!("polis gateway: metrics on http://{admin_addr}/metrics");
    }
    println!("try:    redis-cli -p {}", addr.port());
    let serving = tokio::spawn(gateway.serve());
    crate::process::shutdown_signal().await;
    serving.abort();
    crate::telemetry::flush();
    println!("polis gateway: stopped");
    Ok(())
}

/// The addresses of a gateway started beside `polis dev`'s nodes.
pub struct Started {
    pub resp: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub http: SocketAddr,
    pub admin: SocketAddr,
}

/// Where a gateway started beside a dev cluster listens, besides its
/// RESP address, and what it passes on.
pub struct Beside {
    pub tls: Option<(SocketAddr, polis_tls::TlsFiles)>,
    /// The nodes' TLS client files, when it reaches them over TLS.
    pub upstream: Option<polis_tls::ClientFiles>,
    pub http: SocketAddr,
    /// Its admin address, and the nodes' admin addresses the dashboard
    /// reads.
    pub admin: (SocketAddr, Vec<String>),
}

/// Starts a gateway in this process for `polis dev`, with a TLS listener
/// too when `tls` is given, its HTTP API and its admin address (the
/// dashboard); returns its addresses, or why it did not start (the
/// cluster keeps running without it).
pub async fn start_beside(
    listen: SocketAddr,
    cluster: Vec<String>,
    beside: Beside,
) -> Result<Started, String> {
    let Beside {
        tls,
        upstream,
        http,
        admin,
    } = beside;
    if let Some(files) = upstream {
        polis_gateway::node_stream::set_upstream_tls(polis_tls::ClientTls::load(&files)?);
    }
    let mut gateway = polis_gateway::Gateway::bind(listen, cluster).await?;
    if let Some((tls_listen, files)) = tls {
        gateway.bind_tls(tls_listen, files).await?;
    }
    gateway.bind_http(http).await?;
    gateway.bind_admin(admin.0, admin.1).await?;
    let started = Started {
        resp: gateway.local_addr().ok_or("the gateway has no address")?,
        tls: gateway.tls_local_addr(),
        http: gateway
            .http_local_addr()
            .ok_or("the gateway's HTTP API has no address")?,
        admin: gateway
            .admin_local_addr()
            .ok_or("the gateway's admin address has no address")?,
    };
    tokio::spawn(gateway.serve());
    Ok(started)
}
