//! Reading, parsing and validating a config file.

use super::error::{ConfigError, FieldPath, Locator, Problem};
use super::file::Config;
use super::parse::{self, deserialize};
use super::validate;
use crate::files;
use std::path::Path;
use toml::de::DeTable;

/// Where `sioedge run` looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/sioedge/sioedge.toml";

impl Config {
    /// The config `sioedge run` uses: the file at `path`, else [`DEFAULT_PATH`] if it exists, else
    /// [`Config::embedded_default`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::from_file(p),
            None if Path::new(DEFAULT_PATH).exists() => Config::from_file(Path::new(DEFAULT_PATH)),
            None => Ok(Config::embedded_default()),
        }
    }
    /// Reads (a regular file of at most 1 MiB), parses and validates one file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let bytes = files::read(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Config::parse_bytes(&bytes, &path.display().to_string(), base)?;
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }
    /// [`Config::parse`] for a file's raw bytes: text that is not UTF-8 is a problem at the line
    /// and column of its first bad byte.
    pub fn parse_bytes(bytes: &[u8], file: &str, base: &Path) -> Result<Config, ConfigError> {
        Config::parse(parse::text(bytes, file)?, file, base)
    }
    /// Parses and validates config text; `file` names it in errors and relative paths are
    /// resolved against `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let (mut cfg, loc) = deserialize::<Config>(text, file)?;
        cfg.rebase_paths(base);
        let mut checker = validate::Checker::new(&loc);
        validate::config(&mut checker, &cfg);
        let mut problems = checker.problems;
        if problems.is_empty() {
            return Ok(cfg);
        }
        // In file order; problems inside a referenced file (tokens) come last.
        problems.sort_by_key(|p| (p.file != file, p.line, p.column));
        Err(ConfigError::Invalid(problems))
    }
    /// A problem found after loading (e.g. a TLS file checked at startup) at `field`, written as
    /// errors print it (`server.tls.cert`), located in this config's file like validation's own
    /// problems. The file is read again for that; at 1:1 when it cannot be.
    pub fn problem_at(&self, field: &str, message: String) -> Problem {
        let bytes = self
            .source
            .as_ref()
            .and_then(|p| files::read(p).ok())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let (doc, _) = DeTable::parse_recoverable(&text);
        let loc = Locator::new(self.file_label(), &text, Some(&doc));
        loc.at_field(&FieldPath::parse(field), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn embedded_default_is_valid_and_matches_an_empty_stream_file() {
        let d = Config::embedded_default();
        assert_eq!(d.streams.len(), 1);
        assert_eq!(d.server.listen.to_string(), "127.0.0.1:8080");
        assert!(d.relays.is_empty());
        let text = "[[stream]]\nid = \"cam0\"\n[stream.video]\n[stream.audio]\n";
        let parsed = Config::parse(text, "t.toml", Path::new("/")).expect("valid");
        assert_eq!(parsed, d);
    }

    #[test]
    fn problems_found_later_are_located_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        let text = "[server]\nlisten = \"127.0.0.1:0\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n[[stream]]\nid = \"a\"\n[stream.audio]\n";
        std::fs::write(&file, text).expect("write");
        std::fs::write(dir.path().join("c.pem"), "x").expect("write");
        std::fs::write(dir.path().join("k.pem"), "x").expect("write");
        let cfg = Config::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let p = cfg.problem_at("server.tls.cert", "bad".into());
        assert_eq!(
            p.to_string(),
            format!("{}:3:16: server.tls.cert: bad", file.display())
        );
        let p = Config::embedded_default().problem_at("server.tls", "m".into());
        assert_eq!(p.to_string(), "<embedded default>:1:1: server.tls: m");
    }
}
