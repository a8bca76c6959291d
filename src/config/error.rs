//! Config errors that point at the file, line, column and field, e.g.
//! `/etc/sioedge/sioedge.toml:12:7: stream[1].video.fps: must be between 1 and 120 (got 0)`.
//! What they echo from the file (names, values, keys) is escaped ([`Escaped`]), so an error is
//! always one line per problem and never drives the terminal.

use crate::files::FileError;
use std::fmt::{self, Write};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Why a config file was rejected. Its `Display` is what `check-config` prints, one problem per line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all: missing, unreadable, not a regular file, too large.
    #[error("{}", Escaped(&.0.to_string()))]
    Read(#[from] FileError),
    /// The file was read but is not a valid config; every problem found is listed.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The individual problems (empty for [`ConfigError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read(_) => &[],
            ConfigError::Invalid(p) => p,
        }
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One located problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file as given on the command line (or `<embedded default>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Field path such as `stream[1].video.fps`; empty for syntax errors outside any field.
    pub field: String,
    /// What is wrong, e.g. `must be between 1 and 120 (got 0)`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", Escaped(&self.file), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", Escaped(&self.field))?;
        }
        Escaped(&self.message).fmt(f)
    }
}

/// Text from a config file or a file name, written so that it cannot break a line or reach the
/// terminal as a control sequence: every character Rust's `escape_debug` escapes is written that
/// way (`\n`, `\u{1b}`, `\u{202e}`), except quotes and backslashes, which are harmless and keep
/// quoted values readable. Values are best quoted with `{:?}`, which escapes those too.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if matches!(c, '"' | '\'' | '\\') {
                f.write_char(c)?;
            } else {
                write!(f, "{}", c.escape_debug())?;
            }
        }
        Ok(())
    }
}

/// One step of a field path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A field path, built while validating and printed as `stream[1].video.fps`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    /// This path extended by a key.
    pub(crate) fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// Reads a path as [`FieldPath`]'s `Display` writes it (`relay[0].tls.ca_file`).
    pub(crate) fn parse(text: &str) -> FieldPath {
        let mut path = FieldPath::default();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut pieces = part.split('[');
            if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
                path = path.key(key);
            }
            for index in pieces.filter_map(|i| i.strip_suffix(']')?.parse().ok()) {
                path = path.index(index);
            }
        }
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Maps between byte offsets, line:column and field paths of one parsed TOML document.
pub(crate) struct Locator<'a> {
    file: String,
    text: &'a str,
    entries: Entries,
}

impl<'a> Locator<'a> {
    /// A locator for `text`; `doc` is its span-preserving parse (None when the syntax is broken).
    pub(crate) fn new(file: String, text: &'a str, doc: Option<&Spanned<DeTable<'_>>>) -> Self {
        let mut entries = Vec::new();
        if let Some(doc) = doc {
            collect_table(doc.get_ref(), &FieldPath::default(), &mut entries);
        }
        Locator {
            file,
            text,
            entries,
        }
    }

    /// A problem at a byte span; the field is the deepest key containing the span start, else
    /// the deepest value containing it.
    pub(crate) fn at_span(&self, span: Option<Range<usize>>, message: String) -> Problem {
        self.at(span, message, false)
    }

    /// A syntax error at a byte span: named after a field only when it lies in a key or in a
    /// single value (a broken table header is no field's problem, whatever the parser recovered
    /// around it).
    pub(crate) fn at_syntax_error(&self, span: Option<Range<usize>>, message: String) -> Problem {
        self.at(span, message, true)
    }

    fn at(&self, span: Option<Range<usize>>, message: String, scalars_only: bool) -> Problem {
        let start = span.map_or(0, |s| s.start);
        let deepest = |hit: &dyn Fn(&Entry) -> bool| {
            self.entries
                .iter()
                .filter(|e| hit(e))
                .max_by_key(|e| e.path.0.len())
                .map(|e| e.path.to_string())
        };
        let field = deepest(&|e| e.key.as_ref().is_some_and(|k| k.contains(&start)))
            .or_else(|| deepest(&|e| e.value.contains(&start) && (e.scalar || !scalars_only)))
            .unwrap_or_default();
        self.problem(start, field, message)
    }

    /// A problem at a field: located at its value, or at its nearest ancestor present in the file
    /// when the field itself was left to its default.
    pub(crate) fn at_field(&self, field: &FieldPath, message: String) -> Problem {
        let mut probe = field.0.as_slice();
        let start = loop {
            if let Some(e) = self.entries.iter().find(|e| e.path.0 == probe) {
                break e.value.start;
            }
            match probe.split_last() {
                Some((_, rest)) => probe = rest,
                None => break 0,
            }
        };
        self.problem(start, field.to_string(), message)
    }

    fn problem(&self, offset: usize, field: String, message: String) -> Problem {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Problem {
            file: self.file.clone(),
            line,
            column,
            field,
            message,
        }
    }
}

/// A key or value of the document.
struct Entry {
    path: FieldPath,
    /// The key's span (none for array items).
    key: Option<Range<usize>>,
    value: Range<usize>,
    /// Neither a table nor an array.
    scalar: bool,
}
type Entries = Vec<Entry>;

fn collect_table(table: &DeTable<'_>, at: &FieldPath, out: &mut Entries) {
    for (key, value) in table.iter() {
        let path = at.key(key.get_ref());
        collect_value(value, Some(key.span()), path, out);
    }
}

fn collect_value(
    value: &Spanned<DeValue<'_>>,
    key: Option<Range<usize>>,
    path: FieldPath,
    out: &mut Entries,
) {
    out.push(Entry {
        path: path.clone(),
        key,
        value: value.span(),
        scalar: !matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_)),
    });
    match value.get_ref() {
        DeValue::Table(t) => collect_table(t, &path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_value(item, None, path.index(i), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_fields_and_spans() {
        let text = "device = \"x\"\n\n[[stream]]\nid = \"a\"\n[stream.video]\nfps = 0\n";
        let doc = DeTable::parse(text).expect("valid toml");
        let loc = Locator::new("f.toml".into(), text, Some(&doc));
        let fps = FieldPath::default()
            .key("stream")
            .index(0)
            .key("video")
            .key("fps");
        let p = loc.at_field(&fps, "bad".into());
        assert_eq!(p.to_string(), "f.toml:6:7: stream[0].video.fps: bad");
        // A defaulted field points at its table's header.
        let width = FieldPath::default()
            .key("stream")
            .index(0)
            .key("video")
            .key("width");
        assert_eq!(loc.at_field(&width, "w".into()).line, 5);
        let offset = text.find("0\n").expect("present");
        let p = loc.at_span(Some(offset..offset + 1), "m".into());
        assert_eq!(p.field, "stream[0].video.fps");
        assert_eq!(FieldPath::parse("stream[0].video.fps"), fps);
        assert_eq!(
            FieldPath::parse(&fps.to_string()).to_string(),
            fps.to_string()
        );
    }
}
