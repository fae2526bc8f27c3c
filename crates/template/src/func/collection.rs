//! Sprig's lists and dicts (`list.go`, `dict.go`) and the string functions that make or
//! read them (`split`, `join`, `toStrings`...). Every element added is charged to the
//! budget; a comparison of elements costs steps.

use std::collections::BTreeMap;
use std::rc::Rc;

use zeroize::Zeroizing;

use super::{bytes_of, int_of};
use crate::func::text::{decode_rune, find};
use crate::gofmt::fmt_value;
use crate::value::{Buf, ELEM_COST, Key, MAX_VALUE_DEPTH, Meter, Value, copy, too_deep};

type R<'d> = Result<Value<'d>, String>;

/// Sprig's `strval`: a string as it is, anything else as `%v` prints it.
pub(crate) fn strval<'d>(v: &Value<'d>, meter: &Rc<Meter>) -> R<'d> {
    if let Value::Str(_) = v {
        return Ok(v.clone());
    }
    let mut out = Buf::new(meter);
    fmt_value(&mut out, v, 'v');
    out.into_value()
}

/// The key of a dict made of `v` (Sprig's `strval`).
fn key_of(v: &Value<'_>, meter: &Rc<Meter>) -> Result<Key, String> {
    let Value::Str(s) = strval(v, meter)? else {
        unreachable!("strval returns a string")
    };
    Ok(Key(Zeroizing::new(s.to_vec())))
}

/// The elements of a list argument, or Sprig's error `Cannot {what} on type KIND` (which
/// Go reports as a nil dereference when the argument is nil).
fn elems<'a, 'd>(v: &'a Value<'d>, what: &str) -> Result<&'a [Value<'d>], String> {
    match v {
        Value::List(list) => Ok(&list.0),
        Value::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        other => Err(format!("Cannot {what} on type {}", other.kind_name())),
    }
}

/// Go's `reflect.DeepEqual` of two template values.
pub(crate) fn deep_equal<'d>(a: &Value<'d>, b: &Value<'d>, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Str(x), Value::Str(y)) => x[..] == y[..],
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Map(x), Value::Map(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            Rc::ptr_eq(x, y)
                || (x.0.len() == y.0.len()
                    && x.0
                        .iter()
                        .zip(&y.0)
                        .all(|(p, q)| deep_equal(p, q, depth + 1)))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.0.borrow(), y.0.borrow());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && deep_equal(v1, v2, depth + 1))
        }
        _ => false,
    }
}

/// Whether `needle` deep-equals an element of `haystack`, spending steps per comparison.
fn contains<'d>(haystack: &[Value<'d>], needle: &Value<'d>, meter: &Meter) -> Result<bool, String> {
    let cost = 1 + needle.weight() / crate::BYTES_PER_STEP;
    meter.step((haystack.len().saturating_mul(cost) / 16) as u64)?;
    Ok(haystack.iter().any(|h| deep_equal(needle, h, 0)))
}

pub(crate) fn list<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    Value::new_list(a, meter)
}

pub(crate) fn dict<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut map = BTreeMap::new();
    let mut it = a.into_iter();
    while let Some(k) = it.next() {
        let key = key_of(&k, meter)?;
        let value = match it.next() {
            Some(v) => v,
            None => copy(b"", meter)?,
        };
        map.insert(key, value);
    }
    Value::new_dict(map, meter)
}

fn dict_of<'a, 'd>(v: &'a Value<'d>) -> &'a Rc<crate::value::Dict<'d>> {
    match v {
        Value::Dict(d) => d,
        _ => unreachable!("the signature admits only dicts"),
    }
}

pub(crate) fn get<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let found = dict_of(&a[0]).0.borrow().get(bytes_of(&a[1])).cloned();
    match found {
        Some(v) => Ok(v),
        None => copy(b"", meter),
    }
}

pub(crate) fn set<'d>(mut a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let value = a.pop().unwrap_or(Value::Nil);
    let d = dict_of(&a[0]).clone();
    // Go would build a cycle, which no function could then print; refuse it.
    if value.contains_dict(&d) {
        return Err("a dict cannot contain itself".into());
    }
    if value.depth() >= MAX_VALUE_DEPTH {
        return Err(too_deep());
    }
    let key = bytes_of(&a[1]);
    meter.charge(ELEM_COST + key.len())?;
    let key = Key(Zeroizing::new(key.to_vec()));
    d.0.try_borrow_mut()
        .map_err(|_| "concurrent map writes".to_string())?
        .insert(key, value);
    Ok(Value::Dict(d))
}

pub(crate) fn unset<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    let d = dict_of(&a[0]).clone();
    d.0.try_borrow_mut()
        .map_err(|_| "concurrent map writes".to_string())?
        .remove(bytes_of(&a[1]));
    Ok(Value::Dict(d))
}

pub(crate) fn has_key<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    let found = dict_of(&a[0]).0.borrow().contains_key(bytes_of(&a[1]));
    Ok(Value::Bool(found))
}

/// Sprig's `keys`: Go lists a map's keys in random order; here they come sorted.
pub(crate) fn keys<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut out = Vec::new();
    for d in &a {
        for k in dict_of(d).0.borrow().keys() {
            out.push(copy(&k.0, meter)?);
        }
    }
    Value::new_list(out, meter)
}

/// Sprig's `values`: in key order here (random in Go).
pub(crate) fn values<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let out = dict_of(&a[0]).0.borrow().values().cloned().collect();
    Value::new_list(out, meter)
}

pub(crate) fn pluck<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let key = bytes_of(&a[0]);
    let out = a[1..]
        .iter()
        .filter_map(|d| dict_of(d).0.borrow().get(key).cloned())
        .collect();
    Value::new_list(out, meter)
}

/// Sprig's `pick` (`omit` when `keep` is false).
fn pick_or_omit<'d>(a: &[Value<'d>], meter: &Rc<Meter>, keep: bool) -> R<'d> {
    let names: Vec<&[u8]> = a[1..].iter().map(bytes_of).collect();
    let out = dict_of(&a[0])
        .0
        .borrow()
        .iter()
        .filter(|(k, _)| names.contains(&&k.0[..]) == keep)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::new_dict(out, meter)
}

pub(crate) fn pick<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    pick_or_omit(&a, meter, true)
}

pub(crate) fn omit<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    pick_or_omit(&a, meter, false)
}

pub(crate) fn first<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(elems(&a[0], "find first")?
        .first()
        .cloned()
        .unwrap_or(Value::Nil))
}

pub(crate) fn last<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(elems(&a[0], "find last")?
        .last()
        .cloned()
        .unwrap_or(Value::Nil))
}

pub(crate) fn rest<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let l = elems(&a[0], "find rest")?;
    Value::new_list(l.get(1..).unwrap_or_default().to_vec(), meter)
}

pub(crate) fn initial<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let l = elems(&a[0], "find initial")?;
    Value::new_list(l[..l.len().saturating_sub(1)].to_vec(), meter)
}

pub(crate) fn reverse<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let l = elems(&a[0], "find reverse")?;
    Value::new_list(l.iter().rev().cloned().collect(), meter)
}

pub(crate) fn append<'d>(mut a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let v = a.pop().unwrap_or(Value::Nil);
    let mut out = elems(&a[0], "push")?.to_vec();
    out.push(v);
    Value::new_list(out, meter)
}

pub(crate) fn prepend<'d>(mut a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let v = a.pop().unwrap_or(Value::Nil);
    let l = elems(&a[0], "prepend")?;
    let mut out = Vec::with_capacity(l.len() + 1);
    out.push(v);
    out.extend_from_slice(l);
    Value::new_list(out, meter)
}

pub(crate) fn concat<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut out = Vec::new();
    for l in &a {
        match l {
            Value::List(l) => {
                meter.charge(l.0.len().saturating_mul(ELEM_COST))?;
                out.extend_from_slice(&l.0);
            }
            Value::Nil => {
                return Err(
                    "runtime error: invalid memory address or nil pointer dereference".into(),
                );
            }
            other => return Err(format!("Cannot concat type {} as list", other.kind_name())),
        }
    }
    Value::new_list(out, meter)
}

pub(crate) fn uniq<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut out: Vec<Value<'d>> = Vec::new();
    for item in elems(&a[0], "find uniq")? {
        if !contains(&out, item, meter)? {
            out.push(item.clone());
        }
    }
    Value::new_list(out, meter)
}

pub(crate) fn without<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let mut out = Vec::new();
    for item in elems(&a[0], "find without")? {
        if !contains(&a[1..], item, meter)? {
            out.push(item.clone());
        }
    }
    Value::new_list(out, meter)
}

pub(crate) fn compact<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let l = elems(&a[0], "compact")?;
    Value::new_list(l.iter().filter(|v| v.truth()).cloned().collect(), meter)
}

pub(crate) fn has<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    if let Value::Nil = a[1] {
        return Ok(Value::Bool(false));
    }
    let l = elems(&a[1], "find has")?;
    contains(l, &a[0], meter).map(Value::Bool)
}

/// Sprig's `strslice`: the non-nil elements of a list as strings; any other value is a
/// list of itself as a string, nil an empty list.
fn strslice<'d>(v: &Value<'d>, meter: &Rc<Meter>) -> Result<Vec<Value<'d>>, String> {
    match v {
        Value::List(l) => {
            let mut out = Vec::with_capacity(l.0.len());
            for e in l.0.iter().filter(|e| !matches!(e, Value::Nil)) {
                out.push(strval(e, meter)?);
            }
            Ok(out)
        }
        Value::Nil => Ok(Vec::new()),
        other => Ok(vec![strval(other, meter)?]),
    }
}

pub(crate) fn to_strings<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let out = strslice(&a[0], meter)?;
    Value::new_list(out, meter)
}

pub(crate) fn sort_alpha<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    // Sprig sorts lists; anything else becomes a list of itself.
    let mut out = strslice(&a[0], meter)?;
    meter.step(out.len() as u64 / 16)?;
    out.sort_by(|x, y| bytes_of(x).cmp(bytes_of(y)));
    Value::new_list(out, meter)
}

pub(crate) fn join<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let parts = strslice(&a[1], meter)?;
    let mut out = Buf::new(meter);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.extend(bytes_of(&a[0]));
        }
        out.extend(bytes_of(p));
        if out.overflow.is_some() {
            break;
        }
    }
    out.into_value()
}

/// Go's `strings.SplitN(s, sep, n)` (`n` < 0: all the parts).
fn split_n<'d>(s: &[u8], sep: &[u8], n: i64, meter: &Rc<Meter>) -> Result<Vec<Value<'d>>, String> {
    let mut parts = Vec::new();
    if n == 0 {
        return Ok(parts);
    }
    let limit = usize::try_from(n).unwrap_or(usize::MAX);
    let mut rest = s;
    while parts.len() + 1 < limit {
        let at = if sep.is_empty() {
            // One character (or invalid byte) a part.
            match decode_rune(rest) {
                (_, 0) => break,
                (_, width) if width == rest.len() => break,
                (_, width) => Some((width, width)),
            }
        } else {
            find(rest, sep).map(|at| (at, at + sep.len()))
        };
        let Some((end, next)) = at else { break };
        meter.charge(ELEM_COST)?;
        parts.push(copy(&rest[..end], meter)?);
        rest = &rest[next..];
    }
    if !(sep.is_empty() && s.is_empty()) {
        meter.charge(ELEM_COST)?;
        parts.push(copy(rest, meter)?);
    }
    Ok(parts)
}

pub(crate) fn split_list<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let parts = split_n(bytes_of(&a[1]), bytes_of(&a[0]), -1, meter)?;
    Ok(Value::List(Rc::new(crate::value::List(parts))))
}

/// `split` and `splitn`: a dict of the parts under `_0`, `_1`...
fn parts_dict<'d>(parts: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let map = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Key(Zeroizing::new(format!("_{i}").into_bytes())), p))
        .collect();
    Value::new_dict(map, meter)
}

pub(crate) fn split<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let parts = split_n(bytes_of(&a[1]), bytes_of(&a[0]), -1, meter)?;
    parts_dict(parts, meter)
}

pub(crate) fn splitn<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let parts = split_n(bytes_of(&a[2]), bytes_of(&a[0]), int_of(&a[1]), meter)?;
    parts_dict(parts, meter)
}
