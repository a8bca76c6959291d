//! The viewers' requests, transport-neutral: what `streams`, `watch` and `unwatch` do to a
//! [`Hub`] and what they acknowledge. The gateway's server and `sioedge relay` bind these to
//! their Socket.IO namespace, so a viewer cannot tell them apart.
//!
//! - `streams` → ack: the array of announced streams (`announce` payloads).
//! - `watch` `{stream, tracks?}` (or just `"stream"`) → ack: that stream's announce; the hub then
//!   sends `announce`, `status` and `media` (cached GOP first, keyframe first) to this viewer.
//! - `unwatch` `{stream}` (or `"stream"`, or nothing for every stream) → ack `{ok: true}`.
//!
//! Errors are acked as `{"error": "..."}`, never as a disconnect.

use super::fanout::{Hub, ReceiverId};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchArgs {
    stream: String,
    #[serde(default)]
    tracks: Option<Vec<String>>,
}

fn error(message: impl std::fmt::Display) -> Value {
    json!({ "error": message.to_string() })
}

/// Parses `{stream, tracks?}` or `"stream"`.
fn watch_args(args: &[Value]) -> Result<WatchArgs, Value> {
    match args.first() {
        Some(Value::String(s)) => Ok(WatchArgs {
            stream: s.clone(),
            tracks: None,
        }),
        Some(v @ Value::Object(_)) => WatchArgs::deserialize(v)
            .map_err(|e| error(format!("watch expects {{stream, tracks?}}: {e}"))),
        _ => Err(error("watch expects {stream, tracks?}")),
    }
}

/// Handles `streams`: returns the ack.
pub(crate) fn on_streams<P: Send + Sync + 'static>(hub: &Hub<P>) -> Value {
    Value::Array(
        hub.streams()
            .iter()
            .filter_map(|a| serde_json::to_value(&**a).ok())
            .collect(),
    )
}

/// Handles `watch` from receiver `id`: returns the ack.
pub(crate) fn on_watch<P: Send + Sync + 'static>(
    hub: &Hub<P>,
    id: ReceiverId,
    args: &[Value],
) -> Value {
    let args = match watch_args(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    match hub.watch(id, &args.stream, args.tracks) {
        Ok(announce) => serde_json::to_value(&*announce).unwrap_or(Value::Null),
        Err(e) => error(e),
    }
}

/// Handles `unwatch` from receiver `id`: returns the ack.
pub(crate) fn on_unwatch<P: Send + Sync + 'static>(
    hub: &Hub<P>,
    id: ReceiverId,
    args: &[Value],
) -> Value {
    let stream = match args.first() {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => match o.get("stream") {
            Some(Value::String(s)) => Some(s.as_str()),
            None => None,
            Some(_) => return error("unwatch expects {stream}"),
        },
        Some(_) => return error("unwatch expects {stream}"),
    };
    match hub.unwatch(id, stream) {
        Ok(()) => json!({ "ok": true }),
        Err(e) => error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Announce, ContractEvent, opus_track};
    use crate::hub::{CacheLimits, InProcess, SharedEvent, Sink};
    use crate::queue::{Class, Push};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Names(Mutex<Vec<&'static str>>);

    impl Sink<()> for Names {
        fn offer(&self, p: &SharedEvent<()>, _: Class, _: usize) -> Push {
            self.0.lock().unwrap().push(p.event.name);
            Push::Queued
        }
    }

    fn setup() -> (Hub<()>, ReceiverId, Arc<Names>) {
        let hub = Hub::new(
            |_: &ContractEvent| (),
            Arc::new(InProcess),
            CacheLimits::default(),
        );
        hub.announce(Announce {
            stream: "cam0".into(),
            tracks: vec![opus_track()],
        })
        .unwrap();
        let names = Arc::new(Names::default());
        let id = hub.add_receiver(names.clone(), false);
        (hub, id, names)
    }

    #[test]
    fn streams_lists_announces() {
        let (hub, _, _) = setup();
        let v = on_streams(&hub);
        assert_eq!(v[0]["stream"], "cam0");
        assert_eq!(v[0]["tracks"][0]["sampleRate"], 48000);
    }

    #[test]
    fn watch_acks_the_announce_in_both_argument_forms() {
        let (hub, id, names) = setup();
        let v = on_watch(&hub, id, &[json!({"stream": "cam0", "tracks": ["audio"]})]);
        assert_eq!(v["stream"], "cam0");
        let v = on_watch(&hub, id, &[json!("cam0")]);
        assert_eq!(v["tracks"][0]["track"], "audio");
        assert_eq!(
            *names.0.lock().unwrap(),
            ["announce", "status", "announce", "status"]
        );
    }

    #[test]
    fn bad_watch_and_unwatch_arguments_are_acked_with_an_error() {
        let (hub, id, _) = setup();
        for args in [
            vec![],
            vec![json!(3)],
            vec![json!({"stream": 3})],
            vec![json!({"stream": "cam0", "bogus": 1})],
        ] {
            let v = on_watch(&hub, id, &args);
            assert!(v["error"].is_string(), "{args:?} gave {v}");
        }
        assert!(
            on_watch(&hub, id, &[json!("nope")])["error"]
                .as_str()
                .unwrap()
                .contains("unknown stream")
        );
        assert!(on_unwatch(&hub, id, &[json!(1)])["error"].is_string());
        assert_eq!(on_unwatch(&hub, id, &[]), json!({"ok": true}));
        assert_eq!(
            on_unwatch(&hub, id, &[json!({"stream": "cam0"})]),
            json!({"ok": true})
        );
    }
}
