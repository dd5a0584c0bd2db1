//! Ports for local clusters and test servers, found one way everywhere.
//!
//! Asking the OS for a free port (bind to port 0, read it, close) and
//! handing it to a server that binds it later races: meanwhile the kernel
//! may give the same port to any outgoing connection, and tests make
//! thousands. So ports come from below the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`), which the kernel never hands out on
//! its own, and each is reserved for the holder of a [`PortLease`] by an
//! exclusive lock on a file named after it (`$TMPDIR/polis-ports/<port>`):
//! two processes (or two tests of one process) never get the same port
//! while a lease lives. A port is also checked bindable before it is
//! leased. The test scripts in Python take the same locks.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

/// The lowest port handed out.
const PORT_MIN: u16 = 20_000;
/// Above this, ports may be ephemeral on some kernels anyway.
const PORT_CEILING: u16 = 32_768;
/// Candidates tried before giving up.
const ATTEMPTS_MAX: usize = 2_000;

/// Ports reserved for this process until the lease is dropped.
pub struct PortLease {
    ports: Vec<u16>,
    _locks: Vec<Flock<File>>,
}

impl std::fmt::Debug for PortLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortLease")
            .field("ports", &self.ports)
            .finish()
    }
}

impl PortLease {
    /// Returns the leased ports, in the order asked for.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Returns the leased ports as `127.0.0.1:<port>` addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Adds the ports of `other` to this lease.
    pub fn extend(&mut self, other: PortLease) {
        self.ports.extend(other.ports);
        self._locks.extend(other._locks);
    }
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("polis-ports")
}

/// Returns the highest port below the kernel's ephemeral range.
fn ceiling() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u16>().ok())
        .map_or(PORT_CEILING, |low| low.min(PORT_CEILING))
}

/// Locks port `port` for this process and checks it can be bound; `None`
/// when another holder has it or something listens on it.
fn try_port(port: u16) -> Option<Flock<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir().join(port.to_string()))
        .ok()?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    std::net::TcpListener::bind(("127.0.0.1", port)).ok()?;
    Some(lock)
}

/// Reserves `count` ports.
///
/// # Errors
/// Returns an error if the lock directory cannot be made or not enough
/// ports are free.
pub fn reserve(count: usize) -> anyhow::Result<PortLease> {
    reserve_blocks(count, &[0])
}

/// Reserves `count` groups of ports, each at `base + offset` for every
/// offset (a `polis dev` cluster of `count` nodes uses offsets 0, 100
/// and 200 from consecutive bases); returns the ports group by group.
///
/// # Errors
/// As for [`reserve`].
pub fn reserve_blocks(count: usize, offsets: &[u16]) -> anyhow::Result<PortLease> {
    std::fs::create_dir_all(lock_dir())
        .with_context(|| format!("creating {}", lock_dir().display()))?;
    let span = offsets.iter().copied().max().unwrap_or(0);
    let ceiling = ceiling().saturating_sub(span).saturating_sub(1);
    anyhow::ensure!(
        ceiling > PORT_MIN,
        "no port range below the ephemeral ports"
    );
    let mut lease = PortLease {
        ports: Vec::new(),
        _locks: Vec::new(),
    };
    let mut attempts = 0;
    while lease.ports.len() < count * offsets.len() {
        attempts += 1;
        anyhow::ensure!(
            attempts <= ATTEMPTS_MAX,
            "no {count} free port groups found between {PORT_MIN} and {ceiling}"
        );
        let base = PORT_MIN + (rand::random::<u16>() % (ceiling - PORT_MIN));
        let mut group = Vec::new();
        for offset in offsets {
            match try_port(base + offset) {
                Some(lock) => group.push((base + offset, lock)),
                None => break,
            }
        }
        if group.len() == offsets.len() {
            for (port, lock) in group {
                lease.ports.push(port);
                lease._locks.push(lock);
            }
        }
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leased_ports_are_distinct_below_the_ephemeral_range_and_held() {
        let first = reserve(6).unwrap();
        let second = reserve(6).unwrap();
        let mut all: Vec<u16> = first
            .ports()
            .iter()
            .chain(second.ports())
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 12, "no port leased twice");
        assert!(all
            .iter()
            .all(|port| *port >= PORT_MIN && *port < ceiling()));
        // Held: nobody else can lock a leased port.
        assert!(try_port(first.ports()[0]).is_none());
        let port = first.ports()[0];
        drop(first);
        assert!(try_port(port).is_some(), "released with the lease");
    }

    #[test]
    fn blocks_keep_their_offsets() {
        let lease = reserve_blocks(2, &[0, 100, 200]).unwrap();
        let ports = lease.ports();
        assert_eq!(ports.len(), 6);
        for block in ports.chunks(3) {
            assert_eq!(block[1], block[0] + 100);
            assert_eq!(block[2], block[0] + 200);
        }
    }
}
