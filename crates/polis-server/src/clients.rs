//! The registry of connected clients, for CLIENT LIST/INFO/KILL and
//! `maxclients`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

/// What CLIENT LIST shows of one connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub local_addr: SocketAddr,
    pub name: Option<String>,
    pub connected_at: Instant,
    pub last_command_at: Instant,
    pub last_command: String,
    pub protocol: u8,
    pub readonly: bool,
    /// The ACL user the client authenticated as.
    pub user: String,
}

struct Slot {
    info: ClientInfo,
    kill: watch::Sender<bool>,
}

/// Every connected client of the node.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    slots: Mutex<BTreeMap<u64, Slot>>,
}

/// A registered client: unregisters itself when dropped.
pub struct ClientHandle {
    registry: Arc<Clients>,
    pub id: u64,
    pub killed: watch::Receiver<bool>,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection, or returns `None` when `max` clients
    /// are already connected.
    pub fn register(
        self: &Arc<Self>,
        addr: SocketAddr,
        local_addr: SocketAddr,
        max: usize,
    ) -> Option<ClientHandle> {
        let mut slots = self.lock();
        if slots.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let (kill, killed) = watch::channel(false);
        let info = ClientInfo {
            id,
            addr,
            local_addr,
            name: None,
            connected_at: now,
            last_command_at: now,
            last_command: "NULL".into(),
            protocol: 2,
            readonly: false,
            user: polis_commands::acl::DEFAULT_USER.to_owned(),
        };
        slots.insert(id, Slot { info, kill });
        Some(ClientHandle {
            registry: self.clone(),
            id,
            killed,
        })
    }

    /// Updates the info of client `id`.
    pub fn update(&self, id: u64, change: impl FnOnce(&mut ClientInfo)) {
        if let Some(slot) = self.lock().get_mut(&id) {
            change(&mut slot.info);
        }
    }

    /// Returns client `id`'s info.
    pub fn info(&self, id: u64) -> Option<ClientInfo> {
        self.lock().get(&id).map(|slot| slot.info.clone())
    }

    /// Returns every client's info, by id.
    pub fn list(&self) -> Vec<ClientInfo> {
        self.lock().values().map(|slot| slot.info.clone()).collect()
    }

    /// Returns the number of connected clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns true when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks the clients matching `filter` to close; returns how many.
    pub fn kill(&self, filter: impl Fn(&ClientInfo) -> bool) -> usize {
        let slots = self.lock();
        let mut killed = 0;
        for slot in slots.values().filter(|slot| filter(&slot.info)) {
            let _ = slot.kill.send(true);
            killed += 1;
        }
        killed
    }
}
