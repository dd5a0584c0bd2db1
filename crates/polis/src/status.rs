//! `polis status`: the cluster as one node sees it.

use clap::Args;

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

fn opt(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Runs `polis status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let status = admin::status(&args.node).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let leader = status["leader_id"].as_u64();
    let last_index = status["last_log_index"].as_u64().unwrap_or(0);
    println!(
        "node {} ({})  leader {}  term {}  committed {}  applied {}  keys {}",
        opt(&status["node_id"]),
        opt(&status["state"]),
        opt(&status["leader_id"]),
        opt(&status["term"]),
        opt(&status["committed"]),
        opt(&status["applied"]),
        opt(&status["keys"]),
    );
    println!();
    println!(
        "{:<6} {:<8} {:<22} {:<22} {:<10} {:<8}",
        "ID", "ROLE", "RESP", "ADMIN", "MATCHED", "LAG"
    );
    if let Some(members) = status["members"].as_array() {
        for member in members {
            let id = member["node_id"].as_u64();
            let role = if id == leader {
                "leader"
            } else if member["voter"].as_bool() == Some(true) {
                "follower"
            } else {
                "learner"
            };
            let matched = member["matched"].as_u64();
            let lag = match (leader == status["node_id"].as_u64(), matched) {
                (true, Some(matched)) => last_index.saturating_sub(matched).to_string(),
                _ => "-".into(),
            };
            println!(
                "{:<6} {:<8} {:<22} {:<22} {:<10} {:<8}",
                opt(&member["node_id"]),
                role,
                opt(&member["resp_addr"]),
                opt(&member["admin_addr"]),
                matched.map_or("-".into(), |matched| matched.to_string()),
                lag,
            );
        }
    }
    if leader != status["node_id"].as_u64() {
        println!(
            "\n(matched and lag are known by the leader: ask it with --node <leader admin addr>)"
        );
    }
    Ok(())
}
