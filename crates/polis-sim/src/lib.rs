//! A deterministic simulation of a whole polis cluster in one process.
//!
//! ```text
//!   seed ──> SimConfig (shape, timing) + one random stream per component
//!              │
//!   tokio current-thread runtime, paused (virtual) time
//!     ├── nodes: polis-server's Node (bootstrap, map, meta + shard replicas,
//!     │          controller, routing) on a simulated polis-raft Host:
//!     │          MemDisk (flush-based durability, crash) ── trace ──> Monitor
//!     ├── network: SimRouter + Links (delay, loss, partitions)
//!     ├── clients: GET/SET through the node's request path, following MOVED
//!     │            ──> history (polis-verify format); queue clients: pushes in
//!     │            transactions and blocking pops ──> a book checked at the end
//!     └── nemesis: partitions, crashes, power loss, loss, slow links,
//!                  slot ownership moved between shards
//!   end of run: logs compared, history checked for linearizability
//! ```
//!
//! Everything nondeterministic goes through something the run controls:
//! time is tokio's paused clock, openraft's randomness comes from
//! [`polis_raft::runtime::set_simulation_seed`], the proposal clock is the
//! virtual one, disks flush after seeded delays, every random choice is
//! drawn from a stream derived from the seed, and nothing runs on another
//! thread. The same seed gives the same trace digest; a failure prints
//! the command that replays it.
//!
//! What it owns: the simulated cluster, its workload and nemesis, the
//! invariant checkers (one per file in [`invariants`]) and the
//! `polis-sim` command. It drives polis-raft only through its public API
//! and must not import openraft.

pub mod client;
pub mod cluster;
pub mod config;
pub mod eventual;
pub mod history;
pub mod invariants;
pub mod nemesis;
pub mod network;
pub mod observe;
pub mod queue;
pub mod run;
pub mod trace;

pub use config::{SimConfig, SimOptions};
pub use run::{run, RunReport};
