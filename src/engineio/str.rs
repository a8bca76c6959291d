//! [`Str`]: a cheaply clonable, zero-copy UTF-8 string backed by [`Bytes`].
//!
//! Text WebSocket frames and long-polling payloads arrive as `Bytes`; slicing them into packets
//! must not copy. `Str` keeps the UTF-8 guarantee in the type so that `as_str` is free.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// UTF-8 text backed by reference-counted [`Bytes`]. Clones and sub-slices share the buffer.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Str(Bytes);

/// The bytes given to [`Str::from_utf8`] were not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8 in text data")]
pub struct Utf8Error;

impl Str {
    /// An empty string (no allocation).
    pub const fn new() -> Self {
        Str(Bytes::new())
    }

    /// A string from a `'static` literal (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Str(Bytes::from_static(s.as_bytes()))
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, Utf8Error> {
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(Str(bytes)),
            Err(_) => Err(Utf8Error),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either validates UTF-8 (`from_utf8`), takes a `str`/`String`,
        // or slices an existing `Str` along a `&str` sub-slice (char boundaries), so the bytes
        // are always valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (shared, not copied).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Consumes the string into its bytes (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// A zero-copy sub-string of `self` given a sub-slice of `self.as_str()`.
    ///
    /// `sub` must point into `self`'s buffer (as produced by `str` methods on `as_str()`);
    /// otherwise the sub-string is copied.
    pub fn slice_ref(&self, sub: &str) -> Str {
        let base = self.0.as_ptr() as usize;
        let p = sub.as_ptr() as usize;
        if sub.is_empty() {
            return Str::new();
        }
        if p >= base && p + sub.len() <= base + self.0.len() {
            Str(self.0.slice_ref(sub.as_bytes()))
        } else {
            Str::from(sub)
        }
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(Bytes::from(s))
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Bytes {
        s.0
    }
}

impl TryFrom<Bytes> for Str {
    type Error = Utf8Error;
    fn try_from(b: Bytes) -> Result<Self, Utf8Error> {
        Str::from_utf8(b)
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_ref_shares_buffer() {
        let s = Str::from("hello world");
        let sub = s.slice_ref(&s.as_str()[6..]);
        assert_eq!(sub, "world");
        assert_eq!(
            sub.as_bytes().as_ptr() as usize,
            s.as_bytes().as_ptr() as usize + 6
        );
        // A foreign &str is copied, not mis-sliced.
        let other = String::from("zz");
        assert_eq!(s.slice_ref(&other), "zz");
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(Str::from_utf8(Bytes::from_static(b"\xff")), Err(Utf8Error));
        assert_eq!(Str::from_utf8(Bytes::from_static(b"ok")).unwrap(), "ok");
    }
}
