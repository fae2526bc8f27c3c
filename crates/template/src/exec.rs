//! Execution: Go's `text/template/exec.go`.

use std::rc::Rc;

use zeroize::Zeroizing;

use crate::func::{Call, FuncDef, P};
use crate::gofmt::{fmt_value, quoted};
use crate::tree::{Arg, ArgKind, Cmd, Node, Pipe};
use crate::value::{Buf, ELEM_COST, Meter, Value, copy};
use crate::{BYTES_PER_STEP, MAX_DEPTH, MAX_NESTING, MissingKey, Template};

/// How a list of nodes ended: normally, or at `{{break}}` or `{{continue}}`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Normal,
    Break,
    Continue,
}

/// An execution error before it gets its `template: NAME:LINE:COL:` prefix:
/// where it happened (position and Go's text of the node) and what.
pub(crate) struct Fail {
    pub(crate) at: Option<(usize, String)>,
    pub(crate) msg: String,
    /// The template executing: the one rendered, or one it invoked.
    pub(crate) template: String,
}

/// The node execution is at, which Go's execution errors point to.
#[derive(Clone, Copy)]
pub(crate) enum At<'t> {
    Arg(&'t Arg),
    Cmd(&'t Cmd),
    Pipe(&'t Pipe),
    /// `{{template "name" pipeline}}`.
    Template(usize, &'t str, Option<&'t Pipe>),
}

pub(crate) struct Exec<'t, 'd> {
    pub(crate) vars: Vec<(&'t str, Value<'d>)>,
    pub(crate) out: Buf,
    pub(crate) at: Option<At<'t>>,
    /// The bytes left of the budget, shared with every buffer.
    pub(crate) meter: Rc<Meter>,
    /// The template rendered: its options and the templates it defines.
    pub(crate) template: &'t Template,
    /// The name of the template executing.
    pub(crate) current: &'t str,
    /// How deep `{{template}}` calls nest.
    pub(crate) depth: usize,
    /// How deep node lists and pipelines nest now, across template calls: the bound on
    /// the executor's recursion, whatever the template.
    pub(crate) nesting: usize,
}

impl<'t, 'd> Exec<'t, 'd> {
    pub(crate) fn at(&mut self, arg: &'t Arg) {
        self.at = Some(At::Arg(arg));
    }

    /// Spends `n` steps of the budget.
    pub(crate) fn step(&mut self, n: u64) -> Result<(), Fail> {
        self.meter.step(n).map_err(|m| self.fail(m))
    }

    /// A copy of `bytes` as a value, charged to the budget.
    pub(crate) fn copy(&self, bytes: &[u8]) -> Result<Value<'d>, Fail> {
        copy(bytes, &self.meter).map_err(|m| self.fail(m))
    }

    pub(crate) fn fail(&self, msg: impl Into<String>) -> Fail {
        let at = self.at.map(|at| match at {
            At::Arg(arg) => (arg.pos, arg.to_string()),
            At::Cmd(cmd) => (cmd.pos, cmd.to_string()),
            At::Pipe(pipe) => (pipe.pos, pipe.to_string()),
            At::Template(pos, name, pipe) => {
                let pipe = pipe.map(|p| format!(" {p}")).unwrap_or_default();
                (pos, format!("{{{{template {}{pipe}}}}}", quoted(name)))
            }
        });
        Fail {
            at,
            msg: msg.into(),
            template: self.current.to_string(),
        }
    }

    /// Enters one level of the executor's recursion, or fails at [`MAX_NESTING`]: each
    /// template nests at most [`MAX_DEPTH`] levels, but calls of templates that nest deeply
    /// would otherwise multiply them past the end of the stack.
    fn enter(&mut self) -> Result<(), Fail> {
        if self.nesting >= MAX_NESTING {
            return Err(self.fail(format!("exceeded maximum nesting depth ({MAX_NESTING})")));
        }
        self.nesting += 1;
        Ok(())
    }

    pub(crate) fn walk(&mut self, dot: &Value<'d>, nodes: &'t [Node]) -> Result<Flow, Fail> {
        self.enter()?;
        let flow = self.walk_nodes(dot, nodes);
        self.nesting -= 1;
        flow
    }

    fn walk_nodes(&mut self, dot: &Value<'d>, nodes: &'t [Node]) -> Result<Flow, Fail> {
        for node in nodes {
            self.step(1)?;
            match node {
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::Range {
                    pipe,
                    list,
                    else_list,
                } => {
                    let mark = self.vars.len();
                    let flow = self.walk_range(dot, pipe, list, else_list.as_deref())?;
                    self.vars.truncate(mark);
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
                Node::Template { pos, name, pipe } => {
                    let mark = self.vars.len();
                    self.walk_template(dot, *pos, name, pipe.as_ref())?;
                    self.vars.truncate(mark);
                }
                Node::Text(text) => self.out.extend(text.as_bytes()),
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match &value {
                            Value::Nil => self.out.extend(b"<no value>"),
                            v => fmt_value(&mut self.out, v, 'v'),
                        }
                    }
                    if let Some(overflow) = self.out.overflow {
                        return Err(self.fail(overflow.message("output")));
                    }
                }
                Node::If {
                    with,
                    pipe,
                    list,
                    else_list,
                } => {
                    let mark = self.vars.len();
                    let value = self.eval_pipeline(dot, pipe)?;
                    let flow = if value.truth() {
                        self.walk(if *with { &value } else { dot }, list)?
                    } else if let Some(else_list) = else_list {
                        self.walk(dot, else_list)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    /// Go's `walkRange`: over the item map (values, in key order) or an integer.
    fn walk_range(
        &mut self,
        dot: &Value<'d>,
        pipe: &'t Pipe,
        list: &'t [Node],
        else_list: Option<&'t [Node]>,
    ) -> Result<Flow, Fail> {
        let value = self.eval_commands(dot, pipe)?;
        // The variables, declared with the value of the pipeline, then set per element.
        self.declare(pipe, &value)?;
        let one = |exec: &mut Self, key: Value<'d>, elem: Value<'d>| -> Result<Flow, Fail> {
            let mark = exec.vars.len();
            if let Some(name) = pipe.decl.last() {
                exec.set_var(pipe, name, elem.clone())?;
            }
            if pipe.decl.len() > 1 {
                exec.set_var(pipe, &pipe.decl[0], key)?;
            }
            let flow = exec.walk(&elem, list)?;
            exec.vars.truncate(mark);
            Ok(flow)
        };
        let mut ran = false;
        match value {
            Value::Map(map) => {
                for (key, item) in map.iter() {
                    ran = true;
                    self.at = Some(At::Pipe(pipe));
                    let (key, elem) = (self.copy(key.as_bytes())?, self.copy(item)?);
                    if one(self, key, elem)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if pipe.decl.len() > 1 {
                    self.at = Some(At::Pipe(pipe));
                    return Err(self.fail(
                        "can't use value of type int to iterate over more than one variable",
                    ));
                }
                for i in 0..n.max(0) {
                    ran = true;
                    if one(self, Value::Int(i), Value::Int(i))? == Flow::Break {
                        break;
                    }
                }
            }
            Value::List(list) => {
                // A snapshot, as Go's slice header is: the body may change nothing of it.
                self.at = Some(At::Pipe(pipe));
                let cost = list.0.len().saturating_mul(ELEM_COST);
                self.meter.charge(cost).map_err(|m| self.fail(m))?;
                let items = list.0.clone();
                for (i, elem) in items.into_iter().enumerate() {
                    ran = true;
                    if one(self, Value::Int(i as i64), elem)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Dict(dict) => {
                // Go sorts the keys first; the body may `set` the dict meanwhile.
                let items: Vec<(Zeroizing<Vec<u8>>, Value<'d>)> = {
                    let map = dict.0.borrow();
                    self.at = Some(At::Pipe(pipe));
                    let keys: usize = map.keys().map(|k| k.0.len()).sum();
                    self.meter.charge(keys).map_err(|m| self.fail(m))?;
                    map.iter().map(|(k, v)| (k.0.clone(), v.clone())).collect()
                };
                for (key, elem) in items {
                    ran = true;
                    self.at = Some(At::Pipe(pipe));
                    let key = Value::Str(Rc::new(key));
                    if one(self, key, elem)? == Flow::Break {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                self.at = Some(At::Pipe(pipe));
                let what = other.type_name();
                return Err(self.fail(format!("range can't iterate over value of type {what}")));
            }
        }
        match else_list {
            Some(else_list) if !ran => self.walk(dot, else_list),
            _ => Ok(Flow::Normal),
        }
    }

    /// Go's `walkTemplate`: runs a defined template (or this one) with the value of the
    /// pipeline as `.` and `$`, and no other variable.
    fn walk_template(
        &mut self,
        dot: &Value<'d>,
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> Result<(), Fail> {
        self.at = Some(At::Template(pos, name, pipe));
        let template = self.template;
        let root = match template.defs.get(name) {
            Some(list) => list,
            None if name == template.name => &template.root,
            None => {
                return Err(self.fail(format!("template {} not defined", quoted(name))));
            }
        };
        if self.depth >= MAX_DEPTH {
            return Err(self.fail(format!("exceeded maximum template depth ({MAX_DEPTH})")));
        }
        let dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        let vars = std::mem::replace(&mut self.vars, vec![("$", dot.clone())]);
        let current = std::mem::replace(&mut self.current, name);
        self.depth += 1;
        let result = self.walk(&dot, root);
        self.depth -= 1;
        self.current = current;
        self.vars = vars;
        result.map(|_| ())
    }

    pub(crate) fn eval_pipeline(
        &mut self,
        dot: &Value<'d>,
        pipe: &'t Pipe,
    ) -> Result<Value<'d>, Fail> {
        self.enter()?;
        let value = self.eval_commands(dot, pipe);
        self.nesting -= 1;
        let value = value?;
        self.declare(pipe, &value)?;
        Ok(value)
    }

    /// The value of a pipeline, without its variables.
    fn eval_commands(&mut self, dot: &Value<'d>, pipe: &'t Pipe) -> Result<Value<'d>, Fail> {
        self.at = Some(At::Pipe(pipe));
        let mut value = None;
        for cmd in &pipe.cmds {
            self.step(1)?;
            value = Some(self.eval_command(dot, cmd, value.take())?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    /// Declares (`:=`, a new variable) or assigns (`=`) the variables of `pipe`.
    fn declare(&mut self, pipe: &'t Pipe, value: &Value<'d>) -> Result<(), Fail> {
        for name in &pipe.decl {
            if pipe.assign {
                self.set_var(pipe, name, value.clone())?;
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(())
    }

    /// Sets the innermost variable `name` (Go's `setVar`; `range` sets the ones it
    /// declared, which are innermost too).
    fn set_var(&mut self, pipe: &'t Pipe, name: &str, value: Value<'d>) -> Result<(), Fail> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => {
                self.at = Some(At::Pipe(pipe));
                return Err(self.fail(format!("undefined variable: {name}")));
            }
        }
        Ok(())
    }

    pub(crate) fn eval_command(
        &mut self,
        dot: &Value<'d>,
        cmd: &'t Cmd,
        last: Option<Value<'d>>,
    ) -> Result<Value<'d>, Fail> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || last.is_some();
        match &first.kind {
            ArgKind::Field(names) => {
                self.at(first);
                return self.eval_fields(dot.clone(), names, has_args);
            }
            ArgKind::Var(name, names) => {
                self.at(first);
                let value = self.var(name)?;
                if !names.is_empty() {
                    return self.eval_fields(value, names, has_args);
                }
                self.not_a_function(first, has_args)?;
                return Ok(value);
            }
            ArgKind::Chain(inner, names) => {
                self.at(first);
                let value = self.eval_arg(dot, inner)?;
                return self.eval_fields(value, names, has_args);
            }
            ArgKind::Ident(def) => {
                return self.eval_function(dot, first, At::Cmd(cmd), def, &cmd.args[1..], last);
            }
            ArgKind::Pipe(pipe) => {
                self.not_a_function(first, has_args)?;
                return self.eval_pipeline(dot, pipe);
            }
            _ => {}
        }
        self.at(first);
        self.not_a_function(first, has_args)?;
        if matches!(first.kind, ArgKind::Nil) {
            return Err(self.fail("nil is not a command"));
        }
        self.eval_arg(dot, first)
    }

    pub(crate) fn not_a_function(&self, first: &Arg, has_args: bool) -> Result<(), Fail> {
        if has_args {
            return Err(self.fail(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    pub(crate) fn var(&self, name: &str) -> Result<Value<'d>, Fail> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.fail(format!("undefined variable: {name}"))),
        }
    }

    /// `.a.b` on `value`; the last field may not receive arguments.
    pub(crate) fn eval_fields(
        &self,
        mut value: Value<'d>,
        names: &[String],
        has_args: bool,
    ) -> Result<Value<'d>, Fail> {
        for (i, name) in names.iter().enumerate() {
            value = match value {
                Value::Nil if self.template.missing_key == MissingKey::Error => {
                    let name = quoted(name);
                    return Err(self.fail(format!("nil data; no entry for key {name}")));
                }
                Value::Nil => Value::Nil,
                Value::Map(map) => {
                    if has_args && i + 1 == names.len() {
                        return Err(self.fail(format!("{name} is not a method but has arguments")));
                    }
                    match (map.get(name.as_str()), self.template.missing_key) {
                        (Some(item), _) => self.copy(item)?,
                        (None, MissingKey::Default) => Value::Nil,
                        (None, MissingKey::Zero) => self.copy(b"")?,
                        (None, MissingKey::Error) => {
                            let name = quoted(name);
                            return Err(self.fail(format!("map has no entry for key {name}")));
                        }
                    }
                }
                Value::Dict(dict) => {
                    if has_args && i + 1 == names.len() {
                        return Err(self.fail(format!("{name} is not a method but has arguments")));
                    }
                    let found = dict.0.borrow().get(name.as_bytes()).cloned();
                    match (found, self.template.missing_key) {
                        (Some(item), _) => item,
                        // The zero value of `interface{}` is nil.
                        (None, MissingKey::Default | MissingKey::Zero) => Value::Nil,
                        (None, MissingKey::Error) => {
                            let name = quoted(name);
                            return Err(self.fail(format!("map has no entry for key {name}")));
                        }
                    }
                }
                other => {
                    let what = other.type_name();
                    return Err(self.fail(format!("can't evaluate field {name} in type {what}")));
                }
            };
        }
        Ok(value)
    }

    pub(crate) fn eval_arg(&mut self, dot: &Value<'d>, arg: &'t Arg) -> Result<Value<'d>, Fail> {
        self.at(arg);
        self.step(1)?;
        Ok(match &arg.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Value::Nil,
            ArgKind::Bool(b) => Value::Bool(*b),
            ArgKind::Num(n, _) => Value::Int(*n),
            ArgKind::Str(bytes, _) => self.copy(bytes)?,
            ArgKind::Field(names) => self.eval_fields(dot.clone(), names, false)?,
            ArgKind::Var(name, names) => {
                let value = self.var(name)?;
                self.eval_fields(value, names, false)?
            }
            ArgKind::Chain(inner, names) => {
                let value = self.eval_arg(dot, inner)?;
                self.eval_fields(value, names, false)?
            }
            ArgKind::Ident(def) => self.eval_function(dot, arg, At::Arg(arg), def, &[], None)?,
            ArgKind::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
        })
    }

    /// Calls `def`; `call` is the node Go blames when the function itself fails.
    pub(crate) fn eval_function(
        &mut self,
        dot: &Value<'d>,
        node: &'t Arg,
        call: At<'t>,
        def: &'static FuncDef,
        args: &'t [Arg],
        last: Option<Value<'d>>,
    ) -> Result<Value<'d>, Fail> {
        self.at(node);
        self.step(1)?;
        let (name, sig) = (def.name, &def.sig);
        let count = args.len() + usize::from(last.is_some());
        let fixed = sig.fixed.len();
        if sig.variadic.is_some() && count < fixed {
            let got = args.len();
            let msg = format!("wrong number of args for {name}: want at least {fixed} got {got}");
            return Err(self.fail(msg));
        }
        if sig.variadic.is_none() && count != fixed {
            let msg = format!("wrong number of args for {name}: want {fixed} got {count}");
            return Err(self.fail(msg));
        }
        let function = match def.call {
            Call::Eager(function) => function,
            Call::ShortCircuit { or } => {
                // Stop at the first operand that decides the result.
                let mut value = Value::Nil;
                for arg in args {
                    value = self.eval_arg(dot, arg)?;
                    if value.truth() == or {
                        return Ok(value);
                    }
                }
                return Ok(last.unwrap_or(value));
            }
        };
        let mut argv = Vec::with_capacity(count);
        for (i, arg) in args.iter().enumerate() {
            let value = self.eval_arg(dot, arg)?;
            let literal = Some(arg).filter(|a| a.kind.is_literal());
            argv.push(check_param(value, sig.param(i), literal).map_err(|m| self.fail(m))?);
        }
        if let Some(value) = last {
            argv.push(check_param(value, sig.param(count - 1), None).map_err(|m| self.fail(m))?);
        }
        // Reading is work too: a function over a 4 MiB value costs 65,536 steps.
        let read: usize = argv.iter().map(Value::weight).sum();
        self.at = Some(call);
        self.step((read / BYTES_PER_STEP) as u64 + def.cost)?;
        function(argv, &self.meter).map_err(|msg| {
            self.at = Some(call);
            self.fail(format!("error calling {name}: {msg}"))
        })
    }
}

/// Go's conversion of an argument to a parameter type (`evalArg` and
/// `validateType`); `literal` is the argument when it is a literal.
pub(crate) fn check_param<'d>(
    value: Value<'d>,
    param: P,
    literal: Option<&Arg>,
) -> Result<Value<'d>, String> {
    let (want, ok) = match param {
        P::Any => return Ok(value),
        // A nil map: Go passes it, and it reads as empty.
        P::Dict if matches!(value, Value::Nil) => {
            return Ok(Value::Dict(Rc::new(crate::value::Dict::default())));
        }
        P::Dict if literal.is_some() => {
            let arg = literal.map(ToString::to_string).unwrap_or_default();
            return Err(format!(
                "can't handle {arg} for arg of type map[string]interface {{}}"
            ));
        }
        P::Str => ("string", matches!(value, Value::Str(_))),
        P::Int => ("int", matches!(value, Value::Int(_))),
        P::Bool => ("bool", matches!(value, Value::Bool(_))),
        P::Dict => ("map[string]interface {}", matches!(value, Value::Dict(_))),
    };
    match literal {
        _ if ok => Ok(value),
        Some(Arg {
            kind: ArgKind::Nil, ..
        }) => Err(format!("cannot assign nil to {want}")),
        Some(arg) => {
            let want = if want == "int" { "integer" } else { want };
            Err(format!("expected {want}; found {arg}"))
        }
        None if matches!(value, Value::Nil) => Err(format!("invalid value; expected {want}")),
        None => Err(format!(
            "wrong type for value; expected {want}; got {}",
            value.type_name()
        )),
    }
}
