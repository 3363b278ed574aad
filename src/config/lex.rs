//! Character-level scanning for the configuration language.
//!
//! The language has no context-free token stream: whether `]` ends a bare
//! word, whether a newline may precede a value and whether `include` is a
//! keyword all depend on where the parser is. The scanner therefore exposes
//! one routine per lexeme and leaves the choice to the parser; each routine
//! reproduces what the reference lexer (conf/lex.go) accepts in that spot.

use std::path::Path;
use std::sync::Arc;

use super::{ConfigError, Pos};

/// A scalar lexeme, already converted.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    String(String),
    Bool(bool),
    Integer(i64),
    Float(f64),
    /// `YYYY-MM-DDTHH:MM:SSZ`, kept as written.
    Datetime(String),
    /// `$name` (name without the `$`), still to be resolved.
    Variable(String),
}

/// A cursor over the source text that tracks line and column.
pub struct Scanner<'a> {
    src: &'a str,
    /// Byte offset of the next character; always on a char boundary.
    offset: usize,
    line: u32,
    col: u32,
    file: Arc<Path>,
}

/// Characters that end a bare (unquoted) string.
fn ends_bare(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t')
    )
}

/// Characters that may follow a number. The reference omits `]` here, which
/// makes `[1, 2]` an error there ("2]" becomes a string that swallows the
/// bracket); accepting it as a terminator only turns that error into the
/// obvious meaning.
fn ends_number(c: Option<char>) -> bool {
    matches!(
        c,
        None | Some('\n' | '\r' | '}' | ';' | ',' | ' ' | '\t' | ']')
    )
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// Renders a character for an error message.
pub(crate) fn show(c: Option<char>) -> String {
    match c {
        None => "end of file".to_string(),
        Some('\n') => "a newline".to_string(),
        Some('\r') => "a carriage return".to_string(),
        Some('\t') => "a tab".to_string(),
        Some(c) if c.is_control() => format!("'{}'", c.escape_default()),
        Some(c) => format!("'{c}'"),
    }
}

impl<'a> Scanner<'a> {
    pub fn new(src: &'a str, file: Arc<Path>) -> Self {
        Scanner {
            src,
            offset: 0,
            line: 1,
            col: 1,
            file,
        }
    }

    pub fn peek(&self) -> Option<char> {
        self.src[self.offset..].chars().next()
    }

    pub fn peek_second(&self) -> Option<char> {
        let mut it = self.src[self.offset..].chars();
        it.next();
        it.next()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    /// Position of the next character.
    pub fn here(&self) -> Pos {
        Pos {
            file: Arc::clone(&self.file),
            line: self.line,
            col: self.col,
        }
    }

    pub fn error_here(&self, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.here(), "", msg)
    }

    fn error_at(&self, pos: &Pos, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(pos, "", msg)
    }

    /// Skips spaces and tabs (not newlines).
    pub fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// Skips all Unicode whitespace, newlines included.
    pub fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// True at `#` or `//`.
    pub fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_second() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to, not including, the end of its line.
    pub fn skip_comment(&mut self) {
        while !matches!(self.peek(), None | Some('\n' | '\r')) {
            self.bump();
        }
    }

    /// A key between quotes (no escapes), positioned at the opening quote.
    pub fn scan_quoted_key(&mut self) -> Result<String, ConfigError> {
        let start = self.here();
        let Some(quote) = self.bump() else {
            return Err(self.error_here("expected a key"));
        };
        self.scan_to_quote(quote, &start, || {
            format!(
                "unterminated quoted key: expected a closing {quote} before the end of the file"
            )
        })
    }

    /// The text up to the closing `quote` (no escapes), positioned after the
    /// opening one; consumes the closing quote. `unterminated` words the
    /// error, located at `start`, when the input ends first.
    fn scan_to_quote(
        &mut self,
        quote: char,
        start: &Pos,
        unterminated: impl FnOnce() -> String,
    ) -> Result<String, ConfigError> {
        let from = self.offset;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, unterminated())),
                Some(c) if c == quote => {
                    let text = self.src[from..self.offset].to_string();
                    self.bump();
                    return Ok(text);
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// An unquoted key: everything up to whitespace, `:`, `=` or the end.
    /// Brackets and braces are key characters, as in the reference, so
    /// `authorization{` is a key named `authorization{`.
    pub fn scan_bare_key(&mut self) -> String {
        let from = self.offset;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ':' || c == '=' {
                break;
            }
            self.bump();
        }
        self.src[from..self.offset].to_string()
    }

    /// The operand of `include`, positioned after the blanks that follow the
    /// keyword: a single- or double-quoted path (no escapes) or a bare word.
    pub fn scan_include_path(&mut self) -> Result<String, ConfigError> {
        let what = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let start = self.here();
                self.bump();
                return self.scan_to_quote(q, &start, || {
                    format!("unterminated include path: expected a closing {q}")
                });
            }
            Some('[') => "the start of an array",
            Some('{') => "the start of a map",
            Some('(') => "the start of a block",
            Some('-') => "the start of a number",
            Some(c) if c.is_ascii_digit() => "the start of a number",
            Some('\\') => "an escape sequence",
            Some('\n' | '\r') | None => "the end of the line",
            Some(_) => {
                let from = self.offset;
                loop {
                    match self.peek() {
                        None | Some('\n' | '\r' | ';' | '}' | ' ' | '\t') => {
                            return Ok(self.src[from..self.offset].to_string())
                        }
                        Some('\'') => {
                            let path = self.src[from..self.offset].to_string();
                            self.bump();
                            return Ok(path);
                        }
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
            }
        };
        Err(self.error_here(format!("expected a file name after include, found {what}")))
    }

    /// A `( ... )` block: raw text up to a line holding only `)`.
    /// Positioned at the `(`; the text starts right after it and keeps the
    /// newline before the closing line.
    pub fn scan_block(&mut self) -> Result<String, ConfigError> {
        let start = self.here();
        self.bump();
        let from = self.offset;
        let mut prev = '(';
        while let Some(c) = self.peek() {
            if c == ')' && prev == '\n' && matches!(self.peek_second(), None | Some('\n')) {
                let text = self.src[from..self.offset].to_string();
                self.bump();
                return Ok(text);
            }
            prev = c;
            self.bump();
        }
        Err(self.error_at(
            &start,
            "unterminated block: expected a line holding only ')' before the end of the file",
        ))
    }

    /// A scalar value, positioned at its first character (which must not be
    /// whitespace, a bracket, a brace or `(`).
    pub fn scan_scalar(&mut self) -> Result<Scalar, ConfigError> {
        match self.peek() {
            Some('\'') => self.scan_raw_string(),
            Some('"') => self.scan_quoted_string(),
            Some('-') => self.scan_negative_number(),
            Some(c) if c.is_ascii_digit() => self.scan_number_like(),
            _ => self.scan_bare_from(self.offset, self.here()),
        }
    }

    fn scan_raw_string(&mut self) -> Result<Scalar, ConfigError> {
        let start = self.here();
        self.bump();
        let from = self.offset;
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        &start,
                        "unterminated string: expected a closing ' before the end of the file",
                    ))
                }
                Some('\'') => {
                    let s = self.src[from..self.offset].to_string();
                    self.bump();
                    return Ok(Scalar::String(s));
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    fn scan_quoted_string(&mut self) -> Result<Scalar, ConfigError> {
        let start = self.here();
        self.bump();
        let mut buf = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        &start,
                        "unterminated string: expected a closing \" before the end of the file",
                    ))
                }
                Some('"') => {
                    self.bump();
                    return self.finish_string(buf, &start).map(Scalar::String);
                }
                Some('\\') => {
                    self.bump();
                    self.scan_escape(&mut buf)?;
                }
                Some(c) => {
                    self.bump();
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
    }

    /// `\x` escapes produce raw bytes, so a string is assembled as bytes and
    /// must form UTF-8 once complete (`"\xc3\xa9"` is `é`).
    fn finish_string(&self, buf: Vec<u8>, start: &Pos) -> Result<String, ConfigError> {
        String::from_utf8(buf).map_err(|_| {
            self.error_at(
                start,
                "string is not valid UTF-8 after applying its \\x escapes",
            )
        })
    }

    /// Handles the character(s) after a backslash.
    fn scan_escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfigError> {
        let pos = self.here();
        let c = self.bump();
        let byte = match c {
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('"') => b'"',
            Some('\\') => b'\\',
            Some('x') => {
                let hi = self.bump();
                let lo = self.bump();
                match (hi.and_then(|h| h.to_digit(16)), lo.and_then(|l| l.to_digit(16))) {
                    (Some(h), Some(l)) => (h * 16 + l) as u8,
                    _ => {
                        let got: String = [hi, lo].iter().flatten().collect();
                        return Err(self.error_at(
                            &pos,
                            format!("expected two hexadecimal digits after \\x, found {got:?}"),
                        ));
                    }
                }
            }
            other => {
                return Err(self.error_at(
                    &pos,
                    format!(
                        "invalid escape {} after '\\': expected one of \\xXX, \\t, \\n, \\r, \\\", \\\\",
                        show(other)
                    ),
                ))
            }
        };
        buf.push(byte);
        Ok(())
    }

    /// Continues a bare string whose first bytes (from `from`) were already
    /// consumed, e.g. by the number scanner that found `4222abc` is no number.
    fn scan_bare_from(&mut self, from: usize, start: Pos) -> Result<Scalar, ConfigError> {
        let mut buf = self.src.as_bytes()[from..self.offset].to_vec();
        let mut escaped = false;
        loop {
            let c = self.peek();
            if ends_bare(c) {
                break;
            }
            match c {
                Some('\\') => {
                    self.bump();
                    self.scan_escape(&mut buf)?;
                    escaped = true;
                }
                Some('\'') => {
                    // The reference ends a bare word at a quote and drops it.
                    self.bump();
                    break;
                }
                Some(c) => {
                    self.bump();
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                None => break,
            }
        }
        let text = self.finish_string(buf, &start)?;
        if !escaped {
            match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => return Ok(Scalar::Bool(true)),
                "false" | "no" | "off" => return Ok(Scalar::Bool(false)),
                _ => {}
            }
            if let Some(name) = text.strip_prefix('$') {
                return Ok(Scalar::Variable(name.to_string()));
            }
        }
        Ok(Scalar::String(text))
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    /// Something starting with a digit: integer (maybe with a size suffix),
    /// float, datetime, IP address / `host:port`, or a bare string such as
    /// `30s` or `4222abc`.
    fn scan_number_like(&mut self) -> Result<Scalar, ConfigError> {
        let start = self.here();
        let from = self.offset;
        self.skip_digits();
        match self.peek() {
            Some('-') => {
                self.bump();
                if self.offset - from != 5 {
                    return Err(self.error_at(
                        &start,
                        "a value of digits and '-' must be a full ISO 8601 datetime \
                         (YYYY-MM-DDTHH:MM:SSZ); quote it to make it a string",
                    ));
                }
                self.scan_datetime_rest(from)
            }
            Some('.') => {
                self.bump();
                self.scan_fraction(from, &start)
            }
            Some(c) if is_size_suffix(c) => self.scan_size_suffix(from, &start),
            c if ends_number(c) => self.integer(from, &start),
            _ => self.scan_bare_from(from, start),
        }
    }

    fn scan_negative_number(&mut self) -> Result<Scalar, ConfigError> {
        let start = self.here();
        let from = self.offset;
        self.bump();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {}
            Some('.') => {
                return Err(self.error_here("floats must start with a digit, not '.'"));
            }
            other => {
                return Err(
                    self.error_here(format!("expected a digit after '-', found {}", show(other)))
                )
            }
        }
        self.skip_digits();
        match self.peek() {
            Some('.') => {
                self.bump();
                self.scan_fraction(from, &start)
            }
            Some(c) if is_size_suffix(c) => self.scan_size_suffix(from, &start),
            _ => self.integer(from, &start),
        }
    }

    /// After `digits.`: a float, or with a second dot an IP address
    /// (`127.0.0.1:4222` stays a string).
    fn scan_fraction(&mut self, from: usize, start: &Pos) -> Result<Scalar, ConfigError> {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {}
            other => {
                return Err(self.error_here(format!(
                    "expected a digit after the '.' of a number, found {}",
                    show(other)
                )))
            }
        }
        self.skip_digits();
        if self.peek() == Some('.') {
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
            {
                self.bump();
            }
            return Ok(Scalar::String(self.src[from..self.offset].to_string()));
        }
        let text = &self.src[from..self.offset];
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Scalar::Float(f)),
            _ => Err(self.error_at(start, format!("float {text} is out of range"))),
        }
    }

    /// After digits and a size letter: `b`/`i` letters may follow; anything
    /// else that is not a terminator makes the whole word a bare string
    /// (`500ms`, `10min`).
    fn scan_size_suffix(&mut self, from: usize, start: &Pos) -> Result<Scalar, ConfigError> {
        self.bump();
        while matches!(self.peek(), Some('b' | 'B' | 'i' | 'I')) {
            self.bump();
        }
        let next = self.peek();
        if ends_number(next) || next.is_some_and(|c| c.is_ascii_digit()) {
            self.integer(from, start)
        } else {
            self.scan_bare_from(from, start.clone())
        }
    }

    /// Converts `src[from..offset]` (digits, optional leading `-`, optional
    /// size suffix) to an integer.
    fn integer(&self, from: usize, start: &Pos) -> Result<Scalar, ConfigError> {
        let text = &self.src[from..self.offset];
        let split = text
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(text.len(), |(i, _)| i);
        let (digits, suffix) = text.split_at(split);
        let out_of_range = || self.error_at(start, format!("integer {text} is out of range"));
        let n: i64 = digits.parse().map_err(|_| out_of_range())?;
        let mult: i64 = match suffix.to_ascii_lowercase().as_str() {
            "" => 1,
            "k" => 1_000,
            "kb" | "ki" | "kib" => 1 << 10,
            "m" => 1_000_000,
            "mb" | "mi" | "mib" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" | "gi" | "gib" => 1 << 30,
            "t" => 1_000_000_000_000,
            "tb" | "ti" | "tib" => 1 << 40,
            "p" => 1_000_000_000_000_000,
            "pb" | "pi" | "pib" => 1 << 50,
            "e" => 1_000_000_000_000_000_000,
            "eb" | "ei" | "eib" => 1 << 60,
            _ => {
                return Err(self.error_at(
                    start,
                    format!(
                        "unknown size suffix {suffix:?} in {text}: expected k, m, g, t, p, e \
                         (powers of 1000) or kb/ki/kib, mb/mi/mib, ... (powers of 1024)"
                    ),
                ))
            }
        };
        n.checked_mul(mult)
            .map(Scalar::Integer)
            .ok_or_else(out_of_range)
    }

    /// After `YYYY-`: the rest of `MM-DDTHH:MM:SSZ`, exactly.
    fn scan_datetime_rest(&mut self, from: usize) -> Result<Scalar, ConfigError> {
        const SHAPE: &str = "00-00T00:00:00Z";
        for want in SHAPE.chars() {
            let pos = self.here();
            let got = self.bump();
            let ok = match (want, got) {
                ('0', Some(c)) => c.is_ascii_digit(),
                (w, Some(c)) => w == c,
                (_, None) => false,
            };
            if !ok {
                let expected = if want == '0' {
                    "a digit".to_string()
                } else {
                    format!("'{want}'")
                };
                return Err(self.error_at(
                    &pos,
                    format!(
                        "expected {expected} in ISO 8601 datetime (YYYY-MM-DDTHH:MM:SSZ), found {}",
                        show(got)
                    ),
                ));
            }
        }
        Ok(Scalar::Datetime(self.src[from..self.offset].to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Result<Scalar, ConfigError> {
        let mut sc = Scanner::new(s, Arc::from(Path::new("<t>")));
        sc.scan_scalar()
    }

    fn int(s: &str) -> i64 {
        match scan(s) {
            Ok(Scalar::Integer(n)) => n,
            other => panic!("{s}: expected integer, got {other:?}"),
        }
    }

    fn string(s: &str) -> String {
        match scan(s) {
            Ok(Scalar::String(v)) => v,
            other => panic!("{s}: expected string, got {other:?}"),
        }
    }

    #[test]
    fn size_suffixes() {
        assert_eq!(int("1k"), 1000);
        assert_eq!(int("1K"), 1000);
        assert_eq!(int("1kb"), 1024);
        assert_eq!(int("1Ki"), 1024);
        assert_eq!(int("1KiB"), 1024);
        assert_eq!(int("2m"), 2_000_000);
        assert_eq!(int("1MB"), 1_048_576);
        assert_eq!(int("1mib"), 1_048_576);
        assert_eq!(int("3g"), 3_000_000_000);
        assert_eq!(int("1GB"), 1 << 30);
        assert_eq!(int("1t"), 1_000_000_000_000);
        assert_eq!(int("1TiB"), 1 << 40);
        assert_eq!(int("1p"), 1_000_000_000_000_000);
        assert_eq!(int("1pb"), 1 << 50);
        assert_eq!(int("9e"), 9_000_000_000_000_000_000);
        assert_eq!(int("1EB"), 1 << 60);
        assert_eq!(int("-2k"), -2000);
        assert_eq!(int("42"), 42);
        assert_eq!(int("-42"), -42);
    }

    #[test]
    fn size_errors() {
        let e = scan("10e").unwrap_err();
        assert!(e.msg.contains("out of range"), "{e}");
        let e = scan("1kbb").unwrap_err();
        assert!(e.msg.contains("unknown size suffix"), "{e}");
        let e = scan("99999999999999999999").unwrap_err();
        assert!(e.msg.contains("out of range"), "{e}");
    }

    #[test]
    fn words_that_start_with_digits() {
        assert_eq!(string("127.0.0.1"), "127.0.0.1");
        assert_eq!(string("127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(string("30s"), "30s");
        assert_eq!(string("500ms"), "500ms");
        assert_eq!(string("1h30m"), "1h30m");
        assert_eq!(string("4222abc"), "4222abc");
        assert_eq!(string("localhost:4222"), "localhost:4222");
        assert_eq!(scan("1.5"), Ok(Scalar::Float(1.5)));
        assert_eq!(scan("-0.25"), Ok(Scalar::Float(-0.25)));
        assert_eq!(
            scan("2020-01-02T03:04:05Z"),
            Ok(Scalar::Datetime("2020-01-02T03:04:05Z".into()))
        );
        assert!(scan("20-01").is_err());
        assert!(scan("2020-01-02").is_err());
    }

    #[test]
    fn bools_and_variables() {
        for t in ["true", "TRUE", "yes", "On"] {
            assert_eq!(scan(t), Ok(Scalar::Bool(true)), "{t}");
        }
        for f in ["false", "No", "OFF"] {
            assert_eq!(scan(f), Ok(Scalar::Bool(false)), "{f}");
        }
        assert_eq!(scan("$foo"), Ok(Scalar::Variable("foo".into())));
        assert_eq!(scan("\"true\""), Ok(Scalar::String("true".into())));
        assert_eq!(scan("tru\\x65"), Ok(Scalar::String("true".into())));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(string(r#""a\tb\n\"c\"\\""#), "a\tb\n\"c\"\\");
        assert_eq!(string(r#""\xc3\xa9""#), "é");
        assert_eq!(string(r"'raw\n'"), "raw\\n");
        assert_eq!(string("bare;rest"), "bare");
        assert_eq!(string("nats://host:4222"), "nats://host:4222");
        assert!(scan(r#""\q""#).is_err());
        assert!(scan(r#""\xZZ""#).is_err());
        assert!(scan(r#""\xff""#).is_err());
        assert!(scan("\"open").is_err());
        assert!(scan("'open").is_err());
    }
}
