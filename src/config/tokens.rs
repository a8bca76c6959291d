//! The relay's publisher tokens: inline, or a TOML file of `device = "token"` lines.

use super::error::{ConfigError, FieldPath, Problem};
use super::parse::{deserialize, text};
use super::server::RelayServerConfig;
use crate::files;
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

/// Reads a tokens file (a regular file of at most 1 MiB): TOML lines `device = "token"`.
pub(super) fn load_tokens(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let bytes = files::read(path)?;
    let file = path.display().to_string();
    let (tokens, loc) = deserialize::<BTreeMap<String, String>>(text(&bytes, &file)?, &file)?;
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
