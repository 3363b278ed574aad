//! The subject index: a token tree with a per-subject result cache.
//!
//! Each shard owns two of these (its local subscriptions, and the interest
//! its peers announced), so nothing here is shared or locked. A match walks
//! the tree once per distinct published subject; afterwards the result is
//! served from the cache until an insert or removal that could change it.
//! Invalidation is selective: only cached subjects the changed pattern
//! matches are dropped, so a busy subject stays cached while unrelated
//! subscriptions come and go.
//!
//! Queue subscriptions are grouped by queue name in results, merged across
//! every pattern that matched, as the reference does: one member of each
//! group receives a message whichever of the group's patterns matched it.

use std::collections::HashMap;
use std::rc::Rc;

use crate::fxhash::FxHashMap;
use crate::subject;

/// The subscriptions that match one subject.
#[derive(Debug)]
pub struct MatchResult<T> {
    pub plain: Vec<T>,
    pub queues: Vec<(Rc<[u8]>, Vec<T>)>,
}

impl<T> MatchResult<T> {
    fn new() -> Self {
        MatchResult {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

struct Node<T> {
    next: Option<Box<Level<T>>>,
    plain: Vec<T>,
    queues: Vec<(Rc<[u8]>, Vec<T>)>,
}

impl<T> Node<T> {
    fn new() -> Self {
        Node {
            next: None,
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.plain.is_empty()
            && self.queues.is_empty()
            && self.next.as_ref().is_none_or(|l| l.is_empty())
    }
}

struct Level<T> {
    literal: HashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
}

impl<T> Level<T> {
    fn new() -> Self {
        Level {
            literal: HashMap::new(),
            pwc: None,
            fwc: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }
}

/// Bound on cached subjects; past it the cache is emptied, which is cheap
/// and keeps a flood of distinct subjects from growing memory.
const CACHE_MAX: usize = 4096;

pub struct SubList<T> {
    root: Level<T>,
    cache: FxHashMap<Box<[u8]>, Rc<MatchResult<T>>>,
    /// The last subject matched and its result, checked before the cache:
    /// a publisher usually sends runs of one subject. Cleared with any
    /// change to the index.
    last: Option<(Vec<u8>, Rc<MatchResult<T>>)>,
    count: usize,
    /// Counters for monitoring (`/subsz`), as the reference keeps them.
    pub stats: SubListCounters,
}

/// Operation counts of one index.
#[derive(Default, Clone, Copy, Debug)]
pub struct SubListCounters {
    pub inserts: u64,
    pub removes: u64,
    pub matches: u64,
    pub cache_hits: u64,
}

/// The result cache as monitoring reports it: cached subjects, and the
/// largest and summed fan-out (plain subscribers plus queue groups) of
/// the cached results.
#[derive(Default, Clone, Copy, Debug)]
pub struct CacheStats {
    pub entries: usize,
    pub max_fanout: usize,
    pub total_fanout: usize,
}

impl<T: Clone + PartialEq> Default for SubList<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq> SubList<T> {
    pub fn new() -> Self {
        SubList {
            root: Level::new(),
            cache: FxHashMap::default(),
            last: None,
            count: 0,
            stats: SubListCounters::default(),
        }
    }

    /// The result cache's size and fan-out.
    pub fn cache_stats(&self) -> CacheStats {
        let mut c = CacheStats {
            entries: self.cache.len(),
            ..CacheStats::default()
        };
        for r in self.cache.values() {
            let f = r.plain.len() + r.queues.len();
            c.max_fanout = c.max_fanout.max(f);
            c.total_fanout += f;
        }
        c
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Inserts `item` under `pattern` (validated by the caller).
    pub fn insert(&mut self, pattern: &[u8], queue: Option<&[u8]>, item: T) {
        let mut level = &mut self.root;
        let mut tokens = pattern.split(|&b| b == b'.').peekable();
        let node = loop {
            let t = tokens.next().expect("split yields at least one token");
            let node: &mut Node<T> = match t {
                b"*" => level.pwc.get_or_insert_with(|| Box::new(Node::new())),
                b">" => level.fwc.get_or_insert_with(|| Box::new(Node::new())),
                _ => level.literal.entry(t.into()).or_insert_with(Node::new),
            };
            if tokens.peek().is_none() {
                break node;
            }
            level = node.next.get_or_insert_with(|| Box::new(Level::new()));
        };
        match queue {
            None => node.plain.push(item),
            Some(q) => match node.queues.iter_mut().find(|(n, _)| &n[..] == q) {
                Some((_, members)) => members.push(item),
                None => node.queues.push((q.into(), vec![item])),
            },
        }
        self.count += 1;
        self.stats.inserts += 1;
        self.invalidate(pattern);
    }

    /// Removes one entry equal to `item`; returns whether it was found.
    pub fn remove(&mut self, pattern: &[u8], queue: Option<&[u8]>, item: &T) -> bool {
        let tokens: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
        let found = Self::remove_at(&mut self.root, &tokens, queue, item);
        if found {
            self.count -= 1;
            self.stats.removes += 1;
            self.invalidate(pattern);
        }
        found
    }

    fn remove_at(level: &mut Level<T>, tokens: &[&[u8]], queue: Option<&[u8]>, item: &T) -> bool {
        let (t, rest) = match tokens.split_first() {
            Some(x) => x,
            None => return false,
        };
        let (found, empty) = {
            let node: &mut Node<T> = match *t {
                b"*" => match level.pwc.as_deref_mut() {
                    Some(n) => n,
                    None => return false,
                },
                b">" => match level.fwc.as_deref_mut() {
                    Some(n) => n,
                    None => return false,
                },
                _ => match level.literal.get_mut(*t) {
                    Some(n) => n,
                    None => return false,
                },
            };
            let found = if rest.is_empty() {
                match queue {
                    None => remove_one(&mut node.plain, item),
                    Some(q) => match node.queues.iter().position(|(n, _)| &n[..] == q) {
                        Some(i) => {
                            let found = remove_one(&mut node.queues[i].1, item);
                            if node.queues[i].1.is_empty() {
                                node.queues.swap_remove(i);
                            }
                            found
                        }
                        None => false,
                    },
                }
            } else {
                match node.next.as_deref_mut() {
                    Some(next) => Self::remove_at(next, rest, queue, item),
                    None => false,
                }
            };
            (found, node.is_empty())
        };
        if empty {
            // Prune so the tree's size follows the live subscriptions.
            match *t {
                b"*" => level.pwc = None,
                b">" => level.fwc = None,
                _ => {
                    level.literal.remove(*t);
                }
            }
        }
        found
    }

    fn invalidate(&mut self, pattern: &[u8]) {
        self.last = None;
        if self.cache.is_empty() {
            return;
        }
        let literal = subject::valid_literal(pattern);
        if literal {
            self.cache.remove(pattern);
        } else {
            self.cache.retain(|k, _| !subject::matches(pattern, k));
        }
    }

    /// All entries whose pattern matches `subject` (taken literally).
    pub fn matches(&mut self, subject: &[u8]) -> Rc<MatchResult<T>> {
        self.stats.matches += 1;
        if let Some((s, r)) = &self.last {
            if s[..] == *subject {
                self.stats.cache_hits += 1;
                return r.clone();
            }
        }
        let r = match self.cache.get(subject) {
            Some(r) => {
                self.stats.cache_hits += 1;
                r.clone()
            }
            None => {
                let mut result = MatchResult::new();
                let tokens: smallvec_tokens::Tokens = smallvec_tokens::Tokens::new(subject);
                // As the reference: a subject with an empty token (a
                // leading, trailing or doubled dot) matches nothing, not
                // even `>`.
                if !tokens.as_slice().iter().any(|t| t.is_empty()) {
                    match_level(&self.root, tokens.as_slice(), &mut result);
                }
                let r = Rc::new(result);
                if self.cache.len() >= CACHE_MAX {
                    self.cache.clear();
                }
                self.cache.insert(subject.into(), r.clone());
                r
            }
        };
        let (s, last) = self.last.get_or_insert_with(|| (Vec::new(), r.clone()));
        s.clear();
        s.extend_from_slice(subject);
        *last = r.clone();
        r
    }

    /// Calls `f` for every (pattern, queue, item) in the index.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>, &T)) {
        let mut path = Vec::new();
        walk(&self.root, &mut path, &mut f);
    }
}

fn walk<T>(level: &Level<T>, path: &mut Vec<u8>, f: &mut impl FnMut(&[u8], Option<&[u8]>, &T)) {
    let mut visit = |tok: &[u8], node: &Node<T>, path: &mut Vec<u8>| {
        let len = path.len();
        if !path.is_empty() {
            path.push(b'.');
        }
        path.extend_from_slice(tok);
        for i in &node.plain {
            f(path, None, i);
        }
        for (q, members) in &node.queues {
            for i in members {
                f(path, Some(q), i);
            }
        }
        if let Some(next) = &node.next {
            walk(next, path, f);
        }
        path.truncate(len);
    };
    for (tok, node) in &level.literal {
        visit(tok, node, path);
    }
    if let Some(n) = &level.pwc {
        visit(b"*", n, path);
    }
    if let Some(n) = &level.fwc {
        visit(b">", n, path);
    }
}

fn remove_one<T: PartialEq>(v: &mut Vec<T>, item: &T) -> bool {
    match v.iter().position(|x| x == item) {
        Some(i) => {
            v.swap_remove(i);
            true
        }
        None => false,
    }
}

fn add_node<T: Clone>(node: &Node<T>, r: &mut MatchResult<T>) {
    r.plain.extend(node.plain.iter().cloned());
    for (q, members) in &node.queues {
        match r.queues.iter_mut().find(|(n, _)| n == q) {
            Some((_, m)) => m.extend(members.iter().cloned()),
            None => r.queues.push((q.clone(), members.clone())),
        }
    }
}

fn match_level<T: Clone>(level: &Level<T>, tokens: &[&[u8]], r: &mut MatchResult<T>) {
    let Some((t, rest)) = tokens.split_first() else {
        return;
    };
    if let Some(fwc) = &level.fwc {
        add_node(fwc, r);
    }
    if let Some(pwc) = &level.pwc {
        match_node(pwc, rest, r);
    }
    if let Some(n) = level.literal.get(*t) {
        match_node(n, rest, r);
    }
}

fn match_node<T: Clone>(node: &Node<T>, rest: &[&[u8]], r: &mut MatchResult<T>) {
    if rest.is_empty() {
        add_node(node, r);
    } else if let Some(next) = &node.next {
        match_level(next, rest, r);
    }
}

/// Subject tokens on the stack for the common case of few tokens.
mod smallvec_tokens {
    pub struct Tokens<'a> {
        inline: [&'a [u8]; 16],
        len: usize,
        heap: Vec<&'a [u8]>,
    }

    impl<'a> Tokens<'a> {
        pub fn new(subject: &'a [u8]) -> Self {
            let mut t = Tokens {
                inline: [&[]; 16],
                len: 0,
                heap: Vec::new(),
            };
            for tok in subject.split(|&b| b == b'.') {
                if t.len < 16 {
                    t.inline[t.len] = tok;
                    t.len += 1;
                } else {
                    if t.heap.is_empty() {
                        t.heap.extend_from_slice(&t.inline);
                    }
                    t.heap.push(tok);
                }
            }
            t
        }

        pub fn as_slice(&self) -> &[&'a [u8]] {
            if self.heap.is_empty() {
                &self.inline[..self.len]
            } else {
                &self.heap
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(sl: &mut SubList<u32>, s: &str) -> Vec<u32> {
        let mut v = sl.matches(s.as_bytes()).plain.clone();
        v.sort();
        v
    }

    #[test]
    fn literal_and_wildcards() {
        let mut sl = SubList::new();
        sl.insert(b"foo.bar", None, 1);
        sl.insert(b"foo.*", None, 2);
        sl.insert(b"foo.>", None, 3);
        sl.insert(b">", None, 4);
        sl.insert(b"*.bar", None, 5);
        assert_eq!(plain(&mut sl, "foo.bar"), vec![1, 2, 3, 4, 5]);
        assert_eq!(plain(&mut sl, "foo.baz"), vec![2, 3, 4]);
        assert_eq!(plain(&mut sl, "foo.bar.baz"), vec![3, 4]);
        assert_eq!(plain(&mut sl, "foo"), vec![4]);
        assert_eq!(sl.len(), 5);
    }

    #[test]
    fn subjects_with_empty_tokens_match_nothing() {
        let mut sl = SubList::new();
        for p in [
            &b">"[..],
            b"*.*",
            b"foo.*",
            b"*.foo",
            b"foo.>",
            b"foo.*.bar",
        ] {
            sl.insert(p, None, 1);
        }
        for s in [&b"foo."[..], b".foo", b"foo..bar", b".", b""] {
            assert!(sl.matches(s).is_empty(), "{}", String::from_utf8_lossy(s));
        }
        assert!(!sl.matches(b"foo.x.bar").is_empty());
    }

    #[test]
    fn cache_is_invalidated_selectively() {
        let mut sl = SubList::new();
        sl.insert(b"a.b", None, 1);
        assert_eq!(plain(&mut sl, "a.b"), vec![1]);
        assert_eq!(plain(&mut sl, "x.y"), Vec::<u32>::new());
        sl.insert(b"a.*", None, 2);
        assert_eq!(plain(&mut sl, "a.b"), vec![1, 2]);
        sl.insert(b"x.y", None, 3);
        assert_eq!(plain(&mut sl, "x.y"), vec![3]);
        assert!(sl.remove(b"a.*", None, &2));
        assert_eq!(plain(&mut sl, "a.b"), vec![1]);
        assert!(!sl.remove(b"a.*", None, &2));
    }

    #[test]
    fn repeated_subject_sees_every_change() {
        // The same subject matched again and again (as a publisher does)
        // is answered from the last result until the index changes.
        let mut sl = SubList::new();
        assert_eq!(plain(&mut sl, "a.b"), Vec::<u32>::new());
        assert_eq!(plain(&mut sl, "a.b"), Vec::<u32>::new());
        sl.insert(b"a.>", None, 1);
        assert_eq!(plain(&mut sl, "a.b"), vec![1]);
        assert_eq!(plain(&mut sl, "a.b"), vec![1]);
        sl.insert(b"z", None, 2);
        assert_eq!(plain(&mut sl, "a.b"), vec![1]);
        assert_eq!(plain(&mut sl, "a.bb"), vec![1]);
        assert_eq!(plain(&mut sl, "a"), Vec::<u32>::new());
        assert!(sl.remove(b"a.>", None, &1));
        assert_eq!(plain(&mut sl, "a.b"), Vec::<u32>::new());
        assert_eq!(sl.stats.matches, 8);
        assert_eq!(sl.stats.cache_hits, 3);
    }

    #[test]
    fn queues_merge_across_patterns() {
        let mut sl = SubList::new();
        sl.insert(b"foo.bar", Some(b"q"), 1);
        sl.insert(b"foo.*", Some(b"q"), 2);
        sl.insert(b"foo.*", Some(b"r"), 3);
        let r = sl.matches(b"foo.bar");
        assert!(r.plain.is_empty());
        assert_eq!(r.queues.len(), 2);
        let q = r.queues.iter().find(|(n, _)| &n[..] == b"q").unwrap();
        assert_eq!(q.1.len(), 2);
    }

    #[test]
    fn removal_prunes_the_tree() {
        let mut sl = SubList::new();
        sl.insert(b"a.b.c", None, 1);
        sl.insert(b"a.b.c", Some(b"q"), 2);
        assert!(sl.remove(b"a.b.c", None, &1));
        assert!(sl.remove(b"a.b.c", Some(b"q"), &2));
        assert!(sl.root.is_empty());
        assert!(sl.is_empty());
    }

    #[test]
    fn for_each_reconstructs_patterns() {
        let mut sl = SubList::new();
        sl.insert(b"a.*.c", Some(b"q"), 1);
        sl.insert(b"a.>", None, 2);
        let mut seen = Vec::new();
        sl.for_each(|p, q, i| {
            seen.push((
                String::from_utf8_lossy(p).into_owned(),
                q.map(|q| q.to_vec()),
                *i,
            ))
        });
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("a.*.c".into(), Some(b"q".to_vec()), 1),
                ("a.>".into(), None, 2)
            ]
        );
    }
}
