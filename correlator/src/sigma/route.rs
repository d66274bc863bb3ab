//! Routing by log source, shared by every engine.
//!
//! A Sigma rule applies to an event only when each log source attribute the rule sets
//! (`product`, `category`, `service`) equals the event's, ignoring ASCII case; attributes the
//! rule leaves out match anything. Rules are bucketed by their exact (product, category,
//! service) triple; an event with attributes (p, c, s) can only meet the buckets whose key
//! uses, per dimension, either "unset" or the event's value: at most 2 x 2 x 2 = 8 buckets,
//! found with borrowed-key hash lookups (no allocation for lower-case event attributes).
//!
//! One refinement from Sigma's taxonomy: a category that is a sub-category of a broader one
//! also routes to the broader one's rules. `registry_event` (Sysmon events 12, 13 and 14)
//! covers `registry_add`, `registry_delete` (12), `registry_set` (13) and `registry_rename`
//! (14); a log carries one category, the precise one, and still meets `registry_event` rules.
//!
//! Custom log source attributes and `definition` are not used for routing.

use soc_model::LogSource;
use std::borrow::Cow;
use std::collections::HashMap;

/// A rule's routing key: its log source attributes, lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteKey {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl RouteKey {
    pub fn new(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Self {
        let norm = |s: Option<&str>| s.map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
        RouteKey { product: norm(product), category: norm(category), service: norm(service) }
    }

    pub fn of(ls: &LogSource) -> Self {
        RouteKey::new(ls.product.as_deref(), ls.category.as_deref(), ls.service.as_deref())
    }

    /// Whether a rule with this key applies to an event from `event` (the reference
    /// semantics the router implements; used by tests and assertions).
    pub fn applies_to(&self, event: &LogSource) -> bool {
        fn dim(rule: &Option<String>, ev: &Option<String>) -> bool {
            match rule {
                None => true,
                Some(r) => ev.as_deref().is_some_and(|e| e.trim().eq_ignore_ascii_case(r)),
            }
        }
        let category = match (&self.category, event.category.as_deref()) {
            (None, _) => true,
            (Some(r), Some(e)) => {
                let e = e.trim().to_ascii_lowercase();
                *r == e || broader_categories(&e).contains(&r.as_str())
            }
            (Some(_), None) => false,
        };
        dim(&self.product, &event.product) && category && dim(&self.service, &event.service)
    }
}

/// The broader Sigma categories a (lower-case) category belongs to.
pub fn broader_categories(category: &str) -> &'static [&'static str] {
    match category {
        "registry_add" | "registry_delete" | "registry_set" | "registry_rename" => &["registry_event"],
        _ => &[],
    }
}

/// One routing dimension: the slot for rules that leave it unset, and one per value.
#[derive(Debug)]
struct Dim<T> {
    unset: Option<T>,
    by_value: HashMap<String, T>,
}

impl<T> Default for Dim<T> {
    fn default() -> Self {
        Dim { unset: None, by_value: HashMap::new() }
    }
}

impl<T: Default> Dim<T> {
    fn slot(&mut self, key: Option<&str>) -> &mut T {
        match key {
            None => self.unset.get_or_insert_with(T::default),
            Some(k) => self.by_value.entry(k.to_string()).or_default(),
        }
    }
}

impl<T> Dim<T> {
    /// The unset slot, then the slot of the event's value.
    fn candidates<'a>(&'a self, value: Option<&str>) -> impl Iterator<Item = &'a T> + 'a {
        let by = value.and_then(|v| self.by_value.get(v));
        self.unset.iter().chain(by)
    }
    /// The unset slot, then the slots of the event's category and of its broader ones.
    fn category_candidates<'a>(&'a self, value: Option<&str>) -> impl Iterator<Item = &'a T> + 'a {
        let broader = value.map(broader_categories).unwrap_or_default();
        self.candidates(value).chain(broader.iter().filter_map(|b| self.by_value.get(*b)))
    }
    fn values(&self) -> impl Iterator<Item = &T> {
        self.unset.iter().chain(self.by_value.values())
    }
    fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.unset.iter_mut().chain(self.by_value.values_mut())
    }
}

/// Buckets of `T` (a per-engine rule set) keyed by [`RouteKey`].
#[derive(Debug)]
pub struct Router<T> {
    tree: Dim<Dim<Dim<Option<T>>>>,
    buckets: usize,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router { tree: Dim::default(), buckets: 0 }
    }
}

fn lower(s: Option<&str>) -> Option<Cow<'_, str>> {
    let s = s?.trim();
    if s.is_empty() {
        return None;
    }
    Some(if s.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(s.to_ascii_lowercase()) } else { Cow::Borrowed(s) })
}

impl<T> Router<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bucket for a rule key, created with `make` when absent.
    pub fn bucket_mut(&mut self, key: &RouteKey, make: impl FnOnce() -> T) -> &mut T {
        let slot = self.tree.slot(key.product.as_deref()).slot(key.category.as_deref()).slot(key.service.as_deref());
        if slot.is_none() {
            self.buckets += 1;
        }
        slot.get_or_insert_with(make)
    }

    /// The bucket of exactly this key, if any.
    pub fn get(&self, key: &RouteKey) -> Option<&T> {
        fn slot<'a, U>(d: &'a Dim<U>, k: Option<&str>) -> Option<&'a U> {
            match k {
                None => d.unset.as_ref(),
                Some(k) => d.by_value.get(k),
            }
        }
        let by_cat = slot(&self.tree, key.product.as_deref())?;
        let by_svc = slot(by_cat, key.category.as_deref())?;
        slot(by_svc, key.service.as_deref())?.as_ref()
    }

    /// The bucket of exactly this key, if any, mutably.
    pub fn get_mut(&mut self, key: &RouteKey) -> Option<&mut T> {
        fn slot<'a, U>(d: &'a mut Dim<U>, k: Option<&str>) -> Option<&'a mut U> {
            match k {
                None => d.unset.as_mut(),
                Some(k) => d.by_value.get_mut(k),
            }
        }
        let by_cat = slot(&mut self.tree, key.product.as_deref())?;
        let by_svc = slot(by_cat, key.category.as_deref())?;
        slot(by_svc, key.service.as_deref())?.as_mut()
    }

    /// The buckets whose rules apply to an event from `ls`.
    pub fn candidates(&self, ls: &LogSource) -> Vec<&T> {
        let p = lower(ls.product.as_deref());
        let c = lower(ls.category.as_deref());
        let s = lower(ls.service.as_deref());
        // The lookups borrow the lower-cased keys, so collect the (at most 8) hits.
        let mut out: Vec<&T> = Vec::with_capacity(8);
        for by_cat in self.tree.candidates(p.as_deref()) {
            for by_svc in by_cat.category_candidates(c.as_deref()) {
                for slot in by_svc.candidates(s.as_deref()) {
                    out.extend(slot.as_ref());
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.buckets
    }

    pub fn is_empty(&self) -> bool {
        self.buckets == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.tree.values().flat_map(Dim::values).flat_map(Dim::values).flatten()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.tree.values_mut().flat_map(Dim::values_mut).flat_map(Dim::values_mut).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource { product: p.map(Into::into), category: c.map(Into::into), service: s.map(Into::into) }
    }

    #[test]
    fn router_agrees_with_the_reference_semantics() {
        let vals = [None, Some("windows"), Some("linux")];
        let cats = [None, Some("process_creation"), Some("registry_set"), Some("registry_event")];
        let svcs = [None, Some("sysmon"), Some("sshd")];
        let mut keys = Vec::new();
        let mut router: Router<Vec<RouteKey>> = Router::new();
        for p in vals {
            for c in cats {
                for s in svcs {
                    let k = RouteKey::new(p, c, s);
                    router.bucket_mut(&k, Vec::new).push(k.clone());
                    keys.push(k);
                }
            }
        }
        assert_eq!(router.len(), 36);
        assert_eq!(router.iter().count(), 36);
        for p in vals {
            for c in cats {
                for s in svcs {
                    // Upper case on the event side must not matter.
                    let up = |x: Option<&str>| x.map(str::to_uppercase);
                    let ev = ls(up(p).as_deref(), up(c).as_deref(), up(s).as_deref());
                    let mut got: Vec<RouteKey> = router.candidates(&ev).into_iter().flatten().cloned().collect();
                    got.sort();
                    let mut want: Vec<RouteKey> = keys.iter().filter(|k| k.applies_to(&ev)).cloned().collect();
                    want.sort();
                    assert_eq!(got, want, "event {ev:?}");
                }
            }
        }
    }

    #[test]
    fn rule_attributes_must_all_be_present_on_the_event() {
        let k = RouteKey::new(Some("Windows"), Some("process_creation"), None);
        assert!(k.applies_to(&ls(Some("windows"), Some("process_creation"), Some("sysmon"))));
        assert!(!k.applies_to(&ls(Some("windows"), None, Some("sysmon"))));
        assert!(!k.applies_to(&ls(Some("linux"), Some("process_creation"), None)));
        assert!(RouteKey::default().applies_to(&ls(None, None, None)));
        let reg = RouteKey::new(Some("windows"), Some("registry_event"), None);
        assert!(reg.applies_to(&ls(Some("windows"), Some("registry_set"), Some("sysmon"))));
        assert!(reg.applies_to(&ls(Some("windows"), Some("Registry_Add"), Some("sysmon"))));
        assert!(!RouteKey::new(Some("windows"), Some("registry_set"), None).applies_to(&ls(
            Some("windows"),
            Some("registry_event"),
            None
        )));
    }
}
