//! Subject validation with the reference's rules.
//!
//! Tokens are separated by `.`. In subscriptions a token that is exactly `*`
//! matches one token and a final token that is exactly `>` matches one or
//! more; `*` or `>` inside a longer token is a literal character.

/// A subject a client may subscribe to: no empty token, `>` only last.
pub fn valid_subscribe(s: &[u8]) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut saw_fwc = false;
    for t in s.split(|&b| b == b'.') {
        if t.is_empty() || saw_fwc {
            return false;
        }
        if t == b">" {
            saw_fwc = true;
        }
    }
    true
}

/// A subject a message may be published to: valid and wildcard-free.
pub fn valid_literal(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.')
            .all(|t| !t.is_empty() && t != b"*" && t != b">")
}

/// Whether `subject` (tokens taken literally) is matched by `pattern`.
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = pattern.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(pt), Some(st)) => {
                if pt != b"*" && pt != st {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether some literal subject is matched by both `a` and `b` (the
/// reference's SubjectsCollide).
pub fn collide(a: &[u8], b: &[u8]) -> bool {
    let mut x = a.split(|&c| c == b'.');
    let mut y = b.split(|&c| c == b'.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) | (Some(_), Some(b">")) => return true,
            (Some(s), Some(t)) => {
                if s != b"*" && t != b"*" && s != t {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whether every subject `sub` (a pattern) matches is also matched by
/// `pattern` (the reference's subjectIsSubsetMatch).
pub fn subset(sub: &[u8], pattern: &[u8]) -> bool {
    let mut p = pattern.split(|&b| b == b'.');
    let mut s = sub.split(|&b| b == b'.');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(b">"), Some(_)) => return true,
            (Some(_), Some(b">")) => return false,
            (Some(b"*"), Some(_)) => {}
            (Some(pt), Some(st)) => {
                if st == b"*" || pt != st {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_rules() {
        for ok in [
            "foo", "foo.bar", "foo.*", "*", ">", "foo.>", "foo*", "foo.b>r", "*.*.>",
        ] {
            assert!(valid_subscribe(ok.as_bytes()), "{ok}");
        }
        for bad in ["", ".", "foo.", ".foo", "foo..bar", "foo.>.bar", ">.foo"] {
            assert!(!valid_subscribe(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn literal_rules() {
        assert!(valid_literal(b"foo.bar"));
        assert!(valid_literal(b"foo*"));
        assert!(!valid_literal(b"foo.*"));
        assert!(!valid_literal(b">"));
        assert!(!valid_literal(b"foo..bar"));
    }

    #[test]
    fn matching() {
        assert!(matches(b"foo.*", b"foo.bar"));
        assert!(!matches(b"foo.*", b"foo.bar.baz"));
        assert!(matches(b"foo.>", b"foo.bar.baz"));
        assert!(!matches(b"foo.>", b"foo"));
        assert!(matches(b">", b"a"));
        assert!(!matches(b"foo.bar", b"foo.*"));
        assert!(matches(b"foo.*", b"foo.*"));
    }

    #[test]
    fn collisions() {
        assert!(collide(b"a.b", b"a.*"));
        assert!(collide(b"a.>", b"*.b.c"));
        assert!(collide(b"a.*", b"*.b"));
        assert!(!collide(b"a.b", b"a.c"));
        assert!(!collide(b"a.*", b"a.b.c"));
        assert!(!collide(b"a.>", b"a"));
    }

    #[test]
    fn subsets() {
        assert!(subset(b"foo.bar", b"foo.*"));
        assert!(subset(b"foo.*", b"foo.*"));
        assert!(subset(b"foo.*", b"foo.>"));
        assert!(!subset(b"foo.>", b"foo.*"));
        assert!(!subset(b"foo.*", b"foo.bar"));
        assert!(subset(b"a.b.c", b">"));
        assert!(!subset(b"foo", b"foo.>"));
    }
}
