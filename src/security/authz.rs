//! Compiled permission sets: one user's publish/subscribe rules, indexed for
//! per-message checks, with the reference's (nats-server 2.9) semantics.
//!
//! Each connection's shard owns its own `CompiledPerms`, so the caches sit
//! in `RefCell`s and nothing is locked. Rules live in [`SubList`]s whose
//! values are indices into the rule text as written, so every decision can
//! name the rule behind it ([`CompiledPerms::explain_publish`]) while the
//! hot path ([`CompiledPerms::can_publish`]) is a single hash lookup once a
//! subject has been seen.
//!
//! Semantics (all as in the reference):
//! - A publish allow list closes everything it does not match, even when it
//!   is empty (the model writes an empty one for `allow_responses` without
//!   publish rules). A subscribe allow list only counts when non-empty.
//! - Deny wins over allow; with deny rules only, everything else is allowed.
//! - A published subject is matched literally against the rule patterns. A
//!   SUB subject is matched token by token with its own `*`/`>` taken as
//!   literal tokens: rule `foo.>` covers SUB `foo.*`, rule `foo.bar` does
//!   not. A subject with an empty token matches no rule.
//! - Subscribe rules may be `"subject queue"`. When the SUB names a queue
//!   and queue rules match its subject, the queue rules alone decide, in
//!   both the allow and the deny stage (so allow `["foo", "foo q"]` refuses
//!   SUB `foo` in queue `r`, and deny `["foo", "foo q"]` lets it through).
//!   Queue rule names may themselves be wildcard patterns.
//! - A wildcard SUB that is allowed but merely overlaps a deny rule is
//!   accepted. As in the reference, once a client has such a SUB that a
//!   deny rule falls within ([`CompiledPerms::needs_delivery_filter`]),
//!   [`CompiledPerms::deny_delivery`] filters the denied subjects from
//!   every message delivered to it; before, nothing is filtered.

use crate::fxhash::FxHashMap;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::config::Permissions;
use crate::subject;
use crate::sublist::{MatchResult, SubList};

/// Bound on cached decisions per cache; past it the cache is emptied, so a
/// flood of distinct subjects costs recomputation, never memory.
const CACHE_MAX: usize = 4096;

/// One allow or deny list.
struct Rules {
    /// The entries as written; `index` values are positions in it.
    text: Vec<String>,
    index: RefCell<SubList<u32>>,
}

impl Rules {
    /// `with_queues`: split `"subject queue"` entries (subscribe rules).
    /// Publish entries are indexed whole, as the reference does, so a
    /// `"subject queue"` publish entry can never match a subject. Entries
    /// the reference's index would refuse are kept for display only.
    fn new(entries: &[String], with_queues: bool) -> Rules {
        let mut index = SubList::new();
        for (i, entry) in entries.iter().enumerate() {
            let (subj, queue) = if with_queues {
                match split_subject_queue(entry) {
                    Some(sq) => sq,
                    None => continue,
                }
            } else {
                (entry.as_str(), None)
            };
            if subject::valid_subscribe(subj.as_bytes()) {
                index.insert(subj.as_bytes(), queue.map(str::as_bytes), i as u32);
            }
        }
        Rules {
            text: entries.to_vec(),
            index: RefCell::new(index),
        }
    }

    fn lookup(&self, subject: &[u8]) -> Rc<MatchResult<u32>> {
        if has_empty_token(subject) {
            return Rc::new(MatchResult {
                plain: Vec::new(),
                queues: Vec::new(),
            });
        }
        self.index.borrow_mut().matches(subject)
    }

    fn rule(&self, i: u32) -> String {
        self.text[i as usize].clone()
    }

    fn rules(&self, ids: impl IntoIterator<Item = u32>) -> Vec<String> {
        let mut ids: Vec<u32> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|i| self.rule(i)).collect()
    }
}

/// The reference's `"subject queue"` split: one or two whitespace-separated
/// fields; anything else is not a usable entry.
fn split_subject_queue(entry: &str) -> Option<(&str, Option<&str>)> {
    let mut fields = entry.split_whitespace();
    let subj = fields.next()?;
    let queue = fields.next();
    match fields.next() {
        None => Some((subj, queue)),
        Some(_) => None,
    }
}

/// The reference's index matches nothing for a subject with an empty token.
fn has_empty_token(s: &[u8]) -> bool {
    s.is_empty() || s.split(|&b| b == b'.').any(<[u8]>::is_empty)
}

/// Whether a whole token of `s` is `*` or `>`.
fn has_wildcard(s: &[u8]) -> bool {
    s.split(|&b| b == b'.').any(|t| t == b"*" || t == b">")
}

/// The reference's `subjectIsSubsetMatch(subject, test)`: whether every
/// subject matched by `subject` is matched by `test`. Like the reference, a
/// `test` token merely starting with `*` is treated as `*`.
fn is_subset_match(subject: &[u8], test: &[u8]) -> bool {
    let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let mut n = 0;
    for (i, t2) in test.split(|&b| b == b'.').enumerate() {
        n = i + 1;
        let Some(&t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if t2 == b">" {
            return true;
        }
        if t1.is_empty() || t1 == b">" {
            return false;
        }
        if t1 == b"*" {
            if t2 != b"*" {
                return false;
            }
            continue;
        }
        if t2[0] != b'*' && t1 != t2 {
            return false;
        }
    }
    tokens.len() == n
}

/// The reference's `queueMatches`: the rule indices of the first queue
/// group whose name equals `queue` or, being a wildcard pattern, covers it.
fn queue_match<'a>(queue: &[u8], groups: &'a [(Rc<[u8]>, Vec<u32>)]) -> Option<&'a [u32]> {
    groups
        .iter()
        .find(|(name, _)| {
            &name[..] == queue || (has_wildcard(name) && is_subset_match(queue, name))
        })
        .map(|(_, ids)| &ids[..])
}

fn first(ids: &[u32]) -> Option<u32> {
    ids.iter().copied().min()
}

/// One side (publish or subscribe) of a permission set; at least one list
/// is present.
struct Side {
    allow: Option<Rules>,
    deny: Option<Rules>,
}

/// How a check came out, by rule index; [`Reason`] is its displayable form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    AllowedBy(u32),
    NotDenied,
    NotInAllowList,
    QueueRequired,
    QueueNotAllowed,
    DeniedBy { deny: u32, allow: Option<u32> },
    DenyQueueExempt { deny: u32 },
}

impl Verdict {
    fn allowed(self) -> bool {
        matches!(
            self,
            Verdict::AllowedBy(_) | Verdict::NotDenied | Verdict::DenyQueueExempt { .. }
        )
    }
}

impl Side {
    fn publish(&self, subject: &[u8]) -> Verdict {
        let mut by = None;
        if let Some(allow) = &self.allow {
            by = first(&allow.lookup(subject).plain);
            if by.is_none() {
                return Verdict::NotInAllowList;
            }
        }
        if let Some(deny) = &self.deny {
            if let Some(d) = first(&deny.lookup(subject).plain) {
                return Verdict::DeniedBy { deny: d, allow: by };
            }
        }
        by.map_or(Verdict::NotDenied, Verdict::AllowedBy)
    }

    /// `queue` is `None` for a plain SUB (an empty queue counts as none).
    fn subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> Verdict {
        let mut by = None;
        if let Some(allow) = &self.allow {
            let r = allow.lookup(subject);
            by = first(&r.plain);
            match queue {
                Some(q) if !r.queues.is_empty() => match queue_match(q, &r.queues) {
                    Some(ids) => by = first(ids),
                    None => return Verdict::QueueNotAllowed,
                },
                None if by.is_none() && !r.queues.is_empty() => return Verdict::QueueRequired,
                _ => {}
            }
            if by.is_none() {
                return Verdict::NotInAllowList;
            }
        }
        if let Some(deny) = &self.deny {
            let r = deny.lookup(subject);
            let plain = first(&r.plain);
            match queue {
                Some(q) if !r.queues.is_empty() => {
                    if let Some(ids) = queue_match(q, &r.queues) {
                        let deny = first(ids).expect("queue groups are never empty");
                        return Verdict::DeniedBy { deny, allow: by };
                    }
                    if let Some(deny) = plain {
                        return Verdict::DenyQueueExempt { deny };
                    }
                }
                _ => {
                    if let Some(deny) = plain {
                        return Verdict::DeniedBy { deny, allow: by };
                    }
                }
            }
        }
        by.map_or(Verdict::NotDenied, Verdict::AllowedBy)
    }

    fn reason(&self, v: Verdict, subject: &[u8], queue: Option<&[u8]>) -> Reason {
        let allow = || self.allow.as_ref().expect("verdict implies an allow list");
        let deny = || self.deny.as_ref().expect("verdict implies a deny list");
        match v {
            Verdict::AllowedBy(i) => Reason::AllowedBy(allow().rule(i)),
            Verdict::NotDenied => Reason::NotDenied {
                deny: deny().text.clone(),
            },
            Verdict::NotInAllowList => Reason::NotInAllowList {
                allow: allow().text.clone(),
            },
            Verdict::QueueRequired => {
                let r = allow().lookup(subject);
                Reason::QueueRequired {
                    rules: allow().rules(r.queues.iter().flat_map(|(_, ids)| ids.iter().copied())),
                }
            }
            Verdict::QueueNotAllowed => {
                let r = allow().lookup(subject);
                Reason::QueueNotAllowed {
                    rules: allow().rules(r.queues.iter().flat_map(|(_, ids)| ids.iter().copied())),
                    queue: String::from_utf8_lossy(queue.unwrap_or_default()).into_owned(),
                }
            }
            Verdict::DeniedBy {
                deny: d,
                allow: None,
            } => Reason::DeniedBy(deny().rule(d)),
            Verdict::DeniedBy {
                deny: d,
                allow: Some(a),
            } => Reason::DeniedOver {
                deny: deny().rule(d),
                allow: allow().rule(a),
            },
            Verdict::DenyQueueExempt { deny: d } => Reason::DenyQueueExempt {
                deny: deny().rule(d),
                queue: String::from_utf8_lossy(queue.unwrap_or_default()).into_owned(),
            },
        }
    }
}

/// A user's permissions, compiled for one shard.
pub struct CompiledPerms {
    /// `None`: publishing is not restricted.
    publish: Option<Side>,
    /// `None`: subscribing is not restricted.
    subscribe: Option<Side>,
    /// The subscribe deny entries as written: the reference decides whether a
    /// wildcard SUB overlaps them on the raw text.
    sub_deny_text: Vec<String>,
    responses: Option<(u32, Duration)>,
    pub_cache: RefCell<FxHashMap<Box<[u8]>, bool>>,
    deny_cache: RefCell<FxHashMap<Box<[u8]>, bool>>,
    /// The last published subject and its decision: publishers usually
    /// repeat a subject, and a byte compare beats even a hash lookup.
    last_pub: RefCell<(Vec<u8>, bool)>,
}

fn cached(
    cache: &RefCell<FxHashMap<Box<[u8]>, bool>>,
    key: &[u8],
    f: impl FnOnce() -> bool,
) -> bool {
    if let Some(&d) = cache.borrow().get(key) {
        return d;
    }
    let d = f();
    let mut cache = cache.borrow_mut();
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(key.into(), d);
    d
}

impl CompiledPerms {
    pub fn compile(p: &Permissions) -> CompiledPerms {
        let publish = p.publish.as_ref().and_then(|sp| {
            let side = Side {
                allow: sp.allow.as_deref().map(|a| Rules::new(a, false)),
                deny: (!sp.deny.is_empty()).then(|| Rules::new(&sp.deny, false)),
            };
            (side.allow.is_some() || side.deny.is_some()).then_some(side)
        });
        let subscribe = p.subscribe.as_ref().and_then(|sp| {
            let side = Side {
                allow: sp
                    .allow
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(|a| Rules::new(a, true)),
                deny: (!sp.deny.is_empty()).then(|| Rules::new(&sp.deny, true)),
            };
            (side.allow.is_some() || side.deny.is_some()).then_some(side)
        });
        let sub_deny_text = p
            .subscribe
            .as_ref()
            .map(|sp| sp.deny.clone())
            .unwrap_or_default();
        let responses = p
            .allow_responses
            .as_ref()
            .map(|r| (r.max_msgs.unwrap_or(0), r.expires.unwrap_or(Duration::ZERO)));
        CompiledPerms {
            publish,
            subscribe,
            sub_deny_text,
            responses,
            pub_cache: RefCell::default(),
            deny_cache: RefCell::default(),
            last_pub: RefCell::new((Vec::new(), false)),
        }
    }

    /// Whether a message may be published to `subject` (literal). Replies
    /// allowed by `allow_responses` are the caller's to track.
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        let Some(side) = &self.publish else {
            return true;
        };
        {
            let last = self.last_pub.borrow();
            if !last.0.is_empty() && last.0 == subject {
                return last.1;
            }
        }
        let d = cached(&self.pub_cache, subject, || side.publish(subject).allowed());
        let mut last = self.last_pub.borrow_mut();
        last.0.clear();
        last.0.extend_from_slice(subject);
        last.1 = d;
        d
    }

    /// Whether `subject` (which may contain wildcards) may be subscribed to,
    /// optionally in queue group `queue`.
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        match &self.subscribe {
            None => true,
            Some(side) => side.subscribe(subject, norm_queue(queue)).allowed(),
        }
    }

    /// Whether an accepted SUB on `subject` needs [`Self::deny_delivery`]
    /// applied to its messages: it is a wildcard that some subscribe deny
    /// entry falls within (the reference's trigger for its delivery filter).
    pub fn needs_delivery_filter(&self, subject: &[u8]) -> bool {
        has_wildcard(subject)
            && self
                .sub_deny_text
                .iter()
                .any(|d| is_subset_match(d.as_bytes(), subject))
    }

    /// Whether a message on `subject` (literal) must not be delivered
    /// because a plain subscribe deny rule matches it.
    pub fn deny_delivery(&self, subject: &[u8]) -> bool {
        let Some(deny) = self.subscribe.as_ref().and_then(|s| s.deny.as_ref()) else {
            return false;
        };
        cached(&self.deny_cache, subject, || {
            !deny.lookup(subject).plain.is_empty()
        })
    }

    /// `allow_responses`: (messages per request, time allowed after the
    /// request). 0 messages means unlimited, a zero duration means forever.
    pub fn responses(&self) -> Option<(u32, Duration)> {
        self.responses
    }

    /// [`Self::can_publish`] with the deciding rule; uncached.
    pub fn explain_publish(&self, subject: &[u8]) -> Decision {
        let Some(side) = &self.publish else {
            return Decision::allowed(Reason::NoRules);
        };
        let v = side.publish(subject);
        let reason = match v {
            Verdict::NotInAllowList
                if self.responses.is_some()
                    && side.allow.as_ref().is_some_and(|a| a.text.is_empty()) =>
            {
                Reason::RepliesOnly
            }
            _ => side.reason(v, subject, None),
        };
        Decision {
            allowed: v.allowed(),
            reason,
        }
    }

    /// [`Self::can_subscribe`] with the deciding rule.
    pub fn explain_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> Decision {
        let Some(side) = &self.subscribe else {
            return Decision::allowed(Reason::NoRules);
        };
        let queue = norm_queue(queue);
        let v = side.subscribe(subject, queue);
        Decision {
            allowed: v.allowed(),
            reason: side.reason(v, subject, queue),
        }
    }

    /// The subscribe deny entries whose subjects [`Self::deny_delivery`]
    /// will hold back from an accepted SUB on `subject`.
    pub fn delivery_filters(&self, subject: &[u8]) -> Vec<String> {
        if !has_wildcard(subject) {
            return Vec::new();
        }
        self.sub_deny_text
            .iter()
            .filter(|d| is_subset_match(d.as_bytes(), subject))
            .cloned()
            .collect()
    }
}

fn norm_queue(queue: Option<&[u8]>) -> Option<&[u8]> {
    queue.filter(|q| !q.is_empty())
}

/// The outcome of a permission check and what decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl Decision {
    fn allowed(reason: Reason) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }
}

/// What decided a permission check. Rules appear as written in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No rules for this operation: everything is allowed.
    NoRules,
    /// Allowed by this allow rule, and no deny rule matched.
    AllowedBy(String),
    /// No allow list, and none of these deny rules matched.
    NotDenied { deny: Vec<String> },
    /// None of these allow rules matched.
    NotInAllowList { allow: Vec<String> },
    /// Publishing is closed except for replies: `allow_responses` without a
    /// publish allow list.
    RepliesOnly,
    /// Only queue rules (these) match the subject, and the SUB has no queue.
    QueueRequired { rules: Vec<String> },
    /// Queue rules (these) match the subject, none for this queue.
    QueueNotAllowed { rules: Vec<String>, queue: String },
    /// Denied by this deny rule; there is no allow list.
    DeniedBy(String),
    /// Denied by `deny` although allow rule `allow` matched: deny wins.
    DeniedOver { deny: String, allow: String },
    /// Allowed although plain deny rule `deny` matched: queue deny rules
    /// match the subject too, and as in the reference they alone decide for
    /// a queue SUB; none names `queue`.
    DenyQueueExempt { deny: String, queue: String },
}

struct Quoted<'a>(&'a [String]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoRules => f.write_str("no rules restrict this operation"),
            Reason::AllowedBy(r) => write!(f, "allowed by allow rule {r:?}"),
            Reason::NotDenied { deny } => write!(
                f,
                "no deny rule matches (deny: {}) and there is no allow list",
                Quoted(deny)
            ),
            Reason::NotInAllowList { allow } if allow.is_empty() => {
                f.write_str("the allow list is empty")
            }
            Reason::NotInAllowList { allow } => {
                write!(f, "no allow rule matches (allow: {})", Quoted(allow))
            }
            Reason::RepliesOnly => f.write_str(
                "only replies may be published (allow_responses without a publish allow list)",
            ),
            Reason::QueueRequired { rules } => write!(
                f,
                "only queue subscriptions are allowed here (allow: {})",
                Quoted(rules)
            ),
            Reason::QueueNotAllowed { rules, queue } => write!(
                f,
                "queue {queue:?} is not allowed here (allow: {})",
                Quoted(rules)
            ),
            Reason::DeniedBy(r) => write!(f, "denied by deny rule {r:?}"),
            Reason::DeniedOver { deny, allow } => write!(
                f,
                "denied by deny rule {deny:?} (it overrides allow rule {allow:?})"
            ),
            Reason::DenyQueueExempt { deny, queue } => write!(
                f,
                "deny rule {deny:?} does not apply: queue deny rules match this subject, \
                 and none names queue {queue:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ResponsePermission, SubjectPermission};

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn sp(allow: Option<&[&str]>, deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.map(list),
            deny: list(deny),
        })
    }

    fn pub_perms(allow: Option<&[&str]>, deny: &[&str]) -> CompiledPerms {
        CompiledPerms::compile(&Permissions {
            publish: sp(allow, deny),
            ..Permissions::default()
        })
    }

    fn sub_perms(allow: Option<&[&str]>, deny: &[&str]) -> CompiledPerms {
        CompiledPerms::compile(&Permissions {
            subscribe: sp(allow, deny),
            ..Permissions::default()
        })
    }

    fn sub(p: &CompiledPerms, s: &str, q: Option<&str>) -> bool {
        p.can_subscribe(s.as_bytes(), q.map(str::as_bytes))
    }

    fn why_sub(p: &CompiledPerms, s: &str, q: Option<&str>) -> String {
        let d = p.explain_subscribe(s.as_bytes(), q.map(str::as_bytes));
        assert_eq!(d.allowed, sub(p, s, q), "{s} {q:?}");
        d.reason.to_string()
    }

    fn why_pub(p: &CompiledPerms, s: &str) -> String {
        let d = p.explain_publish(s.as_bytes());
        assert_eq!(d.allowed, p.can_publish(s.as_bytes()), "{s}");
        d.reason.to_string()
    }

    #[test]
    fn no_rules_allow_everything() {
        let p = CompiledPerms::compile(&Permissions::default());
        assert!(p.can_publish(b"a.b"));
        assert!(sub(&p, ">", Some("q")));
        assert!(!p.needs_delivery_filter(b">"));
        assert!(!p.deny_delivery(b"a"));
        assert_eq!(p.responses(), None);
        assert_eq!(why_pub(&p, "a"), "no rules restrict this operation");
        // An empty map in the config is no rule at all; an empty subscribe
        // allow list is no allow list (the reference only indexes a
        // non-empty one).
        let p = sub_perms(Some(&[]), &[]);
        assert!(sub(&p, "anything", None));
        assert_eq!(p.explain_subscribe(b"x", None).reason, Reason::NoRules);
    }

    #[test]
    fn allow_list_closes_everything_else() {
        let p = pub_perms(Some(&["orders.>", "_INBOX.>"]), &[]);
        assert!(p.can_publish(b"orders.created"));
        assert!(p.can_publish(b"orders.created"));
        assert!(!p.can_publish(b"orders"));
        assert!(!p.can_publish(b"billing.invoice"));
        assert_eq!(
            why_pub(&p, "orders.created"),
            r#"allowed by allow rule "orders.>""#
        );
        assert_eq!(
            why_pub(&p, "billing.invoice"),
            r#"no allow rule matches (allow: "orders.>", "_INBOX.>")"#
        );
        // An empty publish allow list closes publishing entirely.
        let p = pub_perms(Some(&[]), &[]);
        assert!(!p.can_publish(b"a"));
        assert_eq!(why_pub(&p, "a"), "the allow list is empty");
    }

    #[test]
    fn deny_only_allows_the_rest_and_deny_wins() {
        let p = pub_perms(None, &["billing.>"]);
        assert!(p.can_publish(b"orders.x"));
        assert!(!p.can_publish(b"billing.invoice"));
        assert_eq!(
            why_pub(&p, "billing.invoice"),
            r#"denied by deny rule "billing.>""#
        );
        assert_eq!(
            why_pub(&p, "x"),
            r#"no deny rule matches (deny: "billing.>") and there is no allow list"#
        );

        let p = pub_perms(Some(&[">"]), &["billing.>", "secret"]);
        assert!(p.can_publish(b"orders.x"));
        assert!(!p.can_publish(b"secret"));
        assert_eq!(
            p.explain_publish(b"billing.a").reason,
            Reason::DeniedOver {
                deny: "billing.>".into(),
                allow: ">".into()
            }
        );
        assert_eq!(
            why_pub(&p, "secret"),
            r#"denied by deny rule "secret" (it overrides allow rule ">")"#
        );
    }

    #[test]
    fn first_rule_in_config_order_is_named() {
        let p = pub_perms(Some(&["a.*", "a.b", ">"]), &[]);
        assert_eq!(
            p.explain_publish(b"a.b").reason,
            Reason::AllowedBy("a.*".into())
        );
        assert_eq!(
            p.explain_publish(b"z").reason,
            Reason::AllowedBy(">".into())
        );
    }

    #[test]
    fn subjects_with_empty_tokens_match_no_rule() {
        let p = pub_perms(None, &["a.*.b", ">"]);
        assert!(p.can_publish(b"a..b"));
        assert!(p.can_publish(b".a"));
        let p = pub_perms(Some(&["a.*.b", ">"]), &[]);
        assert!(!p.can_publish(b"a..b"));
    }

    #[test]
    fn publish_entries_are_not_split_into_queues() {
        let p = pub_perms(Some(&["foo bar"]), &[]);
        assert!(!p.can_publish(b"foo"));
    }

    #[test]
    fn subscribe_matches_the_sub_subject_as_a_pattern() {
        let p = sub_perms(Some(&["foo.>", "bar.baz", "q.*"]), &[]);
        assert!(sub(&p, "foo.*", None));
        assert!(sub(&p, "foo.>", None));
        assert!(sub(&p, "foo.a.b", None));
        assert!(!sub(&p, "foo", None));
        assert!(!sub(&p, ">", None));
        assert!(!sub(&p, "bar.*", None));
        assert!(sub(&p, "bar.baz", None));
        assert!(sub(&p, "q.*", None));
        // The reference's index lets `*` match the SUB's `>` token as a
        // literal, so rule `q.*` covers SUB `q.>` (but not `q.a.>`).
        assert!(sub(&p, "q.>", None));
        assert!(!sub(&p, "q.a.>", None));
        assert_eq!(
            why_sub(&p, "bar.*", None),
            r#"no allow rule matches (allow: "foo.>", "bar.baz", "q.*")"#
        );
    }

    #[test]
    fn queue_allow_rules() {
        let p = sub_perms(Some(&["jobs.* workers"]), &[]);
        assert!(sub(&p, "jobs.a", Some("workers")));
        assert!(!sub(&p, "jobs.a", None));
        assert!(!sub(&p, "jobs.a", Some("other")));
        assert!(!sub(&p, "jobs.a", Some("")));
        assert_eq!(
            why_sub(&p, "jobs.a", Some("workers")),
            r#"allowed by allow rule "jobs.* workers""#
        );
        assert_eq!(
            why_sub(&p, "jobs.a", None),
            r#"only queue subscriptions are allowed here (allow: "jobs.* workers")"#
        );
        assert_eq!(
            why_sub(&p, "jobs.a", Some("other")),
            r#"queue "other" is not allowed here (allow: "jobs.* workers")"#
        );

        // A plain rule allows any queue.
        let p = sub_perms(Some(&["foo"]), &[]);
        assert!(sub(&p, "foo", Some("any")));

        // When queue rules match, they alone decide for a queue SUB.
        let p = sub_perms(Some(&["foo", "foo q"]), &[]);
        assert!(sub(&p, "foo", None));
        assert!(sub(&p, "foo", Some("q")));
        assert!(!sub(&p, "foo", Some("r")));

        // Queue names in rules may be wildcard patterns.
        let p = sub_perms(Some(&["foo v1.*", "bar *"]), &[]);
        assert!(sub(&p, "foo", Some("v1.x")));
        assert!(sub(&p, "foo", Some("v1.*")));
        assert!(!sub(&p, "foo", Some("v2.x")));
        assert!(!sub(&p, "foo", Some("v1.x.y")));
        assert!(sub(&p, "bar", Some("anything")));

        // Entries with more than one queue are unusable, as in the reference.
        let p = sub_perms(Some(&["foo a b"]), &[]);
        assert!(!sub(&p, "foo", Some("a")));
    }

    #[test]
    fn queue_deny_rules() {
        let p = sub_perms(None, &["jobs.* audit"]);
        assert!(sub(&p, "jobs.a", None));
        assert!(sub(&p, "jobs.a", Some("workers")));
        assert!(!sub(&p, "jobs.a", Some("audit")));
        assert_eq!(
            why_sub(&p, "jobs.a", Some("audit")),
            r#"denied by deny rule "jobs.* audit""#
        );

        // The reference's quirk: matching queue deny rules replace the
        // plain deny verdict for a queue SUB.
        let p = sub_perms(None, &["foo", "foo q"]);
        assert!(!sub(&p, "foo", None));
        assert!(!sub(&p, "foo", Some("q")));
        assert!(sub(&p, "foo", Some("r")));
        assert_eq!(
            p.explain_subscribe(b"foo", Some(b"r")).reason,
            Reason::DenyQueueExempt {
                deny: "foo".into(),
                queue: "r".into()
            }
        );
    }

    #[test]
    fn deny_overlap_is_filtered_at_delivery() {
        let p = sub_perms(Some(&["foo.>"]), &["foo.secret", "foo.*.private q"]);
        assert!(sub(&p, "foo.*", None));
        assert!(sub(&p, "foo.>", None));
        assert!(!sub(&p, "foo.secret", None));
        assert_eq!(
            why_sub(&p, "foo.secret", None),
            r#"denied by deny rule "foo.secret" (it overrides allow rule "foo.>")"#
        );
        assert!(p.needs_delivery_filter(b"foo.*"));
        assert!(p.needs_delivery_filter(b">"));
        assert!(!p.needs_delivery_filter(b"foo.public"));
        assert!(!p.needs_delivery_filter(b"bar.*"));
        assert_eq!(p.delivery_filters(b"foo.*"), vec!["foo.secret".to_string()]);
        for _ in 0..2 {
            assert!(p.deny_delivery(b"foo.secret"));
            assert!(!p.deny_delivery(b"foo.public"));
            // Queue deny entries never filter deliveries.
            assert!(!p.deny_delivery(b"foo.x.private"));
        }
        let open = sub_perms(Some(&[">"]), &[]);
        assert!(!open.deny_delivery(b"foo.secret"));
        assert!(!open.needs_delivery_filter(b">"));
    }

    #[test]
    fn responses_and_replies_only() {
        let mut perms = Permissions {
            publish: sp(Some(&[]), &[]),
            allow_responses: Some(ResponsePermission::default()),
            ..Permissions::default()
        };
        let p = CompiledPerms::compile(&perms);
        assert_eq!(p.responses(), Some((1, Duration::from_secs(120))));
        assert!(!p.can_publish(b"x"));
        assert_eq!(p.explain_publish(b"x").reason, Reason::RepliesOnly);
        perms.allow_responses = Some(ResponsePermission {
            max_msgs: None,
            expires: None,
        });
        assert_eq!(
            CompiledPerms::compile(&perms).responses(),
            Some((0, Duration::ZERO))
        );
    }

    #[test]
    fn caches_stay_bounded_and_correct() {
        let p = pub_perms(Some(&["a.*"]), &["a.x1"]);
        let sp = sub_perms(None, &["a.x1"]);
        for round in 0..2 {
            for i in 0..(CACHE_MAX + 10) {
                let s = format!("a.x{i}");
                assert_eq!(p.can_publish(s.as_bytes()), i != 1, "{round} {s}");
                assert_eq!(sp.deny_delivery(s.as_bytes()), i == 1, "{round} {s}");
            }
        }
        assert!(p.pub_cache.borrow().len() <= CACHE_MAX);
        assert!(sp.deny_cache.borrow().len() <= CACHE_MAX);
    }

    #[test]
    fn subset_match_follows_the_reference() {
        assert!(is_subset_match(b"foo.bar", b"foo.*"));
        assert!(is_subset_match(b"foo.*", b"foo.*"));
        assert!(is_subset_match(b"foo.*", b">"));
        assert!(is_subset_match(b"foo.bar.baz", b"foo.>"));
        assert!(!is_subset_match(b"foo.*", b"foo.bar"));
        assert!(!is_subset_match(b"foo.>", b"foo.*"));
        assert!(!is_subset_match(b"foo", b"foo.*"));
        assert!(!is_subset_match(b"foo.bar", b"foo"));
        assert!(is_subset_match(b"foo.bar", b"foo.*x"));
    }

    // ---- property test against a direct reading of the reference ----

    /// Deterministic xorshift so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    fn random_subject(rng: &mut Rng, wildcards: bool) -> String {
        const LITERAL: &[&str] = &["a", "b", "c"];
        const ALL: &[&str] = &["a", "b", "c", "*", ">"];
        let n = 1 + rng.below(4);
        let mut tokens = Vec::with_capacity(n);
        for i in 0..n {
            let t = if wildcards {
                let t = ALL[rng.below(ALL.len())];
                // `>` only last, as a valid subject has it.
                if t == ">" && i + 1 < n {
                    "*"
                } else {
                    t
                }
            } else if rng.chance(2) {
                ""
            } else {
                LITERAL[rng.below(LITERAL.len())]
            };
            tokens.push(t);
        }
        tokens.join(".")
    }

    fn random_queue(rng: &mut Rng) -> String {
        ["q", "r", "*", "q.*", "q.x"][rng.below(5)].to_string()
    }

    fn random_rules(rng: &mut Rng, queues: bool) -> Vec<String> {
        (0..rng.below(4))
            .map(|_| {
                let s = random_subject(rng, true);
                if queues && rng.chance(30) {
                    format!("{s} {}", random_queue(rng))
                } else {
                    s
                }
            })
            .collect()
    }

    fn random_side(rng: &mut Rng, queues: bool) -> Option<SubjectPermission> {
        if rng.chance(20) {
            return None;
        }
        Some(SubjectPermission {
            allow: rng.chance(70).then(|| random_rules(rng, queues)),
            deny: if rng.chance(50) {
                random_rules(rng, queues)
            } else {
                Vec::new()
            },
        })
    }

    /// Token-wise match of `subject` (tokens literal) against `pattern`.
    fn pattern_matches(pattern: &str, subject: &str) -> bool {
        if subject.split('.').any(str::is_empty) {
            return false;
        }
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        for (i, pt) in p.iter().enumerate() {
            if *pt == ">" {
                return s.len() > i;
            }
            match s.get(i) {
                Some(st) if *pt == "*" || pt == st => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    fn queue_name_matches(rule_queue: &str, queue: &str) -> bool {
        let wild = rule_queue.split('.').any(|t| t == "*" || t == ">");
        rule_queue == queue || (wild && pattern_covers(rule_queue, queue))
    }

    /// Whether every subject `inner` matches is matched by `outer`, for
    /// patterns of whole `*`/`>` tokens.
    fn pattern_covers(outer: &str, inner: &str) -> bool {
        let o: Vec<&str> = outer.split('.').collect();
        let n: Vec<&str> = inner.split('.').collect();
        for (i, ot) in o.iter().enumerate() {
            if *ot == ">" {
                return n.len() > i;
            }
            match n.get(i) {
                Some(&">") => return false,
                Some(nt) if *ot == "*" || ot == nt => {}
                _ => return false,
            }
        }
        o.len() == n.len()
    }

    fn ref_can_publish(p: &Permissions, subject: &str) -> bool {
        let Some(sp) = &p.publish else { return true };
        let allowed = match &sp.allow {
            None => true,
            Some(allow) => allow.iter().any(|r| pattern_matches(r, subject)),
        };
        allowed && !sp.deny.iter().any(|r| pattern_matches(r, subject))
    }

    /// (plain rules matched, queue names of matched queue rules)
    fn ref_match<'a>(rules: &'a [String], subject: &str) -> (bool, Vec<&'a str>) {
        let mut plain = false;
        let mut queues = Vec::new();
        for r in rules {
            let fields: Vec<&str> = r.split_whitespace().collect();
            match fields[..] {
                [s] if pattern_matches(s, subject) => plain = true,
                [s, q] if pattern_matches(s, subject) => queues.push(q),
                _ => {}
            }
        }
        (plain, queues)
    }

    fn ref_can_subscribe(p: &Permissions, subject: &str, queue: Option<&str>) -> bool {
        let Some(sp) = &p.subscribe else { return true };
        let mut allowed = true;
        if let Some(allow) = sp.allow.as_ref().filter(|a| !a.is_empty()) {
            let (plain, queues) = ref_match(allow, subject);
            allowed = plain;
            if let Some(q) = queue {
                if !queues.is_empty() {
                    allowed = queues.iter().any(|rq| queue_name_matches(rq, q));
                }
            }
        }
        if allowed && !sp.deny.is_empty() {
            let (plain, queues) = ref_match(&sp.deny, subject);
            allowed = !plain;
            if let Some(q) = queue {
                if !queues.is_empty() {
                    allowed = !queues.iter().any(|rq| queue_name_matches(rq, q));
                }
            }
        }
        allowed
    }

    #[test]
    fn compiled_matcher_agrees_with_a_direct_reading() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut outcomes = [0usize; 4];
        for case in 0..20_000 {
            let perms = Permissions {
                publish: random_side(&mut rng, false),
                subscribe: random_side(&mut rng, true),
                allow_responses: None,
            };
            let compiled = CompiledPerms::compile(&perms);
            for _ in 0..4 {
                let subject = random_subject(&mut rng, false);
                let want = ref_can_publish(&perms, &subject);
                for _ in 0..2 {
                    assert_eq!(
                        compiled.can_publish(subject.as_bytes()),
                        want,
                        "case {case}: publish {subject:?} with {perms:?}"
                    );
                }
                assert_eq!(compiled.explain_publish(subject.as_bytes()).allowed, want);
                outcomes[want as usize] += 1;

                let subject = random_subject(&mut rng, true);
                let queue = rng.chance(50).then(|| random_queue(&mut rng));
                let want = ref_can_subscribe(&perms, &subject, queue.as_deref());
                for _ in 0..2 {
                    assert_eq!(
                        compiled
                            .can_subscribe(subject.as_bytes(), queue.as_deref().map(str::as_bytes)),
                        want,
                        "case {case}: subscribe {subject:?} queue {queue:?} with {perms:?}"
                    );
                }
                let d = compiled
                    .explain_subscribe(subject.as_bytes(), queue.as_deref().map(str::as_bytes));
                assert_eq!(d.allowed, want);
                outcomes[2 + want as usize] += 1;
            }
        }
        // Both outcomes are well represented for both operations.
        assert!(outcomes.iter().all(|&n| n > 5_000), "{outcomes:?}");
    }
}
