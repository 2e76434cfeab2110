//! The one walk behind every JSON comparison. Work items sit on an explicit stack, each with its
//! depth and last path segment; popping one truncates the shared path to its parent and pushes
//! its segment, so the path is always exact without recursion or per-node allocation.
//!
//! Patch operations are produced in an order that is valid when applied one after another:
//! list arrays are patched front to back with indices in "already patched" coordinates
//! (`Seg::Index::patch`), unordered arrays compare matched elements first, then remove from the
//! back, then append.

use std::collections::HashMap;

use serde_json::{Map, Value};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::value::{canonical_hash, json_eq, same_type, scalar_eq};
use super::{DiffKind, Difference, Severity};
use crate::path::{Seg, display_pointer, field_pointer, patch_pointer};
use crate::rules::{ArrayMode, NodeRule, Rules, Scoped};

enum Frame<'v> {
    /// Compare two values present on both sides.
    Compare { depth: usize, seg: Option<Seg<'v>>, a: &'v Value, b: &'v Value },
    /// A baseline-only value: a difference, and (when `patch`) a remove operation.
    Removed { depth: usize, seg: Seg<'v>, value: &'v Value, patch: bool },
    /// A canary-only value: a difference and an add operation.
    Added { depth: usize, seg: Seg<'v>, value: &'v Value },
    /// A remove operation with no difference of its own (reported by a `Removed { patch: false }`).
    PatchRemove { depth: usize, seg: Seg<'v> },
}

pub(super) struct Walker<'v, 'r> {
    scoped: Scoped<'r>,
    no_rules: bool,
    want_patch: bool,
    stack: Vec<Frame<'v>>,
    path: Vec<Seg<'v>>,
    diffs: Vec<Difference>,
    patch: Vec<Value>,
    hash_buf: Vec<u8>,
}

impl<'v, 'r> Walker<'v, 'r> {
    pub(super) fn new(rules: &'r Rules, route: Option<&str>, want_patch: bool) -> Self {
        let scoped = rules.scoped(route);
        Self {
            no_rules: scoped.is_trivial(),
            scoped,
            want_patch,
            stack: Vec::new(),
            path: Vec::new(),
            diffs: Vec::new(),
            patch: Vec::new(),
            hash_buf: Vec::new(),
        }
    }

    pub(super) fn run(mut self, a: &'v Value, b: &'v Value) -> (Vec<Difference>, Vec<Value>) {
        self.stack.push(Frame::Compare { depth: 0, seg: None, a, b });
        while let Some(frame) = self.stack.pop() {
            match frame {
                Frame::Compare { depth, seg, a, b } => {
                    self.enter(depth, seg);
                    self.compare(depth, a, b);
                }
                Frame::Removed { depth, seg, value, patch } => {
                    self.enter(depth, Some(seg));
                    if !self.ignored() {
                        let severity = if matches!(seg, Seg::Key(_)) { Severity::Breaking } else { Severity::Changed };
                        self.emit(DiffKind::Removed, Some(value), None, severity);
                        if patch {
                            self.op("remove", None);
                        }
                    }
                }
                Frame::Added { depth, seg, value } => {
                    self.enter(depth, Some(seg));
                    if !self.ignored() {
                        let severity = if matches!(seg, Seg::Key(_)) { Severity::Additive } else { Severity::Changed };
                        self.emit(DiffKind::Added, None, Some(value), severity);
                        self.op("add", Some(value));
                    }
                }
                Frame::PatchRemove { depth, seg } => {
                    self.enter(depth, Some(seg));
                    if !self.ignored() {
                        self.op("remove", None);
                    }
                }
            }
        }
        (self.diffs, self.patch)
    }

    fn enter(&mut self, depth: usize, seg: Option<Seg<'v>>) {
        self.path.truncate(depth.saturating_sub(1));
        if let Some(seg) = seg {
            self.path.push(seg);
        }
    }

    fn ignored(&self) -> bool {
        !self.no_rules && self.scoped.ignored(&self.path)
    }

    fn node(&self) -> NodeRule<'r> {
        self.scoped.node(&self.path)
    }

    fn compare(&mut self, depth: usize, a: &'v Value, b: &'v Value) {
        let node = self.node();
        if node.ignore || node.presence_only {
            return;
        }
        if !same_type(a, b) {
            // A value that became null may break a client; a null that became a value may not.
            let severity = if b.is_null() || !a.is_null() { Severity::Breaking } else { Severity::Changed };
            self.emit(DiffKind::TypeChanged, Some(a), Some(b), severity);
            self.op("replace", Some(b));
            return;
        }
        if node.type_only {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => self.objects(depth, x, y),
            (Value::Array(x), Value::Array(y)) => match node.array {
                ArrayMode::List => self.list(depth, x, y),
                mode => self.unordered(depth, x, y, mode),
            },
            (Value::Number(x), Value::Number(y)) => {
                let equal = match (node.tolerance, x.as_f64(), y.as_f64()) {
                    (Some(t), Some(p), Some(q)) => t.within(p, q),
                    _ => x == y,
                };
                if !equal {
                    self.changed(a, b);
                }
            }
            _ => {
                if a != b {
                    self.changed(a, b);
                }
            }
        }
    }

    fn changed(&mut self, a: &Value, b: &Value) {
        self.emit(DiffKind::ValueChanged, Some(a), Some(b), Severity::Changed);
        self.op("replace", Some(b));
    }

    /// Pushes a comparison of two children, unless they are equal scalars (which no rule can make
    /// differ), to keep the stack small on flat documents.
    fn push_compare(frames: &mut Vec<Frame<'v>>, depth: usize, seg: Seg<'v>, a: &'v Value, b: &'v Value) {
        if scalar_eq(a, b) != Some(true) {
            frames.push(Frame::Compare { depth, seg: Some(seg), a, b });
        }
    }

    fn objects(&mut self, depth: usize, a: &'v Map<String, Value>, b: &'v Map<String, Value>) {
        let start = self.stack.len();
        let d = depth + 1;
        let mut matched = 0;
        for (k, va) in a {
            match b.get(k) {
                Some(vb) => {
                    matched += 1;
                    Self::push_compare(&mut self.stack, d, Seg::Key(k), va, vb);
                }
                None => self.stack.push(Frame::Removed { depth: d, seg: Seg::Key(k), value: va, patch: true }),
            }
        }
        // b has a key a lacks only if some of its keys went unmatched.
        if matched < b.len() {
            for (k, vb) in b {
                if !a.contains_key(k) {
                    self.stack.push(Frame::Added { depth: d, seg: Seg::Key(k), value: vb });
                }
            }
        }
        self.stack[start..].reverse();
    }

    fn list(&mut self, depth: usize, a: &'v [Value], b: &'v [Value]) {
        let (la, lb) = (a.len(), b.len());
        let d = depth + 1;
        let start = self.stack.len();
        if la > self.scoped.max_lcs_len() || lb > self.scoped.max_lcs_len() {
            self.by_index(d, a, b);
            self.stack[start..].reverse();
            return;
        }
        if la == 1 && lb == 1 {
            // Nothing to align. Skipping the equality check also keeps deeply nested
            // one-element arrays linear instead of quadratic.
            Self::push_compare(&mut self.stack, d, Seg::index(0, 0), &a[0], &b[0]);
            return;
        }
        let min = la.min(lb);
        let prefix = (0..min).take_while(|&i| json_eq(&a[i], &b[i])).count();
        let suffix = (0..min - prefix).take_while(|&j| json_eq(&a[la - 1 - j], &b[lb - 1 - j])).count();
        let (ma, mb) = (&a[prefix..la - suffix], &b[prefix..lb - suffix]);
        let ops = match (ma.len(), mb.len()) {
            (0, 0) => return,
            (0, n) => vec![DiffOp::Insert { old_index: 0, new_index: 0, new_len: n }],
            (n, 0) => vec![DiffOp::Delete { old_index: 0, old_len: n, new_index: 0 }],
            (1, 1) => vec![DiffOp::Replace { old_index: 0, old_len: 1, new_index: 0, new_len: 1 }],
            _ => {
                let ha: Vec<u64> = ma.iter().map(|v| canonical_hash(v, &mut self.hash_buf)).collect();
                let hb: Vec<u64> = mb.iter().map(|v| canonical_hash(v, &mut self.hash_buf)).collect();
                capture_diff_slices(Algorithm::Myers, &ha, &hb)
            }
        };
        for op in ops {
            match op {
                DiffOp::Equal { old_index, new_index, len } => {
                    for k in 0..len {
                        let (i, j) = (prefix + old_index + k, prefix + new_index + k);
                        // Equal hashes; confirm, so a hash collision is still compared.
                        if !json_eq(&a[i], &b[j]) {
                            self.stack.push(Frame::Compare {
                                depth: d,
                                seg: Some(Seg::index(i, j)),
                                a: &a[i],
                                b: &b[j],
                            });
                        }
                    }
                }
                DiffOp::Delete { old_index, old_len, new_index } => {
                    let at = prefix + new_index;
                    for k in 0..old_len {
                        let i = prefix + old_index + k;
                        self.stack.push(Frame::Removed { depth: d, seg: Seg::index(i, at), value: &a[i], patch: true });
                    }
                }
                DiffOp::Insert { new_index, new_len, .. } => {
                    for k in 0..new_len {
                        let j = prefix + new_index + k;
                        self.stack.push(Frame::Added { depth: d, seg: Seg::index(j, j), value: &b[j] });
                    }
                }
                DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    let (oi, ni) = (prefix + old_index, prefix + new_index);
                    let paired = old_len.min(new_len);
                    for k in 0..paired {
                        Self::push_compare(&mut self.stack, d, Seg::index(oi + k, ni + k), &a[oi + k], &b[ni + k]);
                    }
                    for k in paired..old_len {
                        let seg = Seg::index(oi + k, ni + paired);
                        self.stack.push(Frame::Removed { depth: d, seg, value: &a[oi + k], patch: true });
                    }
                    for k in paired..new_len {
                        self.stack.push(Frame::Added { depth: d, seg: Seg::index(ni + k, ni + k), value: &b[ni + k] });
                    }
                }
            }
        }
        self.stack[start..].reverse();
    }

    /// Arrays too long to align: element `i` against element `i`, and one `array_length`
    /// difference for the tail. The tail's patch operations are emitted now; they touch only
    /// indices past the compared ones, so the order is still valid.
    fn by_index(&mut self, d: usize, a: &'v [Value], b: &'v [Value]) {
        let (la, lb) = (a.len(), b.len());
        for i in 0..la.min(lb) {
            Self::push_compare(&mut self.stack, d, Seg::index(i, i), &a[i], &b[i]);
        }
        if la == lb {
            return;
        }
        self.emit(DiffKind::ArrayLength, Some(&Value::from(la)), Some(&Value::from(lb)), Severity::Changed);
        if !self.want_patch {
            return;
        }
        let base = patch_pointer(&self.path);
        for i in (lb..la).rev() {
            self.patch.push(op_value("remove", format!("{base}/{i}"), None));
        }
        for (j, v) in b.iter().enumerate().skip(la) {
            self.patch.push(op_value("add", format!("{base}/{j}"), Some(v)));
        }
    }

    /// Set, multiset and keyed arrays: match elements regardless of order, compare matched
    /// elements, report the rest as removed and added.
    fn unordered(&mut self, depth: usize, a: &'v [Value], b: &'v [Value], mode: &ArrayMode) {
        let d = depth + 1;
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        let mut unmatched_a: Vec<usize> = Vec::new();
        let mut unmatched_b: Vec<usize> = Vec::new();
        match mode {
            ArrayMode::Set => {
                let in_a = self.index_by_hash(a, Some);
                let in_b = self.index_by_hash(b, Some);
                let contains = |index: &HashMap<u64, Vec<usize>>, side: &[Value], h: u64, v: &Value| {
                    index.get(&h).is_some_and(|is| is.iter().any(|&i| json_eq(&side[i], v)))
                };
                for (i, v) in a.iter().enumerate() {
                    if !contains(&in_b, b, self.hash(v), v) {
                        unmatched_a.push(i);
                    }
                }
                for (j, v) in b.iter().enumerate() {
                    if !contains(&in_a, a, self.hash(v), v) {
                        unmatched_b.push(j);
                    }
                }
            }
            ArrayMode::Multiset => self.match_by(a, b, Some, &mut pairs, &mut unmatched_a, &mut unmatched_b),
            ArrayMode::Keyed(key) => {
                // Elements with the key match by it; the rest match by whole value.
                let keyed = |v: &'v Value| v.as_object().and_then(|o| o.get(key.as_str()));
                let (ka, ra): (Vec<usize>, Vec<usize>) = (0..a.len()).partition(|&i| keyed(&a[i]).is_some());
                let (kb, rb): (Vec<usize>, Vec<usize>) = (0..b.len()).partition(|&j| keyed(&b[j]).is_some());
                self.match_subsets(a, b, &ka, &kb, keyed, &mut pairs, &mut unmatched_a, &mut unmatched_b);
                self.match_subsets(a, b, &ra, &rb, Some, &mut pairs, &mut unmatched_a, &mut unmatched_b);
                pairs.sort_unstable();
                unmatched_a.sort_unstable();
                unmatched_b.sort_unstable();
            }
            ArrayMode::List => unreachable!("list arrays are aligned by `list`"),
        }
        let start = self.stack.len();
        for &(i, j) in &pairs {
            Self::push_compare(&mut self.stack, d, Seg::index(i, i), &a[i], &b[j]);
        }
        for &i in &unmatched_a {
            self.stack.push(Frame::Removed { depth: d, seg: Seg::index(i, i), value: &a[i], patch: false });
        }
        for &i in unmatched_a.iter().rev() {
            self.stack.push(Frame::PatchRemove { depth: d, seg: Seg::index(i, i) });
        }
        for &j in &unmatched_b {
            self.stack.push(Frame::Added { depth: d, seg: Seg::index(j, Seg::APPEND), value: &b[j] });
        }
        self.stack[start..].reverse();
    }

    fn hash(&mut self, v: &Value) -> u64 {
        canonical_hash(v, &mut self.hash_buf)
    }

    fn index_by_hash(
        &mut self,
        side: &'v [Value],
        key: impl Fn(&'v Value) -> Option<&'v Value>,
    ) -> HashMap<u64, Vec<usize>> {
        self.index_subset_by_hash(side, &(0..side.len()).collect::<Vec<_>>(), key)
    }

    fn index_subset_by_hash(
        &mut self,
        side: &'v [Value],
        subset: &[usize],
        key: impl Fn(&'v Value) -> Option<&'v Value>,
    ) -> HashMap<u64, Vec<usize>> {
        let mut index: HashMap<u64, Vec<usize>> = HashMap::with_capacity(subset.len());
        for &i in subset {
            if let Some(k) = key(&side[i]) {
                let h = self.hash(k);
                index.entry(h).or_default().push(i);
            }
        }
        index
    }

    fn match_by(
        &mut self,
        a: &'v [Value],
        b: &'v [Value],
        key: impl Fn(&'v Value) -> Option<&'v Value> + Copy,
        pairs: &mut Vec<(usize, usize)>,
        unmatched_a: &mut Vec<usize>,
        unmatched_b: &mut Vec<usize>,
    ) {
        let all_a: Vec<usize> = (0..a.len()).collect();
        let all_b: Vec<usize> = (0..b.len()).collect();
        self.match_subsets(a, b, &all_a, &all_b, key, pairs, unmatched_a, unmatched_b);
    }

    /// Greedy one-to-one matching of `sa ⊆ a` against `sb ⊆ b` by `key`: each element of `b`
    /// takes the first unmatched element of `a` with an equal key.
    #[allow(clippy::too_many_arguments)]
    fn match_subsets(
        &mut self,
        a: &'v [Value],
        b: &'v [Value],
        sa: &[usize],
        sb: &[usize],
        key: impl Fn(&'v Value) -> Option<&'v Value> + Copy,
        pairs: &mut Vec<(usize, usize)>,
        unmatched_a: &mut Vec<usize>,
        unmatched_b: &mut Vec<usize>,
    ) {
        let mut index = self.index_subset_by_hash(a, sa, key);
        let mut taken = vec![false; a.len()];
        for &j in sb {
            let Some(kb) = key(&b[j]) else { continue };
            let h = self.hash(kb);
            let found = index.get_mut(&h).and_then(|candidates| {
                let pos = candidates.iter().position(|&i| key(&a[i]).is_some_and(|ka| json_eq(ka, kb)))?;
                Some(candidates.remove(pos))
            });
            match found {
                Some(i) => {
                    taken[i] = true;
                    pairs.push((i, j));
                }
                None => unmatched_b.push(j),
            }
        }
        unmatched_a.extend(sa.iter().copied().filter(|&i| !taken[i]));
    }

    fn emit(&mut self, kind: DiffKind, baseline: Option<&Value>, canary: Option<&Value>, severity: Severity) {
        let explained = if self.no_rules { None } else { self.scoped.explained(&self.path).map(str::to_owned) };
        self.diffs.push(Difference {
            path: display_pointer(&self.path),
            field: field_pointer(&self.path),
            kind,
            baseline: baseline.cloned(),
            canary: canary.cloned(),
            severity,
            explained,
        });
    }

    fn op(&mut self, op: &'static str, value: Option<&Value>) {
        if self.want_patch {
            self.patch.push(op_value(op, patch_pointer(&self.path), value));
        }
    }
}

fn op_value(op: &str, path: String, value: Option<&Value>) -> Value {
    let mut m = Map::with_capacity(3);
    m.insert("op".to_owned(), Value::from(op));
    m.insert("path".to_owned(), Value::String(path));
    if let Some(v) = value {
        m.insert("value".to_owned(), v.clone());
    }
    Value::Object(m)
}
