//! `/api/status` (JSON) and `/metrics` (Prometheus text exposition) from a hub snapshot and the
//! state of the outgoing links (a gateway's relays; a relay's publishers and Redis bus). Shared by
//! the gateway and the relay.

use super::snapshot::SnapshotStats;
use super::viewers::ViewerHub;
use crate::contract::{TrackKind, TrackState};
use crate::hub::{HubSnapshot, TrackSnapshot};
use crate::server::{ConnectionStats, Namespace};
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What `/api/status` and `/metrics` read, set once the server and the links exist.
pub struct Observed {
    /// Device (gateway) or node (relay) id.
    pub device: String,
    /// When the mode started.
    pub started: Instant,
    /// The hub viewers are served from.
    pub hub: Arc<ViewerHub>,
    /// The viewers' namespace.
    pub viewers: Namespace,
    /// The state of the outgoing links, read at each request.
    pub links: Box<dyn Fn() -> Vec<LinkReport> + Send + Sync>,
}

impl Observed {
    /// The report as of now, with the server's `connections` and `snapshots` counts.
    pub fn report(&self, connections: ConnectionStats, snapshots: SnapshotStats) -> StatusReport {
        StatusReport {
            device: self.device.clone(),
            uptime_seconds: self.started.elapsed().as_secs(),
            viewers: self.viewers.sockets().len(),
            connections,
            snapshots,
            hub: self.hub.snapshot(),
            relays: (self.links)(),
        }
    }
}

/// Where the server's route hook finds [`Observed`] once it is set (nothing is answered before).
pub(crate) type ObservedSlot = Arc<OnceLock<Observed>>;

/// Answers `GET /api/status` (JSON) and `GET /metrics` (Prometheus) from `report`; `None` for any
/// other path, or while `report` has nothing yet.
pub(crate) fn http_route(
    path: &str,
    report: impl FnOnce() -> Option<StatusReport>,
) -> Option<http::Response<Full<Bytes>>> {
    let (ctype, body) = match path {
        "/api/status" => ("application/json", report()?.to_json()),
        "/metrics" => (
            "text/plain; version=0.0.4; charset=utf-8",
            report()?.to_prometheus(),
        ),
        _ => return None,
    };
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, ctype)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .ok()
}

/// State of one outgoing link (a relay the gateway publishes to).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LinkReport {
    /// The relay URL (and namespace).
    pub name: String,
    /// `connected`, `connecting`, `reconnecting`, `stopped`, …
    pub state: String,
    /// The last error, if any (kept after recovery so a flapping link shows its cause; see
    /// `last_error_at`).
    pub last_error: Option<String>,
    /// When `last_error` happened (RFC 3339, UTC, in the JSON).
    #[serde(serialize_with = "rfc3339")]
    pub last_error_at: Option<SystemTime>,
    /// Media frames sent.
    pub sent: u64,
    /// Media frames dropped by the link's queue.
    pub dropped: u64,
    /// Reconnection attempts, successful or not.
    pub reconnects: u64,
    /// Failures in a row right now (0 while connected).
    pub attempts: u32,
}

/// Writes a time as RFC 3339 UTC to the second (`2026-11-23T22:41:02Z`), `null` for none.
fn rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    let utc = t
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok());
    match utc {
        Some(d) => s.serialize_str(&format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )),
        None => s.serialize_none(),
    }
}

impl LinkReport {
    /// Whether the link currently delivers.
    pub fn connected(&self) -> bool {
        self.state == "connected"
    }
}

/// Everything `/api/status` shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Device (gateway) or node (relay) id.
    pub device: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Connected viewers.
    pub viewers: usize,
    /// The server's connections: open, limits, refused and closed by reason.
    pub connections: ConnectionStats,
    /// The snapshot route's answers by status code, and its decodes.
    pub snapshots: SnapshotStats,
    /// Streams and tracks with their counters.
    #[serde(flatten)]
    pub hub: HubSnapshot,
    /// Outgoing links.
    pub relays: Vec<LinkReport>,
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl StatusReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// The report in the Prometheus text format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let tracks: Vec<_> = self
            .hub
            .streams
            .iter()
            .flat_map(|s| {
                s.tracks.iter().map(move |t| {
                    let l = format!(
                        "{{stream=\"{}\",track=\"{}\",kind=\"{}\"}}",
                        label(&s.stream),
                        label(&t.track),
                        match t.kind {
                            TrackKind::Video => "video",
                            TrackKind::Audio => "audio",
                        }
                    );
                    (l, t)
                })
            })
            .collect();
        let per_track = |f: &dyn Fn(&TrackSnapshot) -> String| {
            tracks.iter().map(|(l, t)| (l.clone(), f(t))).collect()
        };
        family(
            "sioedge_frames_in_total",
            "counter",
            "Frames received from capture or publishers.",
            per_track(&|t| t.frames_in.to_string()),
        );
        family(
            "sioedge_bytes_in_total",
            "counter",
            "Frame bytes received from capture or publishers.",
            per_track(&|t| t.bytes_in.to_string()),
        );
        family(
            "sioedge_frames_out_total",
            "counter",
            "Frames accepted into receivers' queues (viewers and relays).",
            per_track(&|t| t.frames_out.to_string()),
        );
        family(
            "sioedge_frames_dropped_total",
            "counter",
            "Frames receivers' queues dropped (slow receivers).",
            per_track(&|t| t.dropped.to_string()),
        );
        family(
            "sioedge_track_bitrate_bps",
            "gauge",
            "Track bitrate over the last second of media time.",
            per_track(&|t| t.bitrate_bps.to_string()),
        );
        family(
            "sioedge_track_up",
            "gauge",
            "1 when the track is live, 0 when down.",
            per_track(&|t| u8::from(t.state == TrackState::Live).to_string()),
        );
        family(
            "sioedge_viewers",
            "gauge",
            "Connected viewers.",
            vec![(String::new(), self.viewers.to_string())],
        );
        let c = &self.connections;
        let counts = [
            (
                "sioedge_connections",
                "gauge",
                "Open HTTP and WebSocket connections.",
                c.open as u64,
            ),
            (
                "sioedge_connections_limit",
                "gauge",
                "Most connections open at once (max_connections).",
                c.limit as u64,
            ),
            (
                "sioedge_connections_per_address_limit",
                "gauge",
                "Most connections open at once from one address (0: none).",
                c.per_address_limit as u64,
            ),
            (
                "sioedge_connections_accepted_total",
                "counter",
                "Connections accepted.",
                c.accepted,
            ),
            (
                "sioedge_accept_errors_total",
                "counter",
                "Failed accepts (out of file descriptors and the like).",
                c.accept_errors,
            ),
        ];
        for (name, kind, help, value) in counts {
            family(name, kind, help, vec![(String::new(), value.to_string())]);
        }
        let reasons = [
            (
                "sioedge_connections_refused_total",
                "Connections (or Engine.IO sessions) refused, by limit reached.",
                vec![
                    ("limit", c.refused.limit),
                    ("per_address", c.refused.per_address),
                    ("sessions", c.refused.sessions),
                ],
            ),
            (
                "sioedge_connections_closed_total",
                "Connections the server closed, by reason.",
                vec![
                    ("idle_timeout", c.closed.idle_timeout),
                    ("header_timeout", c.closed.header_timeout),
                    ("body_timeout", c.closed.body_timeout),
                    ("evicted", c.closed.evicted),
                ],
            ),
        ];
        for (name, help, counts) in reasons {
            let rows = counts
                .iter()
                .map(|(r, v)| (format!("{{reason=\"{r}\"}}"), v.to_string()))
                .collect();
            family(name, "counter", help, rows);
        }
        family(
            "sioedge_snapshots_total",
            "counter",
            "Snapshot requests answered, by HTTP status code.",
            self.snapshots
                .answers
                .iter()
                .map(|(code, n)| (format!("{{status=\"{code}\"}}"), n.to_string()))
                .collect(),
        );
        family(
            "sioedge_snapshot_decodes_total",
            "counter",
            "Snapshots decoded from a stream's cached GOP.",
            vec![(String::new(), self.snapshots.decodes.to_string())],
        );
        let relay = |f: &dyn Fn(&LinkReport) -> String| -> Vec<(String, String)> {
            self.relays
                .iter()
                .map(|r| (format!("{{relay=\"{}\"}}", label(&r.name)), f(r)))
                .collect()
        };
        family(
            "sioedge_relay_connected",
            "gauge",
            "1 when the relay link is connected.",
            relay(&|r| u8::from(r.connected()).to_string()),
        );
        family(
            "sioedge_relay_frames_sent_total",
            "counter",
            "Media frames sent to the relay.",
            relay(&|r| r.sent.to_string()),
        );
        family(
            "sioedge_relay_frames_dropped_total",
            "counter",
            "Media frames dropped by the relay link's queue.",
            relay(&|r| r.dropped.to_string()),
        );
        family(
            "sioedge_relay_reconnects_total",
            "counter",
            "Reconnection attempts to the relay, successful or not.",
            relay(&|r| r.reconnects.to_string()),
        );
        family(
            "sioedge_relay_failed_attempts",
            "gauge",
            "Failures in a row on the relay link right now (0 while connected).",
            relay(&|r| r.attempts.to_string()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Codec;
    use crate::hub::StreamSnapshot;

    fn report() -> StatusReport {
        StatusReport {
            device: "pi".into(),
            uptime_seconds: 5,
            viewers: 3,
            connections: crate::server::ConnectionStats {
                open: 5,
                limit: 512,
                per_address_limit: 64,
                accepted: 40,
                refused: crate::server::Refused {
                    limit: 1,
                    per_address: 7,
                    sessions: 0,
                },
                closed: crate::server::Closed {
                    idle_timeout: 11,
                    header_timeout: 2,
                    body_timeout: 3,
                    evicted: 4,
                },
                accept_errors: 9,
            },
            snapshots: SnapshotStats {
                answers: [(200, 12), (503, 2)].into(),
                decodes: 3,
            },
            hub: HubSnapshot {
                streams: vec![StreamSnapshot {
                    stream: "cam\"0".into(),
                    watchers: 3,
                    tracks: vec![TrackSnapshot {
                        track: "video".into(),
                        kind: TrackKind::Video,
                        codec: Codec::H264,
                        state: TrackState::Down,
                        reason: "unplugged".into(),
                        frames_in: 10,
                        bytes_in: 1000,
                        frames_out: 30,
                        dropped: 2,
                        bitrate_bps: 8000,
                        cache_bytes: 100,
                        seq: Some(9),
                        capture: None,
                    }],
                }],
                receivers: 4,
            },
            relays: vec![LinkReport {
                name: "ws://r/publish".into(),
                state: "reconnecting".into(),
                last_error: Some("refused".into()),
                last_error_at: Some(UNIX_EPOCH + std::time::Duration::from_secs(1_795_473_662)),
                sent: 7,
                dropped: 1,
                reconnects: 2,
                attempts: 3,
            }],
        }
    }

    #[test]
    fn prometheus_text_has_every_family_with_escaped_labels() {
        let text = report().to_prometheus();
        for line in [
            "sioedge_frames_in_total{stream=\"cam\\\"0\",track=\"video\",kind=\"video\"} 10",
            "sioedge_frames_dropped_total{stream=\"cam\\\"0\",track=\"video\",kind=\"video\"} 2",
            "sioedge_track_bitrate_bps{stream=\"cam\\\"0\",track=\"video\",kind=\"video\"} 8000",
            "sioedge_track_up{stream=\"cam\\\"0\",track=\"video\",kind=\"video\"} 0",
            "sioedge_viewers 3",
            "sioedge_relay_connected{relay=\"ws://r/publish\"} 0",
            "sioedge_relay_reconnects_total{relay=\"ws://r/publish\"} 2",
            "sioedge_relay_failed_attempts{relay=\"ws://r/publish\"} 3",
            "sioedge_connections 5",
            "sioedge_connections_limit 512",
            "sioedge_connections_per_address_limit 64",
            "sioedge_connections_refused_total{reason=\"per_address\"} 7",
            "sioedge_connections_closed_total{reason=\"header_timeout\"} 2",
            "sioedge_connections_closed_total{reason=\"evicted\"} 4",
            "sioedge_accept_errors_total 9",
            "sioedge_snapshots_total{status=\"200\"} 12",
            "sioedge_snapshots_total{status=\"503\"} 2",
            "sioedge_snapshot_decodes_total 3",
            "# TYPE sioedge_frames_out_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn status_json_shows_streams_tracks_viewers_and_relays() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(v["viewers"], 3);
        assert_eq!(v["streams"][0]["tracks"][0]["state"], "down");
        assert_eq!(v["streams"][0]["tracks"][0]["reason"], "unplugged");
        assert_eq!(v["relays"][0]["lastError"], "refused");
        assert_eq!(v["relays"][0]["lastErrorAt"], "2026-11-23T22:41:02Z");
        assert_eq!(v["relays"][0]["attempts"], 3);
        assert_eq!(v["relays"][0]["state"], "reconnecting");
        assert_eq!(v["connections"]["limit"], 512);
        assert_eq!(v["connections"]["perAddressLimit"], 64);
        assert_eq!(v["connections"]["refused"]["perAddress"], 7);
        assert_eq!(v["connections"]["closed"]["idleTimeout"], 11);
        assert_eq!(v["connections"]["acceptErrors"], 9);
        assert_eq!(v["snapshots"]["answers"]["200"], 12);
        assert_eq!(v["snapshots"]["decodes"], 3);
    }
}
