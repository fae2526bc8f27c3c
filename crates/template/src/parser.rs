//! The parser: Go's `text/template/parse/parse.go`.

use std::collections::BTreeMap;
use std::fmt;

use crate::func::lookup;
use crate::gofmt::quoted;
use crate::lexer::{Item, Kw, Typ};
use crate::literal::{parse_number, unquote};
use crate::tree::{Arg, ArgKind, Cmd, Node, Pipe};
use crate::{Dialect, MAX_DEPTH, TemplateError};

/// The templates of `define` and `block`, by name.
pub(crate) type Defs = BTreeMap<String, Vec<Node>>;

/// What a `{{ ... }}` turned out to be.
pub(crate) enum Parsed {
    Node(Node),
    End,
    Else,
}

pub(crate) struct Parser<'a> {
    pub(crate) name: &'a str,
    pub(crate) items: Vec<Item>,
    pub(crate) idx: usize,
    /// The furthest item read: Go reports parse errors at its line.
    pub(crate) furthest: usize,
    pub(crate) vars: Vec<String>,
    pub(crate) action_line: usize,
    pub(crate) depth: usize,
    /// How many `range`s the parser is in: `break` and `continue` need one.
    pub(crate) range_depth: usize,
    /// Where function names are looked up.
    pub(crate) dialect: Dialect,
    pub(crate) defs: Defs,
}

pub(crate) type PResult<T> = Result<T, TemplateError>;

impl<'a> Parser<'a> {
    pub(crate) fn new(name: &'a str, items: Vec<Item>, dialect: Dialect) -> Self {
        Parser {
            name,
            items,
            idx: 0,
            furthest: 0,
            vars: vec!["$".to_string()],
            action_line: 0,
            depth: 0,
            range_depth: 0,
            dialect,
            defs: Defs::new(),
        }
    }

    /// The item at the cursor; past the end, the final EOF or error item.
    pub(crate) fn current(&mut self) -> Item {
        let i = self.idx.min(self.items.len() - 1);
        self.furthest = self.furthest.max(i);
        self.items[i].clone()
    }

    pub(crate) fn next(&mut self) -> Item {
        let item = self.current();
        self.idx += 1;
        item
    }

    pub(crate) fn backup(&mut self) {
        self.idx -= 1;
    }

    pub(crate) fn peek(&mut self) -> Item {
        self.current()
    }

    pub(crate) fn next_non_space(&mut self) -> Item {
        loop {
            let item = self.next();
            if item.typ != Typ::Space {
                return item;
            }
        }
    }

    pub(crate) fn peek_non_space(&mut self) -> Item {
        let item = self.next_non_space();
        self.backup();
        item
    }

    pub(crate) fn errorf(&self, msg: impl fmt::Display) -> TemplateError {
        let line = self.items[self.furthest].line;
        TemplateError::Parse(format!("template: {}:{line}: {msg}", self.name))
    }

    pub(crate) fn unexpected(&self, item: &Item, context: &str) -> TemplateError {
        if item.typ != Typ::Error {
            return self.errorf(format!("unexpected {item} in {context}"));
        }
        let mut extra = String::new();
        if self.action_line != 0 && self.action_line != item.line {
            extra = format!(" in action started at {}:{}", self.name, self.action_line);
            if item.val.ends_with(" action") {
                extra.replace_range(.." in action".len(), "");
            }
        }
        self.errorf(format!("{}{extra}", item.val))
    }

    /// Guards the recursion of nested blocks and parentheses (Go limits only
    /// the latter, to 10000; a Rust stack needs a lower bound for both).
    pub(crate) fn enter(&mut self, what: &str) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.errorf(format!("max {what} depth exceeded")));
        }
        Ok(())
    }

    /// The template and the ones it defines.
    pub(crate) fn parse(mut self) -> PResult<(Vec<Node>, Defs)> {
        let mut root = Vec::new();
        while self.peek().typ != Typ::Eof {
            if self.peek().typ == Typ::LeftDelim {
                let save = self.idx;
                let delim = self.next();
                if self.next_non_space().typ == Typ::Kw(Kw::Define) {
                    self.action_line = delim.line;
                    self.definition()?;
                    self.action_line = 0;
                    continue;
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Parsed::Node(node) => root.push(node),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        // The template is in its own set under its own name (Go's `add`).
        let name = self.name.to_string();
        if let Some(defined) = self.defs.remove(&name) {
            if !is_empty_tree(&root) {
                return Err(self.multiple_definition(&name));
            }
            root = defined;
        }
        Ok((root, self.defs))
    }

    /// `{{define "name"}} ... {{end}}`, after `define`.
    fn definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        self.expect(Typ::RightDelim, CONTEXT)?;
        let list = self.body(CONTEXT)?;
        self.add(name, list)
    }

    /// Go's `add`: a name may be defined twice only when one of the bodies is empty.
    fn add(&mut self, name: String, list: Vec<Node>) -> PResult<()> {
        match self.defs.get(&name) {
            Some(old) if !is_empty_tree(old) => {
                if !is_empty_tree(&list) {
                    return Err(self.multiple_definition(&name));
                }
            }
            _ => {
                self.defs.insert(name, list);
            }
        }
        Ok(())
    }

    fn multiple_definition(&self, name: &str) -> TemplateError {
        let name = quoted(name);
        self.errorf(format!("template: multiple definition of template {name}"))
    }

    /// The body of `define` or `block`: a template of its own, which sees only `$`.
    fn body(&mut self, context: &str) -> PResult<Vec<Node>> {
        self.enter("nesting")?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let range_depth = std::mem::take(&mut self.range_depth);
        let (list, stop) = self.item_list()?;
        if !matches!(stop, Parsed::End) {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.vars = vars;
        self.range_depth = range_depth;
        self.depth -= 1;
        Ok(list)
    }

    /// The name of `template`, `block` or `define`: a string constant.
    fn template_name(&self, token: &Item, context: &str) -> PResult<String> {
        if !matches!(token.typ, Typ::Str | Typ::RawStr) {
            return Err(self.unexpected(token, context));
        }
        let bytes = unquote(&token.val).ok_or_else(|| self.errorf("invalid syntax"))?;
        String::from_utf8(bytes).map_err(|_| self.errorf("invalid syntax"))
    }

    /// `{{template "name"}}` or `{{template "name" pipeline}}`, after `template`.
    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().typ == Typ::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, Typ::RightDelim)?)
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    /// `{{block "name" pipeline}} ... {{end}}`: defines `name` and runs it in place.
    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Typ::RightDelim)?;
        let list = self.body(CONTEXT)?;
        self.add(name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    /// `{{range pipeline}} ... {{else}} ... {{end}}`, after `range`.
    fn range_control(&mut self) -> PResult<Node> {
        self.enter("nesting")?;
        let vars = self.vars.len();
        let pipe = self.pipeline("range", Typ::RightDelim)?;
        self.range_depth += 1;
        let (list, stop) = self.item_list()?;
        self.range_depth -= 1;
        let else_list = match stop {
            Parsed::Else => Some(self.else_list()?),
            _ => None,
        };
        self.vars.truncate(vars);
        self.depth -= 1;
        Ok(Node::Range {
            pipe,
            list,
            else_list,
        })
    }

    /// The nodes after an `{{else}}`, up to the `{{end}}` that must close them.
    fn else_list(&mut self) -> PResult<Vec<Node>> {
        let (list, stop) = self.item_list()?;
        if !matches!(stop, Parsed::End) {
            return Err(self.errorf("expected end; found {{else}}"));
        }
        Ok(list)
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    pub(crate) fn item_list(&mut self) -> PResult<(Vec<Node>, Parsed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != Typ::Eof {
            match self.text_or_action()? {
                Parsed::Node(node) => list.push(node),
                stop => return Ok((list, stop)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    pub(crate) fn text_or_action(&mut self) -> PResult<Parsed> {
        let item = self.next_non_space();
        match item.typ {
            Typ::Text => Ok(Parsed::Node(Node::Text(item.val))),
            Typ::LeftDelim => {
                self.action_line = item.line;
                let parsed = self.action();
                self.action_line = 0;
                parsed
            }
            _ => Err(self.unexpected(&item, "input")),
        }
    }

    pub(crate) fn action(&mut self) -> PResult<Parsed> {
        let item = self.next_non_space();
        match item.typ {
            Typ::Kw(Kw::Else) => {
                // "{{else if" and "{{else with" leave the keyword for the caller.
                if !matches!(self.peek_non_space().typ, Typ::Kw(Kw::If | Kw::With)) {
                    self.expect(Typ::RightDelim, "else")?;
                }
                Ok(Parsed::Else)
            }
            Typ::Kw(Kw::End) => {
                self.expect(Typ::RightDelim, "end")?;
                Ok(Parsed::End)
            }
            Typ::Kw(kw @ (Kw::Break | Kw::Continue)) => {
                let what = if kw == Kw::Break {
                    "{{break}}"
                } else {
                    "{{continue}}"
                };
                self.expect(Typ::RightDelim, what)?;
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{what} outside {{{{range}}}}")));
                }
                Ok(Parsed::Node(if kw == Kw::Break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Typ::Kw(Kw::If) => Ok(Parsed::Node(self.control(false)?)),
            Typ::Kw(Kw::With) => Ok(Parsed::Node(self.control(true)?)),
            Typ::Kw(Kw::Range) => Ok(Parsed::Node(self.range_control()?)),
            Typ::Kw(Kw::Template) => Ok(Parsed::Node(self.template_control()?)),
            Typ::Kw(Kw::Block) => Ok(Parsed::Node(self.block_control()?)),
            _ => {
                self.backup();
                Ok(Parsed::Node(Node::Action(
                    self.pipeline("command", Typ::RightDelim)?,
                )))
            }
        }
    }

    pub(crate) fn expect(&mut self, typ: Typ, context: &str) -> PResult<Item> {
        let item = self.next_non_space();
        if item.typ != typ {
            return Err(self.unexpected(&item, context));
        }
        Ok(item)
    }

    pub(crate) fn control(&mut self, with: bool) -> PResult<Node> {
        self.enter("nesting")?;
        let vars = self.vars.len();
        let pipe = self.pipeline(if with { "with" } else { "if" }, Typ::RightDelim)?;
        let (list, stop) = self.item_list()?;
        let else_list = match stop {
            Parsed::Else => {
                let keyword = Typ::Kw(if with { Kw::With } else { Kw::If });
                if self.peek().typ == keyword {
                    // {{else if b}}...{{end}} is {{else}}{{if b}}...{{end}}{{end}}.
                    self.next();
                    Some(vec![self.control(with)?])
                } else {
                    Some(self.else_list()?)
                }
            }
            _ => None,
        };
        self.vars.truncate(vars);
        self.depth -= 1;
        Ok(Node::If {
            with,
            pipe,
            list,
            else_list,
        })
    }

    pub(crate) fn pipeline(&mut self, context: &str, end: Typ) -> PResult<Pipe> {
        let mut decl = Vec::new();
        let mut assign = false;
        let first = self.peek_non_space();
        while self.peek_non_space().typ == Typ::Variable {
            let save = self.idx;
            let var = self.next_non_space();
            let next = self.peek_non_space();
            match next.typ {
                Typ::Assign | Typ::Declare => {
                    self.next_non_space();
                    assign = next.typ == Typ::Assign;
                    decl.push(var.val.clone());
                    self.vars.push(var.val);
                    break;
                }
                Typ::Char if next.val == "," => {
                    self.next_non_space();
                    decl.push(var.val.clone());
                    self.vars.push(var.val);
                    if context == "range" && decl.len() < 2 {
                        match self.peek_non_space().typ {
                            Typ::Variable | Typ::RightDelim | Typ::RightParen => continue,
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    self.idx = save;
                    break;
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let item = self.next_non_space();
            match item.typ {
                t if t == end => break,
                Typ::Bool
                | Typ::CharConst
                | Typ::Complex
                | Typ::Dot
                | Typ::Field
                | Typ::Ident
                | Typ::Number
                | Typ::Nil
                | Typ::RawStr
                | Typ::Str
                | Typ::Variable
                | Typ::LeftParen => {
                    self.backup();
                    cmds.push(self.command()?);
                }
                _ => return Err(self.unexpected(&item, context)),
            }
        }
        if cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(cmd.args[0].kind, ArgKind::Dot) || cmd.args[0].kind.is_literal() {
                return Err(self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(Pipe {
            pos: first.pos,
            decl,
            assign,
            cmds,
        })
    }

    pub(crate) fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let item = self.next();
            match item.typ {
                Typ::Space => continue,
                Typ::RightDelim | Typ::RightParen => self.backup(),
                Typ::Pipe => {}
                _ => return Err(self.unexpected(&item, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(Cmd { pos, args })
    }

    pub(crate) fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != Typ::Field {
            return Ok(Some(term));
        }
        let pos = self.peek().pos;
        let mut more = Vec::new();
        while self.peek().typ == Typ::Field {
            more.push(self.next().val[1..].to_string());
        }
        let kind = match term.kind {
            ArgKind::Field(mut names) => {
                names.append(&mut more);
                ArgKind::Field(names)
            }
            ArgKind::Var(name, mut names) => {
                names.append(&mut more);
                ArgKind::Var(name, names)
            }
            ArgKind::Ident(_) | ArgKind::Pipe(_) | ArgKind::Chain(..) => {
                ArgKind::Chain(Box::new(term), more)
            }
            _ => {
                let text = quoted(&term.to_string());
                return Err(self.errorf(format!("unexpected . after term {text}")));
            }
        };
        Ok(Some(Arg { pos, kind }))
    }

    pub(crate) fn term(&mut self) -> PResult<Option<Arg>> {
        let item = self.next_non_space();
        let kind = match item.typ {
            Typ::Ident => match lookup(self.dialect, &item.val) {
                Some(def) => ArgKind::Ident(def),
                None => {
                    let name = quoted(&item.val);
                    return Err(self.errorf(format!("function {name} not defined")));
                }
            },
            Typ::Dot => ArgKind::Dot,
            Typ::Nil => ArgKind::Nil,
            Typ::Variable => {
                if !self.vars.contains(&item.val) {
                    let name = quoted(&item.val);
                    return Err(self.errorf(format!("undefined variable {name}")));
                }
                ArgKind::Var(item.val, Vec::new())
            }
            Typ::Field => ArgKind::Field(vec![item.val[1..].to_string()]),
            Typ::Bool => ArgKind::Bool(item.val == "true"),
            Typ::Number | Typ::CharConst | Typ::Complex => {
                let n = parse_number(&item).map_err(|msg| self.errorf(msg))?;
                ArgKind::Num(n, item.val)
            }
            Typ::LeftParen => {
                self.enter("expression")?;
                let pipe = self.pipeline("parenthesized pipeline", Typ::RightParen)?;
                self.depth -= 1;
                return Ok(Some(Arg {
                    pos: pipe.pos,
                    kind: ArgKind::Pipe(Box::new(pipe)),
                }));
            }
            Typ::Str | Typ::RawStr => match unquote(&item.val) {
                Some(bytes) => ArgKind::Str(bytes, item.val),
                None => return Err(self.errorf("invalid syntax")),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg {
            pos: item.pos,
            kind,
        }))
    }
}

/// Go's `IsEmptyTree`: nothing but white space.
fn is_empty_tree(list: &[Node]) -> bool {
    list.iter().all(|node| match node {
        Node::Text(text) => text.trim_matches([' ', '\t', '\r', '\n']).is_empty(),
        _ => false,
    })
}
