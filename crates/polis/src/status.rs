//! `polis status`: the cluster map at a glance, as one node sees it:
//! nodes (up or down), and every shard with its slots, leader, term,
//! commit and apply points, lag per replica and keys.

use clap::Args;
use serde_json::Value;

use polis_client::admin;

/// Flags of `polis status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Admin HTTP address of the node to ask.
    #[arg(long, default_value = "127.0.0.1:7100")]
    node: String,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

fn opt(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Returns the status as the table `polis status` prints.
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "cluster {}  map version {}  state {}  asked node {}  meta leader node {}\n\n",
        opt(&status["cluster_id"]),
        opt(&status["map_version"]),
        opt(&status["state"]),
        opt(&status["node_id"]),
        opt(&status["meta_leader"]),
    ));
    out.push_str(&format!(
        "{:<5} {:<5} {:<8} {:<22} {:<22} {:<9} {:<6} {:<5}\n",
        "NODE", "UP", "STATE", "RESP", "ADMIN", "REPLICAS", "LEADS", "META"
    ));
    for node in status["nodes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<5} {:<5} {:<8} {:<22} {:<22} {:<9} {:<6} {:<5}\n",
            opt(&node["id"]),
            if node["up"] == true { "up" } else { "down" },
            opt(&node["state"]),
            opt(&node["resp_addr"]),
            opt(&node["admin_addr"]),
            opt(&node["replicas"]),
            opt(&node["leads"]),
            if node["meta_voter"] == true {
                "voter"
            } else {
                "-"
            },
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "{:<6} {:<24} {:<7} {:<6} {:<10} {:<10} {:<9} {:<30}\n",
        "SHARD", "SLOTS", "LEADER", "TERM", "COMMITTED", "APPLIED", "KEYS", "REPLICAS (node:lag)"
    ));
    for shard in status["shards"].as_array().into_iter().flatten() {
        let slots: Vec<String> = shard["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .map(opt)
            .collect();
        let replicas: Vec<String> = shard["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|replica| format!("{}:{}", opt(&replica["node_id"]), opt(&replica["lag"])))
            .collect();
        let leader = if shard["serving"] == true {
            opt(&shard["leader_node"])
        } else {
            format!("{}!", opt(&shard["leader_node"]))
        };
        out.push_str(&format!(
            "{:<6} {:<24} {:<7} {:<6} {:<10} {:<10} {:<9} {:<30}\n",
            opt(&shard["id"]),
            slots.join(","),
            leader,
            opt(&shard["term"]),
            opt(&shard["committed"]),
            opt(&shard["applied"]),
            opt(&shard["keys"]),
            replicas.join(" "),
        ));
    }
    let migrations = status["migrations"].as_array().cloned().unwrap_or_default();
    if !migrations.is_empty() {
        out.push_str(&format!(
            "\n{:<10} {:<24} {:<10} {:<10} {:<30}\n",
            "MIGRATION", "SLOTS", "SHARDS", "PHASE", "PROGRESS (on its source's leader)"
        ));
        for migration in &migrations {
            let progress = &migration["progress"];
            let progress = if progress.is_null() {
                "-".to_owned()
            } else {
                crate::cluster::migration_progress(progress)
            };
            out.push_str(&format!(
                "{:<10} {:<24} {:<10} {:<10} {:<30}\n",
                opt(&migration["id"]),
                opt(&migration["slots"]),
                format!(
                    "{}->{}",
                    opt(&migration["source"]),
                    opt(&migration["target"])
                ),
                opt(&migration["phase"]),
                progress,
            ));
        }
    }
    let moves = status["replica_moves"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !moves.is_empty() {
        out.push_str(&format!(
            "\n{:<12} {:<6} {:<8} {:<6} {:<12} {:<8} {:<24}\n",
            "REPLICA MOVE", "SHARD", "REPLICA", "NODE", "PHASE", "LAG", "PACE"
        ));
        for change in &moves {
            let pace = match (
                change["entries_per_sec"].as_u64(),
                change["secs_left"].as_u64(),
            ) {
                (Some(rate), Some(left)) => format!("{rate} entries/s, ~{left} s left"),
                _ => "-".to_owned(),
            };
            out.push_str(&format!(
                "{:<12} {:<6} {:<8} {:<6} {:<12} {:<8} {:<24}\n",
                "",
                opt(&change["shard"]),
                opt(&change["replica_id"]),
                opt(&change["node_id"]),
                opt(&change["phase"]),
                opt(&change["lag"]),
                pace,
            ));
        }
    }
    if let Some(report) = status.get("scheduler").filter(|report| !report.is_null()) {
        out.push_str(&format!(
            "\nscheduler: {}; {} migrations, {} replica moves, {} leader moves wanted{}\n",
            if report["balanced"] == true {
                "balanced"
            } else {
                "balancing"
            },
            opt(&report["migrations"]),
            opt(&report["replica_moves"]),
            opt(&report["leader_moves"]),
            report["planned"]
                .as_str()
                .map(|planned| format!("; next: {planned}"))
                .unwrap_or_default(),
        ));
    }
    if status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|shard| shard["serving"] != true)
    {
        out.push_str(
            "\n(a leader marked ! is not serving: no leader known, or its slots not taken yet)\n",
        );
    }
    out
}

/// Runs `polis status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let status = admin::status(&args.node).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}
