//! The machinery of validation: document paths that know their document order, an error
//! collector, and typed readers over `serde_norway::Value` that report at a path.
//!
//! Validation walks the YAML tree once and records every error it finds together with an
//! order key, the list of positions (key index in its mapping in document order, index in
//! its list) that lead to the field. The first error in document order is then the
//! smallest key, which makes "the first error" independent of the order in which the
//! checks happen to run.

use std::collections::HashMap;

use serde_norway::{Mapping, Value};

use crate::parse::Hook;
use crate::ConfigError;

/// A field's place in the document: its text form and its document-order key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Path {
    text: String,
    order: Vec<u32>,
}

impl Path {
    pub(crate) fn root() -> Path {
        Path::default()
    }

    /// The path as shown to the operator. The root itself is `(top level)`.
    pub(crate) fn show(&self) -> String {
        if self.text.is_empty() {
            "(top level)".to_string()
        } else {
            self.text.clone()
        }
    }

    /// The child field `name`, found at position `pos` of this mapping.
    pub(crate) fn key(&self, name: &str, pos: usize) -> Path {
        let text = if self.text.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.text)
        };
        Path {
            text,
            order: self.child_order(pos),
        }
    }

    /// Element `i` of this list.
    pub(crate) fn index(&self, i: usize) -> Path {
        Path {
            text: format!("{}[{i}]", self.text),
            order: self.child_order(i),
        }
    }

    /// This same path, ordered as if it sat at position `pos` inside it (used to report on a
    /// mapping at the place of one of its keys, or after all of them).
    pub(crate) fn at(&self, pos: usize) -> Path {
        Path {
            text: self.text.clone(),
            order: self.child_order(pos),
        }
    }

    /// Does this path come after `other` in the document?
    pub(crate) fn is_after(&self, other: &Path) -> bool {
        self.order > other.order
    }

    fn child_order(&self, pos: usize) -> Vec<u32> {
        let mut order = self.order.clone();
        order.push(u32::try_from(pos).unwrap_or(u32::MAX));
        order
    }
}

/// An error with its document-order key.
pub(crate) type Found = (Vec<u32>, ConfigError);

/// Collects errors with their document-order keys.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    errors: Vec<Found>,
    /// In a shared check ([`crate::SharedCheck`]): the rules that depend on the local router
    /// and node, kept with the number of errors found before them instead of being checked.
    hooks: Option<Vec<(usize, Hook)>>,
}

impl Cx {
    /// A collector for a shared check: local rules are deferred ([`Cx::defer`]).
    pub(crate) fn deferring() -> Cx {
        Cx {
            errors: Vec::new(),
            hooks: Some(Vec::new()),
        }
    }

    /// Keeps a local rule for later, at the place it would have been checked (ignored
    /// outside a shared check).
    pub(crate) fn defer(&mut self, hook: Hook) {
        let found = self.errors.len();
        if let Some(hooks) = &mut self.hooks {
            hooks.push((found, hook));
        }
    }

    /// The errors in the order they were found, with their order keys, and the deferred rules.
    pub(crate) fn into_parts(self) -> (Vec<Found>, Vec<(usize, Hook)>) {
        (self.errors, self.hooks.unwrap_or_default())
    }

    pub(crate) fn push(&mut self, at: &Path, error: ConfigError) {
        self.errors.push((at.order.clone(), error));
    }

    pub(crate) fn rule(&mut self, at: &Path, rule: impl Into<String>) {
        self.push(
            at,
            ConfigError::Rule {
                path: at.show(),
                rule: rule.into(),
            },
        );
    }

    pub(crate) fn bad_format(&mut self, at: &Path, value: &str, expected: &'static str) {
        self.push(
            at,
            ConfigError::BadFormat {
                path: at.show(),
                value: quote(value),
                expected,
            },
        );
    }

    /// All errors, first in document order first (ties keep the order they were found in).
    pub(crate) fn into_sorted(mut self) -> Vec<ConfigError> {
        self.errors.sort_by(|a, b| a.0.cmp(&b.0));
        self.errors.into_iter().map(|(_, e)| e).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A string for a one-line message: quoted, escaped, and cut after 64 characters.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}...", cut)
    } else {
        format!("{s:?}")
    }
}

/// What a value is, for "expected X, found Y".
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged {}", quote(&t.tag.to_string())),
    }
}

fn wrong_type(cx: &mut Cx, at: &Path, expected: &'static str, v: &Value) {
    cx.push(
        at,
        ConfigError::WrongType {
            path: at.show(),
            expected,
            found: describe(v),
        },
    );
}

/// The fields of one mapping, checked against the schema's list of known keys.
pub(crate) struct Fields<'a> {
    path: Path,
    len: usize,
    entries: Vec<(&'a str, usize, &'a Value)>,
}

/// Opens `v` as a mapping at `at` whose keys must all be in `known`. Unknown keys are
/// reported (at their own position) and skipped; the known ones are returned.
pub(crate) fn fields<'a>(
    cx: &mut Cx,
    at: &Path,
    v: &'a Value,
    known: &[&str],
) -> Option<Fields<'a>> {
    let Value::Mapping(map) = v else {
        wrong_type(cx, at, "a mapping", v);
        return None;
    };
    Some(fields_of(cx, at, map, known))
}

fn fields_of<'a>(cx: &mut Cx, at: &Path, map: &'a Mapping, known: &[&str]) -> Fields<'a> {
    let mut entries = Vec::new();
    for (pos, (k, v)) in map.iter().enumerate() {
        match k {
            Value::String(k) if known.contains(&k.as_str()) => entries.push((k.as_str(), pos, v)),
            other => {
                let field = match other {
                    Value::String(s) => s.clone(),
                    other => describe(other),
                };
                let field: String = field.chars().take(64).collect();
                let field = field.escape_debug().to_string();
                cx.push(
                    &at.at(pos),
                    ConfigError::UnknownField {
                        path: at.show(),
                        field,
                    },
                );
            }
        }
    }
    Fields {
        path: at.clone(),
        len: map.len(),
        entries,
    }
}

impl<'a> Fields<'a> {
    /// The field if present (even if null), with its path.
    pub(crate) fn raw(&self, name: &str) -> Option<(Path, &'a Value)> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(k, pos, v)| (self.path.key(k, *pos), *v))
    }

    /// The path of field `name`: where it is, or the end of the mapping if it is absent.
    pub(crate) fn path_of(&self, name: &str) -> Path {
        match self.raw(name) {
            Some((p, _)) => p,
            None => self.path.key(name, self.len),
        }
    }

    /// The path of the mapping itself, ordered after all its keys.
    pub(crate) fn end(&self) -> Path {
        self.path.at(self.len)
    }

    /// Is the field present with a non-null value?
    pub(crate) fn has(&self, name: &str) -> bool {
        matches!(self.raw(name), Some((_, v)) if !v.is_null())
    }

    /// A required field, read by `read`; reports it missing if absent.
    pub(crate) fn req<T>(
        &self,
        cx: &mut Cx,
        name: &str,
        read: impl FnOnce(&mut Cx, &Path, &'a Value) -> Option<T>,
    ) -> Option<T> {
        match self.raw(name) {
            Some((p, v)) => read(cx, &p, v),
            None => {
                let p = self.path_of(name);
                cx.push(&p, ConfigError::Missing { path: p.show() });
                None
            }
        }
    }

    /// An optional field, read by `read`; `default` if absent or null.
    pub(crate) fn opt<T>(
        &self,
        cx: &mut Cx,
        name: &str,
        default: T,
        read: impl FnOnce(&mut Cx, &Path, &'a Value) -> Option<T>,
    ) -> Option<T> {
        match self.raw(name) {
            Some((p, v)) if !v.is_null() => read(cx, &p, v),
            _ => Some(default),
        }
    }
}

/// A string.
pub(crate) fn string(cx: &mut Cx, at: &Path, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            wrong_type(cx, at, "a string", other);
            None
        }
    }
}

/// A non-empty string without control characters (names, free text on one line).
pub(crate) fn line(cx: &mut Cx, at: &Path, v: &Value) -> Option<String> {
    let s = string(cx, at, v)?;
    if s.trim().is_empty() {
        cx.rule(at, "must not be empty");
        return None;
    }
    if s.chars().any(char::is_control) {
        cx.bad_format(at, &s, "a single line of text");
        return None;
    }
    Some(s)
}

/// A string that `ok` accepts, else a format error naming `expected`.
pub(crate) fn formatted(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    ok: impl FnOnce(&str) -> bool,
    expected: &'static str,
) -> Option<String> {
    let s = string(cx, at, v)?;
    if ok(&s) {
        Some(s)
    } else {
        cx.bad_format(at, &s, expected);
        None
    }
}

/// `true` or `false`.
pub(crate) fn boolean(cx: &mut Cx, at: &Path, v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => {
            wrong_type(cx, at, "true or false", other);
            None
        }
    }
}

/// An integer within `min..=max`.
pub(crate) fn uint(cx: &mut Cx, at: &Path, v: &Value, min: u64, max: u64) -> Option<u64> {
    let Value::Number(n) = v else {
        wrong_type(cx, at, "an integer", v);
        return None;
    };
    let value: i128 = if let Some(u) = n.as_u64() {
        u.into()
    } else if let Some(i) = n.as_i64() {
        i.into()
    } else {
        wrong_type(cx, at, "an integer", v);
        return None;
    };
    if value < i128::from(min) {
        cx.push(
            at,
            ConfigError::BelowMinimum {
                path: at.show(),
                value,
                min: min.into(),
            },
        );
        None
    } else if value > i128::from(max) {
        cx.push(
            at,
            ConfigError::AboveMaximum {
                path: at.show(),
                value,
                max: max.into(),
            },
        );
        None
    } else {
        u64::try_from(value).ok()
    }
}

/// One of a fixed set of strings.
pub(crate) fn choice<T: Copy>(
    cx: &mut Cx,
    at: &Path,
    v: &Value,
    choices: &[(&str, T)],
    allowed: &'static str,
) -> Option<T> {
    let Value::String(s) = v else {
        wrong_type(cx, at, "a string", v);
        return None;
    };
    match choices.iter().find(|(name, _)| name == s) {
        Some((_, t)) => Some(*t),
        None => {
            cx.push(
                at,
                ConfigError::NotOneOf {
                    path: at.show(),
                    value: quote(s),
                    allowed,
                },
            );
            None
        }
    }
}

/// A list; null counts as an empty list.
pub(crate) fn list<'a>(cx: &mut Cx, at: &Path, v: &'a Value) -> Option<&'a [Value]> {
    match v {
        Value::Sequence(items) => Some(items),
        Value::Null => Some(&[]),
        other => {
            wrong_type(cx, at, "a list", other);
            None
        }
    }
}

/// A list with at least one element; `what` names an element in the message.
pub(crate) fn nonempty_list<'a>(
    cx: &mut Cx,
    at: &Path,
    v: &'a Value,
    what: &str,
) -> Option<&'a [Value]> {
    let items = list(cx, at, v)?;
    if items.is_empty() {
        cx.rule(at, format!("at least one {what} is required"));
        return None;
    }
    Some(items)
}

/// Reads every element of a list at `at` with `read`, reporting all errors; `Some` only if
/// every element was valid.
pub(crate) fn each<'a, T>(
    cx: &mut Cx,
    at: &Path,
    items: &'a [Value],
    mut read: impl FnMut(&mut Cx, &Path, &'a Value) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match read(cx, &at.index(i), item) {
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Tracks values that must be unique and reports the second occurrence of one.
pub(crate) struct Unique {
    what: &'static str,
    /// Each value seen, with the path of its first occurrence (a map: an authority of
    /// thousands of routers must not cost a scan per name).
    seen: HashMap<String, String>,
}

impl Unique {
    pub(crate) fn new(what: &'static str) -> Unique {
        Unique {
            what,
            seen: HashMap::new(),
        }
    }

    /// A string at `at` that `ok` accepts (else a format error naming `expected`) and that no
    /// earlier sibling used (else a duplicate error): the rule of every `name` field.
    pub(crate) fn name(
        &mut self,
        cx: &mut Cx,
        at: &Path,
        v: &Value,
        ok: impl FnOnce(&str) -> bool,
        expected: &'static str,
    ) -> Option<String> {
        let n = formatted(cx, at, v, ok, expected)?;
        self.check(cx, at, n.clone(), &quote(&n)).then_some(n)
    }

    /// Records `key` (shown as `shown`) at `at`; false (and an error) if seen before.
    pub(crate) fn check(&mut self, cx: &mut Cx, at: &Path, key: String, shown: &str) -> bool {
        if let Some(first) = self.seen.get(&key) {
            cx.push(
                at,
                ConfigError::Duplicate {
                    path: at.show(),
                    what: self.what,
                    value: shown.to_string(),
                    first: first.clone(),
                },
            );
            false
        } else {
            self.seen.insert(key, at.show());
            true
        }
    }
}

/// Lenient lookups used to resolve references even when the referenced part has errors
/// of its own: these never report anything.
pub(crate) mod raw {
    use serde_norway::Value;

    pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        match v {
            Value::Mapping(m) => m.get(key),
            _ => None,
        }
    }

    pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        get(v, key)?.as_str()
    }

    pub(crate) fn seq_of<'a>(v: &'a Value, key: &str) -> Option<&'a [Value]> {
        get(v, key)?.as_sequence().map(Vec::as_slice)
    }
}
