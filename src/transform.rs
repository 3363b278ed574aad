//! Token-by-token subject transforms, as the reference builds them for
//! stream and service imports whose two subjects differ.
//!
//! A transform has a source pattern (`*` and a final `>` allowed) and a
//! destination whose tokens are literals, wildcard placeholders (`$N` or
//! `{{wildcard(N)}}`, the N-th `*` of the source) or a final `>` (the
//! tokens the source's `>` matched). Transforms are built and checked once
//! at config load; applying one to a subject only splits it into tokens.
//!
//! The checks and their messages follow the reference: both subjects
//! valid, no `*` left in the destination, a `>` in both or in neither,
//! placeholders within the source's wildcards, and at least as many
//! placeholders as the source has wildcards.

use std::fmt::Write;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    /// The source token at this index.
    Token(usize),
    /// The tokens from the source's `>` on.
    Rest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Tokens in the source pattern, a trailing `>` included.
    src_len: usize,
    parts: Vec<Part>,
}

/// A placeholder token: `Some(N)` for `$N` or `{{wildcard(N)}}`; `Err` for
/// a mapping function other than `wildcard` (not supported here).
fn placeholder(token: &str) -> Result<Option<i64>, String> {
    if token.len() > 1 && token.starts_with('$') {
        // `$` followed by something that is not a number is a literal.
        return Ok(token[1..].parse::<i64>().ok());
    }
    if token.len() > 4 && token.starts_with("{{") && token.ends_with("}}") {
        let inner = token[2..token.len() - 2].trim();
        let lower = inner.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("wildcard") {
            let rest = rest.trim_start();
            if let Some(args) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                if args.trim().is_empty() {
                    return Err(format!(
                        "invalid mapping destination: not enough arguments passed to the function in {token}"
                    ));
                }
                if args.contains(',') {
                    return Err(format!(
                        "invalid mapping destination: too many arguments passed to the function in {token}"
                    ));
                }
                return args.trim().parse::<i64>().map(Some).map_err(|_| {
                    format!(
                        "invalid mapping destination: function argument is invalid or in the wrong format in {token}"
                    )
                });
            }
        }
        return Err(format!(
            "mapping function {token} is not supported in imports (only $N and {{{{wildcard(N)}}}})"
        ));
    }
    Ok(None)
}

fn valid_pattern(s: &str) -> bool {
    crate::subject::valid_subscribe(s.as_bytes())
}

impl Transform {
    /// Checks and builds the transform from `src` to `dest`.
    pub fn new(src: &str, dest: &str) -> Result<Transform, String> {
        let stoks: Vec<&str> = src.split('.').collect();
        let dtoks: Vec<&str> = dest.split('.').collect();
        let src_fwc = stoks.last() == Some(&">");
        let dest_fwc = dtoks.last() == Some(&">");
        if !valid_pattern(src)
            || !valid_pattern(dest)
            || dtoks.contains(&"*")
            || src_fwc != dest_fwc
        {
            return Err("invalid subject".to_string());
        }
        // Source token index of the N-th `*` (1-based N).
        let wild: Vec<usize> = stoks
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == "*")
            .map(|(i, _)| i)
            .collect();
        let mut parts = Vec::with_capacity(dtoks.len());
        let mut nphs = 0;
        for (i, t) in dtoks.iter().enumerate() {
            if *t == ">" && i + 1 == dtoks.len() {
                parts.push(Part::Rest);
                continue;
            }
            // Placeholders only mean something when the source has wildcards.
            let ph = if wild.is_empty() && !src_fwc {
                None
            } else {
                placeholder(t)?
            };
            match ph {
                None => parts.push(Part::Literal(t.as_bytes().into())),
                Some(n) => {
                    nphs += 1;
                    if n > wild.len() as i64 {
                        return Err(format!(
                            "invalid mapping destination: wildcard index out of range in {t}: [{n}]"
                        ));
                    }
                    // The reference maps an index below 1 to the first token.
                    let idx = usize::try_from(n - 1).ok().map_or(0, |k| wild[k]);
                    parts.push(Part::Token(idx));
                }
            }
        }
        if nphs < wild.len() {
            return Err(format!(
                "invalid mapping destination: not using all of the token wildcard(s) in {dest}"
            ));
        }
        Ok(Transform {
            src_len: stoks.len(),
            parts,
        })
    }

    /// The destination subject of `subject`, a literal subject the source
    /// pattern matches.
    pub fn apply(&self, subject: &[u8]) -> Vec<u8> {
        let mut toks: smallvec_lite::Tokens = smallvec_lite::Tokens::default();
        toks.split(subject);
        let mut out = Vec::with_capacity(subject.len() + 16);
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            match p {
                Part::Literal(l) => out.extend_from_slice(l),
                Part::Token(k) => out.extend_from_slice(toks.get(subject, *k)),
                Part::Rest => {
                    let start = toks.start(self.src_len.saturating_sub(1));
                    out.extend_from_slice(&subject[start.min(subject.len())..]);
                }
            }
        }
        out
    }
}

/// Token boundaries of a subject without allocating for short subjects.
mod smallvec_lite {
    #[derive(Default)]
    pub struct Tokens {
        /// (start, end) of each token; subjects rarely have more than 16.
        inline: [(u32, u32); 16],
        len: usize,
        more: Vec<(u32, u32)>,
    }

    impl Tokens {
        pub fn split(&mut self, s: &[u8]) {
            let mut start = 0;
            for (i, &b) in s.iter().enumerate() {
                if b == b'.' {
                    self.push((start as u32, i as u32));
                    start = i + 1;
                }
            }
            self.push((start as u32, s.len() as u32));
        }

        fn push(&mut self, r: (u32, u32)) {
            if self.len < self.inline.len() {
                self.inline[self.len] = r;
            } else {
                self.more.push(r);
            }
            self.len += 1;
        }

        fn range(&self, i: usize) -> Option<(u32, u32)> {
            if i >= self.len {
                None
            } else if i < self.inline.len() {
                Some(self.inline[i])
            } else {
                self.more.get(i - self.inline.len()).copied()
            }
        }

        pub fn get<'a>(&self, s: &'a [u8], i: usize) -> &'a [u8] {
            self.range(i)
                .map_or(&[][..], |(a, b)| &s[a as usize..b as usize])
        }

        pub fn start(&self, i: usize) -> usize {
            self.range(i).map_or(usize::MAX, |(a, _)| a as usize)
        }
    }
}

/// `foo.*.*` → `foo.$1.$2`: wildcards as numbered placeholders.
pub fn tokenize(subject: &str) -> String {
    let mut n = 0;
    let mut out = String::with_capacity(subject.len() + 4);
    for (i, t) in subject.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if t == "*" {
            n += 1;
            let _ = write!(out, "${n}");
        } else {
            out.push_str(t);
        }
    }
    out
}

/// `foo.$1.$2` → `foo.*.*`, and the placeholders in order of appearance.
pub fn untokenize(subject: &str) -> (String, Vec<String>) {
    let mut phs = Vec::new();
    let toks: Vec<&str> = subject
        .split('.')
        .map(|t| {
            let b = t.as_bytes();
            if b.len() > 1 && b[0] == b'$' && (b'1'..=b'9').contains(&b[1]) {
                phs.push(t.to_string());
                "*"
            } else {
                t
            }
        })
        .collect();
    (toks.join("."), phs)
}

fn has_wildcard(s: &str) -> bool {
    s.split('.').any(|t| t == "*" || t == ">")
}

/// How a stream import renames the exporter's subjects in the importer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rename {
    /// The published subject as is.
    Same,
    /// Always this subject.
    Fixed(Box<[u8]>),
    Map(Transform),
}

impl Rename {
    pub fn apply(&self, subject: &[u8]) -> Vec<u8> {
        match self {
            Rename::Same => subject.to_vec(),
            Rename::Fixed(s) => s.to_vec(),
            Rename::Map(t) => t.apply(subject),
        }
    }
}

/// A stream import of `from` (exported) as `to` (local; a prefixed import
/// passes `prefix.from`): what messages are renamed to.
pub fn stream_rename(from: &str, to: &str) -> Result<Rename, String> {
    if !has_wildcard(from) {
        return Ok(Rename::Fixed(to.as_bytes().into()));
    }
    if to == from {
        return Ok(Rename::Same);
    }
    Transform::new(from, &tokenize(to))
        .map(Rename::Map)
        .map_err(|e| {
            format!("failed to create mapping transform for stream import subject {from:?} to {to:?}: {e}")
        })
}

/// A service import whose requests on `local` go to `exported`: the
/// subject the importer's requests are matched against, and how they are
/// renamed in the exporter.
pub fn service_rename(local: &str, exported: &str) -> Result<(String, Rename), String> {
    if !has_wildcard(exported) {
        return Ok((local.to_string(), Rename::Fixed(exported.as_bytes().into())));
    }
    if local == exported {
        return Ok((local.to_string(), Rename::Same));
    }
    // As the reference: the transform from the export to the local subject
    // is checked, then reversed.
    let (to, _) = untokenize(exported);
    let tokenized = tokenize(local);
    Transform::new(&to, &tokenized).map_err(|e| {
        format!("failed to create mapping transform for service import subject {local:?} to {to:?}: {e}")
    })?;
    let (from, phs) = untokenize(&tokenized);
    let mut phs = phs.into_iter();
    let dest: Vec<String> = to
        .split('.')
        .map(|t| {
            if t == "*" {
                phs.next().unwrap_or_else(|| "*".to_string())
            } else {
                t.to_string()
            }
        })
        .collect();
    let t = Transform::new(&from, &dest.join(".")).map_err(|e| {
        format!("failed to create mapping transform for service import subject {local:?} to {to:?}: {e}")
    })?;
    Ok((from, Rename::Map(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(r: &Rename, s: &str) -> String {
        String::from_utf8(r.apply(s.as_bytes())).unwrap()
    }

    #[test]
    fn stream_imports() {
        let r = stream_rename("ev.*.x", "got.*").unwrap();
        assert_eq!(map(&r, "ev.q.x"), "got.q");
        let r = stream_rename("ev.*.*", "got.$2.$1").unwrap();
        assert_eq!(map(&r, "ev.a.b"), "got.b.a");
        let r = stream_rename("ev.>", "got.>").unwrap();
        assert_eq!(map(&r, "ev.a.b.c"), "got.a.b.c");
        let r = stream_rename("ev.*.>", "pre.ev.*.>").unwrap();
        assert_eq!(map(&r, "ev.a.b.c"), "pre.ev.a.b.c");
        assert_eq!(stream_rename("ev.>", "ev.>").unwrap(), Rename::Same);
        assert_eq!(
            map(&stream_rename("ev.x", "got.*").unwrap(), "ev.x"),
            "got.*"
        );
        for (from, to, e) in [
            (
                "ev.*.x",
                "got",
                "not using all of the token wildcard(s) in got",
            ),
            ("ev.>", "got.*", "invalid subject"),
            (
                "ev.*.*",
                "got.*",
                "not using all of the token wildcard(s) in got.$1",
            ),
            ("ev.*", "got.*.*", "wildcard index out of range in $2: [2]"),
        ] {
            let err = stream_rename(from, to).unwrap_err();
            assert!(err.ends_with(e), "{from} {to}: {err}");
        }
    }

    #[test]
    fn service_imports() {
        let (from, r) = service_rename("local.*.ask", "svc.*.req").unwrap();
        assert_eq!(from, "local.*.ask");
        assert_eq!(map(&r, "local.x.ask"), "svc.x.req");
        let (from, r) = service_rename("local.$2.$1", "svc.*.*").unwrap();
        assert_eq!(from, "local.*.*");
        assert_eq!(map(&r, "local.a.b"), "svc.b.a");
        let (_, r) = service_rename("local.>", "svc.>").unwrap();
        assert_eq!(map(&r, "local.a.b"), "svc.a.b");
        let (_, r) = service_rename("local.*.>", "svc.*.x.>").unwrap();
        assert_eq!(map(&r, "local.a.b.c"), "svc.a.x.b.c");
        let (from, r) = service_rename("local.*", "svc.x").unwrap();
        assert_eq!(
            (from.as_str(), map(&r, "local.q")),
            ("local.*", "svc.x".into())
        );
        for (local, exp, e) in [
            (
                "local.x",
                "svc.*.req",
                "not using all of the token wildcard(s) in local.x",
            ),
            (
                "local.*.*",
                "svc.*.req",
                "wildcard index out of range in $2: [2]",
            ),
            (
                "local.*",
                "svc.*.*",
                "not using all of the token wildcard(s) in local.$1",
            ),
            ("local.*", "svc.>", "invalid subject"),
            ("local.>", "svc.*", "invalid subject"),
            (
                "local.>",
                "svc.*.>",
                "not using all of the token wildcard(s) in local.>",
            ),
        ] {
            let err = service_rename(local, exp).unwrap_err();
            assert!(err.ends_with(e), "{local} {exp}: {err}");
        }
    }
}
