//! The Sealed Secrets dialect: the Sprig functions that Bitnami's sealed-secrets
//! controller offers (Sprig 3.3's text functions, minus `env`, `expandenv` and
//! `getHostByName`), limited to the ones listed in the crate docs.

use std::fmt::Write as _;
use std::rc::Rc;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::P::{Any, Bool, Int, Str};
use super::text::{change_case, find, go_base64_decode, nospace, replace, trim_space};
use super::{FuncDef, bytes_of, def, int_of};
use crate::gofmt::{fmt_value, go_quote, json};
use crate::value::{Buf, Meter, Value};

/// The functions Sealed Secrets adds to Go's built-ins.
pub(crate) static FUNCS: &[FuncDef] = &[
    def("default", &[Any], Some(Any), default),
    def("empty", &[Any], None, empty),
    def("coalesce", &[], Some(Any), coalesce),
    def("ternary", &[Any, Any, Bool], None, ternary),
    def("quote", &[], Some(Any), quote),
    def("squote", &[], Some(Any), squote),
    def("cat", &[], Some(Any), cat),
    def("upper", &[Str], None, upper),
    def("lower", &[Str], None, lower),
    def("trim", &[Str], None, trim),
    def("trimPrefix", &[Str, Str], None, trim_prefix),
    def("trimSuffix", &[Str, Str], None, trim_suffix),
    def("nospace", &[Str], None, no_space),
    def("replace", &[Str, Str, Str], None, replace_fn),
    def("contains", &[Str, Str], None, contains),
    def("hasPrefix", &[Str, Str], None, has_prefix),
    def("hasSuffix", &[Str, Str], None, has_suffix),
    def("indent", &[Int, Str], None, indent),
    def("nindent", &[Int, Str], None, nindent),
    def("b64enc", &[Str], None, b64enc),
    def("b64dec", &[Str], None, b64dec),
    def("sha256sum", &[Str], None, sha256sum),
    def("toString", &[Any], None, to_string),
    def("toJson", &[Any], None, to_json),
    def("toRawJson", &[Any], None, to_raw_json),
    def("toPrettyJson", &[Any], None, to_pretty_json),
];

/// The result of a function that writes into a buffer.
pub(crate) fn written<'d>(
    meter: &Rc<Meter>,
    f: impl FnOnce(&mut Buf),
) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    f(&mut out);
    out.into_value()
}

pub(crate) fn default<'d>(mut a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    let given = a.drain(1..).next();
    Ok(match given {
        Some(v) if v.truth() => v,
        _ => a.swap_remove(0),
    })
}

pub(crate) fn empty<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(Value::Bool(!a[0].truth()))
}

pub(crate) fn coalesce<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(a.into_iter().find(Value::truth).unwrap_or(Value::Nil))
}

pub(crate) fn ternary<'d>(mut a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    let pick = usize::from(!a[2].truth());
    Ok(a.swap_remove(pick))
}

/// `quote`, `squote` and `cat`: the non-nil arguments, each written by `each`,
/// separated by spaces.
pub(crate) fn joined<'d>(
    a: &[Value<'d>],
    meter: &Rc<Meter>,
    each: impl Fn(&mut Buf, &Value<'d>),
) -> Result<Value<'d>, String> {
    written(meter, |out| {
        for (i, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            each(out, v);
        }
    })
}

pub(crate) fn quote<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    joined(&a, meter, |out, v| {
        let mut text = Buf::new(meter);
        fmt_value(&mut text, v, 'v');
        go_quote(out, &text.bytes, b'"');
        out.overflow = out.overflow.or(text.overflow);
    })
}

pub(crate) fn squote<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    joined(&a, meter, |out, v| {
        out.push(b'\'');
        fmt_value(out, v, 'v');
        out.push(b'\'');
    })
}

pub(crate) fn cat<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    joined(&a, meter, |out, v| fmt_value(out, v, 'v'))
}

pub(crate) fn upper<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| change_case(out, bytes_of(&a[0]), true))
}

pub(crate) fn lower<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| change_case(out, bytes_of(&a[0]), false))
}

pub(crate) fn trim<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| out.extend(trim_space(bytes_of(&a[0]))))
}

pub(crate) fn trim_prefix<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let (prefix, s) = (bytes_of(&a[0]), bytes_of(&a[1]));
    written(meter, |out| out.extend(s.strip_prefix(prefix).unwrap_or(s)))
}

pub(crate) fn trim_suffix<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let (suffix, s) = (bytes_of(&a[0]), bytes_of(&a[1]));
    written(meter, |out| out.extend(s.strip_suffix(suffix).unwrap_or(s)))
}

pub(crate) fn no_space<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| nospace(out, bytes_of(&a[0])))
}

pub(crate) fn replace_fn<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let (old, new, src) = (bytes_of(&a[0]), bytes_of(&a[1]), bytes_of(&a[2]));
    written(meter, |out| replace(out, src, old, new))
}

pub(crate) fn contains<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(Value::Bool(
        find(bytes_of(&a[1]), bytes_of(&a[0])).is_some(),
    ))
}

pub(crate) fn has_prefix<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(Value::Bool(bytes_of(&a[1]).starts_with(bytes_of(&a[0]))))
}

pub(crate) fn has_suffix<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> Result<Value<'d>, String> {
    Ok(Value::Bool(bytes_of(&a[1]).ends_with(bytes_of(&a[0]))))
}

pub(crate) fn indent<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    indented(&a, meter, false)
}

pub(crate) fn nindent<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    indented(&a, meter, true)
}

/// Sprig's `indent` (or `nindent`, which starts with a newline).
pub(crate) fn indented<'d>(
    a: &[Value<'d>],
    meter: &Rc<Meter>,
    newline: bool,
) -> Result<Value<'d>, String> {
    let Ok(spaces) = usize::try_from(int_of(&a[0])) else {
        return Err("strings: negative Repeat count".into());
    };
    let s = bytes_of(&a[1]);
    let mut out = Buf::new(meter);
    // The size of the result, checked before anything is allocated.
    let lines = 1 + memchr::memchr_iter(b'\n', s).count();
    let size = spaces
        .checked_mul(lines)
        .and_then(|n| n.checked_add(s.len() + usize::from(newline)))
        .unwrap_or(usize::MAX);
    if !out.fits(size) {
        return out.into_value();
    }
    if newline {
        out.push(b'\n');
    }
    for (i, line) in s.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.spaces(spaces);
        out.extend(line);
    }
    out.into_value()
}

pub(crate) fn b64enc<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| {
        // In pieces of a multiple of 3 bytes (no padding inside), so that no
        // more is allocated than the budget allows.
        for piece in bytes_of(&a[0]).chunks(3 << 10) {
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(piece));
            out.extend(encoded.as_bytes());
            if out.overflow.is_some() {
                break;
            }
        }
    })
}

pub(crate) fn b64dec<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    match go_base64_decode(bytes_of(&a[0]), meter) {
        Ok(decoded) => decoded.into_value(),
        // Sprig returns the error text as the value.
        Err(at) => written(meter, |out| {
            out.extend(format!("illegal base64 data at input byte {at}").as_bytes());
        }),
    }
}

pub(crate) fn sha256sum<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| {
        for b in gitseal_crypto::primitives::sha256(bytes_of(&a[0])) {
            let _ = write!(out, "{b:02x}");
        }
    })
}

pub(crate) fn to_string<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    written(meter, |out| fmt_value(out, &a[0], 'v'))
}

/// `toJson`, `toPrettyJson`: Sprig ignores `json.Marshal`'s error and returns "".
pub(crate) fn json_or_empty<'d>(
    v: &Value<'d>,
    meter: &Rc<Meter>,
    pretty: bool,
) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    if !json(&mut out, v, true, pretty) {
        out.overflow.map_or(Ok(()), |o| Err(o.message("result")))?;
        return written(meter, |_| {});
    }
    out.into_value()
}

pub(crate) fn to_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    json_or_empty(&a[0], meter, false)
}

/// Sprig panics on `toRawJson`'s error (a value that is not a number, say).
pub(crate) fn to_raw_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut out = Buf::new(meter);
    if !json(&mut out, &a[0], false, false) {
        return Err("json: unsupported value: a NaN or infinite float64".into());
    }
    out.into_value()
}

pub(crate) fn to_pretty_json<'d>(
    a: Vec<Value<'d>>,
    meter: &Rc<Meter>,
) -> Result<Value<'d>, String> {
    json_or_empty(&a[0], meter, true)
}
