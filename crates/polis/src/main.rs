//! The polis binary: thin subcommands over the libraries.
//!
//! - `polis server`: one node (flags > `POLIS_*` environment > TOML file > defaults);
//! - `polis dev`: a local cluster of `polis server` processes on loopback;
//! - `polis gateway`: one Redis endpoint for a whole cluster;
//! - `polis status`: the cluster as one node sees it;
//! - `polis cluster`: remove a node, move slots between shards;
//! - `polis backup`, `polis restore`: a copy of every shard, and a new cluster filled from it;
//! - `polis chaos`: network faults on a cluster started with fault injection;
//! - `polis verify`: clients and a nemesis against a cluster, the history checked;
//! - `polis bench`: load against one system, or polis beside etcd and Redis with a report.

mod backup;
mod bench;
mod bench_at_rest;
mod bench_backup;
mod bench_eventual;
mod bench_memory;
mod bench_moves;
mod bench_pubsub;
mod chaos;
mod cluster;
mod dev;
mod dev_secure;
mod encryption;
mod gateway;
mod namespace;
mod process;
mod restore;
mod server;
mod status;
mod telemetry;
mod tls_args;
mod tls_certs;
mod trace_sink;
mod verify;

use clap::{Parser, Subcommand};

/// polis: a distributed, Raft-replicated data store that speaks the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "polis", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one node.
    Server(Box<server::ServerArgs>),
    /// Runs a local cluster of separate node processes on loopback.
    Dev(dev::DevArgs),
    /// Serves one Redis endpoint for a whole cluster, to clients that
    /// know nothing of clusters.
    Gateway(Box<gateway::GatewayArgs>),
    /// Shows the cluster as one node sees it.
    Status(status::StatusArgs),
    /// Changes the cluster: removes a node, moves slots between shards.
    Cluster(cluster::ClusterArgs),
    /// Sets, lists and removes namespaces: key prefixes that are strong
    /// or eventual.
    Namespace(namespace::NamespaceArgs),
    /// Copies every shard and the cluster map into a directory, each at
    /// one log index, while the cluster serves.
    Backup(backup::BackupArgs),
    /// Fills a new, empty cluster from a backup and checks every shard's
    /// digest against it.
    Restore(restore::RestoreArgs),
    /// Injects network faults (nodes started with --enable-fault-injection).
    Chaos(chaos::ChaosArgs),
    /// Runs clients and faults against a cluster and checks the history.
    Verify(Box<verify::VerifyArgs>),
    /// Measures throughput and latency, alone or beside etcd and Redis.
    Bench(bench::BenchArgs),
    /// TLS helpers: a CA and certificates for trying TLS out.
    #[command(subcommand)]
    Tls(tls_certs::TlsCommand),
    /// Encryption at rest: make a master key, rotate a data directory's.
    #[command(subcommand)]
    Encryption(encryption::EncryptionCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Server(args) => run_node(*args),
        Command::Dev(args) => runtime()?.block_on(dev::run(args)),
        Command::Gateway(args) => runtime()?.block_on(gateway::run(*args)),
        Command::Status(args) => runtime()?.block_on(status::run(args)),
        Command::Cluster(args) => runtime()?.block_on(cluster::run(args)),
        Command::Namespace(args) => runtime()?.block_on(namespace::run(args)),
        Command::Backup(args) => runtime()?.block_on(backup::run(args)),
        Command::Restore(args) => runtime()?.block_on(restore::run(args)),
        Command::Chaos(args) => runtime()?.block_on(chaos::run(args)),
        Command::Verify(args) => {
            if !runtime()?.block_on(verify::run_verify(*args))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(args) => runtime()?.block_on(bench::run(args)),
        Command::Tls(command) => tls_certs::run(command),
        Command::Encryption(command) => encryption::run(command),
    }
}

/// Runs a node with every thread of its runtime, and the main thread,
/// inside the node's span, so that every log line names the node (the
/// threads start with the runtime, after the log is set up).
fn run_node(args: server::ServerArgs) -> anyhow::Result<()> {
    let prepared = server::prepare(args)?;
    let span = prepared.span.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            // Entered for the thread's life: spans and events on it that
            // have no other parent are the node's.
            std::mem::forget(span.clone().entered());
        })
        .build()?;
    let _in_node = prepared.span.clone().entered();
    runtime.block_on(server::run(prepared))
}
