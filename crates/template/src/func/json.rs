//! Go's `json.Unmarshal` into an `interface{}`, as Sprig's `fromJson` uses it: objects
//! become dicts, arrays lists, numbers `float64`, and every byte is charged to the
//! budget. Error messages are Go's, less the offending character (it is part of a secret).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use zeroize::Zeroizing;

use crate::func::text::decode_rune;
use crate::value::{Buf, Dict, ELEM_COST, Key, List, MAX_VALUE_DEPTH, Meter, Value};

/// Parses `src` as one JSON value.
pub(crate) fn parse<'d>(src: &[u8], meter: &Rc<Meter>) -> Result<Value<'d>, String> {
    let mut p = Parser { src, at: 0, meter };
    let value = p.value(0)?;
    p.space();
    if p.at < src.len() {
        return Err(invalid("after top-level value"));
    }
    Ok(value)
}

fn invalid(context: &str) -> String {
    format!("invalid character {context}")
}

const EOF: &str = "unexpected end of JSON input";

struct Parser<'s, 'm> {
    src: &'s [u8],
    at: usize,
    meter: &'m Rc<Meter>,
}

impl Parser<'_, '_> {
    fn space(&mut self) {
        while matches!(self.src.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }

    fn value<'d>(&mut self, depth: usize) -> Result<Value<'d>, String> {
        self.space();
        let Some(c) = self.peek() else {
            return Err(EOF.into());
        };
        match c {
            b'{' | b'[' if depth >= MAX_VALUE_DEPTH => Err(format!(
                "exceeded max depth of {MAX_VALUE_DEPTH} nested objects and arrays"
            )),
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => {
                let s = self.string()?;
                s.into_value()
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Nil),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(invalid("looking for beginning of value")),
        }
    }

    fn literal<'d>(&mut self, word: &[u8], value: Value<'d>) -> Result<Value<'d>, String> {
        for &expected in word {
            match self.peek() {
                None => return Err(EOF.into()),
                Some(c) if c == expected => self.at += 1,
                Some(_) => {
                    let word = String::from_utf8_lossy(word);
                    let expected = char::from(expected);
                    return Err(invalid(&format!(
                        "in literal {word} (expecting '{expected}')"
                    )));
                }
            }
        }
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number<'d>(&mut self) -> Result<Value<'d>, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            None => return Err(EOF.into()),
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            Some(_) => return Err(invalid("in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(match self.peek() {
                    None => EOF.into(),
                    Some(_) => invalid("after decimal point in numeric literal"),
                });
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(match self.peek() {
                    None => EOF.into(),
                    Some(_) => invalid("in exponent of numeric literal"),
                });
            }
        }
        let text = std::str::from_utf8(&self.src[start..self.at]).unwrap_or("x");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err("json: cannot unmarshal number into Go value of type float64".into()),
        }
    }

    /// A string literal, unquoted into a buffer charged to the budget.
    fn string(&mut self) -> Result<Buf, String> {
        self.at += 1;
        let mut out = Buf::new(self.meter);
        loop {
            let Some(c) = self.peek() else {
                return Err(EOF.into());
            };
            match c {
                b'"' => {
                    self.at += 1;
                    if let Some(overflow) = out.overflow {
                        return Err(overflow.message("result"));
                    }
                    return Ok(out);
                }
                b'\\' => {
                    self.at += 1;
                    let Some(e) = self.peek() else {
                        return Err(EOF.into());
                    };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&first)
                                && self.src[self.at..].starts_with(b"\\u")
                            {
                                // A surrogate pair, if the next escape completes it.
                                let save = self.at;
                                self.at += 2;
                                let second = self.hex4()?;
                                if (0xdc00..0xe000).contains(&second) {
                                    char::from_u32(
                                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00),
                                    )
                                } else {
                                    self.at = save;
                                    None
                                }
                            } else {
                                char::from_u32(first)
                            };
                            out.push_char(c.unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(invalid("in string escape code")),
                    }
                }
                0..0x20 => return Err(invalid("in string literal")),
                0x20..0x80 => {
                    out.push(c);
                    self.at += 1;
                }
                _ => {
                    let (c, width) = decode_rune(&self.src[self.at..]);
                    match c {
                        Some(_) => out.extend(&self.src[self.at..self.at + width]),
                        None => out.push_char('\u{fffd}'),
                    }
                    self.at += width;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let Some(c) = self.peek() else {
                return Err(EOF.into());
            };
            let Some(d) = char::from(c).to_digit(16) else {
                return Err(invalid("in \\u hexadecimal character escape"));
            };
            v = v * 16 + d;
            self.at += 1;
        }
        Ok(v)
    }

    fn object<'d>(&mut self, depth: usize) -> Result<Value<'d>, String> {
        self.at += 1;
        let mut map = BTreeMap::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Dict(Rc::new(Dict(RefCell::new(map)))));
        }
        loop {
            self.space();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b'"') => {}
                Some(_) => return Err(invalid("looking for beginning of object key string")),
            }
            let mut key = self.string()?;
            self.meter.charge(ELEM_COST)?;
            let key = Key(Zeroizing::new(std::mem::take(&mut *key.bytes)));
            self.space();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b':') => self.at += 1,
                Some(_) => return Err(invalid("after object key")),
            }
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            self.space();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Dict(Rc::new(Dict(RefCell::new(map)))));
                }
                Some(_) => return Err(invalid("after object key:value pair")),
            }
        }
    }

    fn array<'d>(&mut self, depth: usize) -> Result<Value<'d>, String> {
        self.at += 1;
        let mut items = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::List(Rc::new(List(items))));
        }
        loop {
            self.meter.charge(ELEM_COST)?;
            items.push(self.value(depth + 1)?);
            self.space();
            match self.peek() {
                None => return Err(EOF.into()),
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::List(Rc::new(List(items))));
                }
                Some(_) => return Err(invalid("after array element")),
            }
        }
    }
}
