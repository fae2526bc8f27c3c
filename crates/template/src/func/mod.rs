//! The function table: every function a template may call, resolved by name once, when
//! the template is parsed. The executor calls through the [`FuncDef`] the parser stored.
//!
//! Go's built-ins are in [`builtin`]; each [`Dialect`] adds its own set in a module of its
//! own (Sealed Secrets: [`sealed`]; External Secrets: [`eso`], which reuses `sealed`'s
//! functions and those of [`collection`], [`regex`], [`json`], [`yaml`] and [`pem`]). A
//! new dialect is a new module with a `FUNCS` table and one arm in [`dialect_funcs`]; a
//! function two dialects share has one implementation.

pub(crate) mod builtin;
pub(crate) mod collection;
pub(crate) mod eso;
pub(crate) mod json;
pub(crate) mod pem;
pub(crate) mod regex;
pub(crate) mod sealed;
pub(crate) mod text;
pub(crate) mod yaml;

use std::fmt;
use std::rc::Rc;

use crate::Dialect;
use crate::value::{Meter, Value};

/// Parameter types: anything (Go's `any` or `reflect.Value`), or a strict Go type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum P {
    Any,
    Str,
    Int,
    Bool,
    /// Go's `map[string]interface{}`: a dict (Sprig's dict functions).
    Dict,
}

/// A function's parameters: fixed ones, then optionally any number of one type.
#[derive(Debug)]
pub(crate) struct Sig {
    pub(crate) fixed: &'static [P],
    pub(crate) variadic: Option<P>,
}

impl Sig {
    pub(crate) fn param(&self, i: usize) -> P {
        self.fixed
            .get(i)
            .copied()
            .or(self.variadic)
            .unwrap_or(P::Any)
    }
}

/// A function called with arguments already checked against its signature; what it
/// allocates is charged to the meter. An error is a message without any value in it.
pub(crate) type Eager = for<'d> fn(Vec<Value<'d>>, &Rc<Meter>) -> Result<Value<'d>, String>;

/// How the executor calls a function.
#[derive(Clone, Copy)]
pub(crate) enum Call {
    /// Go's `and` (`or` when true): arguments evaluated one by one, stopping at the first
    /// falsy (truthy) one.
    ShortCircuit { or: bool },
    /// All the arguments evaluated and checked, then the function called.
    Eager(Eager),
}

/// One entry of the table.
pub(crate) struct FuncDef {
    pub(crate) name: &'static str,
    pub(crate) sig: Sig,
    pub(crate) call: Call,
    /// Steps a call costs besides its arguments: for work that does not depend on their
    /// size (a bcrypt hash).
    pub(crate) cost: u64,
}

impl fmt::Debug for FuncDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FuncDef({})", self.name)
    }
}

/// A table entry for a function called with evaluated arguments.
pub(crate) const fn def(
    name: &'static str,
    fixed: &'static [P],
    variadic: Option<P>,
    call: Eager,
) -> FuncDef {
    FuncDef {
        name,
        sig: Sig { fixed, variadic },
        call: Call::Eager(call),
        cost: 0,
    }
}

/// `def` with a cost in steps for each call.
pub(crate) const fn costly(def: FuncDef, cost: u64) -> FuncDef {
    FuncDef { cost, ..def }
}

/// The functions a dialect adds to Go's built-ins.
fn dialect_funcs(dialect: Dialect) -> &'static [FuncDef] {
    match dialect {
        Dialect::SealedSecrets => sealed::FUNCS,
        Dialect::ExternalSecrets => eso::FUNCS,
    }
}

/// Every function of `dialect`: its own, then Go's built-ins that it does not redefine.
pub(crate) fn table(dialect: Dialect) -> impl Iterator<Item = &'static FuncDef> {
    let own = dialect_funcs(dialect);
    own.iter().chain(
        builtin::FUNCS
            .iter()
            .filter(move |b| !own.iter().any(|d| d.name == b.name)),
    )
}

/// The function `name` of `dialect`; a dialect's function hides a built-in of the same
/// name, as a `FuncMap` does in Go.
pub(crate) fn lookup(dialect: Dialect, name: &str) -> Option<&'static FuncDef> {
    dialect_funcs(dialect)
        .iter()
        .chain(builtin::FUNCS)
        .find(|f| f.name == name)
}

pub(crate) fn bytes_of<'a>(v: &'a Value<'_>) -> &'a [u8] {
    match v {
        Value::Str(s) => s,
        _ => &[],
    }
}

pub(crate) fn int_of(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_has_unique_names_and_no_env_access() {
        for dialect in [Dialect::SealedSecrets, Dialect::ExternalSecrets] {
            let names: Vec<_> = dialect.function_names().collect();
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "{dialect:?}");
            for name in &names {
                assert!(lookup(dialect, name).is_some(), "{name}");
            }
            for refused in ["env", "expandenv", "getHostByName"] {
                assert!(lookup(dialect, refused).is_none(), "{refused}");
            }
        }
    }
}
