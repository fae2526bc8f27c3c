//! Values during execution, and the byte buffers that charge the budget.

use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use zeroize::Zeroizing;

use crate::{MAX_DEPTH, MAX_LEN};

pub(crate) type Root<'d> = BTreeMap<&'d str, &'d [u8]>;

/// What one element of a list or dict costs the budget, besides its bytes.
pub(crate) const ELEM_COST: usize = std::mem::size_of::<Value<'static>>();

/// How deep lists and dicts may nest inside one another.
pub(crate) const MAX_VALUE_DEPTH: usize = MAX_DEPTH;

/// The weight past which a value is not walked further: more than any budget of
/// [`crate::MAX_STEPS`] steps lets a function read.
const WEIGHT_CAP: usize = 2 * crate::MAX_STEPS as usize * crate::BYTES_PER_STEP;

/// How many lists, dicts and elements a walk of a value (for its depth, or for a dict in
/// it) visits at most.
const MAX_VISITS: usize = 1 << 23;

/// A key of a dict: bytes (Go strings), wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key(pub(crate) Zeroizing<Vec<u8>>);

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0[..].cmp(&other.0[..])
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// Go's `[]interface{}`, as Sprig's list functions build it. Dropped without recursion.
#[derive(Default)]
pub(crate) struct List<'d>(pub(crate) Vec<Value<'d>>);

/// Go's `map[string]interface{}`: shared and mutable (Sprig's `set` changes it in place,
/// as Go's maps are references), iterated in key order as templates do. Dropped without
/// recursion.
#[derive(Default)]
pub(crate) struct Dict<'d>(pub(crate) RefCell<BTreeMap<Key, Value<'d>>>);

impl Drop for List<'_> {
    fn drop(&mut self) {
        drop_flat(std::mem::take(&mut self.0));
    }
}

impl Drop for Dict<'_> {
    fn drop(&mut self) {
        let map = std::mem::take(self.0.get_mut());
        drop_flat(map.into_values().collect());
    }
}

/// Drops nested lists and dicts one after another rather than recursively, so that
/// no structure, however deep, can exhaust the stack.
fn drop_flat(mut stack: Vec<Value<'_>>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::List(rc) => {
                if let Ok(mut list) = Rc::try_unwrap(rc) {
                    stack.append(&mut list.0);
                }
            }
            Value::Dict(rc) => {
                if let Ok(dict) = Rc::try_unwrap(rc) {
                    let map = std::mem::take(&mut *dict.0.borrow_mut());
                    stack.extend(map.into_values());
                }
            }
            _ => {}
        }
    }
}

/// A value during execution. `Nil` is Go's missing value (a map key that is
/// not there) as well as `nil`. Strings are shared, so that a value passed
/// around (to variables, `with`, functions) is not copied.
#[derive(Clone)]
pub(crate) enum Value<'d> {
    Nil,
    Str(Rc<Zeroizing<Vec<u8>>>),
    Bool(bool),
    Int(i64),
    /// Go's `float64`, as `fromJson` and `float64` make.
    Float(f64),
    Map(&'d Root<'d>),
    List(Rc<List<'d>>),
    Dict(Rc<Dict<'d>>),
}

impl<'d> Value<'d> {
    /// The Go type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Map(_) => "map[string]string",
            Value::List(_) => "[]interface {}",
            Value::Dict(_) => "map[string]interface {}",
        }
    }

    /// Go's truth: false for nil, "", false, 0 and an empty map.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.0.is_empty(),
            Value::Dict(d) => !d.0.borrow().is_empty(),
        }
    }

    /// Go's `reflect.Kind` name, as Sprig's list errors print it.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Map(_) | Value::Dict(_) => "map",
            Value::List(_) => "slice",
        }
    }

    /// How many bytes a function taking this value may read.
    pub(crate) fn weight(&self) -> usize {
        let mut total = 0;
        if self.add_weight(0, &mut total) {
            total
        } else {
            usize::MAX
        }
    }

    /// Adds this value's weight to `total`; false once `total` passes [`WEIGHT_CAP`]:
    /// values share lists and dicts, so that a value built in a few steps may weigh
    /// exponentially more than it takes memory, and must not be walked to its end.
    fn add_weight(&self, depth: usize, total: &mut usize) -> bool {
        if depth > MAX_VALUE_DEPTH {
            return true;
        }
        let more = match self {
            Value::Str(s) => s.len(),
            Value::Map(m) => m.iter().map(|(k, v)| k.len() + v.len()).sum(),
            Value::List(l) => {
                for v in &l.0 {
                    *total = total.saturating_add(ELEM_COST);
                    if *total > WEIGHT_CAP || !v.add_weight(depth + 1, total) {
                        return false;
                    }
                }
                0
            }
            Value::Dict(d) => {
                for (k, v) in d.0.borrow().iter() {
                    *total = total.saturating_add(ELEM_COST + k.0.len());
                    if *total > WEIGHT_CAP || !v.add_weight(depth + 1, total) {
                        return false;
                    }
                }
                0
            }
            _ => 0,
        };
        *total = total.saturating_add(more);
        *total <= WEIGHT_CAP
    }

    /// How deeply lists and dicts nest in this value (0 for a scalar), counted up to
    /// just past [`MAX_VALUE_DEPTH`] (which it also returns when the value is too large
    /// to walk).
    pub(crate) fn depth(&self) -> usize {
        fn at(v: &Value<'_>, d: usize, visits: &mut usize) -> usize {
            *visits = visits.saturating_sub(1);
            if d > MAX_VALUE_DEPTH || *visits == 0 {
                return MAX_VALUE_DEPTH + 1;
            }
            let mut deepest = d + 1;
            match v {
                Value::List(l) => {
                    for e in &l.0 {
                        deepest = deepest.max(at(e, d + 1, visits));
                    }
                }
                Value::Dict(m) => {
                    for e in m.0.borrow().values() {
                        deepest = deepest.max(at(e, d + 1, visits));
                    }
                }
                _ => return d,
            }
            deepest
        }
        let mut visits = MAX_VISITS;
        at(self, 0, &mut visits)
    }

    /// Whether `dict` is this value or somewhere inside it (or the value is too large or
    /// deep to tell).
    pub(crate) fn contains_dict(&self, dict: &Rc<Dict<'_>>) -> bool {
        fn at(v: &Value<'_>, dict: *const (), d: usize, visits: &mut usize) -> bool {
            *visits = visits.saturating_sub(1);
            match v {
                _ if d > MAX_VALUE_DEPTH || *visits == 0 => true,
                Value::List(l) => l.0.iter().any(|e| at(e, dict, d + 1, visits)),
                Value::Dict(m) => {
                    std::ptr::eq(Rc::as_ptr(m).cast::<()>(), dict)
                        || m.0.borrow().values().any(|e| at(e, dict, d + 1, visits))
                }
                _ => false,
            }
        }
        let mut visits = MAX_VISITS;
        at(self, Rc::as_ptr(dict).cast::<()>(), 0, &mut visits)
    }

    /// A new list of `items`, charged to `meter`; an error when it would nest too deep.
    pub(crate) fn new_list(items: Vec<Value<'d>>, meter: &Meter) -> Result<Value<'d>, String> {
        meter.charge(items.len().saturating_mul(ELEM_COST))?;
        let list = Value::List(Rc::new(List(items)));
        if list.depth() > MAX_VALUE_DEPTH {
            return Err(too_deep());
        }
        Ok(list)
    }

    /// A new dict of `items`, charged to `meter` (keys and elements).
    pub(crate) fn new_dict(
        items: BTreeMap<Key, Value<'d>>,
        meter: &Meter,
    ) -> Result<Value<'d>, String> {
        let keys: usize = items.keys().map(|k| k.0.len()).sum();
        meter.charge(items.len().saturating_mul(ELEM_COST).saturating_add(keys))?;
        let dict = Value::Dict(Rc::new(Dict(RefCell::new(items))));
        if dict.depth() > MAX_VALUE_DEPTH {
            return Err(too_deep());
        }
        Ok(dict)
    }
}

/// The bytes left of a render's [`Budget`], shared by every buffer of the render.
pub(crate) struct Meter {
    pub(crate) left: Cell<usize>,
    pub(crate) max: usize,
    /// The steps left of the budget, and all of it.
    pub(crate) steps: Cell<u64>,
    pub(crate) max_steps: u64,
}

/// The message for a list or dict nesting deeper than [`MAX_VALUE_DEPTH`].
pub(crate) fn too_deep() -> String {
    format!("lists and dicts nest deeper than {MAX_VALUE_DEPTH} levels")
}

impl Meter {
    /// Spends `n` steps of the budget.
    pub(crate) fn step(&self, n: u64) -> Result<(), String> {
        let left = self.steps.get();
        if n > left {
            self.steps.set(0);
            let max = self.max_steps;
            return Err(format!(
                "the templates of this Secret exceed their budget of {max} steps"
            ));
        }
        self.steps.set(left - n);
        Ok(())
    }

    /// Spends `n` bytes of the budget on something other than a buffer.
    pub(crate) fn charge(&self, n: usize) -> Result<(), String> {
        let left = self.left.get();
        if n > left {
            return Err(Overflow::Budget(self.max).message("result"));
        }
        self.left.set(left - n);
        Ok(())
    }
}

/// Why a buffer stopped growing.
#[derive(Clone, Copy)]
pub(crate) enum Overflow {
    /// The value would exceed [`MAX_LEN`].
    Len,
    /// A list or dict written into it nests too deep.
    Depth,
    /// The budget (of this many bytes) is spent.
    Budget(usize),
}

impl Overflow {
    /// The message for a `what` ("result" or "output") that did not fit.
    pub(crate) fn message(self, what: &str) -> String {
        match self {
            Overflow::Len => format!("{what} exceeds {MAX_LEN} bytes"),
            Overflow::Depth => too_deep(),
            Overflow::Budget(max) => {
                format!("the templates of this Secret exceed their budget of {max} bytes")
            }
        }
    }
}

/// A growable byte buffer for plaintext: growing wipes the old allocation,
/// every byte is charged to the render's budget before it is written, and it
/// stops growing (and says why) past [`MAX_LEN`] or when the budget is spent.
pub(crate) struct Buf {
    pub(crate) bytes: Zeroizing<Vec<u8>>,
    pub(crate) overflow: Option<Overflow>,
    pub(crate) meter: Rc<Meter>,
}

impl Default for Buf {
    /// A buffer outside any render (for messages about template text).
    fn default() -> Self {
        Buf::new(&Rc::new(Meter {
            left: Cell::new(usize::MAX),
            max: usize::MAX,
            steps: Cell::new(u64::MAX),
            max_steps: u64::MAX,
        }))
    }
}

impl Buf {
    pub(crate) fn new(meter: &Rc<Meter>) -> Self {
        Buf {
            bytes: Zeroizing::default(),
            overflow: None,
            meter: meter.clone(),
        }
    }

    /// Whether `n` more bytes fit (else the buffer overflows).
    pub(crate) fn fits(&mut self, n: usize) -> bool {
        if self.overflow.is_some() {
            return false;
        }
        if self.bytes.len().saturating_add(n) > MAX_LEN {
            self.overflow = Some(Overflow::Len);
        } else if n > self.meter.left.get() {
            self.overflow = Some(Overflow::Budget(self.meter.max));
        }
        self.overflow.is_none()
    }

    pub(crate) fn extend(&mut self, more: &[u8]) {
        if !self.fits(more.len()) {
            return;
        }
        self.meter.left.set(self.meter.left.get() - more.len());
        let need = self.bytes.len() + more.len();
        if need > self.bytes.capacity() {
            let cap = need.max(2 * self.bytes.capacity()).clamp(32, MAX_LEN);
            let mut grown = Zeroizing::new(Vec::with_capacity(cap.max(need)));
            grown.extend_from_slice(&self.bytes);
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(more);
    }

    pub(crate) fn push(&mut self, b: u8) {
        self.extend(&[b]);
    }

    pub(crate) fn push_char(&mut self, c: char) {
        self.extend(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    /// `n` spaces, without allocating more than they take.
    pub(crate) fn spaces(&mut self, mut n: usize) {
        const SPACES: [u8; 256] = [b' '; 256];
        while n > 0 && self.overflow.is_none() {
            let chunk = n.min(SPACES.len());
            self.extend(&SPACES[..chunk]);
            n -= chunk;
        }
    }

    pub(crate) fn into_value<'d>(self) -> Result<Value<'d>, String> {
        if let Some(overflow) = self.overflow {
            return Err(overflow.message("result"));
        }
        Ok(Value::Str(Rc::new(self.bytes)))
    }
}

/// A new string value holding a copy of `bytes`, charged to `meter`.
pub(crate) fn copy<'d>(bytes: &[u8], meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut buf = Buf::new(meter);
    buf.extend(bytes);
    buf.into_value()
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend(s.as_bytes());
        Ok(())
    }
}
