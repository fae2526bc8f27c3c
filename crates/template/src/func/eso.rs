//! The External Secrets Operator's template engine v2: Sprig's text functions less `env`,
//! `expandenv` and `getHostByName`, plus ESO's own (`toYaml`, `filterPEM`...). Functions
//! that Sealed Secrets has too share its implementation.

use std::fmt::Write as _;
use std::rc::Rc;

use base64::Engine as _;
use sha1::Digest as _;
use zeroize::Zeroizing;

use super::P::{Any, Dict, Int, Str};
use super::collection as c;
use super::regex as re;
use super::sealed as s;
use super::{FuncDef, bytes_of, costly, def, int_of};
use crate::func::text::{decode_rune, title};
use crate::gofmt::json as json_encode;
use crate::value::{Buf, Meter, Value, copy};

type R<'d> = Result<Value<'d>, String>;

/// What a bcrypt hash costs in steps: 1% of [`crate::MAX_STEPS`], so that the templates
/// of one Secret compute at most 100 (about 5 seconds of CPU at Go's cost 10).
const BCRYPT_STEPS: u64 = crate::MAX_STEPS / 100;

/// The functions ESO adds to Go's built-ins.
pub(crate) static FUNCS: &[FuncDef] = &[
    // Defaults and flow.
    def("default", &[Any], Some(Any), s::default),
    def("empty", &[Any], None, s::empty),
    def("coalesce", &[], Some(Any), s::coalesce),
    def("ternary", &[Any, Any, super::P::Bool], None, s::ternary),
    def("all", &[], Some(Any), all),
    def("any", &[], Some(Any), any),
    def("fail", &[Str], None, fail),
    def("deepEqual", &[Any, Any], None, deep_equal),
    // Strings.
    def("quote", &[], Some(Any), s::quote),
    def("squote", &[], Some(Any), s::squote),
    def("cat", &[], Some(Any), s::cat),
    def("upper", &[Str], None, s::upper),
    def("lower", &[Str], None, s::lower),
    def("title", &[Str], None, title_fn),
    def("trim", &[Str], None, s::trim),
    def("trimAll", &[Str, Str], None, trim_all),
    def("trimall", &[Str, Str], None, trim_all),
    def("trimPrefix", &[Str, Str], None, s::trim_prefix),
    def("trimSuffix", &[Str, Str], None, s::trim_suffix),
    def("nospace", &[Str], None, s::no_space),
    def("replace", &[Str, Str, Str], None, s::replace_fn),
    def("repeat", &[Int, Str], None, repeat),
    def("substr", &[Int, Int, Str], None, substr),
    def("trunc", &[Int, Str], None, trunc),
    def("contains", &[Str, Str], None, s::contains),
    def("hasPrefix", &[Str, Str], None, s::has_prefix),
    def("hasSuffix", &[Str, Str], None, s::has_suffix),
    def("indent", &[Int, Str], None, s::indent),
    def("nindent", &[Int, Str], None, s::nindent),
    def("plural", &[Str, Str, Int], None, plural),
    def("split", &[Str, Str], None, c::split),
    def("splitList", &[Str, Str], None, c::split_list),
    def("splitn", &[Str, Int, Str], None, c::splitn),
    def("join", &[Str, Any], None, c::join),
    def("toStrings", &[Any], None, c::to_strings),
    def("sortAlpha", &[Any], None, c::sort_alpha),
    def("toString", &[Any], None, s::to_string),
    // Encodings and hashes.
    def("b64enc", &[Str], None, s::b64enc),
    def("b64dec", &[Str], None, s::b64dec),
    def("sha1sum", &[Str], None, sha1sum),
    def("sha256sum", &[Str], None, s::sha256sum),
    def("sha512sum", &[Str], None, sha512sum),
    def("adler32sum", &[Str], None, adler32sum),
    costly(
        def("htpasswd", &[Str, Str, Str], None, htpasswd),
        BCRYPT_STEPS,
    ),
    costly(def("bcrypt", &[Str], None, bcrypt_fn), BCRYPT_STEPS),
    // JSON and YAML.
    def("toJson", &[Any], None, s::to_json),
    def("mustToJson", &[Any], None, must_to_json),
    def("toRawJson", &[Any], None, s::to_raw_json),
    def("mustToRawJson", &[Any], None, s::to_raw_json),
    def("toPrettyJson", &[Any], None, s::to_pretty_json),
    def("mustToPrettyJson", &[Any], None, must_to_pretty_json),
    def("fromJson", &[Str], None, from_json),
    def("mustFromJson", &[Str], None, must_from_json),
    def("toYaml", &[Any], None, super::yaml::to_yaml),
    def("fromYaml", &[Str], None, from_yaml),
    // Numbers.
    def("atoi", &[Str], None, atoi),
    def("int", &[Any], None, to_int),
    def("int64", &[Any], None, to_int),
    def("float64", &[Any], None, to_float),
    def("add1", &[Any], None, add1),
    def("add", &[], Some(Any), add),
    def("sub", &[Any, Any], None, sub),
    def("mul", &[Any], Some(Any), mul),
    def("div", &[Any, Any], None, div),
    def("mod", &[Any, Any], None, modulo),
    def("max", &[Any], Some(Any), max),
    def("biggest", &[Any], Some(Any), max),
    def("min", &[Any], Some(Any), min),
    // Lists.
    def("list", &[], Some(Any), c::list),
    def("tuple", &[], Some(Any), c::list),
    def("first", &[Any], None, c::first),
    def("mustFirst", &[Any], None, c::first),
    def("last", &[Any], None, c::last),
    def("mustLast", &[Any], None, c::last),
    def("rest", &[Any], None, c::rest),
    def("mustRest", &[Any], None, c::rest),
    def("initial", &[Any], None, c::initial),
    def("mustInitial", &[Any], None, c::initial),
    def("reverse", &[Any], None, c::reverse),
    def("mustReverse", &[Any], None, c::reverse),
    def("append", &[Any, Any], None, c::append),
    def("push", &[Any, Any], None, c::append),
    def("mustAppend", &[Any, Any], None, c::append),
    def("mustPush", &[Any, Any], None, c::append),
    def("prepend", &[Any, Any], None, c::prepend),
    def("mustPrepend", &[Any, Any], None, c::prepend),
    def("concat", &[], Some(Any), c::concat),
    def("uniq", &[Any], None, c::uniq),
    def("mustUniq", &[Any], None, c::uniq),
    def("without", &[Any], Some(Any), c::without),
    def("mustWithout", &[Any], Some(Any), c::without),
    def("compact", &[Any], None, c::compact),
    def("mustCompact", &[Any], None, c::compact),
    def("has", &[Any, Any], None, c::has),
    def("mustHas", &[Any, Any], None, c::has),
    // Dicts.
    def("dict", &[], Some(Any), c::dict),
    def("get", &[Dict, Str], None, c::get),
    def("set", &[Dict, Str, Any], None, c::set),
    def("unset", &[Dict, Str], None, c::unset),
    def("hasKey", &[Dict, Str], None, c::has_key),
    def("keys", &[], Some(Dict), c::keys),
    def("values", &[Dict], None, c::values),
    def("pluck", &[Str], Some(Dict), c::pluck),
    def("pick", &[Dict], Some(Str), c::pick),
    def("omit", &[Dict], Some(Str), c::omit),
    // Regular expressions.
    def("regexMatch", &[Str, Str], None, re::regex_match),
    def("mustRegexMatch", &[Str, Str], None, re::must_regex_match),
    def("regexFind", &[Str, Str], None, re::regex_find),
    def("mustRegexFind", &[Str, Str], None, re::must_regex_find),
    def("regexFindAll", &[Str, Str, Int], None, re::regex_find_all),
    def(
        "mustRegexFindAll",
        &[Str, Str, Int],
        None,
        re::must_regex_find_all,
    ),
    def(
        "regexReplaceAll",
        &[Str, Str, Str],
        None,
        re::regex_replace_all,
    ),
    def(
        "mustRegexReplaceAll",
        &[Str, Str, Str],
        None,
        re::must_regex_replace_all,
    ),
    def(
        "regexReplaceAllLiteral",
        &[Str, Str, Str],
        None,
        re::regex_replace_all_literal,
    ),
    def(
        "mustRegexReplaceAllLiteral",
        &[Str, Str, Str],
        None,
        re::must_regex_replace_all_literal,
    ),
    def("regexSplit", &[Str, Str, Int], None, re::regex_split),
    def(
        "mustRegexSplit",
        &[Str, Str, Int],
        None,
        re::must_regex_split,
    ),
    def("regexQuoteMeta", &[Str], None, re::regex_quote_meta),
    // ESO's PEM functions.
    def("filterPEM", &[Str, Str], None, super::pem::filter_pem),
];

fn written<'d>(meter: &Rc<Meter>, f: impl FnOnce(&mut Buf)) -> R<'d> {
    let mut out = Buf::new(meter);
    f(&mut out);
    out.into_value()
}

fn all<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Bool(a.iter().all(Value::truth)))
}

fn any<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Bool(a.iter().any(Value::truth)))
}

/// Sprig's `fail`: Go's error is the message, which may be made of a secret; here it is
/// left out.
fn fail<'d>(_: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Err("the template called fail".into())
}

fn deep_equal<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Bool(c::deep_equal(&a[0], &a[1], 0)))
}

fn title_fn<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    written(meter, |out| title(out, bytes_of(&a[0])))
}

/// Go's `strings.Trim(s, cutset)`.
fn trim_all<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let (cutset, mut s) = (bytes_of(&a[0]), bytes_of(&a[1]));
    let mut set = Vec::new();
    let mut i = 0;
    while i < cutset.len() {
        let (c, w) = decode_rune(&cutset[i..]);
        set.push(c.unwrap_or('\u{fffd}'));
        i += w;
    }
    if !set.is_empty() {
        let ascii = cutset.is_ascii();
        let cut = |c: Option<char>, w: usize| match c {
            Some(c) => set.contains(&c),
            // An invalid byte is U+FFFD, but for an ASCII cutset, which Go compares bytes to.
            None => !ascii && w > 0 && set.contains(&'\u{fffd}'),
        };
        loop {
            let (c, w) = decode_rune(s);
            if w == 0 || !cut(c, w) {
                break;
            }
            s = &s[w..];
        }
        loop {
            let (c, w) = crate::func::text::decode_last_rune(s);
            if w == 0 || !cut(c, w) {
                break;
            }
            s = &s[..s.len() - w];
        }
    }
    copy(s, meter)
}

/// Go's `strings.Repeat(s, count)`.
fn repeat<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let Ok(count) = usize::try_from(int_of(&a[0])) else {
        return Err("strings: negative Repeat count".into());
    };
    let s = bytes_of(&a[1]);
    let mut out = Buf::new(meter);
    let Some(size) = s.len().checked_mul(count) else {
        return Err("strings: Repeat output length overflow".into());
    };
    // Checked before anything is allocated; an empty string repeats to nothing at once.
    if !s.is_empty() && out.fits(size) {
        for _ in 0..count {
            out.extend(s);
        }
    }
    out.into_value()
}

/// Sprig's `substr`: Go's slicing, whose panic the template reports.
fn substr<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let (start, end, s) = (int_of(&a[0]), int_of(&a[1]), bytes_of(&a[2]));
    let len = s.len() as i64;
    let range = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    match range {
        (from, to) if 0 <= from && from <= to && to <= len => {
            copy(&s[from as usize..to as usize], meter)
        }
        // Go shows the bounds; they may tell a secret's length, so they are left out.
        _ => Err("runtime error: slice bounds out of range".into()),
    }
}

/// Sprig's `trunc`: the first `c` bytes, or the last `-c`.
fn trunc<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let (c, s) = (int_of(&a[0]), bytes_of(&a[1]));
    let len = s.len() as i64;
    let out = if c < 0 && len + c > 0 {
        &s[(len + c) as usize..]
    } else if c >= 0 && len > c {
        &s[..c as usize]
    } else {
        s
    };
    copy(out, meter)
}

fn plural<'d>(mut a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    let pick = usize::from(int_of(&a[2]) != 1);
    Ok(a.swap_remove(pick))
}

fn hex<'d>(digest: &[u8], meter: &Rc<Meter>) -> R<'d> {
    written(meter, |out| {
        for b in digest {
            let _ = write!(out, "{b:02x}");
        }
    })
}

fn sha1sum<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    hex(&sha1::Sha1::digest(bytes_of(&a[0])), meter)
}

fn sha512sum<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    hex(&sha2::Sha512::digest(bytes_of(&a[0])), meter)
}

/// Go's `hash/adler32` checksum, in decimal.
fn adler32sum<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    const MOD: u32 = 65521;
    let (mut x, mut y) = (1u32, 0u32);
    for chunk in bytes_of(&a[0]).chunks(5552) {
        for &b in chunk {
            x += u32::from(b);
            y += x;
        }
        x %= MOD;
        y %= MOD;
    }
    written(meter, |out| {
        let _ = write!(out, "{}", (y << 16) | x);
    })
}

/// Sprig's `bcrypt`: Go's `bcrypt.GenerateFromPassword` at its default cost, 10, as
/// `$2a$`; its error as the result.
fn bcrypt_hash(password: &[u8], out: &mut Buf) {
    if password.len() > 72 {
        out.extend(
            b"failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes",
        );
        return;
    }
    match bcrypt::hash_with_result(password, 10) {
        Ok(parts) => {
            let hash = Zeroizing::new(parts.format_for_version(bcrypt::Version::TwoA));
            out.extend(hash.as_bytes());
        }
        Err(_) => out.extend(b"failed to encrypt string with bcrypt"),
    }
}

fn bcrypt_fn<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    written(meter, |out| bcrypt_hash(bytes_of(&a[0]), out))
}

/// Sprig's `htpasswd user password algorithm`: `user:` and the bcrypt hash, or with
/// `"sha"` `user:{SHA}` and the base64 of the SHA-1 digest.
fn htpasswd<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let (user, password, algorithm) = (bytes_of(&a[0]), bytes_of(&a[1]), bytes_of(&a[2]));
    written(meter, |out| {
        if user.contains(&b':') {
            out.extend(b"invalid username: ");
            out.extend(user);
            return;
        }
        out.extend(user);
        out.push(b':');
        if algorithm == b"sha" {
            let digest = sha1::Sha1::digest(password);
            out.extend(b"{SHA}");
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(digest));
            out.extend(encoded.as_bytes());
        } else {
            bcrypt_hash(password, out);
        }
    })
}

/// `mustToJson`, `mustToPrettyJson`: an error for what Go cannot encode.
fn must_json<'d>(v: &Value<'d>, meter: &Rc<Meter>, pretty: bool) -> R<'d> {
    let mut out = Buf::new(meter);
    if !json_encode(&mut out, v, true, pretty) {
        return Err("json: unsupported value: a NaN or infinite float64".into());
    }
    out.into_value()
}

fn must_to_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    must_json(&a[0], meter, false)
}

fn must_to_pretty_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    must_json(&a[0], meter, true)
}

/// Sprig's `fromJson`: nil when the text is not JSON.
fn from_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    match super::json::parse(bytes_of(&a[0]), meter) {
        Ok(v) => Ok(v),
        // Running out of budget is not a JSON error.
        Err(e) if e.contains("budget") => Err(e),
        Err(_) => Ok(Value::Nil),
    }
}

fn must_from_json<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    super::json::parse(bytes_of(&a[0]), meter)
}

/// ESO's `fromYaml` (`sigs.k8s.io/yaml` into a `map[string]interface{}`): the YAML goes
/// through JSON, so numbers are floats as with `fromJson`; text that is not a YAML
/// mapping gives a map with only `Error`, which names the position, never the text.
fn from_yaml<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let text = bytes_of(&a[0]);
    // The parsed tree costs about what its text does; charged before parsing.
    meter.charge(text.len())?;
    let error = |what: String, meter: &Rc<Meter>| {
        let key = crate::value::copy(b"Error", meter)?;
        let message = crate::value::copy(what.as_bytes(), meter)?;
        c::dict(vec![key, message], meter)
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return error(
            "error converting YAML to JSON: yaml: invalid UTF-8".into(),
            meter,
        );
    };
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: crate::MAX_DEPTH,
            max_documents: 1,
            max_total_scalar_bytes: text.len(),
        },
    };
    let parsed: Result<serde_json::Value, _> = serde_saphyr::from_str_with_options(text, options);
    let mut parsed = match parsed {
        Ok(value) => value,
        Err(e) => {
            let position = e
                .location()
                .filter(|l| l.line() > 0)
                .map(|l| format!(" line {}:", l.line()))
                .unwrap_or_default();
            return error(
                format!("error converting YAML to JSON: yaml:{position} invalid YAML"),
                meter,
            );
        }
    };
    let result = match &parsed {
        serde_json::Value::Null => c::dict(Vec::new(), meter),
        serde_json::Value::Object(_) => {
            let json = Zeroizing::new(serde_json::to_vec(&parsed).unwrap_or_default());
            super::json::parse(&json, meter)
        }
        other => {
            let kind = match other {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Bool(_) => "bool",
                _ => "number",
            };
            error(
                format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
                ),
                meter,
            )
        }
    };
    wipe_json(&mut parsed);
    result
}

/// Overwrites the strings of a parsed tree.
fn wipe_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize as _;
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, m) = crate::literal::go_integer(std::str::from_utf8(s).ok()?)?;
    i64::try_from(if negative { -m } else { m }).ok()
}

/// Go's conversion of a `float64` to `int64`, as amd64 does it for values out of range.
fn float_to_int(f: f64) -> i64 {
    // 2^63: the first value out of range (exactly representable, as is -2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// `cast.ToInt64`, as Sprig's arithmetic uses it: 0 for what it cannot convert.
pub(crate) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => float_to_int(*f),
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            // `trimZeroDecimal`: "8080.00" is 8080.
            let mut t = &s[..];
            if let Some(dot) = t.iter().rposition(|&b| b == b'.') {
                let zeros = &t[dot + 1..];
                if !zeros.is_empty() && zeros.iter().all(|&b| b == b'0') {
                    t = &t[..dot];
                }
            }
            parse_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

/// `cast.ToFloat64`.
fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => {
            let text = std::str::from_utf8(s).unwrap_or("");
            let infinite = ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"]
                .iter()
                .any(|w| text.eq_ignore_ascii_case(w));
            match text.parse::<f64>() {
                // Go refuses a value out of range, which Rust rounds to infinity.
                Ok(f) if f.is_finite() || infinite => f,
                _ => 0.0,
            }
        }
        _ => 0.0,
    }
}

fn atoi<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    let parsed = std::str::from_utf8(bytes_of(&a[0]))
        .ok()
        .and_then(|t| t.parse::<i64>().ok());
    Ok(Value::Int(parsed.unwrap_or(0)))
}

fn to_int<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(to_int64(&a[0])))
}

fn to_float<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Float(to_float64(&a[0])))
}

fn add1<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(to_int64(&a[0]).wrapping_add(1)))
}

fn add<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(
        a.iter().map(to_int64).fold(0, i64::wrapping_add),
    ))
}

fn sub<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
}

fn mul<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(
        a.iter().map(to_int64).fold(1, i64::wrapping_mul),
    ))
}

fn div<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    match to_int64(&a[1]) {
        0 => Err("runtime error: integer divide by zero".into()),
        d => Ok(Value::Int(to_int64(&a[0]).wrapping_div(d))),
    }
}

fn modulo<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    match to_int64(&a[1]) {
        0 => Err("runtime error: integer divide by zero".into()),
        d => Ok(Value::Int(to_int64(&a[0]).wrapping_rem(d))),
    }
}

fn max<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(a.iter().map(to_int64).max().unwrap_or(0)))
}

fn min<'d>(a: Vec<Value<'d>>, _: &Rc<Meter>) -> R<'d> {
    Ok(Value::Int(a.iter().map(to_int64).min().unwrap_or(0)))
}
