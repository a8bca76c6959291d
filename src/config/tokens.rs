//! The relay's publisher tokens: inline, or a TOML file of `device = "token"` lines.

use super::error::{ConfigError, FieldPath, Problem};
use super::parse::deserialize;
use super::server::RelayServerConfig;
use std::collections::BTreeMap;
use std::path::Path;

impl RelayServerConfig {
    /// The publisher tokens (device id → token): the inline table, or the tokens file read now
    /// (so a reload picks up edits).
    pub fn publisher_tokens(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        match &self.tokens_file {
            Some(file) => load_tokens(file),
            None => Ok(self.tokens.clone()),
        }
    }
}

/// Reads a tokens file: TOML lines `device = "token"`.
pub(super) fn load_tokens(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (tokens, loc) =
        deserialize::<BTreeMap<String, String>>(&text, &path.display().to_string())?;
    let problems: Vec<Problem> = tokens
        .iter()
        .filter(|(device, token)| device.is_empty() || token.trim().is_empty())
        .map(|(device, _)| {
            loc.at_field(
                &FieldPath::default().key(device),
                "a device needs a non-empty token".into(),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(tokens)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}
