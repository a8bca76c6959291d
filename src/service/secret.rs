//! Comparing secrets — viewer tokens and passwords, publisher tokens — without telling an attacker
//! through timing how much of a guess was right.

use ring::digest::{SHA256, digest};

/// Whether `given` equals `expected`. Both are hashed (SHA-256) and the digests compared without
/// an early exit, so the time taken depends neither on where they differ nor on whether their
/// lengths match.
pub(crate) fn secrets_match(given: &str, expected: &str) -> bool {
    let (a, b) = (
        digest(&SHA256, given.as_bytes()),
        digest(&SHA256, expected.as_bytes()),
    );
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(secrets_match("", ""));
        for wrong in ["", "s3cre", "s3cret!", "S3cret", "s3creT", "x"] {
            assert!(!secrets_match(wrong, "s3cret"), "{wrong:?}");
        }
    }
}
