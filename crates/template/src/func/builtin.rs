//! Go's built-in functions (`text/template/funcs.go`).

use std::rc::Rc;

use super::P::{Any, Str};
use super::{Call, FuncDef, Sig, bytes_of, def};
use crate::gofmt::{fmt_value, printf};
use crate::value::{Buf, Meter, Value, copy};

/// Go's built-ins, in every dialect.
pub(crate) static FUNCS: &[FuncDef] = &[
    FuncDef {
        name: "and",
        sig: Sig {
            fixed: &[Any],
            variadic: Some(Any),
        },
        call: Call::ShortCircuit { or: false },
        cost: 0,
    },
    FuncDef {
        name: "or",
        sig: Sig {
            fixed: &[Any],
            variadic: Some(Any),
        },
        call: Call::ShortCircuit { or: true },
        cost: 0,
    },
    def("not", &[Any], None, not),
    def("len", &[Any], None, len),
    def("index", &[Any], Some(Any), index_fn),
    def("eq", &[Any], Some(Any), eq_fn),
    def("ne", &[Any, Any], None, ne_fn),
    def("lt", &[Any, Any], None, lt_fn),
    def("le", &[Any, Any], None, le_fn),
    def("gt", &[Any, Any], None, gt_fn),
    def("ge", &[Any, Any], None, ge_fn),
    def("print", &[], Some(Any), print),
    def("println", &[], Some(Any), println),
    def("printf", &[Str], Some(Any), printf_fn),
];

fn not<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(Value::Bool(!a[0].truth()))
}

fn len<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    match &a[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.0.len() as i64)),
        Value::Dict(d) => Ok(Value::Int(d.0.borrow().len() as i64)),
        // Go's reflect panics here; this is the message it recovers.
        Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn index_fn<'d>(mut a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let item = a.remove(0);
    index(item, &a, meter)
}

fn eq_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    eq(&a[0], &a[1..]).map(Value::Bool)
}

fn ne_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    eq(&a[0], &a[1..]).map(|b| Value::Bool(!b))
}

fn lt_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    lt(&a[0], &a[1]).map(Value::Bool)
}

fn le_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    le(&a[0], &a[1]).map(Value::Bool)
}

fn gt_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    le(&a[0], &a[1]).map(|b| Value::Bool(!b))
}

fn ge_fn<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    lt(&a[0], &a[1]).map(|b| Value::Bool(!b))
}

/// Like Go's `fmt.Sprint`: a space between operands when neither is a string.
fn print<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    let is_str = |v: &Value<'_>| matches!(v, Value::Str(_));
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !is_str(v) && !is_str(&a[i - 1]) {
            out.push(b' ');
        }
        fmt_value(&mut out, v, 'v');
    }
    out.into_value()
}

fn println<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        fmt_value(&mut out, v, 'v');
    }
    out.push(b'\n');
    out.into_value()
}

fn printf_fn<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    printf(&mut out, bytes_of(&a[0]), &a[1..])?;
    out.into_value()
}

/// Go's `index`: map items by name, string bytes by position.
pub(crate) fn index<'d>(
    mut item: Value<'d>,
    indexes: &[Value<'d>],
    meter: &Rc<Meter>,
) -> Result<Value<'d>, String> {
    if matches!(item, Value::Nil) {
        return Err("index of untyped nil".into());
    }
    for index in indexes {
        item = match (&item, index) {
            (Value::Map(map), Value::Str(key)) => {
                let found = std::str::from_utf8(key).ok().and_then(|k| map.get(k));
                copy(found.copied().unwrap_or_default(), meter)?
            }
            (Value::Map(_), Value::Nil) => {
                return Err("value is nil; should be of type string".into());
            }
            (Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (Value::Dict(dict), Value::Str(key)) => {
                // A missing key yields the zero value of `interface{}`: nil.
                dict.0.borrow().get(&key[..]).cloned().unwrap_or(Value::Nil)
            }
            (Value::Dict(_), Value::Nil) => {
                return Err("value is nil; should be of type string".into());
            }
            (Value::Dict(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (Value::List(list), Value::Int(i)) => match usize::try_from(*i) {
                Ok(i) if i < list.0.len() => list.0[i].clone(),
                // Go prints the index; here it may come from a secret, so it is left out.
                _ => return Err("index out of range".into()),
            },
            (Value::List(_), Value::Nil) => return Err("cannot index slice/array with nil".into()),
            (Value::List(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (Value::Str(s), Value::Int(i)) => match usize::try_from(*i) {
                Ok(i) if i < s.len() => Value::Int(i64::from(s[i])),
                Ok(i) if i == s.len() => return Err("reflect: string index out of range".into()),
                // Go prints the index; here it may come from a secret, so it is left out.
                _ => return Err("index out of range".into()),
            },
            (Value::Str(_), Value::Nil) => return Err("cannot index slice/array with nil".into()),
            (Value::Str(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    other.type_name()
                ));
            }
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// Go's `eq`: `a` equals any of `rest`. Unlike Go, errors never show a value.
pub(crate) fn eq(a: &Value<'_>, rest: &[Value<'_>]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for b in rest {
        let equal = match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => x[..] == y[..],
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Map(_), Value::Map(_))
            | (Value::List(_), Value::List(_))
            | (Value::Dict(_), Value::Dict(_)) => {
                return Err(format!("non-comparable type {}", b.type_name()));
            }
            (Value::Nil, Value::Nil) => true,
            (Value::Nil, _) | (_, Value::Nil) => false,
            _ => return Err("incompatible types for comparison".into()),
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x[..] < y[..]),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        (Value::Nil | Value::Map(_) | Value::List(_) | Value::Dict(_), _)
        | (_, Value::Nil | Value::Map(_) | Value::List(_) | Value::Dict(_)) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

pub(crate) fn le(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}
