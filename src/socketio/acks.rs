//! The pending-ack table of one side of a Socket.IO connection: the ids given to events that
//! want an answer, who waits for each, until when, and how many may wait at once. Sans-IO: the
//! waiter is whatever the caller resolves (a channel sender in the server and the client), the
//! clock is passed in.
//!
//! An entry ends in exactly one way: [`AckTable::resolve`] (the ack arrived),
//! [`AckTable::cancel`] (the sender gave up or could not send), [`AckTable::expire`] (its deadline
//! passed: a waiter that stopped waiting without cancelling does not stay forever) or
//! [`AckTable::clear`] (the connection is gone).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most acks one socket (server) or one client may wait for at once, unless told otherwise.
pub const MAX_PENDING_ACKS: usize = 4096;

/// The table is at its bound (after expiring what was due): the event cannot ask for an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many pending acks (at most {0})")]
pub struct TooManyAcks(pub usize);

#[derive(Debug)]
struct Pending<W> {
    waiter: W,
    deadline: Instant,
}

/// Pending acks and their waiters `W` (see the module docs).
#[derive(Debug)]
pub struct AckTable<W> {
    next: u64,
    pending: HashMap<u64, Pending<W>>,
    max: usize,
}

impl<W> AckTable<W> {
    /// An empty table that holds at most `max` waiters.
    pub fn new(max: usize) -> AckTable<W> {
        AckTable {
            next: 0,
            pending: HashMap::new(),
            max,
        }
    }

    /// Registers `waiter` for an event sent at `now` whose ack is awaited for `timeout`; returns
    /// the ack id to put on the event. Entries whose deadline passed are expired first.
    pub fn register(
        &mut self,
        waiter: W,
        now: Instant,
        timeout: Duration,
    ) -> Result<u64, TooManyAcks> {
        if self.pending.len() >= self.max {
            self.expire(now);
        }
        if self.pending.len() >= self.max {
            return Err(TooManyAcks(self.max));
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        let deadline = now.checked_add(timeout).unwrap_or(now);
        self.pending.insert(id, Pending { waiter, deadline });
        Ok(id)
    }

    /// The ack `id` arrived: its waiter, unless it was never registered or already ended.
    pub fn resolve(&mut self, id: u64) -> Option<W> {
        self.pending.remove(&id).map(|p| p.waiter)
    }

    /// The sender of `id` stopped waiting (timed out on its side, or the event could not be sent).
    pub fn cancel(&mut self, id: u64) {
        self.pending.remove(&id);
    }

    /// Removes the entries whose deadline is `now` or earlier; returns their waiters.
    pub fn expire(&mut self, now: Instant) -> Vec<W> {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter().filter_map(|id| self.resolve(id)).collect()
    }

    /// The earliest deadline, if any entry is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// The connection is gone: every waiter, now without an answer.
    pub fn clear(&mut self) -> Vec<W> {
        self.pending.drain().map(|(_, p)| p.waiter).collect()
    }

    /// Entries pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when no ack is awaited.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_resolve_once_and_unknown_ids_resolve_nothing() {
        let t0 = Instant::now();
        let mut t = AckTable::new(8);
        let a = t.register("a", t0, Duration::from_secs(1)).unwrap();
        let b = t.register("b", t0, Duration::from_secs(1)).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.resolve(b), Some("b"));
        assert_eq!(t.resolve(b), None);
        assert_eq!(t.resolve(99), None);
        t.cancel(a);
        assert!(t.is_empty());
    }

    #[test]
    fn deadlines_expire_in_time_and_not_before() {
        let t0 = Instant::now();
        let mut t = AckTable::new(8);
        t.register("short", t0, Duration::from_millis(100)).unwrap();
        t.register("long", t0, Duration::from_secs(5)).unwrap();
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert!(t.expire(t0 + Duration::from_millis(99)).is_empty());
        assert_eq!(t.expire(t0 + Duration::from_millis(100)), vec!["short"]);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(t.clear(), vec!["long"]);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn the_bound_holds_but_expired_entries_make_room() {
        let t0 = Instant::now();
        let mut t = AckTable::new(2);
        t.register(1, t0, Duration::from_millis(10)).unwrap();
        t.register(2, t0, Duration::from_secs(10)).unwrap();
        assert_eq!(
            t.register(3, t0, Duration::from_secs(10)),
            Err(TooManyAcks(2))
        );
        // An abandoned waiter (never cancelled) is gone once its deadline passed.
        let later = t0 + Duration::from_millis(10);
        assert!(t.register(3, later, Duration::from_secs(10)).is_ok());
        assert_eq!(t.len(), 2);
    }
}
