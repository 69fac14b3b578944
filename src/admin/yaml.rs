//! Editing the operator's YAML as a tree. Keys match the way Spring binds them
//! (`bakery-defaults`, `bakery_defaults` and `bakeryDefaults` are one key); a key kiln writes is
//! written in camelCase and replaces any other spelling of itself in place, so the file never
//! holds the same setting twice.

use serde_norway::{Mapping, Value};

pub(crate) use crate::config::relaxed_key as camel;

fn same_key(key: &Value, name: &str) -> bool {
    key.as_str().is_some_and(|k| camel(k) == name)
}

/// The value under any spelling of `name`.
pub(crate) fn get<'a>(map: &'a Mapping, name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, v)| same_key(k, name) && !v.is_null())
        .map(|(_, v)| v)
}

pub(crate) fn get_mut<'a>(map: &'a mut Mapping, name: &str) -> Option<&'a mut Value> {
    map.iter_mut()
        .find(|(k, v)| same_key(k, name) && !v.is_null())
        .map(|(_, v)| v)
}

/// The mapping under `name`, its key respelled in camelCase in place, made an empty mapping
/// when it is missing or empty.
pub(crate) fn child_map<'a>(map: &'a mut Mapping, name: &str) -> &'a mut Mapping {
    let current = get(map, name).filter(|v| v.is_mapping()).cloned();
    set(
        map,
        name,
        Some(current.unwrap_or(Value::Mapping(Mapping::new()))),
    );
    let Some(Value::Mapping(m)) = get_mut(map, name) else {
        unreachable!("the key was just made a mapping")
    };
    m
}

/// The sequence under `name`, its key respelled in camelCase in place, made an empty sequence
/// when it is missing or empty.
pub(crate) fn child_seq<'a>(map: &'a mut Mapping, name: &str) -> &'a mut Vec<Value> {
    let current = get(map, name).filter(|v| v.is_sequence()).cloned();
    set(
        map,
        name,
        Some(current.unwrap_or(Value::Sequence(Vec::new()))),
    );
    let Some(Value::Sequence(s)) = get_mut(map, name) else {
        unreachable!("the key was just made a sequence")
    };
    s
}

/// Sets (`Some`) or removes (`None`) `name`, written in camelCase where its first spelling was
/// (else at the end); other spellings of it are dropped. Returns the previous value.
pub(crate) fn set(map: &mut Mapping, name: &str, value: Option<Value>) -> Option<Value> {
    let mut value = value;
    let mut old = None;
    let mut out = Mapping::with_capacity(map.len() + 1);
    for (k, v) in std::mem::take(map) {
        if !same_key(&k, name) {
            out.insert(k, v);
            continue;
        }
        if old.is_none() {
            old = Some(v).filter(|v| !v.is_null());
            if let Some(new) = value.take() {
                out.insert(Value::String(name.to_string()), new);
            }
        }
    }
    if let Some(new) = value {
        out.insert(Value::String(name.to_string()), new);
    }
    *map = out;
    old
}

/// A scalar as an operator reads it; `(unset)` for nothing.
pub(crate) fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => serde_norway::to_string(other)
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_default(),
    }
}

/// The printed list of what an edit changed.
#[derive(Debug, Default)]
pub(crate) struct Changes(pub Vec<String>);

impl Changes {
    /// Records `path: old → new` when the value changed.
    pub(crate) fn value(&mut self, path: &str, old: Option<Value>, new: Option<&Value>) {
        if old.as_ref() != new {
            let line = format!("{path}: {} → {}", text(old.as_ref()), text(new));
            self.0.push(line);
        }
    }

    /// Records a secret's change without its value: `(set)` or `(removed)`.
    pub(crate) fn secret(&mut self, path: &str, old: Option<Value>, new: Option<&Value>) {
        match (old, new) {
            (_, Some(_)) => self.0.push(format!("{path}: (set)")),
            (Some(_), None) => self.0.push(format!("{path}: (removed)")),
            (None, None) => {}
        }
    }

    /// Sets `name` in `map` and records the change under `prefix.name`.
    pub(crate) fn set(&mut self, map: &mut Mapping, prefix: &str, name: &str, new: Option<Value>) {
        let shown = new.clone();
        let old = set(map, name, new);
        self.value(&format!("{prefix}.{name}"), old, shown.as_ref());
    }
}

/// A CLI value for a string key: an empty value removes the key.
pub(crate) fn string_value(s: &str) -> Option<Value> {
    let s = s.trim();
    (!s.is_empty()).then(|| Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(yaml: &str) -> Mapping {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn setting_a_key_replaces_its_other_spellings_in_place() {
        let mut m = map("a: 1\naws-subnet-id: subnet-a\nb: 2\naws_subnet_id: subnet-x\n");
        let old = set(
            &mut m,
            "awsSubnetId",
            Some(Value::String("subnet-b".into())),
        );
        assert_eq!(text(old.as_ref()), "subnet-a");
        let out = serde_norway::to_string(&m).unwrap();
        assert_eq!(out, "a: 1\nawsSubnetId: subnet-b\nb: 2\n");
    }

    #[test]
    fn child_maps_are_found_under_any_spelling_respelled_and_created_when_missing() {
        let mut m = map("a: 0\nbakery-defaults:\n  x: 1\nb: 0\n");
        child_map(&mut m, "bakeryDefaults").insert("y".into(), 2.into());
        child_map(&mut m, "other");
        let out = serde_norway::to_string(&m).unwrap();
        assert_eq!(
            out,
            "a: 0\nbakeryDefaults:\n  x: 1\n  y: 2\nb: 0\nother: {}\n"
        );
    }

    #[test]
    fn a_secret_change_never_shows_its_value() {
        let mut c = Changes::default();
        c.secret("k", None, Some(&Value::String("hush".into())));
        c.secret("k", Some(Value::String("hush".into())), None);
        assert_eq!(c.0, vec!["k: (set)", "k: (removed)"]);
    }
}
