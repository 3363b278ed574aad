//! Builds the [`Value`] tree: grammar, includes and variables.
//!
//! Grammar (as accepted by the reference, conf/lex.go + conf/parse.go):
//! a document is a map whose entries are `key [:|=] value`, separated by
//! newlines, `,` or `;`; a stray `{`/`}` around the whole document is
//! ignored so JSON files parse. Inside `{}` the same holds; inside `[]`
//! elements are separated by `,` or newlines. A value follows its key on the
//! same line at top level when a separator is written (`port:\n4222` is an
//! error there but `port\n4222` is not), while inside a map it may be on a
//! later line. `include <file>` splices the entries of another file into
//! the current map.
//!
//! Variables: `$name` takes the value of the nearest key `name` already
//! defined in an enclosing map (arrays do not form scopes), else of the
//! environment variable `name`, whose text is parsed as a value; anything
//! else is an error. `$2a$...` is a bcrypt hash, not a variable. An included
//! file starts a fresh scope (it cannot see the includer's variables), but
//! its entries are visible to the includer after the include.
//!
//! Where the reference silently loses data (a key left without a value, an
//! unknown size suffix, integer overflow) this parser reports an error.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::{index_path, join_key};
use super::lex::{show, Scalar, Scanner};
use super::{ConfigError, MapEntry, Pos, Spanned, Value};

/// Maps and arrays nested deeper than this are refused (stack safety).
const MAX_NESTING: usize = 64;
/// Includes nested deeper than this are refused (also stops cycles that
/// canonicalization cannot see, e.g. through /proc).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Environment variables whose values reference further variables.
const MAX_ENV_DEPTH: usize = 8;

/// Parses configuration text into a tree. Errors name the file `<string>`;
/// includes are resolved relative to the current directory.
pub fn parse_value_str(text: &str) -> Result<Spanned<Value>, ConfigError> {
    let mut shared = Shared::default();
    parse_root(
        text,
        Arc::from(Path::new("<string>")),
        PathBuf::new(),
        &mut shared,
    )
}

/// Reads and parses the file at `path` into a tree.
pub fn parse_value_file(path: &Path) -> Result<Spanned<Value>, ConfigError> {
    let text = fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        key_path: String::new(),
        msg: format!("cannot read configuration file: {e}"),
    })?;
    let mut shared = Shared::default();
    shared
        .include_stack
        .push(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_root(&text, Arc::from(path), base, &mut shared)
}

fn parse_root(
    text: &str,
    file: Arc<Path>,
    base_dir: PathBuf,
    shared: &mut Shared,
) -> Result<Spanned<Value>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser::new(text, file, base_dir, shared);
    let pos = p.sc.here();
    let entries = p.parse_document()?;
    Ok(Spanned {
        pos,
        value: Value::Map(entries),
    })
}

/// State shared by a parser and the parsers it starts for includes and
/// environment variables.
#[derive(Default)]
struct Shared {
    /// Canonical paths of the files currently being parsed, outermost first.
    include_stack: Vec<PathBuf>,
    env_depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Map,
}

struct Parser<'a, 's> {
    sc: Scanner<'a>,
    base_dir: PathBuf,
    /// Maps under construction, outermost first: the variable scopes.
    scopes: Vec<Vec<MapEntry>>,
    /// Key path of the value being parsed, for error messages.
    path: String,
    depth: usize,
    shared: &'s mut Shared,
}

impl<'a, 's> Parser<'a, 's> {
    fn new(text: &'a str, file: Arc<Path>, base_dir: PathBuf, shared: &'s mut Shared) -> Self {
        Parser {
            sc: Scanner::new(text, file),
            base_dir,
            scopes: Vec::new(),
            path: String::new(),
            depth: 0,
            shared,
        }
    }

    fn err(&self, pos: &Pos, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(pos, self.path.clone(), msg)
    }

    fn err_here(&self, msg: impl Into<String>) -> ConfigError {
        self.err(&self.sc.here(), msg)
    }

    /// Attaches the current key path to a scanner error.
    fn with_path(&self, mut e: ConfigError) -> ConfigError {
        if e.key_path.is_empty() {
            e.key_path = self.path.clone();
        }
        e
    }

    fn parse_document(&mut self) -> Result<Vec<MapEntry>, ConfigError> {
        self.scopes.push(Vec::new());
        loop {
            self.skip_top_filler();
            match self.sc.peek() {
                None => break,
                Some('/') => {
                    return Err(self.err_here(
                        "unexpected '/': expected a key (comments start with '#' or '//')",
                    ))
                }
                Some(_) => {}
            }
            let key = self.parse_entry(Ctx::Top)?;
            self.end_top_value(&key)?;
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// Whitespace, comments, the optional braces around a whole document and
    /// surplus separators (the reference tolerates `;;` at the end of a file).
    fn skip_top_filler(&mut self) {
        loop {
            if self.sc.at_comment() {
                self.sc.skip_comment();
                continue;
            }
            match self.sc.peek() {
                Some(c) if c.is_whitespace() || matches!(c, '{' | '}' | ';' | ',') => {
                    self.sc.bump();
                }
                _ => return,
            }
        }
    }

    fn end_top_value(&mut self, key: &str) -> Result<(), ConfigError> {
        loop {
            self.sc.skip_blanks();
            if self.sc.at_comment() {
                self.sc.skip_comment();
                return Ok(());
            }
            match self.sc.peek() {
                None => return Ok(()),
                // The reference passes over a lone '/' here.
                Some('/') => {
                    self.sc.bump();
                }
                Some('\n' | '\r' | ';' | ',' | '}') => {
                    self.sc.bump();
                    return Ok(());
                }
                other => {
                    return Err(self.err_here(format!(
                        "expected a newline, ';', ',' or a comment after the value of {key:?}, found {}{}",
                        show(other),
                        brace_hint(key)
                    )))
                }
            }
        }
    }

    /// Parses `key [sep] value` or `include file` and stores the result in
    /// the innermost scope. Returns the key for later messages.
    fn parse_entry(&mut self, ctx: Ctx) -> Result<String, ConfigError> {
        let key_pos = self.sc.here();
        let (key, quoted) = match self.sc.peek() {
            Some(c @ (':' | '=')) => {
                return Err(self.err_here(format!("expected a key before the separator '{c}'")))
            }
            Some('"' | '\'') => (
                self.sc.scan_quoted_key().map_err(|e| self.with_path(e))?,
                true,
            ),
            _ => (self.sc.scan_bare_key(), false),
        };
        if !quoted
            && key.eq_ignore_ascii_case("include")
            && self.sc.peek().is_some_and(char::is_whitespace)
        {
            self.sc.skip_blanks();
            let pos = self.sc.here();
            let file = self.sc.scan_include_path().map_err(|e| self.with_path(e))?;
            self.include(&file, &pos)?;
            return Ok(key);
        }

        self.sc.skip_whitespace();
        if matches!(self.sc.peek(), Some(':' | '=')) {
            self.sc.bump();
        }
        let saved = self.path.len();
        self.path = join_key(&self.path, &key);
        if ctx == Ctx::Map {
            self.sc.skip_whitespace();
        }
        let value = match self.sc.peek() {
            Some(c @ (',' | ';' | '}' | ']')) => {
                Err(self.err_here(format!("expected a value for {key:?}, found '{c}'")))
            }
            None => Err(self.err_here(format!("expected a value for {key:?}, found end of file"))),
            _ => self.parse_value(),
        };
        self.path.truncate(saved);
        self.insert(MapEntry {
            key: key.clone(),
            key_pos,
            value: value?,
            used_as_variable: false,
        });
        Ok(key)
    }

    /// Last definition of a key wins, in the position of the first.
    fn insert(&mut self, entry: MapEntry) {
        if let Some(scope) = self.scopes.last_mut() {
            match scope.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => *existing = entry,
                None => scope.push(entry),
            }
        }
    }

    fn parse_value(&mut self) -> Result<Spanned<Value>, ConfigError> {
        self.sc.skip_blanks();
        let pos = self.sc.here();
        let value =
            match self.sc.peek() {
                None => return Err(self.err_here("expected a value, found end of file")),
                Some('\n' | '\r') => return Err(self.err_here(
                    "expected a value on the same line as its key and separator, found a newline",
                )),
                Some('[') => self.parse_array()?,
                Some('{') => self.parse_map()?,
                Some('(') => Value::String(self.sc.scan_block().map_err(|e| self.with_path(e))?),
                Some('.') => {
                    return Err(self
                        .err_here("expected a value, found '.' (floats must start with a digit)"))
                }
                Some(c @ (',' | ';' | '}' | ']')) => {
                    return Err(self.err_here(format!("expected a value, found '{c}'")))
                }
                Some(_) => match self.sc.scan_scalar().map_err(|e| self.with_path(e))? {
                    Scalar::Variable(name) => return self.resolve(&name, pos),
                    Scalar::String(s) | Scalar::Datetime(s) => Value::String(s),
                    Scalar::Bool(b) => Value::Bool(b),
                    Scalar::Integer(n) => Value::Integer(n),
                    Scalar::Float(f) => Value::Float(f),
                },
            };
        Ok(Spanned { pos, value })
    }

    fn enter(&mut self, pos: &Pos) -> Result<(), ConfigError> {
        if self.depth >= MAX_NESTING {
            return Err(self.err(
                pos,
                format!("maps and arrays are nested more than {MAX_NESTING} levels deep"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn parse_array(&mut self) -> Result<Value, ConfigError> {
        let open = self.sc.here();
        self.enter(&open)?;
        self.sc.bump();
        let mut items = Vec::new();
        'elements: loop {
            self.sc.skip_whitespace();
            if self.sc.at_comment() {
                self.sc.skip_comment();
                continue;
            }
            match self.sc.peek() {
                Some(']') => {
                    self.sc.bump();
                    break;
                }
                Some(c @ (',' | '/')) => {
                    return Err(self.err_here(format!(
                        "unexpected '{c}' in array: expected a value or ']'"
                    )))
                }
                None => {
                    return Err(self.err_here(format!(
                    "unexpected end of file in the array opened at {}:{}: expected a value or ']'",
                    open.line, open.col
                )))
                }
                Some(_) => {}
            }
            let saved = self.path.len();
            self.path = index_path(&self.path, items.len());
            let item = self.parse_value();
            self.path.truncate(saved);
            items.push(item?);
            loop {
                self.sc.skip_blanks();
                if self.sc.at_comment() {
                    self.sc.skip_comment();
                    continue;
                }
                match self.sc.peek() {
                    Some(',' | '\n' | '\r' | '/') => {
                        self.sc.bump();
                        continue 'elements;
                    }
                    Some(']') => {
                        self.sc.bump();
                        break 'elements;
                    }
                    other => {
                        return Err(self.err_here(format!(
                            "expected ',' or ']' after an array element, found {}",
                            show(other)
                        )))
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn parse_map(&mut self) -> Result<Value, ConfigError> {
        let open = self.sc.here();
        self.enter(&open)?;
        self.sc.bump();
        self.scopes.push(Vec::new());
        let result = self.parse_map_body(&open);
        let entries = self.scopes.pop().unwrap_or_default();
        self.depth -= 1;
        result.map(|()| Value::Map(entries))
    }

    fn parse_map_body(&mut self, open: &Pos) -> Result<(), ConfigError> {
        loop {
            self.sc.skip_whitespace();
            if self.sc.at_comment() {
                self.sc.skip_comment();
                continue;
            }
            match self.sc.peek() {
                Some('}') => {
                    self.sc.bump();
                    return Ok(());
                }
                Some(']') => {
                    return Err(self.err_here("unexpected ']' in map: expected a key or '}'"))
                }
                None => {
                    return Err(self.err_here(format!(
                        "unexpected end of file in the map opened at {}:{}: expected a key or '}}'",
                        open.line, open.col
                    )))
                }
                Some(_) => {}
            }
            let key = self.parse_entry(Ctx::Map)?;
            loop {
                self.sc.skip_blanks();
                if self.sc.at_comment() {
                    self.sc.skip_comment();
                    continue;
                }
                match self.sc.peek() {
                    Some(';' | ',' | '\n' | '\r' | '/') => {
                        self.sc.bump();
                        break;
                    }
                    Some('}') => {
                        self.sc.bump();
                        return Ok(());
                    }
                    other => {
                        return Err(self.err_here(format!(
                            "expected ',', ';', a newline or '}}' after the value of {key:?}, found {}{}",
                            show(other),
                            brace_hint(&key)
                        )))
                    }
                }
            }
        }
    }

    fn resolve(&mut self, name: &str, pos: Pos) -> Result<Spanned<Value>, ConfigError> {
        // Unquoted bcrypt hashes look like variables; the reference special
        // cases this one prefix only.
        if name.starts_with("2a$") {
            return Ok(Spanned {
                pos,
                value: Value::String(format!("${name}")),
            });
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.iter_mut().find(|e| e.key == name) {
                entry.used_as_variable = true;
                return Ok(Spanned {
                    pos,
                    value: entry.value.value.clone(),
                });
            }
        }
        let valid_env_name = !name.is_empty() && !name.contains(['=', '\0']);
        let env = if valid_env_name {
            std::env::var_os(name)
        } else {
            None
        };
        let Some(raw) = env else {
            let hint = if name.starts_with("2b$") || name.starts_with("2y$") {
                " (only $2a$ bcrypt hashes may be unquoted; put this one in quotes)"
            } else {
                ""
            };
            return Err(self.err(
                &pos,
                format!(
                    "undefined variable ${name}: expected a key defined earlier in this or an \
                     enclosing block, or an environment variable{hint}"
                ),
            ));
        };
        let Ok(text) = raw.into_string() else {
            return Err(self.err(
                &pos,
                format!("environment variable ${name} is not valid UTF-8"),
            ));
        };
        if self.shared.env_depth >= MAX_ENV_DEPTH {
            return Err(self.err(
                &pos,
                format!("environment variable ${name} expands variables more than {MAX_ENV_DEPTH} levels deep (a cycle?)"),
            ));
        }
        // The value is parsed as if written `pk=<value>`, so `4222` is an
        // integer and `[a, b]` an array, as in the reference.
        let source = format!("pk={text}");
        self.shared.env_depth += 1;
        let parsed = {
            let mut child = Parser::new(
                &source,
                Arc::from(Path::new(&format!("<environment variable ${name}>"))),
                PathBuf::new(),
                self.shared,
            );
            child.depth = self.depth;
            child.parse_document()
        };
        self.shared.env_depth -= 1;
        let entries = parsed.map_err(|e| {
            self.err(
                &pos,
                format!(
                    "cannot parse the value of environment variable ${name}: {}",
                    e.msg
                ),
            )
        })?;
        let value = entries
            .into_iter()
            .find(|e| e.key == "pk")
            .map(|e| e.value.value)
            .ok_or_else(|| {
                self.err(
                    &pos,
                    format!("environment variable ${name} does not hold a value"),
                )
            })?;
        let mut value = Spanned { pos, value };
        restamp(&mut value);
        Ok(value)
    }

    fn include(&mut self, name: &str, pos: &Pos) -> Result<(), ConfigError> {
        // Unlike the reference (which joins even absolute paths onto the
        // including directory), an absolute path is taken as is.
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            self.base_dir.join(name)
        };
        if self.shared.include_stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(self.err(
                pos,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} levels deep"),
            ));
        }
        // Only regular files: an include of a device or FIFO could block or
        // never end.
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => {
                return Err(self.err(
                    pos,
                    format!(
                        "include file {name:?} (resolved to {}) is not a regular file",
                        path.display()
                    ),
                ))
            }
            _ => {}
        }
        let text = fs::read_to_string(&path).map_err(|e| {
            self.err(
                pos,
                format!(
                    "cannot read include file {name:?} (resolved to {}): {e}",
                    path.display()
                ),
            )
        })?;
        let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.shared.include_stack.contains(&canonical) {
            return Err(self.err(
                pos,
                format!(
                    "include cycle: {} is already being included",
                    path.display()
                ),
            ));
        }
        self.shared.include_stack.push(canonical);
        let parsed = {
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let mut child = Parser::new(text, Arc::from(path.as_path()), base, self.shared);
            child.path = self.path.clone();
            child.depth = self.depth;
            child.parse_document()
        };
        self.shared.include_stack.pop();
        for entry in parsed? {
            self.insert(entry);
        }
        Ok(())
    }
}

/// Bare keys run up to whitespace or a separator, so `authorization{`
/// is a key that swallowed its brace.
fn brace_hint(key: &str) -> &'static str {
    if key.ends_with(['{', '[']) {
        " (a key ending in '{' or '[' needs a space or separator before the bracket)"
    } else {
        ""
    }
}

/// Gives every node of a value parsed from an environment variable the
/// position of the `$name` reference, the only place the user can fix it.
fn restamp(v: &mut Spanned<Value>) {
    let pos = v.pos.clone();
    fn walk(v: &mut Value, pos: &Pos) {
        match v {
            Value::Map(entries) => {
                for e in entries {
                    e.key_pos = pos.clone();
                    e.value.pos = pos.clone();
                    walk(&mut e.value.value, pos);
                }
            }
            Value::Array(items) => {
                for item in items {
                    item.pos = pos.clone();
                    walk(&mut item.value, pos);
                }
            }
            _ => {}
        }
    }
    walk(&mut v.value, &pos);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_util::TempDir;

    /// Compact rendering for whole-tree comparisons.
    fn show(v: &Value) -> String {
        match v {
            Value::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|e| format!("{}: {}", e.key, show(&e.value.value)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Value::Array(items) => {
                let inner: Vec<String> = items.iter().map(|i| show(&i.value)).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::String(s) => format!("{s:?}"),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => format!("{f}f"),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn tree(text: &str) -> String {
        match parse_value_str(text) {
            Ok(v) => show(&v.value),
            Err(e) => panic!("unexpected error for {text:?}: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse_value_str(text) {
            Ok(v) => panic!("expected an error for {text:?}, got {}", show(&v.value)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn separators_and_terminators() {
        assert_eq!(
            tree("a: 1\nb = 2\nc 3\nd:4\ne=5"),
            "{a: 1, b: 2, c: 3, d: 4, e: 5}"
        );
        assert_eq!(tree("a: 1; b: 2, c: 3"), "{a: 1, b: 2, c: 3}");
        assert_eq!(tree("a: 1;;\n"), "{a: 1}");
        assert_eq!(
            tree("a {\n  b: 1; c: 2\n  d: 3,\n}"),
            "{a: {b: 1, c: 2, d: 3}}"
        );
        assert_eq!(tree("a { b: 1 }"), "{a: {b: 1}}");
        assert_eq!(tree("a: {b: 1, c: {d: true}}"), "{a: {b: 1, c: {d: true}}}");
        assert_eq!(tree("a: [1, 2, 3]"), "{a: [1, 2, 3]}");
        assert_eq!(tree("a: [\n  1\n  2,\n  3,\n]"), "{a: [1, 2, 3]}");
        assert_eq!(tree("a: []\nb: {}"), "{a: [], b: {}}");
        assert_eq!(
            tree("a: [x, y z]".replace(" z", "").as_str()),
            "{a: [\"x\", \"y\"]}"
        );
        assert_eq!(
            tree("users = [\n  {user: a, pass: b}\n  {user: c, pass: d}\n]"),
            "{users: [{user: \"a\", pass: \"b\"}, {user: \"c\", pass: \"d\"}]}"
        );
        // A separator lets the value start on a later line inside a block,
        // and without one also at top level.
        assert_eq!(tree("a {\n b:\n  1\n}"), "{a: {b: 1}}");
        assert_eq!(tree("port\n4222"), "{port: 4222}");
    }

    #[test]
    fn json_documents() {
        assert_eq!(
            tree("{\n  \"port\": 4222,\n  \"debug\": true,\n  \"tags\": [\"a\", \"b\"]\n}\n"),
            "{port: 4222, debug: true, tags: [\"a\", \"b\"]}"
        );
    }

    #[test]
    fn comments() {
        let text = "# top\nport: 4222 # after\n// slashes\ndebug: true // after\n\
                    a {\n  # inside\n  b: 1 # after b\n  // c\n}\n\
                    l: [\n  # first\n  1, # one\n  2 // two\n]\n";
        assert_eq!(
            tree(text),
            "{port: 4222, debug: true, a: {b: 1}, l: [1, 2]}"
        );
        // '#' inside a bare value is not a comment (as in the reference).
        assert_eq!(tree("a: b#c"), "{a: \"b#c\"}");
        assert_eq!(tree("url: nats://host:4222"), "{url: \"nats://host:4222\"}");
    }

    #[test]
    fn strings_and_keys() {
        assert_eq!(tree(r#"a: "x y\tz""#), "{a: \"x y\\tz\"}");
        assert_eq!(tree(r"a: 'C:\path\n'"), "{a: \"C:\\\\path\\\\n\"}");
        assert_eq!(tree("a: \"multi\nline\""), "{a: \"multi\\nline\"}");
        assert_eq!(
            tree("\"quoted key\": 1\n'single': 2"),
            "{quoted key: 1, single: 2}"
        );
        assert_eq!(tree("a { \"x.y\": 1, 'z w' = 2 }"), "{a: {x.y: 1, z w: 2}}");
        assert_eq!(tree("a: \"true\"\nb: \"42\""), "{a: \"true\", b: \"42\"}");
        assert_eq!(
            tree("a: hello world".replace(" world", "").as_str()),
            "{a: \"hello\"}"
        );
        assert_eq!(
            tree("a: (\nline one\n  line two\n)\nb: 1"),
            "{a: \"\\nline one\\n  line two\\n\", b: 1}"
        );
    }

    #[test]
    fn bare_values_are_typed_like_the_reference() {
        assert_eq!(
            tree("a: 127.0.0.1\nb: 127.0.0.1:4222\nc: localhost:4222\nd: 0.0.0.0"),
            "{a: \"127.0.0.1\", b: \"127.0.0.1:4222\", c: \"localhost:4222\", d: \"0.0.0.0\"}"
        );
        assert_eq!(
            tree("a: 30s\nb: 500ms\nc: 1h30m\nd: \"1.5s\""),
            "{a: \"30s\", b: \"500ms\", c: \"1h30m\", d: \"1.5s\"}"
        );
        // A bare `2m` is a size: two million.
        assert_eq!(tree("a: 2m"), "{a: 2000000}");
        assert_eq!(
            tree("a: 1.5\nb: -2\nc: -0.5\nd: 0"),
            "{a: 1.5f, b: -2, c: -0.5f, d: 0}"
        );
        assert_eq!(
            tree("a: 1k\nb: 1KB\nc: 1mib\nd: 2G\ne: 1Gi\nf: 1t\ng: 1TB"),
            "{a: 1000, b: 1024, c: 1048576, d: 2000000000, e: 1073741824, f: 1000000000000, g: 1099511627776}"
        );
        assert_eq!(
            tree("a: 2020-01-02T03:04:05Z"),
            "{a: \"2020-01-02T03:04:05Z\"}"
        );
        assert_eq!(tree("a: 4222abc"), "{a: \"4222abc\"}");
    }

    #[test]
    fn booleans_any_case() {
        assert_eq!(
            tree("a: true\nb: TRUE\nc: yes\nd: Yes\ne: on\nf: ON"),
            "{a: true, b: true, c: true, d: true, e: true, f: true}"
        );
        assert_eq!(
            tree("a: false\nb: False\nc: no\nd: NO\ne: off\nf: Off"),
            "{a: false, b: false, c: false, d: false, e: false, f: false}"
        );
        assert_eq!(tree("a: \"yes\"\nb: yess"), "{a: \"yes\", b: \"yess\"}");
    }

    #[test]
    fn duplicate_keys_last_wins_in_first_position() {
        assert_eq!(tree("a: 1\nb: 2\na: 3"), "{a: 3, b: 2}");
        assert_eq!(tree("m { x: 1 }\nm { y: 2 }"), "{m: {y: 2}}");
    }

    #[test]
    fn positions() {
        let v = parse_value_str("a: 1\n  b {\n    c: \"x\"\n  }\n").unwrap();
        let Value::Map(top) = &v.value else { panic!() };
        assert_eq!((top[0].key_pos.line, top[0].key_pos.col), (1, 1));
        assert_eq!((top[0].value.pos.line, top[0].value.pos.col), (1, 4));
        assert_eq!((top[1].key_pos.line, top[1].key_pos.col), (2, 3));
        let Value::Map(inner) = &top[1].value.value else {
            panic!()
        };
        assert_eq!((inner[0].key_pos.line, inner[0].key_pos.col), (3, 5));
        assert_eq!((inner[0].value.pos.line, inner[0].value.pos.col), (3, 8));
        assert_eq!(&*top[0].key_pos.file, Path::new("<string>"));
    }

    #[test]
    fn variables() {
        assert_eq!(tree("x = 5\nport: $x"), "{x: 5, port: 5}");
        assert_eq!(tree("x = {a: 1}\ny: $x"), "{x: {a: 1}, y: {a: 1}}");
        // Inner blocks see outer variables; an inner definition shadows.
        assert_eq!(
            tree("x = 1\nb { y: $x }\nc { x = 2, y: $x }\nd: $x"),
            "{x: 1, b: {y: 1}, c: {x: 2, y: 2}, d: 1}"
        );
        // Arrays are not scopes: lookup continues in the enclosing map.
        assert_eq!(
            tree("x = 1\nl: [ $x, {x: 2, y: $x} ]"),
            "{x: 1, l: [1, {x: 2, y: 2}]}"
        );
        // Only keys defined before the reference count.
        assert!(err("a: $b\nb: 1").contains("undefined variable $b"));
        // bcrypt hashes are not variables.
        assert_eq!(
            tree("p: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"),
            "{p: \"$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG\"}"
        );
        assert_eq!(tree("p: \"$x\""), "{p: \"$x\"}");
        let v = parse_value_str("x = 5\ny = 6\nport: $x").unwrap();
        let Value::Map(e) = &v.value else { panic!() };
        assert!(e[0].used_as_variable);
        assert!(!e[1].used_as_variable);
        // The value of a reference is located at the reference.
        assert_eq!((e[2].value.pos.line, e[2].value.pos.col), (3, 7));
    }

    #[test]
    fn variables_from_the_environment() {
        std::env::set_var("NATRIX_CFG_TEST_PORT", "4333");
        std::env::set_var("NATRIX_CFG_TEST_STR", "\"hello world\"");
        std::env::set_var("NATRIX_CFG_TEST_LIST", "[a, b]");
        std::env::set_var("NATRIX_CFG_TEST_SIZE", "2MB");
        std::env::set_var("NATRIX_CFG_TEST_BAD", "[1, ");
        std::env::set_var("NATRIX_CFG_TEST_LOOP", "$NATRIX_CFG_TEST_LOOP");
        assert_eq!(tree("port: $NATRIX_CFG_TEST_PORT"), "{port: 4333}");
        assert_eq!(tree("s: $NATRIX_CFG_TEST_STR"), "{s: \"hello world\"}");
        assert_eq!(tree("l: $NATRIX_CFG_TEST_LIST"), "{l: [\"a\", \"b\"]}");
        assert_eq!(tree("n: $NATRIX_CFG_TEST_SIZE"), "{n: 2097152}");
        // A definition in the file wins over the environment.
        assert_eq!(
            tree("NATRIX_CFG_TEST_PORT = 1\nport: $NATRIX_CFG_TEST_PORT"),
            "{NATRIX_CFG_TEST_PORT: 1, port: 1}"
        );
        assert_eq!(
            err("a {\n  b: $NATRIX_CFG_TEST_BAD\n}"),
            "<string>:2:6: a.b: cannot parse the value of environment variable \
             $NATRIX_CFG_TEST_BAD: unexpected end of file in the array opened at 1:4: expected a value or ']'"
        );
        assert!(err("a: $NATRIX_CFG_TEST_LOOP").contains("more than 8 levels deep"));
    }

    #[test]
    fn undefined_variable() {
        assert_eq!(
            err("port: 4222\nauth {\n  token: $NATRIX_CFG_TEST_UNDEFINED\n}"),
            "<string>:3:10: auth.token: undefined variable $NATRIX_CFG_TEST_UNDEFINED: expected \
             a key defined earlier in this or an enclosing block, or an environment variable"
        );
        assert!(err("t: $2b$10$abc").contains("put this one in quotes"));
        assert!(err("t: $").contains("undefined variable $:"));
    }

    #[test]
    fn includes() {
        let dir = TempDir::new("include");
        dir.write(
            "sub/auth.conf",
            "user: alice\npassword: 'secret'\ninclude more.conf\n",
        );
        dir.write("sub/more.conf", "timeout: 2\n");
        dir.write("vars.conf", "shared_port = 5222\n");
        let main = dir.write(
            "main.conf",
            "include vars.conf\nport: $shared_port\nauthorization {\n  include \"sub/auth.conf\"\n  token: x\n}\ninclude 'sub/more.conf'\n",
        );
        let v = parse_value_file(&main).unwrap();
        assert_eq!(
            show(&v.value),
            "{shared_port: 5222, port: 5222, authorization: {user: \"alice\", password: \"secret\", timeout: 2, token: \"x\"}, timeout: 2}"
        );
        // Included entries point into the included file.
        let auth = v.value.get("authorization").unwrap();
        let user = auth.value.get("user").unwrap();
        assert!(user.pos.file.ends_with("sub/auth.conf"));
        assert_eq!((user.pos.line, user.pos.col), (1, 7));
        let Value::Map(top) = &v.value else { panic!() };
        assert!(top[0].used_as_variable);

        // An absolute path is used as is.
        let abs = dir.write("abs.conf", "debug: true\n");
        let other = dir.write("other/x.conf", &format!("include {}\n", abs.display()));
        assert_eq!(
            show(&parse_value_file(&other).unwrap().value),
            "{debug: true}"
        );
    }

    #[test]
    fn included_files_do_not_see_the_includers_variables() {
        let dir = TempDir::new("include-scope");
        dir.write("inc.conf", "port: $p\n");
        let main = dir.write("main.conf", "p = 1\ninclude inc.conf\n");
        let e = parse_value_file(&main).unwrap_err();
        assert!(e.file.ends_with("inc.conf"), "{e}");
        assert_eq!((e.line, e.col), (1, 7));
        assert!(e.msg.starts_with("undefined variable $p"), "{e}");
    }

    #[test]
    fn include_errors() {
        let dir = TempDir::new("include-err");
        dir.write("a.conf", "x: 1\ninclude b.conf\n");
        dir.write("b.conf", "y {\n  include a.conf\n}\n");
        let main = dir.write("main.conf", "include a.conf\n");
        let e = parse_value_file(&main).unwrap_err();
        assert!(e.file.ends_with("b.conf"), "{e}");
        assert_eq!((e.line, e.col, e.key_path.as_str()), (2, 11, "y"));
        assert!(e.msg.starts_with("include cycle:"), "{e}");

        let selfinc = dir.write("self.conf", "include self.conf\n");
        assert!(parse_value_file(&selfinc)
            .unwrap_err()
            .msg
            .starts_with("include cycle"));

        let missing = dir.write("missing.conf", "a {\n  include \"nope.conf\"\n}\n");
        let e = parse_value_file(&missing).unwrap_err();
        assert_eq!((e.line, e.col, e.key_path.as_str()), (2, 11, "a"));
        assert!(
            e.msg.starts_with("cannot read include file \"nope.conf\""),
            "{e}"
        );

        let dirinc = dir.write("dir.conf", "include sub\n");
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        assert!(parse_value_file(&dirinc)
            .unwrap_err()
            .msg
            .contains("not a regular file"));

        assert_eq!(
            err("include\n"),
            "<string>:1:8: expected a file name after include, found the end of the line"
        );
        assert_eq!(
            err("include [a]"),
            "<string>:1:9: expected a file name after include, found the start of an array"
        );
        let e = parse_value_file(Path::new("/nonexistent/natrix.conf")).unwrap_err();
        assert_eq!((e.line, e.col), (0, 0));
        assert!(e
            .to_string()
            .starts_with("/nonexistent/natrix.conf:0:0: cannot read configuration file"));
    }

    #[test]
    fn syntax_errors_name_position_and_expectation() {
        let cases: &[(&str, &str)] = &[
            ("port: 4222 4223", "<string>:1:12: expected a newline, ';', ',' or a comment after the value of \"port\", found '4'"),
            ("port:\n4222", "<string>:1:6: port: expected a value on the same line as its key and separator, found a newline"),
            ("port:", "<string>:1:6: port: expected a value for \"port\", found end of file"),
            ("debug", "<string>:1:6: debug: expected a value for \"debug\", found end of file"),
            ("a {\n  b: 1\n", "<string>:3:1: a: unexpected end of file in the map opened at 1:3: expected a key or '}'"),
            ("a {\n  b: 1 c: 2\n}", "<string>:2:8: a: expected ',', ';', a newline or '}' after the value of \"b\", found 'c'"),
            ("a { b }", "<string>:1:7: a.b: expected a value for \"b\", found '}'"),
            ("a { b: , c: 1 }", "<string>:1:8: a.b: expected a value for \"b\", found ','"),
            ("a { ] }", "<string>:1:5: a: unexpected ']' in map: expected a key or '}'"),
            ("a { : 1 }", "<string>:1:5: a: expected a key before the separator ':'"),
            (": 1", "<string>:1:1: expected a key before the separator ':'"),
            ("a: [1, 2", "<string>:1:9: a: expected ',' or ']' after an array element, found end of file"),
            ("a: [1,\n", "<string>:2:1: a: unexpected end of file in the array opened at 1:4: expected a value or ']'"),
            ("a: [1 2]", "<string>:1:7: a: expected ',' or ']' after an array element, found '2'"),
            ("a: [, 1]", "<string>:1:5: a: unexpected ',' in array: expected a value or ']'"),
            ("a: [1, {b: }]", "<string>:1:12: a[1].b: expected a value for \"b\", found '}'"),
            ("a: \"open", "<string>:1:4: a: unterminated string: expected a closing \" before the end of the file"),
            ("a: 'open", "<string>:1:4: a: unterminated string: expected a closing ' before the end of the file"),
            ("\"key: 1", "<string>:1:1: unterminated quoted key: expected a closing \" before the end of the file"),
            ("a: \"bad \\q escape\"", "<string>:1:10: a: invalid escape 'q' after '\\': expected one of \\xXX, \\t, \\n, \\r, \\\", \\\\"),
            ("a: \"\\xZZ\"", "<string>:1:6: a: expected two hexadecimal digits after \\x, found \"ZZ\""),
            ("a: .5", "<string>:1:4: a: expected a value, found '.' (floats must start with a digit)"),
            ("a: 1.", "<string>:1:6: a: expected a digit after the '.' of a number, found end of file"),
            ("a: 1.5MB", "<string>:1:7: expected a newline, ';', ',' or a comment after the value of \"a\", found 'M'"),
            ("a: -x", "<string>:1:5: a: expected a digit after '-', found 'x'"),
            ("a: 12-3", "<string>:1:4: a: a value of digits and '-' must be a full ISO 8601 datetime (YYYY-MM-DDTHH:MM:SSZ); quote it to make it a string"),
            ("a: 2020-01-02X", "<string>:1:14: a: expected 'T' in ISO 8601 datetime (YYYY-MM-DDTHH:MM:SSZ), found 'X'"),
            ("a: 1kbb", "<string>:1:4: a: unknown size suffix \"kbb\" in 1kbb: expected k, m, g, t, p, e (powers of 1000) or kb/ki/kib, mb/mi/mib, ... (powers of 1024)"),
            ("a: 10e", "<string>:1:4: a: integer 10e is out of range"),
            ("a: (\nno end", "<string>:1:4: a: unterminated block: expected a line holding only ')' before the end of the file"),
            ("/ x", "<string>:1:1: unexpected '/': expected a key (comments start with '#' or '//')"),
            ("authorization{ user: a }", "<string>:1:22: expected a newline, ';', ',' or a comment after the value of \"authorization{\", found 'a' (a key ending in '{' or '[' needs a space or separator before the bracket)"),
        ];
        for (text, want) in cases {
            assert_eq!(&err(text), want, "input: {text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(err(&deep).contains("nested more than 64 levels deep"));
        let ok = format!("a: {}{}", "[".repeat(60), "]".repeat(60));
        parse_value_str(&ok).unwrap();
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        assert_eq!(
            tree("\u{feff}port: 1\r\ndebug: true\r\n"),
            "{port: 1, debug: true}"
        );
        assert_eq!(
            tree("a {\r\n  b: 1\r\n}\r\nl: [\r\n 1\r\n]\r\n"),
            "{a: {b: 1}, l: [1]}"
        );
    }
}
