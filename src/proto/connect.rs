//! CONNECT's JSON, read as the reference reads it: Go's decoder fills the
//! options a client already has, so a second CONNECT changes only the
//! fields it names.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// CONNECT options; absent fields keep the reference's defaults
/// (verbose, pedantic and echo on).
#[derive(Deserialize, Debug)]
#[serde(default)]
pub struct ConnectOpts {
    pub verbose: bool,
    pub pedantic: bool,
    pub tls_required: bool,
    pub auth_token: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub protocol: i64,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub sig: Option<String>,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            sig: None,
            jwt: None,
            nkey: None,
        }
    }
}

/// CONNECT's fields, as the reference names them.
const FIELDS: &[&str] = &[
    "verbose",
    "pedantic",
    "tls_required",
    "auth_token",
    "user",
    "pass",
    "name",
    "lang",
    "version",
    "protocol",
    "echo",
    "headers",
    "no_responders",
    "sig",
    "jwt",
    "nkey",
];

/// A JSON object's fields in the order they were written (serde_json's
/// map sorts them, and with Go's decoder the last of two names differing
/// only in case wins), or `None` for `null`.
struct Written(Option<Vec<(String, Value)>>);

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Written;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_unit<E>(self) -> Result<Written, E> {
                Ok(Written(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Written, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    v.push(kv);
                }
                Ok(Written(Some(v)))
            }
        }
        d.deserialize_any(Fields)
    }
}

/// Lays a CONNECT's JSON over `so_far` (the fields earlier CONNECTs set;
/// empty for the first): fields it names replace theirs, names matched
/// regardless of case, in the order written; a `null` or an unknown field
/// changes nothing, and `null` for the whole object changes nothing at all.
pub fn merge(
    mut so_far: Map<String, Value>,
    json: &[u8],
) -> Result<ConnectOpts, serde_json::Error> {
    if let Written(Some(fields)) = serde_json::from_slice(json)? {
        for (k, v) in fields {
            if v.is_null() {
                continue;
            }
            if let Some(name) = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(&k)) {
                so_far.insert(name.to_string(), v);
            }
        }
    }
    serde_json::from_value(Value::Object(so_far))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(json: &str) -> ConnectOpts {
        merge(Map::new(), json.as_bytes()).unwrap()
    }

    #[test]
    fn absent_fields_keep_the_defaults_or_what_came_before() {
        let c = first(r#"{"verbose":false,"name":"a"}"#);
        assert!(!c.verbose && c.pedantic && c.echo);
        let mut so_far = Map::new();
        so_far.insert("verbose".into(), false.into());
        so_far.insert("name".into(), "a".into());
        let c = merge(so_far.clone(), br#"{"pedantic":false,"name":null}"#).unwrap();
        assert!(!c.verbose && !c.pedantic);
        assert_eq!(c.name.as_deref(), Some("a"));
        let c = merge(so_far, b"null").unwrap();
        assert!(!c.verbose);
    }

    #[test]
    fn names_match_regardless_of_case_and_the_last_wins() {
        assert!(!first(r#"{"verbose":true,"Verbose":false}"#).verbose);
        assert!(first(r#"{"VERBOSE":false,"verbose":true}"#).verbose);
        assert_eq!(first(r#"{"User":"u"}"#).user.as_deref(), Some("u"));
        assert!(first(r#"{"unknown":1}"#).verbose);
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(merge(Map::new(), br#"{"verbose":"yes"}"#).is_err());
        assert!(merge(Map::new(), b"[]").is_err());
        assert!(merge(Map::new(), b"not json").is_err());
    }
}
