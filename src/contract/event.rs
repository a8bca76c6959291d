//! One contract message ready to be encoded once, and the names of the contract's events.

use super::messages::{Announce, MediaMeta, Status};
use bytes::Bytes;
use serde::Serialize;

/// Server → viewer (and gateway → relay): a stream and its tracks.
pub const ANNOUNCE: &str = "announce";
/// Server → viewer (and gateway → relay): a track went live or down.
pub const STATUS: &str = "status";
/// Server → viewer (and gateway → relay): one frame, meta plus the bytes.
pub const MEDIA: &str = "media";
/// Viewer → server: list streams.
pub const STREAMS: &str = "streams";
/// Viewer → server: start receiving a stream.
pub const WATCH: &str = "watch";
/// Viewer → server: stop receiving a stream.
pub const UNWATCH: &str = "unwatch";

/// One contract event ready to be encoded: a name, its first argument as JSON text, and an optional
/// binary second argument. Transports turn it into their own wire form exactly once per event.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractEvent {
    /// [`ANNOUNCE`], [`STATUS`] or [`MEDIA`].
    pub name: &'static str,
    /// The first argument, serialized JSON.
    pub json: String,
    /// The binary attachment (`media` only).
    pub binary: Option<Bytes>,
}

impl ContractEvent {
    /// The `announce` event for `announce`.
    pub fn announce(announce: &Announce) -> ContractEvent {
        ContractEvent {
            name: ANNOUNCE,
            json: to_json(announce),
            binary: None,
        }
    }

    /// The `status` event for `status`.
    pub fn status(status: &Status) -> ContractEvent {
        ContractEvent {
            name: STATUS,
            json: to_json(status),
            binary: None,
        }
    }

    /// The `media` event: meta plus the frame as binary attachment (shared, not copied).
    pub fn media(meta: &MediaMeta, data: Bytes) -> ContractEvent {
        ContractEvent {
            name: MEDIA,
            json: to_json(meta),
            binary: Some(data),
        }
    }

    /// Bytes this event occupies in a queue (JSON plus attachment).
    pub fn size(&self) -> usize {
        self.json.len() + self.binary.as_ref().map_or(0, Bytes::len)
    }
}

/// Serializes contract types, which are plain structs of strings and numbers and cannot fail.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::cam_announce;

    #[test]
    fn announce_uses_the_contract_field_names() {
        let a = cam_announce("cam0");
        let v: serde_json::Value = serde_json::from_str(&ContractEvent::announce(&a).json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"stream":"cam0","tracks":[
                {"track":"video","codec":"h264","codecString":"avc1.42C01F","width":320,"height":240,"fps":30},
                {"track":"audio","codec":"opus","codecString":"opus","sampleRate":48000,"channels":1}]})
        );
        let back: crate::contract::Announce = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn media_event_carries_meta_and_shares_the_frame() {
        let data = Bytes::from_static(b"\0\0\0\x01frame");
        let meta = MediaMeta {
            stream: "cam0".into(),
            track: "video".into(),
            seq: 7,
            pts: 1000,
            key: true,
            t: 42,
        };
        let e = ContractEvent::media(&meta, data.clone());
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"stream":"cam0","track":"video","seq":7,"pts":1000,"key":true,"t":42})
        );
        assert_eq!(e.binary.as_ref().map(|b| b.as_ptr()), Some(data.as_ptr()));
        assert_eq!(e.size(), e.json.len() + 9);
    }
}
