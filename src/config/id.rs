//! The id rule: device ids, stream ids (`[[stream]] id`) and the stream ids publishers announce
//! to a relay are all 1 to 64 characters among `A-Z a-z 0-9 - _ .` — safe in URLs, Redis keys,
//! log lines and file names, and one rule everywhere.

/// What [`is_valid_id`] accepts, in words, for error messages.
pub const ID_RULE: &str = "1 to 64 characters among A-Z a-z 0-9 - _ .";

/// Whether `id` is a valid device or stream id.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_1_to_64_safe_characters() {
        for ok in ["cam0", "garage-pi.front_door", &"a".repeat(64)] {
            assert!(is_valid_id(ok), "{ok:?}");
        }
        for bad in ["", "../x", "a/b", "x\0", "é", "a b", &"a".repeat(65)] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }
}
