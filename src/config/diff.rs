//! What a reload changes: streams and relays added, removed or changed.

use super::file::Config;
use super::relay::RelayConfig;
use super::stream::StreamConfig;

/// What a reload changes in a list of items identified by a key (streams by id, relays by url
/// and namespace): the gateway restarts only what is listed here and leaves the rest running.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff<'a, T> {
    /// In the new config only.
    pub added: Vec<&'a T>,
    /// In the old config only.
    pub removed: Vec<&'a T>,
    /// In both with the same key but different settings: (old, new).
    pub changed: Vec<(&'a T, &'a T)>,
}

impl<T> Diff<'_, T> {
    /// True when nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn diff_by<'a, T: PartialEq, K: PartialEq>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&T) -> K,
) -> Diff<'a, T> {
    let find = |list: &'a [T], k: &K| list.iter().find(|x| key(x) == *k);
    Diff {
        added: new
            .iter()
            .filter(|n| find(old, &key(n)).is_none())
            .collect(),
        removed: old
            .iter()
            .filter(|o| find(new, &key(o)).is_none())
            .collect(),
        changed: old
            .iter()
            .filter_map(|o| find(new, &key(o)).filter(|n| *n != o).map(|n| (o, n)))
            .collect(),
    }
}

impl Config {
    /// Streams added, removed or changed (by id) between this config and `new`.
    pub fn diff_streams<'a>(&'a self, new: &'a Config) -> Diff<'a, StreamConfig> {
        diff_by(&self.streams, &new.streams, |s| s.id.clone())
    }

    /// Relays added, removed or changed (by url and namespace) between this config and `new`.
    pub fn diff_relays<'a>(&'a self, new: &'a Config) -> Diff<'a, RelayConfig> {
        diff_by(&self.relays, &new.relays, |r| {
            (r.url.clone(), r.namespace.clone())
        })
    }
}
