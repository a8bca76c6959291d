//! TOML text to a value, with the syntax and type errors located at file:line:col and field.

use super::error::{ConfigError, Locator};
use serde::de::DeserializeOwned;
use toml::de::DeTable;

/// Parses TOML text into `T`, keeping a [`Locator`] to place later semantic errors.
pub(super) fn deserialize<'t, T: DeserializeOwned>(
    text: &'t str,
    file: &str,
) -> Result<(T, Locator<'t>), ConfigError> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let loc = Locator::new(file.into(), text, Some(&doc));
    // Only the first syntax error: the ones after it are often echoes of the same mistake.
    if let Some(e) = syntax.first() {
        let key = e.span().and_then(|s| text.get(s)).unwrap_or_default();
        let message = match e.message() {
            "duplicate key" if !key.is_empty() && !key.contains('\n') => {
                format!("duplicate key `{key}`")
            }
            m => m.to_owned(),
        };
        return Err(ConfigError::Invalid(vec![loc.at_span(e.span(), message)]));
    }
    match toml::from_str::<T>(text) {
        Ok(value) => Ok((value, loc)),
        Err(e) => Err(ConfigError::Invalid(vec![
            loc.at_span(e.span(), e.message().to_owned()),
        ])),
    }
}
