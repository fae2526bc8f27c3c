//! The parse tree: Go's `text/template/parse/node.go`.

use std::fmt;

use crate::func::FuncDef;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    /// `if` (or `with` when `with` is true) with its optional else branch.
    If {
        with: bool,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    /// `range`: the pipeline declares at most two variables.
    Range {
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    /// `{{break}}` inside `range`.
    Break,
    /// `{{continue}}` inside `range`.
    Continue,
    /// `{{template "name" pipeline}}`, also what `{{block}}` leaves in place.
    Template {
        /// Where the action is, for errors.
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    /// Where the pipeline's first token is.
    pub(crate) pos: usize,
    /// Declared (`:=`) or assigned (`=`) variables: one, or two in `range`.
    pub(crate) decl: Vec<String>,
    /// Whether `decl` is assigned (`=`) rather than declared.
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) pos: usize,
    pub(crate) kind: ArgKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    Dot,
    Nil,
    Bool(bool),
    /// An integer with its source text.
    Num(i64, String),
    /// A string literal's value with its quoted source text.
    Str(Vec<u8>, String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    /// A function, resolved when the template was parsed.
    Ident(&'static FuncDef),
    Pipe(Box<Pipe>),
    /// Fields of something that is not `.` or a variable: `(pipeline).a`.
    Chain(Box<Arg>, Vec<String>),
}

impl ArgKind {
    pub(crate) fn is_literal(&self) -> bool {
        matches!(
            self,
            ArgKind::Nil | ArgKind::Bool(_) | ArgKind::Num(..) | ArgKind::Str(..)
        )
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match arg.kind {
                ArgKind::Pipe(_) => write!(f, "({arg})")?,
                _ => write!(f, "{arg}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    /// Go's `Node.String()`: the error context of execution errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |f: &mut fmt::Formatter<'_>, names: &[String]| {
            names.iter().try_for_each(|n| write!(f, ".{n}"))
        };
        match &self.kind {
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Num(_, text) | ArgKind::Str(_, text) => f.write_str(text),
            ArgKind::Field(names) => fields(f, names),
            ArgKind::Var(name, names) => {
                f.write_str(name)?;
                fields(f, names)
            }
            ArgKind::Ident(def) => f.write_str(def.name),
            ArgKind::Pipe(pipe) => write!(f, "{pipe}"),
            ArgKind::Chain(inner, names) => {
                match inner.kind {
                    ArgKind::Pipe(_) => write!(f, "({inner})")?,
                    _ => write!(f, "{inner}")?,
                }
                fields(f, names)
            }
        }
    }
}
