//! The JSON options of a `$SYS` monitoring request, decoded as the
//! reference's `json.Unmarshal` into its `*EventOptions` structs decodes
//! them: keys matched case-insensitively, unknown keys and `null`s
//! ignored, and the first mismatch reported with Go's error text, e.g.
//! `json: cannot unmarshal string into Go struct field
//! ConnzEventOptions.limit of type int`.

use serde_json::{Map, Value};

/// A request body's top-level object, read field by field.
pub struct Fields {
    map: Map<String, Value>,
    /// The Go struct it stands for, as error texts name it.
    go_struct: &'static str,
}

/// Parses `body` as the Go struct `go_struct` would be: a syntax error
/// or a non-object gets Go's text.
pub fn parse(body: &[u8], go_struct: &'static str) -> Result<Fields, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| syntax_error(body, &e))?;
    match v {
        Value::Object(map) => Ok(Fields { map, go_struct }),
        Value::Null => Ok(Fields {
            map: Map::new(),
            go_struct,
        }),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type server.{go_struct}",
            kind(&other)
        )),
    }
}

/// Go's name for a JSON value's kind in unmarshal errors.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `SyntaxError` text for the error serde_json found, as near as
/// the two parsers allow: the offending character and what was expected.
fn syntax_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    // serde_json's column is 1-based and points at the offending byte.
    let line_start = body
        .split(|&b| b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let at = (line_start + e.column()).saturating_sub(1);
    let c = body.get(at).copied().unwrap_or(b' ');
    let shown = if c.is_ascii_graphic() || c == b' ' || c >= 0x80 {
        format!("'{}'", c as char)
    } else {
        format!("'\\x{c:02x}'")
    };
    let msg = e.to_string();
    let what = if msg.starts_with("expected ident") {
        // Inside true, false or null: name the literal and the letter due.
        let start = body[..at]
            .iter()
            .rposition(|b| matches!(b, b't' | b'f' | b'n'))
            .unwrap_or(at);
        let lit = match body.get(start) {
            Some(b't') => "true",
            Some(b'f') => "false",
            _ => "null",
        };
        let due = lit.as_bytes().get(at - start).copied().unwrap_or(b'?') as char;
        format!("in literal {lit} (expecting '{due}')")
    } else if msg.starts_with("invalid number") {
        if at > 0 && body[at - 1] == b'.' {
            "after decimal point in numeric literal".into()
        } else {
            "in numeric literal".into()
        }
    } else if msg.starts_with("control character") {
        "in string literal".into()
    } else if msg.starts_with("trailing characters") {
        "after top-level value".into()
    } else if msg.starts_with("expected `:`") {
        "after object key".into()
    } else if msg.starts_with("key must be a string") || msg.starts_with("trailing comma") {
        "looking for beginning of object key string".into()
    } else if msg.starts_with("expected `,` or `}`") {
        "after object key:value pair".into()
    } else if msg.starts_with("expected `,` or `]`") {
        "after array element".into()
    } else {
        "looking for beginning of value".to_string()
    };
    format!("invalid character {shown} {what}")
}

impl Fields {
    /// The value of `key`: an exact match first, else Go's
    /// case-insensitive one; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&Value> {
        self.map
            .get(key)
            .or_else(|| {
                self.map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    fn mismatch(&self, key: &str, what: String, go_type: &str) -> String {
        format!(
            "json: cannot unmarshal {what} into Go struct field {}.{key} of type {go_type}",
            self.go_struct
        )
    }

    pub fn bool(&self, key: &str) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.mismatch(key, kind(v).into(), "bool")),
        }
    }

    /// A Go `int` (64 bits).
    pub fn int(&self, key: &str) -> Result<i64, String> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.mismatch(key, format!("number {n}"), "int")),
            Some(v) => Err(self.mismatch(key, kind(v).into(), "int")),
        }
    }

    /// A Go `int` of a named type (`server.ConnState`).
    pub fn int_as(&self, key: &str, go_type: &str) -> Result<i64, String> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| self.mismatch(key, format!("number {n}"), go_type)),
            Some(v) => Err(self.mismatch(key, kind(v).into(), go_type)),
        }
    }

    pub fn uint64(&self, key: &str) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| self.mismatch(key, format!("number {n}"), "uint64")),
            Some(v) => Err(self.mismatch(key, kind(v).into(), "uint64")),
        }
    }

    /// A Go `string`, or a string type named `go_type`.
    pub fn string_as(&self, key: &str, go_type: &str) -> Result<String, String> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.mismatch(key, kind(v).into(), go_type)),
        }
    }

    pub fn string(&self, key: &str) -> Result<String, String> {
        self.string_as(key, "string")
    }

    /// A Go `[]string`.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.mismatch(key, kind(v).into(), "string")),
                })
                .collect(),
            Some(v) => Err(self.mismatch(key, kind(v).into(), "[]string")),
        }
    }
}

/// The reference's `EventFilterOptions`: which servers a request is for.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub server_name: String,
    pub cluster: String,
    pub host: String,
    pub tags: Vec<String>,
    pub domain: String,
}

impl EventFilter {
    pub fn from_json(f: &Fields) -> Result<EventFilter, String> {
        Ok(EventFilter {
            server_name: f.string("server_name")?,
            cluster: f.string("cluster")?,
            host: f.string("host")?,
            tags: f.strings("tags")?,
            domain: f.string("domain")?,
        })
    }

    /// Whether a server with this name, host, cluster name, tags (lower
    /// case) and JetStream domain answers: names by substring, every tag
    /// present, the domain equal.
    pub fn matches(
        &self,
        name: &str,
        host: &str,
        cluster: &str,
        tags: &[String],
        domain: &str,
    ) -> bool {
        (self.server_name.is_empty() || name.contains(&self.server_name))
            && (self.host.is_empty() || host.contains(&self.host))
            && (self.cluster.is_empty() || cluster.contains(&self.cluster))
            && self.tags.iter().all(|t| {
                let t = t.trim().to_lowercase();
                tags.contains(&t)
            })
            && (self.domain.is_empty() || domain == self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match parse(body.as_bytes(), "ConnzEventOptions") {
            Ok(f) => f.int("limit").err().unwrap_or_default(),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_read_like_go() {
        // The texts Go 1.19's json.Unmarshal gives for these bodies.
        assert_eq!(
            err(r#"{"limit":"x"}"#),
            "json: cannot unmarshal string into Go struct field ConnzEventOptions.limit of type int"
        );
        assert_eq!(
            err(r#"{"limit":1.5}"#),
            "json: cannot unmarshal number 1.5 into Go struct field ConnzEventOptions.limit of type int"
        );
        assert_eq!(
            err(r#"{"limit":{}}"#),
            "json: cannot unmarshal object into Go struct field ConnzEventOptions.limit of type int"
        );
        assert_eq!(err("{"), "unexpected end of JSON input");
        assert_eq!(err(""), "unexpected end of JSON input");
        assert_eq!(
            err("x"),
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(err(r#"{"a" 1}"#), "invalid character '1' after object key");
        assert_eq!(
            err(r#"{"a":1}x"#),
            "invalid character 'x' after top-level value"
        );
        assert_eq!(
            err(r#"{"sort":"cid",}"#),
            "invalid character '}' looking for beginning of object key string"
        );
        // More of Go's syntax error texts.
        for (body, go) in [
            (
                "nope",
                "invalid character 'o' in literal null (expecting 'u')",
            ),
            (
                r#"{"a":tx}"#,
                "invalid character 'x' in literal true (expecting 'r')",
            ),
            (
                r#"{"a":fals}"#,
                "invalid character '}' in literal false (expecting 'e')",
            ),
            (
                r#"{"a":1,}"#,
                "invalid character '}' looking for beginning of object key string",
            ),
            (
                r#"{"a":[1,}"#,
                "invalid character '}' looking for beginning of value",
            ),
            (r#"{"a" "b"}"#, "invalid character '\"' after object key"),
            (
                r#"{"a":"b" "c":1}"#,
                "invalid character '\"' after object key:value pair",
            ),
            (r#"{"a":-}"#, "invalid character '}' in numeric literal"),
            (
                "{\"a\":\"\x01\"}",
                "invalid character '\\x01' in string literal",
            ),
            (
                r#"{"a":1.}"#,
                "invalid character '}' after decimal point in numeric literal",
            ),
            (
                "{a:1}",
                "invalid character 'a' looking for beginning of object key string",
            ),
        ] {
            assert_eq!(err(body), go, "{body}");
        }
        assert_eq!(
            err("[]"),
            "json: cannot unmarshal array into Go value of type server.ConnzEventOptions"
        );
        let f = parse(br#"{"LIMIT":5,"cid":-1,"auth":1,"tags":[1]}"#, "X").unwrap();
        assert_eq!(f.int("limit"), Ok(5));
        assert_eq!(
            f.uint64("cid").unwrap_err(),
            "json: cannot unmarshal number -1 into Go struct field X.cid of type uint64"
        );
        assert_eq!(
            f.bool("auth").unwrap_err(),
            "json: cannot unmarshal number into Go struct field X.auth of type bool"
        );
        assert_eq!(
            f.strings("tags").unwrap_err(),
            "json: cannot unmarshal number into Go struct field X.tags of type string"
        );
        let f = parse(br#"{"limit":null}"#, "X").unwrap();
        assert_eq!(f.int("limit"), Ok(0));
    }

    #[test]
    fn event_filter_matches_like_the_reference() {
        let f = |j: &str| EventFilter::from_json(&parse(j.as_bytes(), "X").unwrap()).unwrap();
        let tags = vec!["az:1".to_string(), "ssd".to_string()];
        let m = |e: &EventFilter| e.matches("srv-a", "127.0.0.1", "", &tags, "");
        assert!(m(&f("{}")));
        assert!(m(&f(r#"{"server_name":"srv"}"#)));
        assert!(!m(&f(r#"{"server_name":"other"}"#)));
        assert!(m(&f(r#"{"host":"127.0"}"#)));
        assert!(!m(&f(r#"{"cluster":"c"}"#)));
        assert!(m(&f(r#"{"tags":["SSD"," az:1"]}"#)));
        assert!(!m(&f(r#"{"tags":["ssd","gpu"]}"#)));
        assert!(!m(&f(r#"{"domain":"hub"}"#)));
    }
}
