//! A file's bytes to a value, with invalid UTF-8, syntax and type errors located at
//! file:line:col and field.

use super::error::{ConfigError, Locator};
use serde::de::DeserializeOwned;
use toml::de::DeTable;

/// The text of a file, or a problem at the line and column of its first byte that is not UTF-8.
pub(super) fn text<'b>(bytes: &'b [u8], file: &str) -> Result<&'b str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = e.valid_up_to();
        let before = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
        let bad = bytes.get(good).copied().unwrap_or_default();
        let loc = Locator::new(file.into(), before, None);
        let problem = loc.at_span(
            Some(good..good),
            format!("invalid UTF-8 (byte 0x{bad:02X})"),
        );
        ConfigError::Invalid(vec![problem])
    })
}

/// Parses TOML text into `T`, keeping a [`Locator`] to place later semantic errors.
pub(super) fn deserialize<'t, T: DeserializeOwned>(
    text: &'t str,
    file: &str,
) -> Result<(T, Locator<'t>), ConfigError> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let loc = Locator::new(file.into(), text, Some(&doc));
    // Only the first syntax error: the ones after it are often echoes of the same mistake.
    if let Some(e) = syntax.first() {
        let message = syntax_message(text, e.span(), e.message());
        return Err(ConfigError::Invalid(vec![
            loc.at_syntax_error(e.span(), message),
        ]));
    }
    match toml::from_str::<T>(text) {
        Ok(value) => Ok((value, loc)),
        Err(e) => Err(ConfigError::Invalid(vec![
            loc.at_span(e.span(), e.message().to_owned()),
        ])),
    }
}

/// The parser's message, with what it is about when the parser does not say: the key given
/// twice, the table header left open.
fn syntax_message(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let start = span.as_ref().map_or(0, |s| s.start);
    let at = span.and_then(|s| text.get(s)).unwrap_or_default();
    if message == "duplicate key" && !at.is_empty() && !at.contains('\n') {
        return format!("duplicate key `{at}`");
    }
    // `[server` then a newline: toml says "unclosed table, expected `]`" at the end of the line.
    let header = ["unclosed table", "unclosed array table"]
        .into_iter()
        .find_map(|kind| Some((kind, message.strip_prefix(kind)?.strip_prefix(", ")?)));
    if let Some((kind, expected)) = header {
        let line_start = text
            .get(..start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let header = text.get(line_start..start).unwrap_or_default().trim();
        return format!("{kind} header `{header}`, {expected}");
    }
    message.to_owned()
}
