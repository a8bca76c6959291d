//! The connections a server holds: admission at accept (a total and a per-address limit), the
//! idle set from which the connection idle for the longest is closed when the server is full,
//! and the counters `/api/status` and `/metrics` show.
//!
//! Each accepted connection holds a [`Slot`]; it is *idle* while no request is in progress
//! (before its first request, between keep-alive requests) and *busy* while a [`Busy`] guard
//! lives (a request being answered, an upgraded WebSocket). Only idle connections are evicted,
//! and only idle ones are subject to the idle and header timeouts (`timed_io`).

use crate::sync::lock;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Bounds on the connections a server holds, and the timeouts that free them (nginx's
/// `limit_conn`, `client_header_timeout`, `client_body_timeout`, `keepalive_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections open at once (HTTP and WebSocket). When it is reached, the connection
    /// idle for the longest is closed to make room; when none is idle, the newcomer gets 503.
    /// Also bounds the Engine.IO sessions of each endpoint.
    pub max_connections: usize,
    /// Most connections open at once from one address (an IPv6 /64 counts as one), beyond
    /// which a newcomer gets 503; 0: no limit.
    pub max_per_address: usize,
    /// How long a connection may wait with no request in progress: before its first request
    /// and between keep-alive requests. Then it is closed.
    pub idle_timeout: Duration,
    /// How long a request's headers may take from their first byte. Then 408 and close.
    pub header_timeout: Duration,
    /// How long a request body (a long-polling POST) may take. Then 408 and close.
    pub body_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 10_000,
            max_per_address: 0,
            idle_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(20),
        }
    }
}

/// The connections of a server as of now: limits, how many are open, and why others were
/// refused or closed (counters since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: usize,
    /// [`ConnLimits::max_connections`].
    pub limit: usize,
    /// [`ConnLimits::max_per_address`] (0: none).
    pub per_address_limit: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections and sessions refused, by reason.
    pub refused: Refused,
    /// Connections the server closed, by reason.
    pub closed: Closed,
    /// Failed `accept` calls (out of file descriptors and the like).
    pub accept_errors: u64,
}

/// Why connections (or Engine.IO sessions) were refused, counted since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    /// The server was full and no connection was idle.
    pub limit: u64,
    /// The address had [`ConnLimits::max_per_address`] connections open.
    pub per_address: u64,
    /// An Engine.IO handshake while an endpoint had `max_connections` sessions.
    pub sessions: u64,
}

/// Why the server closed connections, counted since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Closed {
    /// Idle for [`ConnLimits::idle_timeout`].
    pub idle_timeout: u64,
    /// Headers not complete within [`ConnLimits::header_timeout`] (answered 408).
    pub header_timeout: u64,
    /// Body not complete within [`ConnLimits::body_timeout`] (answered 408).
    pub body_timeout: u64,
    /// Idle while the server was full: closed to make room for a newcomer.
    pub evicted: u64,
}

/// What a counter counts (see [`ConnectionStats`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    RefusedSession,
    IdleTimeout,
    HeaderTimeout,
    BodyTimeout,
    AcceptError,
}

/// The connection table of a server: its limits, the open connections by address, the idle
/// ones in the order they became idle, and the counters. Cheap to clone (a handle); share one
/// between the server ([`crate::server::ServerBuilder::connections`]) and whoever reports it.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Table>,
}

struct Table {
    limits: ConnLimits,
    registry: Mutex<Registry>,
    accepted: AtomicU64,
    refused_limit: AtomicU64,
    refused_per_address: AtomicU64,
    refused_sessions: AtomicU64,
    idle_timeouts: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    evicted: AtomicU64,
    accept_errors: AtomicU64,
}

#[derive(Default)]
struct Registry {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
    /// Idle connections by the order they became idle (oldest first).
    idle: BTreeMap<u64, Weak<Slot>>,
    next_idle: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server is full and no connection is idle.
    Full,
    /// Its address has the most connections allowed.
    PerAddress,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// The key an address is counted under: IPv4 as is (also when mapped into IPv6), IPv6 by /64,
/// the block one host usually gets.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Connections {
    /// A table enforcing `limits`.
    pub fn new(limits: ConnLimits) -> Connections {
        let zero = || AtomicU64::new(0);
        Connections {
            inner: Arc::new(Table {
                limits,
                registry: Mutex::new(Registry::default()),
                accepted: zero(),
                refused_limit: zero(),
                refused_per_address: zero(),
                refused_sessions: zero(),
                idle_timeouts: zero(),
                header_timeouts: zero(),
                body_timeouts: zero(),
                evicted: zero(),
                accept_errors: zero(),
            }),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &ConnLimits {
        &self.inner.limits
    }

    /// The counters and limits as of now.
    pub fn stats(&self) -> ConnectionStats {
        let t = &*self.inner;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            open: lock(&t.registry).open,
            limit: t.limits.max_connections,
            per_address_limit: t.limits.max_per_address,
            accepted: get(&t.accepted),
            refused: Refused {
                limit: get(&t.refused_limit),
                per_address: get(&t.refused_per_address),
                sessions: get(&t.refused_sessions),
            },
            closed: Closed {
                idle_timeout: get(&t.idle_timeouts),
                header_timeout: get(&t.header_timeouts),
                body_timeout: get(&t.body_timeouts),
                evicted: get(&t.evicted),
            },
            accept_errors: get(&t.accept_errors),
        }
    }

    /// Counts one `event`.
    pub(crate) fn count(&self, event: Event) {
        let t = &*self.inner;
        let counter = match event {
            Event::RefusedSession => &t.refused_sessions,
            Event::IdleTimeout => &t.idle_timeouts,
            Event::HeaderTimeout => &t.header_timeouts,
            Event::BodyTimeout => &t.body_timeouts,
            Event::AcceptError => &t.accept_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Admits a connection from `ip`: its slot (idle), or why not. When the server is full,
    /// the connection idle for the longest is told to close ([`Slot::evicted`]) and the
    /// newcomer takes its place.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Arc<Slot>, Refusal> {
        let t = &*self.inner;
        let address = address_key(ip);
        let mut reg = lock(&t.registry);
        let from_address = reg.by_address.get(&address).copied().unwrap_or(0);
        if t.limits.max_per_address > 0 && from_address >= t.limits.max_per_address {
            t.refused_per_address.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerAddress);
        }
        if reg.open >= t.limits.max_connections {
            let oldest =
                std::iter::from_fn(|| reg.idle.pop_first()).find_map(|(_, slot)| slot.upgrade());
            let Some(oldest) = oldest else {
                t.refused_limit.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            };
            oldest.idle_key.store(0, Ordering::Relaxed);
            oldest.evict.notify_one();
            t.evicted.fetch_add(1, Ordering::Relaxed);
        }
        reg.open += 1;
        *reg.by_address.entry(address).or_insert(0) += 1;
        t.accepted.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            table: self.clone(),
            address,
            in_flight: AtomicUsize::new(0),
            idle_key: AtomicU64::new(0),
            evict: Notify::new(),
        });
        reg.set_idle(&slot);
        Ok(slot)
    }
}

impl Registry {
    /// Puts `slot` at the young end of the idle set.
    fn set_idle(&mut self, slot: &Arc<Slot>) {
        self.next_idle += 1;
        let key = self.next_idle;
        self.idle.insert(key, Arc::downgrade(slot));
        slot.idle_key.store(key, Ordering::Relaxed);
    }

    /// Takes `slot` out of the idle set.
    fn set_busy(&mut self, slot: &Slot) {
        let key = slot.idle_key.swap(0, Ordering::Relaxed);
        if key != 0 {
            self.idle.remove(&key);
        }
    }
}

/// One admitted connection; it stops counting when the last holder drops it.
pub(crate) struct Slot {
    table: Connections,
    address: IpAddr,
    /// Requests in progress (and upgraded WebSockets) on this connection.
    in_flight: AtomicUsize,
    /// Its key in the idle set while idle; 0 while busy or once evicted. Changed under the
    /// registry's lock; read without it by the connection's timers (a new key: a new idle
    /// period began).
    idle_key: AtomicU64,
    evict: Notify,
}

impl Slot {
    /// The table this slot counts in.
    pub(crate) fn table(&self) -> &Connections {
        &self.table
    }

    /// The idle period this connection is in (a number that changes with each one), `None`
    /// while busy.
    pub(crate) fn idle_period(&self) -> Option<u64> {
        Some(self.idle_key.load(Ordering::Relaxed)).filter(|&k| k != 0)
    }

    /// Resolves when the server, full, closes this idle connection to make room.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await
    }

    /// Marks the connection busy until the guard (and its clones) drop.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        let mut reg = lock(&self.table.inner.registry);
        if self.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            reg.set_busy(self);
        }
        Busy(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut reg = lock(&self.table.inner.registry);
        reg.set_busy(self);
        reg.open -= 1;
        if let Some(n) = reg.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                reg.by_address.remove(&self.address);
            }
        }
    }
}

/// Keeps a connection busy (not idle: no idle or header timeout, never evicted): held while a
/// request is answered, and by an upgraded WebSocket for its life.
pub(crate) struct Busy(Arc<Slot>);

impl Busy {
    /// The table the connection counts in.
    pub(crate) fn connections(&self) -> &Connections {
        &self.0.table
    }

    /// The connection's address, as limits count it (an IPv6 /64 as one).
    pub(crate) fn address(&self) -> IpAddr {
        self.0.address
    }
}

impl Clone for Busy {
    fn clone(&self) -> Busy {
        self.0.busy()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let slot = &self.0;
        let mut reg = lock(&slot.table.inner.registry);
        if slot.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            reg.set_idle(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize, per_address: usize) -> Connections {
        Connections::new(ConnLimits {
            max_connections: max,
            max_per_address: per_address,
            ..ConnLimits::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn per_address_limit_counts_ipv4_mapped_as_ipv4_and_ipv6_by_64() {
        let t = table(100, 2);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let _b = t.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refusal::PerAddress));
        let _c = t.admit(ip("10.0.0.2")).unwrap();
        let _d = t.admit(ip("2001:db8::1")).unwrap();
        let _e = t.admit(ip("2001:db8::ffff:2")).unwrap();
        assert_eq!(t.admit(ip("2001:db8::3")).err(), Some(Refusal::PerAddress));
        let _f = t.admit(ip("2001:db8:0:1::1")).unwrap();
        drop(a);
        let _g = t.admit(ip("10.0.0.1")).unwrap();
        let s = t.stats();
        assert_eq!((s.open, s.accepted, s.refused.per_address), (6, 7, 2));
    }

    #[test]
    fn a_full_table_evicts_the_longest_idle_and_refuses_when_none_is_idle() {
        use futures_util::FutureExt;
        let t = table(2, 0);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let b = t.admit(ip("10.0.0.2")).unwrap();
        drop(a.busy()); // busy, then idle again: now younger than `b`
        let c = t.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(
            b.idle_period(),
            None,
            "b, idle the longest, is told to close"
        );
        assert!(b.evicted().now_or_never().is_some());
        assert!(a.evicted().now_or_never().is_none());
        drop(b); // its connection closed
        let (_a_busy, _c_busy) = (a.busy(), c.busy());
        assert_eq!(t.admit(ip("10.0.0.4")).err(), Some(Refusal::Full));
        let s = t.stats();
        assert_eq!((s.open, s.closed.evicted, s.refused.limit), (2, 1, 1));
    }

    #[test]
    fn busy_guards_nest_and_a_clone_keeps_the_connection_busy() {
        let t = table(10, 0);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let first = a.idle_period().expect("idle when admitted");
        let busy = a.busy();
        assert_eq!(a.idle_period(), None);
        let upgraded = busy.clone();
        drop(busy);
        assert_eq!(a.idle_period(), None, "the clone keeps it busy");
        drop(upgraded);
        let second = a.idle_period().expect("idle again");
        assert_ne!(first, second, "a new idle period");
        drop(a);
        assert_eq!(t.stats().open, 0);
    }
}
