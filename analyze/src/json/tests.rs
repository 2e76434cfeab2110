use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::path::PathPattern;
use crate::rules::{Action, ArrayMode, Explained, PathRule, Rules, Tolerance};

fn rules_with(rules: &[(&str, Action)]) -> Rules {
    let mut r = Rules::default();
    for (p, a) in rules {
        r.add(PathRule { pattern: PathPattern::new(p).unwrap(), route: None, action: a.clone() });
    }
    r
}

/// `(kind, path, severity)` of each difference, for compact table assertions.
fn summary(diffs: &[Difference]) -> Vec<(DiffKind, String, Severity)> {
    diffs.iter().map(|d| (d.kind, d.path.clone(), d.severity)).collect()
}

fn apply(a: &Value, patch: &[Value]) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(patch.to_vec())).expect("patch deserializes");
    let mut doc = a.clone();
    json_patch::patch(&mut doc, &patch).unwrap_or_else(|e| panic!("patch {patch:?} applies to {a}: {e}"));
    doc
}

use DiffKind::*;
use Severity::*;

#[test]
fn kinds_and_severities() {
    let a = json!({"keep": 1, "gone": true, "num": 1, "str": "x", "ty": 1, "nulled": "v", "was_null": null, "o": {"deep": [1]}});
    let b = json!({"keep": 1, "num": 2, "str": "y", "ty": "1", "nulled": null, "was_null": 5, "o": {"deep": [1]}, "new": {}});
    let d = diff_json(&a, &b, &Rules::default(), None);
    assert_eq!(
        summary(&d),
        vec![
            (Removed, "/gone".into(), Breaking),
            (ValueChanged, "/num".into(), Changed),
            (ValueChanged, "/str".into(), Changed),
            (TypeChanged, "/ty".into(), Breaking),
            (TypeChanged, "/nulled".into(), Breaking),
            (TypeChanged, "/was_null".into(), Changed),
            (Added, "/new".into(), Additive),
        ]
    );
    assert_eq!(d[0].baseline, Some(json!(true)));
    assert_eq!(d[0].canary, None);
    assert_eq!(d[6].canary, Some(json!({})));
    assert_eq!(Summary::of(&d), Summary { breaking: 3, changed: 3, additive: 1, explained: 0 });
}

#[test]
fn equal_documents_have_no_differences() {
    let a = json!({"a": [1, {"b": null}], "c": "d", "e": 1.5});
    let reordered = json!({"e": 1.5, "c": "d", "a": [1, {"b": null}]});
    assert!(diff_json(&a, &reordered, &Rules::default(), None).is_empty());
    assert!(json_patch(&a, &reordered, &Rules::default(), None).is_empty());
}

#[test]
fn int_and_float_differ() {
    let d = diff_json(&json!({"n": 1}), &json!({"n": 1.0}), &Rules::default(), None);
    assert_eq!(summary(&d), vec![(ValueChanged, "/n".into(), Changed)]);
}

#[test]
fn root_scalars_and_pointer_escaping() {
    let d = diff_json(&json!(1), &json!("1"), &Rules::default(), None);
    assert_eq!(summary(&d), vec![(TypeChanged, String::new(), Breaking)]);
    let d = diff_json(&json!({"a/b": {"c~d": 1}}), &json!({"a/b": {"c~d": 2}}), &Rules::default(), None);
    assert_eq!(d[0].path, "/a~1b/c~0d");
}

#[test]
fn list_alignment_inserts_one_difference() {
    let a = json!([{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]);
    let b = json!([{"id": 1}, {"id": 9}, {"id": 2}, {"id": 3}, {"id": 4}]);
    let d = diff_json(&a, &b, &Rules::default(), None);
    assert_eq!(summary(&d), vec![(Added, "/1".into(), Changed)]);
    let d = diff_json(&b, &a, &Rules::default(), None);
    assert_eq!(summary(&d), vec![(Removed, "/1".into(), Changed)]);
}

#[test]
fn list_alignment_pairs_changed_elements() {
    let a = json!({"xs": [1, 2, 3, 4, 5]});
    let b = json!({"xs": [0, 1, 2, 30, 4]});
    let d = diff_json(&a, &b, &Rules::default(), None);
    // 0 inserted at the front, 3 -> 30 changed in place (baseline index 2), 5 removed at the end.
    assert_eq!(
        summary(&d),
        vec![
            (Added, "/xs/0".into(), Changed),
            (ValueChanged, "/xs/2".into(), Changed),
            (Removed, "/xs/4".into(), Changed)
        ]
    );
    assert_eq!(apply(&a, &json_patch(&a, &b, &Rules::default(), None)), b);
}

#[test]
fn nested_change_inside_shifted_element_patches_correctly() {
    let a = json!([{"k": 1, "v": "a"}, {"k": 2, "v": "b"}, {"k": 3, "v": "c"}]);
    let b = json!([{"k": 0}, {"k": 1, "v": "a"}, {"k": 2, "v": "B"}, {"k": 3, "v": "c"}]);
    let (d, p) = diff_json_with_patch(&a, &b, &Rules::default(), None);
    assert_eq!(summary(&d), vec![(Added, "/0".into(), Changed), (ValueChanged, "/1/v".into(), Changed)]);
    assert_eq!(apply(&a, &p), b);
    // The patch addresses the element where it is once the insertion happened.
    assert!(p.iter().any(|op| op["path"] == "/2/v"), "{p:?}");
}

#[test]
fn over_cap_arrays_compare_by_index() {
    let mut rules = Rules::default();
    rules.max_lcs_len = 4;
    let a = json!([1, 2, 3, 4, 5]);
    let b = json!([0, 1, 2, 3, 4, 5, 6]);
    let (d, p) = diff_json_with_patch(&a, &b, &rules, None);
    assert_eq!(d[0].kind, ArrayLength);
    assert_eq!((d[0].baseline.clone(), d[0].canary.clone()), (Some(json!(5)), Some(json!(7))));
    assert_eq!(d.iter().filter(|d| d.kind == ValueChanged).count(), 5, "shifted elements differ by index");
    assert_eq!(apply(&a, &p), b);
    let (_, p) = diff_json_with_patch(&b, &a, &rules, None);
    assert_eq!(apply(&b, &p), a);
}

#[test]
// Times a synchronous diff, so the OS clock is the right one.
#[allow(clippy::disallowed_methods)]
fn huge_arrays_stay_fast() {
    let a = Value::Array((0..200_000).map(Value::from).collect());
    let b = Value::Array((0..200_000).rev().map(Value::from).collect());
    let start = std::time::Instant::now();
    let d = diff_json(&a, &b, &Rules::default(), None);
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    assert_eq!(d.len(), 200_000, "over the cap, elements are compared by index");
    assert!(d.iter().all(|d| d.kind == ValueChanged));
    // Under the cap an adversarial reversal is still bounded by Myers' heuristics.
    let a = Value::Array((0..5_000).map(Value::from).collect());
    let b = Value::Array((0..5_000).rev().map(Value::from).collect());
    let start = std::time::Instant::now();
    let (_, p) = diff_json_with_patch(&a, &b, &Rules::default(), None);
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    assert_eq!(apply(&a, &p), b);
}

#[test]
fn deep_documents_do_not_overflow_the_stack() {
    // serde_json refuses to parse past 128 levels, but a caller can build deeper values.
    fn nest(depth: usize, leaf: i64) -> Value {
        let mut v = json!(leaf);
        for _ in 0..depth {
            // Not `json!`: it would serialise `v` recursively to embed it.
            let mut m = serde_json::Map::new();
            m.insert("a".to_owned(), Value::Array(vec![v]));
            v = Value::Object(m);
        }
        v
    }
    let depth = 50_000;
    let (a, b) = (nest(depth, 1), nest(depth, 2));
    let d = diff_json(&a, &b, &Rules::default(), None);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path.len(), depth * "/a/0".len());
    assert!(json_eq(&a, &a));
    assert!(!json_eq(&a, &b));
    // serde_json's own drop recurses; leak these instead of dropping them on a test thread.
    std::mem::forget((a, b, d));
}

#[test]
fn ignore_rules() {
    let a = json!({"meta": {"ts": 1, "host": "a"}, "items": [{"id": 1, "at": 5}, {"id": 2, "at": 6}], "x": {"at": 1}});
    let b = json!({"meta": {"ts": 2, "host": "b"}, "items": [{"id": 1, "at": 7}, {"id": 2, "at": 8}], "x": {"at": 2}});
    let cases: &[(&str, &[&str])] = &[
        ("/meta", &["/items/0/at", "/items/1/at", "/x/at"]),
        ("/meta/*", &["/items/0/at", "/items/1/at", "/x/at"]),
        ("/meta/ts", &["/meta/host", "/items/0/at", "/items/1/at", "/x/at"]),
        ("/items/*/at", &["/meta/ts", "/meta/host", "/x/at"]),
        ("/items/1/at", &["/meta/ts", "/meta/host", "/items/0/at", "/x/at"]),
        ("/**/at", &["/meta/ts", "/meta/host"]),
        ("/**", &[]),
        ("", &[]),
    ];
    for (pattern, want) in cases {
        let rules = rules_with(&[(pattern, Action::Ignore)]);
        let got: Vec<String> = diff_json(&a, &b, &rules, None).into_iter().map(|d| d.path).collect();
        assert_eq!(got, *want, "ignore {pattern}");
    }
}

#[test]
fn ignore_covers_added_and_removed() {
    let rules = rules_with(&[("/debug", Action::Ignore)]);
    assert!(diff_json(&json!({"debug": 1}), &json!({}), &rules, None).is_empty());
    assert!(diff_json(&json!({}), &json!({"debug": 1}), &rules, None).is_empty());
    assert!(json_patch(&json!({}), &json!({"debug": 1}), &rules, None).is_empty());
}

#[test]
fn tolerance_rules() {
    let cases: &[(Tolerance, f64, f64, bool)] = &[
        (Tolerance::absolute(0.01), 1.0, 1.005, true),
        (Tolerance::absolute(0.01), 1.0, 1.02, false),
        (Tolerance::absolute(0.5), 10.0, 10.5, true),
        (Tolerance::relative(0.01), 100.0, 100.9, true),
        (Tolerance::relative(0.01), 100.0, 102.0, false),
        (Tolerance::relative(0.01), 0.0, 0.001, false),
        (Tolerance { absolute: 0.01, relative: 0.01 }, 0.0, 0.001, true),
        (Tolerance { absolute: 0.01, relative: 0.01 }, 1000.0, 1009.0, true),
        (Tolerance::absolute(0.0), 1.0, 1.0, true),
    ];
    for (t, x, y, within) in cases {
        let rules = rules_with(&[("/n", Action::Tolerance(*t))]);
        let d = diff_json(&json!({"n": x, "m": x}), &json!({"n": y, "m": x}), &rules, None);
        assert_eq!(d.is_empty(), *within, "{t:?} {x} vs {y}");
    }
    // Integers are compared numerically under a tolerance, and 1 equals 1.0 there.
    let rules = rules_with(&[("/**", Action::Tolerance(Tolerance::absolute(0.0)))]);
    assert!(diff_json(&json!({"n": 1}), &json!({"n": 1.0}), &rules, None).is_empty());
    // A tolerance never hides a type change.
    let rules = rules_with(&[("/n", Action::Tolerance(Tolerance::absolute(100.0)))]);
    assert_eq!(diff_json(&json!({"n": 1}), &json!({"n": "1"}), &rules, None)[0].kind, TypeChanged);
    // The default tolerance applies everywhere without a rule.
    let mut rules = Rules::default();
    rules.tolerance = Some(Tolerance::absolute(0.1));
    assert!(diff_json(&json!([1.0, {"x": 2.0}]), &json!([1.05, {"x": 2.09}]), &rules, None).is_empty());
}

#[test]
fn presence_and_type_only() {
    let a = json!({"token": "abc", "stats": {"n": 1}, "ver": 1});
    let b = json!({"token": "xyz", "stats": {"n": 2, "m": 3}, "ver": 2});
    let rules =
        rules_with(&[("/token", Action::PresenceOnly), ("/stats", Action::TypeOnly), ("/ver", Action::TypeOnly)]);
    assert!(diff_json(&a, &b, &rules, None).is_empty());
    // Presence-only still reports a missing field; type-only still reports a type change.
    let c = json!({"stats": [1], "ver": "2"});
    let d = diff_json(&a, &c, &rules, None);
    assert_eq!(
        summary(&d),
        vec![
            (Removed, "/token".into(), Breaking),
            (TypeChanged, "/stats".into(), Breaking),
            (TypeChanged, "/ver".into(), Breaking)
        ]
    );
}

#[test]
fn precedence_ignore_beats_everything_last_tolerance_wins() {
    let rules = rules_with(&[("/n", Action::TypeOnly), ("/n", Action::Ignore)]);
    assert!(diff_json(&json!({"n": 1}), &json!({"n": "x"}), &rules, None).is_empty());
    let rules = rules_with(&[
        ("/**", Action::Tolerance(Tolerance::absolute(10.0))),
        ("/n", Action::Tolerance(Tolerance::absolute(0.1))),
    ]);
    let d = diff_json(&json!({"n": 1, "m": 1}), &json!({"n": 2, "m": 2}), &rules, None);
    assert_eq!(summary(&d), vec![(ValueChanged, "/n".into(), Changed)]);
}

#[test]
fn array_modes() {
    let a = json!([1, 2, 2, 3]);
    let cases: &[(ArrayMode, Value, Vec<(DiffKind, &str)>)] = &[
        (
            ArrayMode::List,
            json!([3, 2, 2, 1]),
            vec![(Added, "/0"), (Added, "/1"), (Added, "/2"), (Removed, "/1"), (Removed, "/2"), (Removed, "/3")],
        ),
        (ArrayMode::Set, json!([3, 2, 1]), vec![]),
        (ArrayMode::Set, json!([3, 1, 1, 1]), vec![(Removed, "/1"), (Removed, "/2")]),
        (ArrayMode::Set, json!([4, 3, 2, 1]), vec![(Added, "/0")]),
        (ArrayMode::Multiset, json!([3, 2, 1, 2]), vec![]),
        (ArrayMode::Multiset, json!([3, 2, 1]), vec![(Removed, "/2")]),
        (ArrayMode::Multiset, json!([2, 3, 2, 1, 2]), vec![(Added, "/4")]),
    ];
    for (mode, b, want) in cases {
        let rules = rules_with(&[("", Action::Array(mode.clone()))]);
        let (d, p) = diff_json_with_patch(&a, b, &rules, None);
        let got: Vec<(DiffKind, &str)> = d.iter().map(|d| (d.kind, d.path.as_str())).collect();
        if *mode != ArrayMode::List {
            assert_eq!(got, *want, "{mode:?} {b}");
        }
        // Patched baseline equals the canary in this mode.
        assert!(diff_json(&apply(&a, &p), b, &rules, None).is_empty(), "{mode:?} {b}: {p:?}");
    }
}

#[test]
fn keyed_arrays() {
    let rules = rules_with(&[("/users", Action::Array(ArrayMode::Keyed("id".into())))]);
    let a = json!({"users": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}, "loose"]});
    let b = json!({"users": [{"id": 3, "name": "c"}, {"id": 1, "name": "A"}, {"id": 4, "name": "d"}, "loose"]});
    let (d, p) = diff_json_with_patch(&a, &b, &rules, None);
    assert_eq!(
        summary(&d),
        vec![
            (ValueChanged, "/users/0/name".into(), Changed),
            (Removed, "/users/1".into(), Changed),
            (Added, "/users/2".into(), Changed)
        ]
    );
    assert!(diff_json(&apply(&a, &p), &b, &rules, None).is_empty(), "{p:?}");
}

#[test]
fn array_mode_applies_only_where_matched() {
    let rules = rules_with(&[("/tags", Action::Array(ArrayMode::Set))]);
    let a = json!({"tags": ["a", "b"], "order": ["a", "b"]});
    let b = json!({"tags": ["b", "a"], "order": ["b", "a"]});
    let d = diff_json(&a, &b, &rules, None);
    assert!(d.iter().all(|d| d.path.starts_with("/order")), "{d:?}");
    assert!(!d.is_empty());
}

#[test]
fn route_scoped_rules() {
    let mut rules = Rules::default();
    rules.add(PathRule {
        pattern: PathPattern::new("/price").unwrap(),
        route: Some(PathPattern::new("/products/*").unwrap()),
        action: Action::Ignore,
    });
    let (a, b) = (json!({"price": 1}), json!({"price": 2}));
    assert!(diff_json(&a, &b, &rules, Some("/products/{id}")).is_empty());
    assert_eq!(diff_json(&a, &b, &rules, Some("/cart")).len(), 1);
    assert_eq!(diff_json(&a, &b, &rules, None).len(), 1, "scoped rules need a route");
}

#[test]
fn explained_differences_are_marked() {
    let mut rules = Rules::default();
    rules.explain(Explained {
        pattern: PathPattern::new("/price").unwrap(),
        route: Some(PathPattern::new("/products/{id}").unwrap()),
        reason: "rounding changed".into(),
    });
    let (a, b) = (json!({"price": 1, "n": 1}), json!({"price": 2, "n": 2}));
    let d = diff_json(&a, &b, &rules, Some("/products/{id}"));
    assert_eq!(d[0].explained.as_deref(), Some("rounding changed"));
    assert_eq!(d[1].explained, None);
    assert_eq!(Summary::of(&d), Summary { breaking: 0, changed: 1, additive: 0, explained: 1 });
    assert!(diff_json(&a, &b, &rules, Some("/other")).iter().all(|d| d.explained.is_none()));
}

#[test]
fn field_normalises_indices() {
    let d = diff_json(
        &json!({"items": [{"p": 1}, {"p": 2}]}),
        &json!({"items": [{"p": 1}, {"p": 3}]}),
        &Rules::default(),
        None,
    );
    assert_eq!(d[0].path, "/items/1/p");
    assert_eq!(d[0].field, "/items/*/p");
}

#[test]
fn serialises_plainly() {
    let d = diff_json(&json!({"a": 1}), &json!({"a": 2, "b": null}), &Rules::default(), None);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v,
        json!([
            {"path": "/a", "field": "/a", "kind": "value_changed", "baseline": 1, "canary": 2, "severity": "changed"},
            {"path": "/b", "field": "/b", "kind": "added", "canary": null, "severity": "additive"}
        ])
    );
}

// ---- properties -------------------------------------------------------------------------------

/// Small alphabets so that two random documents share structure and differ in interesting ways.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        prop_oneof![Just(0.5f64), Just(-2.25), Just(1e10)].prop_map(Value::from),
        prop_oneof![Just("a"), Just("b"), Just("~/")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..7).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![Just("a"), Just("b"), Just("c"), Just("d/e"), Just("~")],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// A document and a lightly edited copy of it, plus unrelated pairs.
fn arb_pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![
        (arb_json(), arb_json()),
        (arb_json(), prop::collection::vec((any::<u32>(), arb_json()), 0..4)).prop_map(|(a, edits)| {
            let mut b = a.clone();
            for (at, v) in edits {
                edit(&mut b, at, v);
            }
            (a, b)
        }),
    ]
}

/// Replaces, inserts or deletes somewhere in `doc`, chosen by `at`.
fn edit(doc: &mut Value, at: u32, v: Value) {
    let (step, rest) = (at % 4, at / 4);
    match doc {
        Value::Array(xs) if !xs.is_empty() && step != 0 => {
            let i = rest as usize % xs.len();
            match step {
                1 => xs.insert(i, v),
                2 => {
                    xs.remove(i);
                }
                _ => edit(&mut xs[i], rest, v),
            }
        }
        Value::Object(m) if !m.is_empty() && step != 0 => {
            let k = m.keys().nth(rest as usize % m.len()).cloned().unwrap_or_default();
            match step {
                1 => {
                    m.insert(format!("{k}+"), v);
                }
                2 => {
                    m.remove(&k);
                }
                _ => edit(m.get_mut(&k).expect("key exists"), rest, v),
            }
        }
        _ => *doc = v,
    }
}

fn number_delta(d: &Difference) -> Option<f64> {
    match (&d.baseline, &d.canary) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => Some((x.as_f64()? - y.as_f64()?).abs()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patch_turns_baseline_into_canary((a, b) in arb_pair()) {
        let (d, p) = diff_json_with_patch(&a, &b, &Rules::default(), None);
        prop_assert_eq!(apply(&a, &p), b.clone());
        prop_assert_eq!(d.is_empty(), a == b);
        prop_assert_eq!(d, diff_json(&a, &b, &Rules::default(), None));
    }

    #[test]
    fn patch_is_valid_when_arrays_fall_back_to_index_order((a, b) in arb_pair()) {
        let mut rules = Rules::default();
        rules.max_lcs_len = 2;
        prop_assert_eq!(apply(&a, &json_patch(&a, &b, &rules, None)), b);
    }

    #[test]
    fn unordered_patches_reach_equality((a, b) in arb_pair(), mode in prop_oneof![Just(ArrayMode::Set), Just(ArrayMode::Multiset), Just(ArrayMode::Keyed("a".into()))]) {
        let rules = rules_with(&[("/**", Action::Array(mode))]);
        let patched = apply(&a, &json_patch(&a, &b, &rules, None));
        prop_assert!(diff_json(&patched, &b, &rules, None).is_empty());
    }

    #[test]
    fn a_document_equals_itself(a in arb_json()) {
        prop_assert!(diff_json(&a, &a, &Rules::default(), None).is_empty());
        prop_assert!(json_patch(&a, &a, &Rules::default(), None).is_empty());
    }

    #[test]
    fn ignore_removes_exactly_what_it_matches((a, b) in arb_pair(), pattern in prop_oneof![
        Just("/a"), Just("/*"), Just("/*/b"), Just("/**/c"), Just("/a/**"), Just("/0"), Just("/*/*"),
    ]) {
        let all = diff_json(&a, &b, &Rules::default(), None);
        let ignored = diff_json(&a, &b, &rules_with(&[(pattern, Action::Ignore)]), None);
        let p = PathPattern::new(pattern).unwrap();
        // A difference survives unless its path or one of its ancestors matches the pattern.
        let expected: Vec<Difference> = all.into_iter().filter(|d| {
            let tokens = crate::path::split_pointer(&d.path).unwrap();
            !(0..=tokens.len()).any(|n| {
                let mut prefix = String::new();
                for t in &tokens[..n] { crate::path::push_token(&mut prefix, t); }
                p.matches_pointer(&prefix)
            })
        }).collect();
        prop_assert_eq!(ignored, expected);
    }

    #[test]
    fn tolerance_removes_exactly_small_numeric_changes((a, b) in arb_pair(), tol in prop_oneof![Just(0.5f64), Just(1.0), Just(3.0)]) {
        let all = diff_json(&a, &b, &Rules::default(), None);
        let tolerated = diff_json(&a, &b, &rules_with(&[("/**", Action::Tolerance(Tolerance::absolute(tol)))]), None);
        let expected: Vec<Difference> = all.into_iter()
            .filter(|d| !(d.kind == ValueChanged && number_delta(d).is_some_and(|x| x <= tol)))
            .collect();
        prop_assert_eq!(tolerated, expected);
    }
}
