//! Values during execution, and the byte buffers that charge the budget.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use zeroize::Zeroizing;

use crate::MAX_LEN;

pub(crate) type Root<'d> = BTreeMap<&'d str, &'d [u8]>;

/// A value during execution. `Nil` is Go's missing value (a map key that is
/// not there) as well as `nil`. Strings are shared, so that a value passed
/// around (to variables, `with`, functions) is not copied.
#[derive(Clone)]
pub(crate) enum Value<'d> {
    Nil,
    Str(Rc<Zeroizing<Vec<u8>>>),
    Bool(bool),
    Int(i64),
    Map(&'d Root<'d>),
}

impl Value<'_> {
    /// The Go type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Map(_) => "map[string]string",
        }
    }

    /// Go's truth: false for nil, "", false, 0 and an empty map.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// How many bytes a function taking this value may read.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Map(m) => m.iter().map(|(k, v)| k.len() + v.len()).sum(),
            _ => 0,
        }
    }
}

/// The bytes left of a render's [`Budget`], shared by every buffer of the render.
pub(crate) struct Meter {
    pub(crate) left: Cell<usize>,
    pub(crate) max: usize,
}

/// Why a buffer stopped growing.
#[derive(Clone, Copy)]
pub(crate) enum Overflow {
    /// The value would exceed [`MAX_LEN`].
    Len,
    /// The budget (of this many bytes) is spent.
    Budget(usize),
}

impl Overflow {
    /// The message for a `what` ("result" or "output") that did not fit.
    pub(crate) fn message(self, what: &str) -> String {
        match self {
            Overflow::Len => format!("{what} exceeds {MAX_LEN} bytes"),
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
