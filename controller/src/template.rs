//! Rendering of a SealedSecret's `spec.template.data`: a subset of Go's
//! [`text/template`](https://pkg.go.dev/text/template) with the
//! [Sprig](https://masterminds.github.io/sprig/) functions that Bitnami's
//! sealed-secrets controller offers.
//!
//! A template sees the decrypted items of its SealedSecret as a map from item
//! name to value, as upstream does: `{{ .password }}`, `{{ index . "my-key" }}`.
//! Within the subset below the output is the one Go 1.25 with Sprig 3.3 (what
//! upstream builds with) produces, byte for byte. Anything outside the subset
//! is refused with an error in Go's words, such as
//! `template: password:1: function "env" not defined`. So a template either
//! renders as it would upstream or fails with an error.
//!
//! # Syntax
//!
//! - Text and actions `{{ pipeline }}`. The trim markers `{{- ` and ` -}}`
//!   remove the spaces, tabs and newlines before or after an action. Comments
//!   are written `{{/* ... */}}` or `{{- /* ... */ -}}`.
//! - Operands: `.` (the item map, or the value bound by `with`), `.name` and
//!   chains such as `.a.b` (an error on a string value, as in Go), `$` (the item
//!   map), variables `$x`, string literals `"..."` with Go escapes, raw strings
//!   `` `...` ``, integers (`42`, `-1`, `0x1F`, `1_000`), character constants
//!   (`'a'`), `true`, `false`, `nil`, and parenthesised pipelines `( ... )`.
//!   Floating-point and complex numbers are refused.
//! - Pipelines `.x | f "a" | g`: the value on the left becomes the last argument
//!   of the function on the right.
//! - Variables: `{{ $x := pipeline }}` and `{{ $x = pipeline }}`, scoped to the
//!   enclosing `if` or `with` as in Go.
//! - `{{ if pipeline }} ... {{ else if pipeline }} ... {{ else }} ... {{ end }}`.
//! - `{{ with pipeline }} ... {{ else with pipeline }} ... {{ else }} ... {{ end }}`;
//!   inside, `.` is the value of the pipeline.
//!
//! `range`, `define`, `template` and `block` are refused with an error such as
//! `unsupported action range`. `break` and `continue` are refused as Go refuses
//! them outside `range` (`{{break}} outside {{range}}`).
//!
//! # Functions
//!
//! Go's built-ins: `and`, `or` (both return one of their operands, not a bool,
//! and stop at the first falsy or truthy one), `not`, `eq`, `ne`, `lt`, `le`,
//! `gt`, `ge`, `len`, `index`, `print`, `println` and `printf`. `printf` knows
//! the verbs `%s %v %q %d %x %X %t` and `%%`. Any other verb, and any flag,
//! width or argument index, is an error.
//!
//! Sprig's: `default`, `empty`, `coalesce`, `ternary`, `quote`, `squote`, `cat`,
//! `upper`, `lower`, `trim`, `trimPrefix`, `trimSuffix`, `nospace`, `replace`,
//! `contains`, `hasPrefix`, `hasSuffix`, `indent`, `nindent`, `b64enc`, `b64dec`,
//! `sha256sum`, `toString`, `toJson`, `toRawJson` and `toPrettyJson`.
//!
//! Using any other name is a parse error: `function "NAME" not defined`. This
//! includes `env`, `expandenv` and `getHostByName`, which upstream removes so
//! that a template cannot read the controller's environment or network.
//!
//! # Behaviour carried over from upstream
//!
//! - `{{ .missing }}` prints `<no value>`, while `{{ index . "missing" }}`
//!   prints nothing. A missing item is false for `if`, `with`, `and`, `or` and
//!   `not`, and empty for `default`. Passing a missing item to a function that
//!   needs a string (`{{ .missing | b64enc }}`) is an error.
//! - `b64dec` of malformed input does not fail. It returns the text of the
//!   error (`illegal base64 data at input byte 3`), as Sprig does.
//! - `toJson` escapes `<`, `>`, `&`, U+2028 and U+2029 like Go's `json.Marshal`;
//!   `quote` is Go's `%q`.
//! - Values are bytes: binary items pass through a template untouched, and
//!   string functions treat invalid UTF-8 as Go does.
//!
//! # Deliberate differences
//!
//! - Error messages never contain a decrypted value. Go's sometimes do (for
//!   example when comparing two maps with `eq`).
//! - A rendered value, and every intermediate value, is limited to 4 MiB.
//!   `if`/`with` blocks and parentheses together nest at most 100 deep.
//! - All the templates of one SealedSecret share a [`Budget`]: together they
//!   may create at most [`MAX_TOTAL_LEN`] bytes of values (rendered output,
//!   function results, copies of items), each counted before it is allocated,
//!   and take at most [`MAX_STEPS`] steps (one per node, argument and function
//!   call, plus one per 64 bytes a function reads).
//!
//!   These limits stop a hostile template, or many, from exhausting the
//!   controller's memory, CPU or stack.
//! - Character classes come from Rust's Unicode tables rather than Go's. `%q`
//!   and `quote` escape the control, format, separator and private-use
//!   characters that Go escapes, but keep unassigned code points as they are,
//!   where Go escapes them. Case mapping can differ only for letters added in
//!   Unicode 16.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use base64::Engine as _;
use zeroize::Zeroizing;

/// The longest value (rendered output or intermediate) a template may produce.
const MAX_LEN: usize = 4 << 20;
/// How deep `if`/`with` blocks and parentheses may nest.
const MAX_DEPTH: usize = 100;
/// The bytes of values (rendered output, function results, copies of items)
/// that all the renders sharing one [`Budget`] may create together: 16 MiB, for
/// Secrets that Kubernetes caps at about 1 MiB.
pub const MAX_TOTAL_LEN: usize = 16 << 20;
/// The steps that all the renders sharing one [`Budget`] may take together: one
/// per node executed, per argument evaluated and per function called, plus one
/// per 64 bytes of input a function reads.
pub const MAX_STEPS: u64 = 1_000_000;
/// How many bytes of function input cost one step.
const BYTES_PER_STEP: usize = 64;

/// What the renders of one SealedSecret may spend together: bytes of values
/// created and steps taken (see [`MAX_TOTAL_LEN`] and [`MAX_STEPS`]). Pass the
/// same budget to [`Template::render_with_budget`] for every template of a
/// Secret, so that many templates cannot add up to more than one may take.
/// Nothing spent is given back.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: usize,
    steps: u64,
    max_bytes: usize,
    max_steps: u64,
}

impl Budget {
    /// The budget of one SealedSecret: [`MAX_TOTAL_LEN`] bytes, [`MAX_STEPS`] steps.
    pub fn new() -> Self {
        Self::with_limits(MAX_TOTAL_LEN, MAX_STEPS)
    }

    /// A budget of `bytes` bytes and `steps` steps.
    pub fn with_limits(bytes: usize, steps: u64) -> Self {
        Budget {
            bytes,
            steps,
            max_bytes: bytes,
            max_steps: steps,
        }
    }

    /// The bytes left.
    pub fn bytes_left(&self) -> usize {
        self.bytes
    }

    /// The steps left.
    pub fn steps_left(&self) -> u64 {
        self.steps
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a template could not be parsed or rendered. The message follows Go's
/// `template: NAME:LINE: ...` format and never contains a decrypted value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed or uses something outside the subset.
    #[error("{0}")]
    Parse(String),
    /// Rendering failed, for example a function got a value of the wrong type.
    #[error("{0}")]
    Exec(String),
}

/// The output of [`Template::render`]: bytes, as Go's templates produce (a
/// binary item passes through unchanged), wiped from memory when dropped.
/// `Debug` shows only the length.
pub struct Rendered(Zeroizing<Vec<u8>>);

impl Rendered {
    /// The rendered bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The rendered bytes, still wiped from memory when dropped.
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl std::ops::Deref for Rendered {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rendered({} bytes)", self.0.len())
    }
}

/// A parsed template, ready to be rendered against any number of item maps.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    root: Vec<Node>,
}

impl Template {
    /// Parses `source`. `name` (the item name in upstream) appears in error messages.
    pub fn parse(name: &str, source: &str) -> Result<Self, TemplateError> {
        let items = Lexer::new(source).run();
        let parser = Parser {
            name,
            items,
            idx: 0,
            furthest: 0,
            vars: vec!["$".to_string()],
            action_line: 0,
            depth: 0,
        };
        Ok(Template {
            name: name.to_string(),
            source: source.to_string(),
            root: parser.parse()?,
        })
    }

    /// The name given to [`Template::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the template with `data` (item name → decrypted value) as `.`
    /// and `$`, with a budget of its own ([`Budget::new`]). Values may be
    /// `String`s or bytes (`Vec<u8>`, or either inside `Zeroizing`); bytes keep
    /// binary items intact, as upstream does.
    pub fn render<V: AsRef<[u8]>>(
        &self,
        data: &BTreeMap<String, V>,
    ) -> Result<Rendered, TemplateError> {
        self.render_with_budget(data, &mut Budget::new())
    }

    /// Renders like [`Template::render`], spending from `budget`, which the
    /// other templates of the same Secret share. Fails, with a message that
    /// names the limit, once the budget is spent.
    pub fn render_with_budget<V: AsRef<[u8]>>(
        &self,
        data: &BTreeMap<String, V>,
        budget: &mut Budget,
    ) -> Result<Rendered, TemplateError> {
        let root: Root<'_> = data.iter().map(|(k, v)| (k.as_str(), v.as_ref())).collect();
        let dot = Value::Map(&root);
        let meter = Rc::new(Meter {
            left: Cell::new(budget.bytes),
            max: budget.max_bytes,
        });
        let mut exec = Exec {
            vars: vec![("$", dot.clone())],
            out: Buf::new(&meter),
            at: None,
            meter: meter.clone(),
            steps: budget.steps,
            max_steps: budget.max_steps,
        };
        let result = exec.walk(&dot, &self.root).and_then(|()| {
            if let Some(overflow) = exec.out.overflow {
                return Err(exec.fail(overflow.message("output")));
            }
            Ok(())
        });
        budget.bytes = meter.left.get();
        budget.steps = exec.steps;
        let Err(fail) = result else {
            return Ok(Rendered(exec.out.bytes));
        };
        let name = &self.name;
        let Some((pos, ctx)) = fail.at else {
            return Err(TemplateError::Exec(format!(
                "template: {name}: {}",
                fail.msg
            )));
        };
        let before = &self.source[..pos];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        Err(TemplateError::Exec(format!(
            "template: {name}:{line}:{col}: executing {} at <{ctx}>: {}",
            quoted(name),
            fail.msg
        )))
    }
}

// ---------------------------------------------------------------------------
// Lexer: Go's text/template/parse/lex.go, for the default delimiters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typ {
    Error,
    Eof,
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Dot,
    Nil,
    Field,
    Variable,
    Ident,
    Bool,
    Number,
    CharConst,
    Complex,
    Str,
    RawStr,
    Char,
    Pipe,
    Declare,
    Assign,
    LeftParen,
    RightParen,
    Kw(Kw),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

#[derive(Debug, Clone)]
struct Item {
    typ: Typ,
    val: String,
    pos: usize,
    line: usize,
}

impl fmt::Display for Item {
    /// Go's `item.String()`, used in "unexpected ..." messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typ {
            Typ::Eof => f.write_str("EOF"),
            Typ::Error => f.write_str(&self.val),
            Typ::Kw(_) | Typ::Dot | Typ::Nil => write!(f, "<{}>", self.val),
            _ if self.val.len() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", quoted(&head))
            }
            _ => f.write_str(&quoted(&self.val)),
        }
    }
}

enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    Action,
    Done,
}

struct Lexer<'s> {
    input: &'s str,
    start: usize,
    pos: usize,
    start_line: usize,
    paren_depth: i32,
    items: Vec<Item>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

impl<'s> Lexer<'s> {
    fn new(input: &'s str) -> Self {
        Lexer {
            input,
            start: 0,
            pos: 0,
            start_line: 1,
            paren_depth: 0,
            items: Vec::new(),
        }
    }

    fn run(mut self) -> Vec<Item> {
        let mut state = State::Text;
        loop {
            state = match state {
                State::Text => self.lex_text(),
                State::LeftDelim => self.lex_left_delim(),
                State::Comment => self.lex_comment(),
                State::RightDelim => self.lex_right_delim(),
                State::Action => self.lex_inside_action(),
                State::Done => return self.items,
            }
        }
    }

    fn rest(&self) -> &'s str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn emit(&mut self, typ: Typ) {
        let val = &self.input[self.start..self.pos];
        self.items.push(Item {
            typ,
            val: val.to_string(),
            pos: self.start,
            line: self.start_line,
        });
        self.ignore();
    }

    fn ignore(&mut self) {
        self.start_line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
    }

    fn errorf(&mut self, msg: String) -> State {
        self.items.push(Item {
            typ: Typ::Error,
            val: msg,
            pos: self.start,
            line: self.start_line,
        });
        State::Done
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[2..].starts_with("}}") {
            return (true, true);
        }
        (rest.starts_with("}}"), false)
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with("}}"),
        }
    }

    fn lex_text(&mut self) -> State {
        let Some(x) = self.rest().find("{{") else {
            self.pos = self.input.len();
            if self.pos > self.start {
                self.emit(Typ::Text);
            }
            self.emit(Typ::Eof);
            return State::Done;
        };
        self.pos += x;
        let mut trim = 0;
        if has_left_trim_marker(&self.rest()[2..]) {
            let text = &self.input[self.start..self.pos];
            trim = text.len() - text.trim_end_matches(is_space).len();
        }
        self.pos -= trim;
        if self.pos > self.start {
            self.emit(Typ::Text);
        }
        self.pos += trim;
        self.ignore();
        State::LeftDelim
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += 2;
        let after = if has_left_trim_marker(self.rest()) {
            2
        } else {
            0
        };
        if self.rest()[after..].starts_with("/*") {
            self.pos += after;
            self.ignore();
            return State::Comment;
        }
        self.emit(Typ::LeftDelim);
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        State::Action
    }

    fn lex_comment(&mut self) -> State {
        self.pos += 2;
        let Some(i) = self.rest().find("*/") else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += i + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        self.pos += if trim { 4 } else { 2 };
        if trim {
            self.skip_left_trim();
        }
        self.ignore();
        State::Text
    }

    fn skip_left_trim(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    fn lex_right_delim(&mut self) -> State {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += 2;
        self.emit(Typ::RightDelim);
        if trim {
            self.skip_left_trim();
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        if self.at_right_delim().0 {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let Some(r) = self.peek() else {
            return self.errorf("unclosed action".into());
        };
        match r {
            _ if is_space(r) => return self.lex_space(),
            '"' | '`' | '\'' => return self.lex_quote(r),
            '$' => return self.lex_field_or_variable(Typ::Variable),
            '.' if !matches!(self.rest().as_bytes().get(1), None | Some(b'0'..=b'9')) => {
                return self.lex_field_or_variable(Typ::Field);
            }
            '.' | '+' | '-' | '0'..='9' => return self.lex_number(),
            _ if is_alnum(r) => return self.lex_identifier(),
            _ => {}
        }
        self.bump();
        let typ = match r {
            '=' => Typ::Assign,
            ':' => {
                if self.bump() != Some('=') {
                    return self.errorf("expected :=".into());
                }
                Typ::Declare
            }
            '|' => Typ::Pipe,
            '(' => {
                self.paren_depth += 1;
                Typ::LeftParen
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren".into());
                }
                Typ::RightParen
            }
            _ if r.is_ascii() && !r.is_ascii_control() => Typ::Char,
            _ => return self.errorf(format!("unrecognized character in action: {}", fmt_u(r))),
        };
        self.emit(typ);
        State::Action
    }

    fn lex_space(&mut self) -> State {
        let mut spaces = 0;
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
            spaces += 1;
        }
        // A space followed by "-}}" is a trim marker, not an argument separator.
        if has_right_trim_marker(&self.input[self.pos - 1..])
            && self.input[self.pos + 1..].starts_with("}}")
        {
            self.pos -= 1;
            if spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(Typ::Space);
        State::Action
    }

    fn lex_identifier(&mut self) -> State {
        while self.peek().is_some_and(is_alnum) {
            self.bump();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        let typ = match &self.input[self.start..self.pos] {
            "block" => Typ::Kw(Kw::Block),
            "break" => Typ::Kw(Kw::Break),
            "continue" => Typ::Kw(Kw::Continue),
            "define" => Typ::Kw(Kw::Define),
            "else" => Typ::Kw(Kw::Else),
            "end" => Typ::Kw(Kw::End),
            "if" => Typ::Kw(Kw::If),
            "range" => Typ::Kw(Kw::Range),
            "template" => Typ::Kw(Kw::Template),
            "with" => Typ::Kw(Kw::With),
            "nil" => Typ::Nil,
            "true" | "false" => Typ::Bool,
            _ => Typ::Ident,
        };
        self.emit(typ);
        State::Action
    }

    fn bad_character(&mut self) -> State {
        let c = self.peek().unwrap_or('\u{fffd}');
        self.errorf(format!("bad character {}", fmt_u(c)))
    }

    /// `.name` or `$name`; a lone `.` is the dot and a lone `$` the root variable.
    fn lex_field_or_variable(&mut self, typ: Typ) -> State {
        self.pos += 1;
        if self.at_terminator() {
            self.emit(if typ == Typ::Field { Typ::Dot } else { typ });
            return State::Action;
        }
        while self.peek().is_some_and(is_alnum) {
            self.bump();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(typ);
        State::Action
    }

    /// A quoted string, raw string or character constant; the parser unquotes it.
    fn lex_quote(&mut self, quote: char) -> State {
        self.bump();
        let (typ, what) = match quote {
            '"' => (Typ::Str, "unterminated quoted string"),
            '`' => (Typ::RawStr, "unterminated raw quoted string"),
            _ => (Typ::CharConst, "unterminated character constant"),
        };
        loop {
            match self.bump() {
                None => return self.errorf(what.into()),
                Some('\n') if quote != '`' => return self.errorf(what.into()),
                Some('\\') if quote != '`' => {
                    if matches!(self.bump(), None | Some('\n')) {
                        return self.errorf(what.into());
                    }
                }
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.emit(typ);
        State::Action
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            return self.bad_number();
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                return self.bad_number();
            }
            self.emit(Typ::Complex);
        } else {
            self.emit(Typ::Number);
        }
        State::Action
    }

    fn bad_number(&mut self) -> State {
        let text = quoted(&self.input[self.start..self.pos]);
        self.errorf(format!("bad number syntax: {text}"))
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alnum) {
            self.bump();
            return false;
        }
        true
    }
}

// ---------------------------------------------------------------------------
// Parse tree and parser: Go's text/template/parse/parse.go.

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    /// `if` (or `with` when `with` is true) with its optional else branch.
    If {
        with: bool,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
}

#[derive(Debug, Clone)]
struct Pipe {
    /// Where the pipeline's first token is.
    pos: usize,
    /// A declared (`:=`) or assigned (`=`, when the flag is true) variable.
    decl: Option<(String, bool)>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Arg {
    pos: usize,
    kind: ArgKind,
}

#[derive(Debug, Clone)]
enum ArgKind {
    Dot,
    Nil,
    Bool(bool),
    /// An integer with its source text.
    Num(i64, String),
    /// A string literal's value with its quoted source text.
    Str(Vec<u8>, String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Pipe(Box<Pipe>),
    /// Fields of something that is not `.` or a variable: `(pipeline).a`.
    Chain(Box<Arg>, Vec<String>),
}

impl ArgKind {
    fn is_literal(&self) -> bool {
        matches!(
            self,
            ArgKind::Nil | ArgKind::Bool(_) | ArgKind::Num(..) | ArgKind::Str(..)
        )
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((var, assign)) = &self.decl {
            write!(f, "{var} {} ", if *assign { "=" } else { ":=" })?;
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
            ArgKind::Ident(name) => f.write_str(name),
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

/// What a `{{ ... }}` turned out to be.
enum Parsed {
    Node(Node),
    End,
    Else,
}

struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    idx: usize,
    /// The furthest item read: Go reports parse errors at its line.
    furthest: usize,
    vars: Vec<String>,
    action_line: usize,
    depth: usize,
}

type PResult<T> = Result<T, TemplateError>;

impl Parser<'_> {
    /// The item at the cursor; past the end, the final EOF or error item.
    fn current(&mut self) -> Item {
        let i = self.idx.min(self.items.len() - 1);
        self.furthest = self.furthest.max(i);
        self.items[i].clone()
    }

    fn next(&mut self) -> Item {
        let item = self.current();
        self.idx += 1;
        item
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn peek(&mut self) -> Item {
        self.current()
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let item = self.next();
            if item.typ != Typ::Space {
                return item;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let item = self.next_non_space();
        self.backup();
        item
    }

    fn errorf(&self, msg: impl fmt::Display) -> TemplateError {
        let line = self.items[self.furthest].line;
        TemplateError::Parse(format!("template: {}:{line}: {msg}", self.name))
    }

    fn unexpected(&self, item: &Item, context: &str) -> TemplateError {
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
    fn enter(&mut self, what: &str) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.errorf(format!("max {what} depth exceeded")));
        }
        Ok(())
    }

    fn parse(mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().typ != Typ::Eof {
            match self.text_or_action()? {
                Parsed::Node(node) => root.push(node),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> PResult<(Vec<Node>, Parsed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != Typ::Eof {
            match self.text_or_action()? {
                Parsed::Node(node) => list.push(node),
                stop => return Ok((list, stop)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
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

    fn action(&mut self) -> PResult<Parsed> {
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
                // Only valid inside range, which is not supported.
                let what = if kw == Kw::Break {
                    "{{break}}"
                } else {
                    "{{continue}}"
                };
                self.expect(Typ::RightDelim, what)?;
                Err(self.errorf(format!("{what} outside {{{{range}}}}")))
            }
            Typ::Kw(Kw::If) => Ok(Parsed::Node(self.control(false)?)),
            Typ::Kw(Kw::With) => Ok(Parsed::Node(self.control(true)?)),
            Typ::Kw(_) => Err(self.errorf(format!("unsupported action {}", item.val))),
            _ => {
                self.backup();
                Ok(Parsed::Node(Node::Action(
                    self.pipeline("command", Typ::RightDelim)?,
                )))
            }
        }
    }

    fn expect(&mut self, typ: Typ, context: &str) -> PResult<Item> {
        let item = self.next_non_space();
        if item.typ != typ {
            return Err(self.unexpected(&item, context));
        }
        Ok(item)
    }

    fn control(&mut self, with: bool) -> PResult<Node> {
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
                    let (list, stop) = self.item_list()?;
                    if !matches!(stop, Parsed::End) {
                        return Err(self.errorf("expected end; found {{else}}"));
                    }
                    Some(list)
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

    fn pipeline(&mut self, context: &str, end: Typ) -> PResult<Pipe> {
        let mut decl = None;
        let first = self.peek_non_space();
        if first.typ == Typ::Variable {
            let save = self.idx;
            let var = self.next();
            let next = self.peek_non_space();
            match next.typ {
                Typ::Assign | Typ::Declare => {
                    self.next_non_space();
                    decl = Some((var.val.clone(), next.typ == Typ::Assign));
                    self.vars.push(var.val);
                }
                Typ::Char if next.val == "," => {
                    self.next_non_space();
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => self.idx = save,
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
            cmds,
        })
    }

    fn command(&mut self) -> PResult<Cmd> {
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

    fn operand(&mut self) -> PResult<Option<Arg>> {
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

    fn term(&mut self) -> PResult<Option<Arg>> {
        let item = self.next_non_space();
        let kind = match item.typ {
            Typ::Ident => {
                if signature(&item.val).is_none() {
                    let name = quoted(&item.val);
                    return Err(self.errorf(format!("function {name} not defined")));
                }
                ArgKind::Ident(item.val)
            }
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

/// An integer literal (Go's `strconv.ParseInt(text, 0, 64)`) or a character constant.
fn parse_number(item: &Item) -> Result<i64, String> {
    let text = item.val.as_str();
    if item.typ == Typ::CharConst {
        let body = &text[1..];
        if body.starts_with('\'') {
            return Err("invalid syntax".into());
        }
        let (value, len) = match body.strip_prefix('\\') {
            Some(esc) => unquote_escape(esc.as_bytes(), b'\'').ok_or("invalid syntax")?,
            None => {
                let c = body.chars().next().ok_or("invalid syntax")?;
                (Esc::Char(c), c.len_utf8() - 1)
            }
        };
        if &body[len + 1..] != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        return Ok(match value {
            Esc::Char(c) => i64::from(u32::from(c)),
            Esc::Byte(b) => i64::from(b),
        });
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ if lower.len() > 1 && lower.starts_with('0') => (8, &lower[1..]),
        _ => (10, lower.as_str()),
    };
    let digits = digits.replace('_', "");
    let valid = underscores_ok(&lower) && !digits.is_empty();
    let value = i128::from_str_radix(&digits, radix)
        .ok()
        .filter(|_| valid && digits.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|m| if negative { -m } else { m })
        .and_then(|v| i64::try_from(v).ok());
    match value {
        Some(v) => Ok(v),
        None if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("integer overflow: {}", quoted(text)))
        }
        None if item.typ == Typ::Complex || text.contains(['.', 'e', 'E', 'p', 'P', 'i']) => {
            Err(format!(
                "unsupported number {}: only integers are supported",
                quoted(text)
            ))
        }
        None => Err(format!("illegal number syntax: {}", quoted(text))),
    }
}

/// Go's rule for `_` in numbers: only between digits, or after a base prefix.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let prefixed = b.len() >= 2 && b[0] == b'0' && matches!(b[1], b'b' | b'o' | b'x');
    let hex = prefixed && b[1] == b'x';
    let mut saw = if prefixed { b'0' } else { b'^' };
    for &c in &b[if prefixed { 2 } else { 0 }..] {
        saw = match c {
            _ if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) => b'0',
            b'_' if saw != b'0' => return false,
            b'_' => b'_',
            _ if saw == b'_' => return false,
            _ => b'!',
        };
    }
    saw != b'_'
}

/// One unescaped character: a byte from `\x` or octal escapes, else a character.
enum Esc {
    Byte(u8),
    Char(char),
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` literals.
fn unquote(text: &str) -> Option<Vec<u8>> {
    let body = &text.as_bytes()[1..text.len() - 1];
    if text.starts_with('`') {
        return Some(body.iter().copied().filter(|&b| b != b'\r').collect());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\\' => {
                let (value, len) = unquote_escape(&body[i + 1..], b'"')?;
                match value {
                    Esc::Byte(b) => out.push(b),
                    Esc::Char(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
                i += len + 1;
            }
            b'"' | b'\n' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The escape after a backslash: its value and how many bytes it spans.
fn unquote_escape(s: &[u8], quote: u8) -> Option<(Esc, usize)> {
    let hex = |digits: &[u8]| -> Option<u32> {
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    };
    let c = *s.first()?;
    let simple = match c {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'\'' | b'"' if c == quote => Some(c),
        _ => None,
    };
    if let Some(b) = simple {
        return Some((Esc::Char(char::from(b)), 1));
    }
    match c {
        b'x' => {
            let v = hex(s.get(1..3)?)?;
            Some((Esc::Byte(u8::try_from(v).ok()?), 3))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            let v = hex(s.get(1..1 + n)?)?;
            Some((Esc::Char(char::from_u32(v)?), n + 1))
        }
        b'0'..=b'7' => {
            let digits = s.get(0..3)?;
            let mut v: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v * 8 + u32::from(d - b'0');
            }
            Some((Esc::Byte(u8::try_from(v).ok()?), 3))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Values and execution: Go's text/template/exec.go.

type Root<'d> = BTreeMap<&'d str, &'d [u8]>;

/// A value during execution. `Nil` is Go's missing value (a map key that is
/// not there) as well as `nil`. Strings are shared, so that a value passed
/// around (to variables, `with`, functions) is not copied.
#[derive(Clone)]
enum Value<'d> {
    Nil,
    Str(Rc<Zeroizing<Vec<u8>>>),
    Bool(bool),
    Int(i64),
    Map(&'d Root<'d>),
}

impl Value<'_> {
    /// The Go type name, for error messages.
    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Map(_) => "map[string]string",
        }
    }

    /// Go's truth: false for nil, "", false, 0 and an empty map.
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// How many bytes a function taking this value may read.
    fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Map(m) => m.iter().map(|(k, v)| k.len() + v.len()).sum(),
            _ => 0,
        }
    }
}

/// The bytes left of a render's [`Budget`], shared by every buffer of the render.
struct Meter {
    left: Cell<usize>,
    max: usize,
}

/// Why a buffer stopped growing.
#[derive(Clone, Copy)]
enum Overflow {
    /// The value would exceed [`MAX_LEN`].
    Len,
    /// The budget (of this many bytes) is spent.
    Budget(usize),
}

impl Overflow {
    /// The message for a `what` ("result" or "output") that did not fit.
    fn message(self, what: &str) -> String {
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
struct Buf {
    bytes: Zeroizing<Vec<u8>>,
    overflow: Option<Overflow>,
    meter: Rc<Meter>,
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
    fn new(meter: &Rc<Meter>) -> Self {
        Buf {
            bytes: Zeroizing::default(),
            overflow: None,
            meter: meter.clone(),
        }
    }

    /// Whether `n` more bytes fit (else the buffer overflows).
    fn fits(&mut self, n: usize) -> bool {
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

    fn extend(&mut self, more: &[u8]) {
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

    fn push(&mut self, b: u8) {
        self.extend(&[b]);
    }

    fn push_char(&mut self, c: char) {
        self.extend(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    /// `n` spaces, without allocating more than they take.
    fn spaces(&mut self, mut n: usize) {
        const SPACES: [u8; 256] = [b' '; 256];
        while n > 0 && self.overflow.is_none() {
            let chunk = n.min(SPACES.len());
            self.extend(&SPACES[..chunk]);
            n -= chunk;
        }
    }

    fn into_value<'d>(self) -> Result<Value<'d>, String> {
        if let Some(overflow) = self.overflow {
            return Err(overflow.message("result"));
        }
        Ok(Value::Str(Rc::new(self.bytes)))
    }
}

/// A new string value holding a copy of `bytes`, charged to `meter`.
fn copy<'d>(bytes: &[u8], meter: &Rc<Meter>) -> Result<Value<'d>, String> {
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

/// An execution error before it gets its `template: NAME:LINE:COL:` prefix:
/// where it happened (position and Go's text of the node) and what.
struct Fail {
    at: Option<(usize, String)>,
    msg: String,
}

/// The node execution is at, which Go's execution errors point to.
#[derive(Clone, Copy)]
enum At<'t> {
    Arg(&'t Arg),
    Cmd(&'t Cmd),
    Pipe(&'t Pipe),
}

struct Exec<'t, 'd> {
    vars: Vec<(&'t str, Value<'d>)>,
    out: Buf,
    at: Option<At<'t>>,
    /// The bytes left of the budget, shared with every buffer.
    meter: Rc<Meter>,
    /// The steps left of the budget.
    steps: u64,
    max_steps: u64,
}

impl<'t, 'd> Exec<'t, 'd> {
    fn at(&mut self, arg: &'t Arg) {
        self.at = Some(At::Arg(arg));
    }

    /// Spends `n` steps of the budget.
    fn step(&mut self, n: u64) -> Result<(), Fail> {
        if n > self.steps {
            self.steps = 0;
            let max = self.max_steps;
            return Err(self.fail(format!(
                "the templates of this Secret exceed their budget of {max} steps"
            )));
        }
        self.steps -= n;
        Ok(())
    }

    /// A copy of `bytes` as a value, charged to the budget.
    fn copy(&self, bytes: &[u8]) -> Result<Value<'d>, Fail> {
        copy(bytes, &self.meter).map_err(|m| self.fail(m))
    }

    fn fail(&self, msg: impl Into<String>) -> Fail {
        let at = self.at.map(|at| match at {
            At::Arg(arg) => (arg.pos, arg.to_string()),
            At::Cmd(cmd) => (cmd.pos, cmd.to_string()),
            At::Pipe(pipe) => (pipe.pos, pipe.to_string()),
        });
        Fail {
            at,
            msg: msg.into(),
        }
    }

    fn walk(&mut self, dot: &Value<'d>, nodes: &'t [Node]) -> Result<(), Fail> {
        for node in nodes {
            self.step(1)?;
            match node {
                Node::Text(text) => self.out.extend(text.as_bytes()),
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_none() {
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
                    if value.truth() {
                        self.walk(if *with { &value } else { dot }, list)?;
                    } else if let Some(else_list) = else_list {
                        self.walk(dot, else_list)?;
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn eval_pipeline(&mut self, dot: &Value<'d>, pipe: &'t Pipe) -> Result<Value<'d>, Fail> {
        self.at = Some(At::Pipe(pipe));
        let mut value = None;
        for cmd in &pipe.cmds {
            self.step(1)?;
            value = Some(self.eval_command(dot, cmd, value.take())?);
        }
        let value = value.unwrap_or(Value::Nil);
        if let Some((name, assign)) = &pipe.decl {
            if *assign {
                match self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| *n == name.as_str())
                {
                    Some(slot) => slot.1 = value.clone(),
                    None => return Err(self.fail(format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn eval_command(
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
            ArgKind::Ident(name) => {
                return self.eval_function(dot, first, At::Cmd(cmd), name, &cmd.args[1..], last);
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

    fn not_a_function(&self, first: &Arg, has_args: bool) -> Result<(), Fail> {
        if has_args {
            return Err(self.fail(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Value<'d>, Fail> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => Err(self.fail(format!("undefined variable: {name}"))),
        }
    }

    /// `.a.b` on `value`; the last field may not receive arguments.
    fn eval_fields(
        &self,
        mut value: Value<'d>,
        names: &[String],
        has_args: bool,
    ) -> Result<Value<'d>, Fail> {
        for (i, name) in names.iter().enumerate() {
            value = match value {
                Value::Nil => Value::Nil,
                Value::Map(map) => {
                    if has_args && i + 1 == names.len() {
                        return Err(self.fail(format!("{name} is not a method but has arguments")));
                    }
                    match map.get(name.as_str()) {
                        Some(item) => self.copy(item)?,
                        None => Value::Nil,
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

    fn eval_arg(&mut self, dot: &Value<'d>, arg: &'t Arg) -> Result<Value<'d>, Fail> {
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
            ArgKind::Ident(name) => self.eval_function(dot, arg, At::Arg(arg), name, &[], None)?,
            ArgKind::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
        })
    }

    /// Calls `name`; `call` is the node Go blames when the function itself fails.
    fn eval_function(
        &mut self,
        dot: &Value<'d>,
        node: &'t Arg,
        call: At<'t>,
        name: &str,
        args: &'t [Arg],
        last: Option<Value<'d>>,
    ) -> Result<Value<'d>, Fail> {
        self.at(node);
        self.step(1)?;
        let sig = signature(name).expect("the parser only accepts known functions");
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
        if name == "and" || name == "or" {
            // Short-circuit: stop at the first operand that decides the result.
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(dot, arg)?;
                if value.truth() == (name == "or") {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
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
        self.step((read / BYTES_PER_STEP) as u64)?;
        call_function(name, argv, &self.meter).map_err(|msg| {
            self.at = Some(call);
            self.fail(format!("error calling {name}: {msg}"))
        })
    }
}

/// Go's conversion of an argument to a parameter type (`evalArg` and
/// `validateType`); `literal` is the argument when it is a literal.
fn check_param<'d>(value: Value<'d>, param: P, literal: Option<&Arg>) -> Result<Value<'d>, String> {
    let (want, ok) = match param {
        P::Any => return Ok(value),
        P::Str => ("string", matches!(value, Value::Str(_))),
        P::Int => ("int", matches!(value, Value::Int(_))),
        P::Bool => ("bool", matches!(value, Value::Bool(_))),
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

// ---------------------------------------------------------------------------
// Functions.

/// Parameter types: anything (Go's `any` or `reflect.Value`), or a strict Go type.
#[derive(Clone, Copy)]
enum P {
    Any,
    Str,
    Int,
    Bool,
}

struct Sig {
    fixed: &'static [P],
    variadic: Option<P>,
}

impl Sig {
    fn param(&self, i: usize) -> P {
        self.fixed
            .get(i)
            .copied()
            .or(self.variadic)
            .unwrap_or(P::Any)
    }
}

/// The signature of each supported function; `None` for every other name.
fn signature(name: &str) -> Option<Sig> {
    use P::{Any, Bool, Int, Str};
    let (fixed, variadic): (&'static [P], Option<P>) = match name {
        "and" | "or" | "eq" | "index" | "default" => (&[Any], Some(Any)),
        "print" | "println" | "coalesce" | "quote" | "squote" | "cat" => (&[], Some(Any)),
        "printf" => (&[Str], Some(Any)),
        "not" | "len" | "empty" | "toJson" | "toRawJson" | "toPrettyJson" | "toString" => {
            (&[Any], None)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => (&[Any, Any], None),
        "ternary" => (&[Any, Any, Bool], None),
        "b64enc" | "b64dec" | "trim" | "upper" | "lower" | "nospace" | "sha256sum" => {
            (&[Str], None)
        }
        "trimSuffix" | "trimPrefix" | "contains" | "hasPrefix" | "hasSuffix" => (&[Str, Str], None),
        "replace" => (&[Str, Str, Str], None),
        "indent" | "nindent" => (&[Int, Str], None),
        _ => return None,
    };
    Some(Sig { fixed, variadic })
}

fn bytes_of<'a>(v: &'a Value<'_>) -> &'a [u8] {
    match v {
        Value::Str(s) => s,
        _ => &[],
    }
}

fn int_of(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// Calls a function with arguments already checked against its signature;
/// what it allocates is charged to `meter`.
fn call_function<'d>(
    name: &str,
    mut a: Vec<Value<'d>>,
    meter: &Rc<Meter>,
) -> Result<Value<'d>, String> {
    let s = |i: usize| bytes_of(&a[i]);
    let mut out = Buf::new(meter);
    match name {
        // Go built-ins.
        "not" => return Ok(Value::Bool(!a[0].truth())),
        "len" => {
            return match &a[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                // Go's reflect panics here; this is the message it recovers.
                Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".into()),
                other => Err(format!("len of type {}", other.type_name())),
            };
        }
        "index" => return index(a.remove(0), &a, meter),
        "eq" => return eq(&a[0], &a[1..]).map(Value::Bool),
        "ne" => return eq(&a[0], &a[1..]).map(|b| Value::Bool(!b)),
        "lt" => return lt(&a[0], &a[1]).map(Value::Bool),
        "le" => return le(&a[0], &a[1]).map(Value::Bool),
        "gt" => return le(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        "ge" => return lt(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        "print" => {
            // Like Go's fmt.Sprint: a space between operands when neither is a string.
            let is_str = |v: &Value<'_>| matches!(v, Value::Str(_));
            for (i, v) in a.iter().enumerate() {
                if i > 0 && !is_str(v) && !is_str(&a[i - 1]) {
                    out.push(b' ');
                }
                fmt_value(&mut out, v, 'v');
            }
        }
        "println" => {
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                fmt_value(&mut out, v, 'v');
            }
            out.push(b'\n');
        }
        "printf" => printf(&mut out, s(0), &a[1..])?,
        // Sprig.
        "default" => {
            let given = a.drain(1..).next();
            return Ok(match given {
                Some(v) if v.truth() => v,
                _ => a.swap_remove(0),
            });
        }
        "empty" => return Ok(Value::Bool(!a[0].truth())),
        "coalesce" => return Ok(a.into_iter().find(Value::truth).unwrap_or(Value::Nil)),
        "ternary" => {
            let pick = usize::from(!a[2].truth());
            return Ok(a.swap_remove(pick));
        }
        "toString" => fmt_value(&mut out, &a[0], 'v'),
        "toJson" => json(&mut out, &a[0], true, false),
        "toRawJson" => json(&mut out, &a[0], false, false),
        "toPrettyJson" => json(&mut out, &a[0], true, true),
        "quote" | "squote" | "cat" => {
            for (i, v) in a.iter().filter(|v| !matches!(v, Value::Nil)).enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                match name {
                    "quote" => {
                        let mut text = Buf::new(meter);
                        fmt_value(&mut text, v, 'v');
                        go_quote(&mut out, &text.bytes, b'"');
                        out.overflow = out.overflow.or(text.overflow);
                    }
                    "squote" => {
                        out.push(b'\'');
                        fmt_value(&mut out, v, 'v');
                        out.push(b'\'');
                    }
                    _ => fmt_value(&mut out, v, 'v'),
                }
            }
        }
        "b64enc" => {
            // In pieces of a multiple of 3 bytes (no padding inside), so that no
            // more is allocated than the budget allows.
            for piece in s(0).chunks(3 << 10) {
                let encoded =
                    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(piece));
                out.extend(encoded.as_bytes());
                if out.overflow.is_some() {
                    break;
                }
            }
        }
        "b64dec" => match go_base64_decode(s(0), meter) {
            Ok(decoded) => out = decoded,
            // Sprig returns the error text as the value.
            Err(at) => out.extend(format!("illegal base64 data at input byte {at}").as_bytes()),
        },
        "sha256sum" => {
            for b in gitseal_crypto::primitives::sha256(s(0)) {
                let _ = write!(out, "{b:02x}");
            }
        }
        "trim" => out.extend(trim_space(s(0))),
        "upper" | "lower" => change_case(&mut out, s(0), name == "upper"),
        "nospace" => nospace(&mut out, s(0)),
        "trimSuffix" => out.extend(s(1).strip_suffix(s(0)).unwrap_or(s(1))),
        "trimPrefix" => out.extend(s(1).strip_prefix(s(0)).unwrap_or(s(1))),
        "contains" => return Ok(Value::Bool(find(s(1), s(0)).is_some())),
        "hasPrefix" => return Ok(Value::Bool(s(1).starts_with(s(0)))),
        "hasSuffix" => return Ok(Value::Bool(s(1).ends_with(s(0)))),
        "replace" => replace(&mut out, s(2), s(0), s(1)),
        "indent" | "nindent" => {
            let spaces = int_of(&a[0]);
            let Ok(spaces) = usize::try_from(spaces) else {
                return Err("strings: negative Repeat count".into());
            };
            // The size of the result, checked before anything is allocated.
            let lines = 1 + memchr::memchr_iter(b'\n', s(1)).count();
            let size = spaces
                .checked_mul(lines)
                .and_then(|n| n.checked_add(s(1).len() + usize::from(name == "nindent")))
                .unwrap_or(usize::MAX);
            if !out.fits(size) {
                return out.into_value();
            }
            if name == "nindent" {
                out.push(b'\n');
            }
            for (i, line) in s(1).split(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                out.spaces(spaces);
                out.extend(line);
            }
        }
        _ => unreachable!("no function {name}"),
    }
    out.into_value()
}

/// Go's `index`: map items by name, string bytes by position.
fn index<'d>(
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
fn eq(a: &Value<'_>, rest: &[Value<'_>]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for b in rest {
        let equal = match (a, b) {
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => x[..] == y[..],
            (Value::Map(_), Value::Map(_)) => {
                return Err("non-comparable type map[string]string".into());
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

fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x[..] < y[..]),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        (Value::Nil | Value::Map(_), _) | (_, Value::Nil | Value::Map(_)) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

fn le(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}

/// Go's `fmt.Sprintf` for the verbs `%s %v %q %d %x %X %t %%`.
fn printf(out: &mut Buf, format: &[u8], args: &[Value<'_>]) -> Result<(), String> {
    let mut next = 0;
    let mut i = 0;
    while i < format.len() {
        let Some(off) = format[i..].iter().position(|&b| b == b'%') else {
            out.extend(&format[i..]);
            break;
        };
        out.extend(&format[i..i + off]);
        i += off + 1;
        let Some(&verb) = format.get(i) else {
            out.extend(b"%!(NOVERB)");
            break;
        };
        i += 1;
        match verb {
            b'%' => out.push(b'%'),
            b's' | b'v' | b'q' | b'd' | b'x' | b'X' | b't' => match args.get(next) {
                Some(arg) => {
                    fmt_value(out, arg, char::from(verb));
                    next += 1;
                }
                None => {
                    let _ = write!(out, "%!{}(MISSING)", char::from(verb));
                }
            },
            // The format may be a secret: don't show what follows the '%'.
            _ => {
                return Err("only the verbs %s %v %q %d %x %X %t and %% are supported, \
                            without flags, widths or argument indexes"
                    .into());
            }
        }
    }
    if next < args.len() {
        out.extend(b"%!(EXTRA ");
        for (i, arg) in args[next..].iter().enumerate() {
            if i > 0 {
                out.extend(b", ");
            }
            if matches!(arg, Value::Nil) {
                out.extend(b"<nil>");
            } else {
                let _ = write!(out, "{}=", arg.type_name());
                fmt_value(out, arg, 'v');
            }
        }
        out.push(b')');
    }
    Ok(())
}

/// Go's `fmt` formatting of one value with one verb.
fn fmt_value(out: &mut Buf, v: &Value<'_>, verb: char) {
    match (v, verb) {
        (Value::Nil, 'v') => out.extend(b"<nil>"),
        (Value::Nil, _) => {
            let _ = write!(out, "%!{verb}(<nil>)");
        }
        (Value::Str(s), _) => fmt_str(out, s, verb),
        (Value::Int(i), 'd' | 'v') => {
            let _ = write!(out, "{i}");
        }
        (Value::Int(i), 'x' | 'X') => {
            let sign = if *i < 0 { "-" } else { "" };
            let _ = if verb == 'x' {
                write!(out, "{sign}{:x}", i.unsigned_abs())
            } else {
                write!(out, "{sign}{:X}", i.unsigned_abs())
            };
        }
        (Value::Int(i), 'q') => {
            let c = u32::try_from(*i).ok().and_then(char::from_u32);
            out.push(b'\'');
            escape_rune(out, c.unwrap_or('\u{fffd}'), b'\'');
            out.push(b'\'');
        }
        (Value::Bool(b), 't' | 'v') => {
            let _ = write!(out, "{b}");
        }
        (Value::Map(map), _) => {
            out.extend(b"map[");
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                fmt_str(out, k.as_bytes(), verb);
                out.push(b':');
                fmt_str(out, val, verb);
            }
            out.push(b']');
        }
        _ => {
            let _ = write!(out, "%!{verb}({}=", v.type_name());
            fmt_value(out, v, 'v');
            out.push(b')');
        }
    }
}

/// Go's `fmt` formatting of a string with one verb.
fn fmt_str(out: &mut Buf, s: &[u8], verb: char) {
    match verb {
        's' | 'v' => out.extend(s),
        'q' => go_quote(out, s, b'"'),
        'x' | 'X' => {
            for b in s {
                let _ = if verb == 'x' {
                    write!(out, "{b:02x}")
                } else {
                    write!(out, "{b:02X}")
                };
                if out.overflow.is_some() {
                    break;
                }
            }
        }
        _ => {
            let _ = write!(out, "%!{verb}(string=");
            out.extend(s);
            out.push(b')');
        }
    }
}

/// Go's `strconv.Quote` (and `QuoteRune` with `quote` = `'`).
fn go_quote(out: &mut Buf, s: &[u8], quote: u8) {
    out.push(quote);
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        match c {
            Some(c) => escape_rune(out, c, quote),
            None => {
                let _ = write!(out, "\\x{:02x}", s[i]);
            }
        }
        i += width;
    }
    out.push(quote);
}

fn escape_rune(out: &mut Buf, c: char, quote: u8) {
    if c == char::from(quote) || c == '\\' {
        out.push(b'\\');
        out.push_char(c);
        return;
    }
    if is_go_print(c) {
        out.push_char(c);
        return;
    }
    let _ = match c {
        '\x07' => write!(out, "\\a"),
        '\x08' => write!(out, "\\b"),
        '\x0c' => write!(out, "\\f"),
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        '\x0b' => write!(out, "\\v"),
        _ if c < ' ' || c == '\x7f' => write!(out, "\\x{:02x}", u32::from(c)),
        _ if u32::from(c) < 0x10000 => write!(out, "\\u{:04x}", u32::from(c)),
        _ => write!(out, "\\U{:08x}", u32::from(c)),
    };
}

/// Go's `strconv.IsPrint`, except that unassigned code points count as printable.
fn is_go_print(c: char) -> bool {
    let u = u32::from(c);
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !c.is_control()
        && u & 0xfffe != 0xfffe
        && !matches!(
            u,
            0x00a0
                | 0x00ad
                | 0x0600..=0x0605
                | 0x061c
                | 0x06dd
                | 0x070f
                | 0x0890..=0x0891
                | 0x08e2
                | 0x1680
                | 0x180e
                | 0x2000..=0x200f
                | 0x2028..=0x202f
                | 0x205f..=0x206f
                | 0x3000
                | 0xe000..=0xf8ff
                | 0xfdd0..=0xfdef
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0x110bd
                | 0x110cd
                | 0x13430..=0x1343f
                | 0x1bca0..=0x1bca3
                | 0x1d173..=0x1d17a
                | 0xe0001
                | 0xe0020..=0xe007f
                | 0xf0000..=0x10ffff
        )
}

/// Go's `%#U`: `U+0041 'A'`.
fn fmt_u(c: char) -> String {
    let mut s = format!("U+{:04X}", u32::from(c));
    if is_go_print(c) {
        let _ = write!(s, " '{c}'");
    }
    s
}

/// Go's `%q` of template text (never a secret), for messages.
fn quoted(text: &str) -> String {
    let mut out = Buf::default();
    go_quote(&mut out, text.as_bytes(), b'"');
    String::from_utf8_lossy(&out.bytes).into_owned()
}

/// Go's `encoding/json` encoding of a value (`json.Marshal`, or
/// `MarshalIndent(v, "", "  ")` when `pretty`); `html` escapes `<`, `>`, `&`.
fn json(out: &mut Buf, v: &Value<'_>, html: bool, pretty: bool) {
    match v {
        Value::Nil => out.extend(b"null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Str(s) => json_string(out, s, html),
        Value::Map(map) if map.is_empty() => out.extend(b"{}"),
        Value::Map(map) => {
            out.push(b'{');
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if pretty {
                    out.extend(b"\n  ");
                }
                json_string(out, k.as_bytes(), html);
                out.extend(if pretty { b": " } else { b":" });
                json_string(out, val, html);
            }
            if pretty {
                out.push(b'\n');
            }
            out.push(b'}');
        }
    }
}

fn json_string(out: &mut Buf, s: &[u8], html: bool) {
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            let _ = match b {
                b'\\' | b'"' => write!(out, "\\{}", char::from(b)),
                b'\n' => write!(out, "\\n"),
                b'\r' => write!(out, "\\r"),
                b'\t' => write!(out, "\\t"),
                0x08 => write!(out, "\\b"),
                0x0c => write!(out, "\\f"),
                0..0x20 => write!(out, "\\u{b:04x}"),
                b'<' | b'>' | b'&' if html => write!(out, "\\u{b:04x}"),
                _ => {
                    out.push(b);
                    Ok(())
                }
            };
            i += 1;
            continue;
        }
        let (c, width) = decode_rune(&s[i..]);
        match c {
            None => out.extend(b"\\ufffd"),
            Some('\u{2028}') => out.extend(b"\\u2028"),
            Some('\u{2029}') => out.extend(b"\\u2029"),
            Some(_) => out.extend(&s[i..i + width]),
        }
        i += width;
    }
    out.push(b'"');
}

/// Go's `utf8.DecodeRune`: a character and its width, or `None` and width 1
/// for a byte that does not start a valid UTF-8 sequence.
fn decode_rune(s: &[u8]) -> (Option<char>, usize) {
    let width = match s.first() {
        None => return (None, 0),
        Some(0..0x80) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        Some(_) => return (None, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => (text.chars().next(), width),
        _ => (None, 1),
    }
}

/// Go's `utf8.DecodeLastRune`.
fn decode_last_rune(s: &[u8]) -> (Option<char>, usize) {
    let end = s.len();
    if end == 0 {
        return (None, 0);
    }
    if s[end - 1] < 0x80 {
        return (Some(char::from(s[end - 1])), 1);
    }
    let lim = end.saturating_sub(4);
    let mut start = end - 1;
    while start > lim && s[start - 1] & 0xc0 == 0x80 {
        start -= 1;
    }
    start = start.saturating_sub(1);
    match decode_rune(&s[start..end]) {
        (Some(c), width) if start + width == end => (Some(c), width),
        _ => (None, 1),
    }
}

/// Go's `strings.TrimSpace`.
fn trim_space(mut s: &[u8]) -> &[u8] {
    while let (Some(c), width) = decode_rune(s) {
        if !c.is_whitespace() {
            break;
        }
        s = &s[width..];
    }
    while let (Some(c), width) = decode_last_rune(s) {
        if !c.is_whitespace() {
            break;
        }
        s = &s[..s.len() - width];
    }
    s
}

/// Go's `strings.ToUpper`/`ToLower`: per-character simple case mapping;
/// invalid UTF-8 becomes U+FFFD.
fn change_case(out: &mut Buf, s: &[u8], upper: bool) {
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode_rune(&s[i..]);
        i += width;
        let Some(c) = c else {
            out.push_char('\u{fffd}');
            continue;
        };
        let u = u32::from(c);
        let mapped = match u {
            // Greek with ypogegrammeni: the simple mapping is the titlecase letter.
            0x1f80..=0x1faf if upper && u & 0xf < 8 => char::from_u32(u + 8).unwrap_or(c),
            0x1fb3 | 0x1fc3 | 0x1ff3 if upper => char::from_u32(u + 9).unwrap_or(c),
            0x130 if !upper => 'i',
            // Rust's full mapping; where it is several characters Go keeps the letter.
            _ if upper => single(c, c.to_uppercase()),
            _ => single(c, c.to_lowercase()),
        };
        out.push_char(mapped);
    }
}

/// The one character a case mapping yields, or `c` when it yields several.
fn single(c: char, mut mapped: impl Iterator<Item = char>) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// goutils' `DeleteWhiteSpace`, as Sprig's `nospace` uses it. It works on bytes,
/// so when it removes anything, bytes from 0x80 up come out as the Latin-1
/// characters of the same number (and 0x85 and 0xA0 are removed): Go does the same.
fn nospace(out: &mut Buf, s: &[u8]) {
    let latin1_space = |b: u8| char::from(b).is_whitespace();
    if !s.iter().any(|&b| latin1_space(b)) {
        out.extend(s);
        return;
    }
    for &b in s.iter().filter(|&&b| !latin1_space(b)) {
        out.push_char(char::from(b));
    }
}

/// The first position of `needle` in `haystack`, in linear time: templates reach this
/// from `/v1/verify` too, so a quadratic search would let one request occupy a CPU.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Go's `strings.Replace(src, old, new, -1)`.
fn replace(out: &mut Buf, src: &[u8], old: &[u8], new: &[u8]) {
    if old.is_empty() {
        // Insert `new` around every character (and every invalid byte).
        let mut i = 0;
        while i < src.len() && out.overflow.is_none() {
            out.extend(new);
            let (_, width) = decode_rune(&src[i..]);
            out.extend(&src[i..i + width]);
            i += width;
        }
        out.extend(new);
        return;
    }
    let mut rest = src;
    while let Some(at) = find(rest, old) {
        out.extend(&rest[..at]);
        out.extend(new);
        rest = &rest[at + old.len()..];
    }
    out.extend(rest);
}

/// Go's `base64.StdEncoding.DecodeString`: the decoded bytes, or the offset
/// that Go's error reports. Newlines are skipped and the unused bits of the
/// last character are ignored, as in Go.
fn go_base64_decode(src: &[u8], meter: &Rc<Meter>) -> Result<Buf, usize> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let skip_newlines = |mut si: usize| {
        while si < src.len() && matches!(src[si], b'\n' | b'\r') {
            si += 1;
        }
        si
    };
    let mut out = Buf::new(meter);
    let mut si = 0;
    loop {
        let mut quantum = [0u32; 4];
        let mut len = 4;
        let mut trailing = None;
        let mut j = 0;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = value(c) {
                quantum[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first '=' is consumed.
                si = skip_newlines(si);
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            si = skip_newlines(si);
            if si < src.len() {
                trailing = Some(si);
            }
            len = j;
            break;
        }
        let v = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3];
        let bytes = Zeroizing::new([(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        out.extend(&bytes[..len - 1]);
        if let Some(at) = trailing {
            return Err(at);
        }
        if len < 4 {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Zeroizing<String>> {
        [
            ("password", "s3cr<e>t&\"q\"\n"),
            ("user", "admin"),
            ("my-key", "v-1"),
            ("empty", ""),
            ("b64", "aGVsbG8gd29ybGQ="),
            ("bad64", "abc!def"),
            ("sp", "  padded \n"),
            ("uni", "héllo ß"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
        .collect()
    }

    fn render(source: &str) -> Result<String, TemplateError> {
        let out = Template::parse("password", source)?.render(&data())?;
        Ok(String::from_utf8(out.to_vec()).expect("UTF-8 output"))
    }

    /// Expected outputs produced by Go's text/template with Sprig, called the
    /// way sealed-secrets calls them.
    #[test]
    fn renders_like_go() {
        let cases = [
            ("{{ .password }}", "s3cr<e>t&\"q\"\n"),
            ("{{.password}}", "s3cr<e>t&\"q\"\n"),
            ("{{ index . \"my-key\" }}", "v-1"),
            ("{{ .password | b64enc }}", "czNjcjxlPnQmInEiCg=="),
            (
                "{{ toJson .password }}",
                "\"s3cr\\u003ce\\u003et\\u0026\\\"q\\\"\\n\"",
            ),
            (
                "postgres://{{ .user }}:{{ .b64 }}@db:5432/app",
                "postgres://admin:aGVsbG8gd29ybGQ=@db:5432/app",
            ),
            ("{{ .missing }}", "<no value>"),
            ("{{ index . \"missing\" }}", ""),
            ("{{ .missing.deeper }}", "<no value>"),
            ("{{ .missing | default \"fallback\" }}", "fallback"),
            ("{{ default \"fb\" .missing }}", "fb"),
            ("{{ default \"fb\" .empty }}", "fb"),
            ("{{ default \"fb\" .user }}", "admin"),
            ("{{ print .missing }}", "<nil>"),
            ("{{ toJson .missing }}", "null"),
            ("{{ quote .password }}", "\"s3cr<e>t&\\\"q\\\"\\n\""),
            ("{{ squote .user }}", "'admin'"),
            ("{{ .user | upper | quote }}", "\"ADMIN\""),
            (
                "{{ quote .uni \"\\x00\\u00a0\\u200b\" }}",
                "\"héllo ß\" \"\\x00\\u00a0\\u200b\"",
            ),
            ("{{ toRawJson .password }}", "\"s3cr<e>t&\\\"q\\\"\\n\""),
            (
                "{{ toPrettyJson . }}",
                "{\n  \"b64\": \"aGVsbG8gd29ybGQ=\",\n  \"bad64\": \"abc!def\",\n  \"empty\": \"\",\n  \"my-key\": \"v-1\",\n  \"password\": \"s3cr\\u003ce\\u003et\\u0026\\\"q\\\"\\n\",\n  \"sp\": \"  padded \\n\",\n  \"uni\": \"héllo ß\",\n  \"user\": \"admin\"\n}",
            ),
            (
                "{{ toJson . }}",
                "{\"b64\":\"aGVsbG8gd29ybGQ=\",\"bad64\":\"abc!def\",\"empty\":\"\",\"my-key\":\"v-1\",\"password\":\"s3cr\\u003ce\\u003et\\u0026\\\"q\\\"\\n\",\"sp\":\"  padded \\n\",\"uni\":\"héllo ß\",\"user\":\"admin\"}",
            ),
            ("{{ trim .sp }}|", "padded|"),
            ("{{ lower \"ÉTÉ\" }} {{ upper .uni }}", "été HÉLLO ß"),
            (
                "{{ trimSuffix \"-1\" (index . \"my-key\") }} {{ trimPrefix \"v\" (index . \"my-key\") }}",
                "v -1",
            ),
            ("{{ replace \"-\" \"_\" (index . \"my-key\") }}", "v_1"),
            ("{{ nospace \" a b\\tc \" }}", "abc"),
            (
                "{{ sha256sum .user }}",
                "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918",
            ),
            ("{{ b64dec .b64 }}", "hello world"),
            ("{{ b64dec .bad64 }}", "illegal base64 data at input byte 3"),
            ("{{ len .user }} {{ len .uni }} {{ len . }}", "5 9 8"),
            ("{{ cat .user .missing \"x\" 3 }}", "admin x 3"),
            (
                "{{ contains \"dmi\" .user }} {{ hasPrefix \"ad\" .user }} {{ hasSuffix \"x\" .user }}",
                "true true false",
            ),
            ("{{ nindent 2 \"a:\\n  b\" }}", "\n  a:\n    b"),
            ("{{ toString 42 }}", "42"),
            (
                "{{ printf \"%s-%s\" .user (index . \"my-key\") }}",
                "admin-v-1",
            ),
            (
                "{{ printf \"%q %v %d %x %t %%\" .user .user 42 .user true }}",
                "\"admin\" admin 42 61646d696e true %",
            ),
            ("{{ printf \"%s %s\" .user }}", "admin %!s(MISSING)"),
            ("{{ printf \"%s\" .user 7 }}", "admin%!(EXTRA int=7)"),
            ("{{ printf \"%d\" .user }}", "%!d(string=admin)"),
            ("{{ print \"a\" 1 2 \"b\" }}", "a1 2b"),
            ("{{ println .user 1 }}", "admin 1\n"),
            ("{{ if .user }}yes{{ else }}no{{ end }}", "yes"),
            ("{{ if .missing }}yes{{ else }}no{{ end }}", "no"),
            ("{{ if .empty }}yes{{ else }}no{{ end }}", "no"),
            (
                "{{ if eq .user \"root\" }}R{{ else if eq .user \"admin\" }}A{{ else }}O{{ end }}",
                "A",
            ),
            ("{{ if not .empty }}not empty{{ end }}", "not empty"),
            ("{{ if and .user .empty }}T{{ else }}F{{ end }}", "F"),
            (
                "{{ and .user .empty .b64 }}|{{ and .user .b64 }}|{{ or .empty .user }}|{{ or .empty .missing }}",
                "|aGVsbG8gd29ybGQ=|admin|<no value>",
            ),
            (
                "{{ if ne .user \"x\" }}ne{{ end }} {{ lt \"a\" \"b\" }} {{ ge 1 2 }}",
                "ne true false",
            ),
            ("{{ with .user }}{{ . }}!{{ end }}", "admin!"),
            ("{{ with .missing }}{{ . }}{{ else }}none{{ end }}", "none"),
            (
                "{{ with $u := .user }}{{ $u }} {{ $.b64 }}{{ end }}",
                "admin aGVsbG8gd29ybGQ=",
            ),
            (
                "{{ eq .missing .empty }} {{ eq .missing .missing }}",
                "false true",
            ),
            (
                "{{ if and (eq .user \"admin\") (ne .empty \"x\") }}ok{{ end }}",
                "ok",
            ),
            (
                "{{ .user | eq \"admin\" | ternary \"is-admin\" \"other\" }}",
                "is-admin",
            ),
            ("{{ coalesce .empty .missing .user }}", "admin"),
            ("a  {{- .user -}}  b", "aadminb"),
            ("a\n{{- .user }}\nb", "aadmin\nb"),
            ("{{ .user -}}\n\n  c", "adminc"),
            ("a {{- /* comment */ -}} b", "ab"),
            ("{{/* comment */}}x", "x"),
            (
                "x\n{{ if .user -}}\n  {{ .user }}\n{{- end }}\n",
                "x\nadmin\n",
            ),
            ("{{-3}}", "-3"),
            ("{{ $x := .user }}{{ $x = upper $x }}{{ $x }}", "ADMIN"),
            (
                "{{ $x := \"out\" }}{{ if true }}{{ $x := \"in\" }}{{ $x }}{{ end }} {{ $x }}",
                "in out",
            ),
            (
                "{{ index $ \"user\" }} {{ $.user }} {{ (index . \"user\") | upper }}",
                "admin admin ADMIN",
            ),
            ("{{ index .user 0 }}", "97"),
            (
                "{{ . }}",
                "map[b64:aGVsbG8gd29ybGQ= bad64:abc!def empty: my-key:v-1 password:s3cr<e>t&\"q\"\n sp:  padded \n uni:héllo ß user:admin]",
            ),
            (
                "{{ \"tab\\there\\u00e9\\x41\\101\" }} {{ `raw\\n` }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ -5 }} {{ 1_000 }} {{ 'a' }} {{ '\\n' }} {{ true }} {{ print nil }}",
                "tab\there\u{e9}AA raw\\n 31 15 15 -5 1000 97 10 true <nil>",
            ),
            // Go 1.22 and later escape \b and \f like this (earlier: \u0008, \u000c).
            (
                "{{ toJson \"\\b\\f\\u0001\\u2028\" }}",
                "\"\\b\\f\\u0001\\u2028\"",
            ),
            // Go 1.23 and later accept "else with".
            (
                "{{ with .missing }}a{{ else with .user }}{{ . }}{{ end }}",
                "admin",
            ),
        ];
        for (source, want) in cases {
            assert_eq!(render(source).as_deref(), Ok(want), "template {source:?}");
        }
    }

    #[test]
    fn parse_errors_like_go() {
        let cases = [
            (
                "{{ env \"HOME\" }}",
                "template: password:1: function \"env\" not defined",
            ),
            (
                "{{ expandenv \"$HOME\" }}",
                "template: password:1: function \"expandenv\" not defined",
            ),
            (
                "{{ getHostByName \"example.com\" }}",
                "template: password:1: function \"getHostByName\" not defined",
            ),
            ("{{ .password", "template: password:1: unclosed action"),
            (
                "{{ .password }",
                "template: password:1: unexpected \"}\" in operand",
            ),
            ("{{ if .user }}abc", "template: password:1: unexpected EOF"),
            ("{{ end }}", "template: password:1: unexpected {{end}}"),
            ("{{ else }}", "template: password:1: unexpected {{else}}"),
            ("{{ }}", "template: password:1: missing value for command"),
            (
                "{{ if }}{{ end }}",
                "template: password:1: missing value for if",
            ),
            (
                "{{ .a | 1 }}",
                "template: password:1: non executable command in pipeline stage 2",
            ),
            (
                "{{ \"abc }}",
                "template: password:1: unterminated quoted string",
            ),
            ("{{/* x ", "template: password:1: unclosed comment"),
            (
                "{{/* x */ }}",
                "template: password:1: comment ends before closing delimiter",
            ),
            (
                "{{ $y }}",
                "template: password:1: undefined variable \"$y\"",
            ),
            (
                "{{ .a-b }}",
                "template: password:1: bad character U+002D '-'",
            ),
            (
                "{{ 'ab' }}",
                "template: password:1: malformed character constant: 'ab'",
            ),
            (
                "{{ 99999999999999999999 }}",
                "template: password:1: integer overflow: \"99999999999999999999\"",
            ),
            ("{{ \"\\q\" }}", "template: password:1: invalid syntax"),
            (
                "line1\nline2 {{ .user\n\n",
                "template: password:4: unclosed action started at password:2",
            ),
            (
                "{{ if .user }}{{ else }}{{ else }}{{ end }}",
                "template: password:1: expected end; found {{else}}",
            ),
            (
                "{{ break }}",
                "template: password:1: {{break}} outside {{range}}",
            ),
            ("{{ (1 }}", "template: password:1: unclosed left paren"),
            (
                "{{ \"a\".b }}",
                "template: password:1: unexpected . after term \"\\\"a\\\"\"",
            ),
            // Since Go 1.20 the lexer reports this.
            (
                "{{ .user) }}",
                "template: password:1: unexpected right paren",
            ),
            (
                "{{ if .user }}{{ else with .b64 }}{{ end }}",
                "template: password:1: unexpected <with> in input",
            ),
            // Outside the subset.
            (
                "{{ range . }}{{ end }}",
                "template: password:1: unsupported action range",
            ),
            (
                "{{ define \"x\" }}{{ end }}",
                "template: password:1: unsupported action define",
            ),
            (
                "{{ template \"x\" }}",
                "template: password:1: unsupported action template",
            ),
            (
                "{{ 1.5 }}",
                "template: password:1: unsupported number \"1.5\": only integers are supported",
            ),
        ];
        for (source, want) in cases {
            match Template::parse("password", source) {
                Err(TemplateError::Parse(got)) => assert_eq!(got, want, "template {source:?}"),
                other => panic!("template {source:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn exec_errors_like_go() {
        let cases = [
            (
                "{{ .password.field }}",
                "template: password:1:12: executing \"password\" at <.password.field>: can't evaluate field field in type string",
            ),
            (
                "{{ .missing | b64enc }}",
                "template: password:1:14: executing \"password\" at <b64enc>: invalid value; expected string",
            ),
            (
                "{{ b64enc 5 }}",
                "template: password:1:10: executing \"password\" at <5>: expected string; found 5",
            ),
            (
                "{{ len .user | upper }}",
                "template: password:1:15: executing \"password\" at <upper>: wrong type for value; expected string; got int",
            ),
            (
                "{{ upper }}",
                "template: password:1:3: executing \"password\" at <upper>: wrong number of args for upper: want 1 got 0",
            ),
            (
                "{{ upper \"a\" \"b\" }}",
                "template: password:1:3: executing \"password\" at <upper>: wrong number of args for upper: want 1 got 2",
            ),
            (
                "{{ .user 1 }}",
                "template: password:1:3: executing \"password\" at <.user>: user is not a method but has arguments",
            ),
            (
                "{{ index .user 99 }}",
                "template: password:1:3: executing \"password\" at <index .user 99>: error calling index: index out of range",
            ),
            (
                "{{ eq .user 1 }}",
                "template: password:1:3: executing \"password\" at <eq .user 1>: error calling eq: incompatible types for comparison",
            ),
            (
                "{{ lt true false }}",
                "template: password:1:3: executing \"password\" at <lt true false>: error calling lt: invalid type for comparison",
            ),
            (
                "{{ nil }}",
                "template: password:1:3: executing \"password\" at <nil>: nil is not a command",
            ),
            (
                "{{ indent -1 .user }}",
                "template: password:1:3: executing \"password\" at <indent -1 .user>: error calling indent: strings: negative Repeat count",
            ),
            (
                "a\n  {{ .b64 | b64dec | .x }}",
                "template: password:2:21: executing \"password\" at <.x>: x is not a method but has arguments",
            ),
            (
                "{{ indent \"x\" .user }}",
                "template: password:1:10: executing \"password\" at <\"x\">: expected integer; found \"x\"",
            ),
            (
                "{{ len .missing }}",
                "template: password:1:3: executing \"password\" at <len .missing>: error calling len: reflect: call of reflect.Value.Type on zero Value",
            ),
        ];
        for (source, want) in cases {
            let template = Template::parse("password", source).expect(source);
            match template.render(&data()) {
                Err(TemplateError::Exec(got)) => assert_eq!(got, want, "template {source:?}"),
                Err(other) => panic!("template {source:?}: {other:?}"),
                Ok(_) => panic!("template {source:?} rendered"),
            }
        }
    }

    #[test]
    fn error_messages_never_contain_secrets() {
        let secret = "Pa55-w0rd-XYZ";
        let data = BTreeMap::from([("password".to_string(), secret.as_bytes().to_vec())]);
        let templates = [
            "{{ .password.field }}",
            "{{ .password 1 }}",
            "{{ $p := .password }}{{ $p.field }}",
            "{{ .password | len | upper }}",
            "{{ eq . . }}",
            "{{ eq . .password }}",
            "{{ lt .password 1 }}",
            "{{ index .password 99 }}",
            "{{ index . .password | upper | printf \"%5s\" }}",
            "{{ indent .password \"x\" }}",
            "{{ ternary 1 2 .password }}",
            "{{ printf .password }}{{ printf \"%c\" .password }}",
            "{{ printf (printf \"%%%s\" .password) }}",
            "{{ .password | (upper) }}",
            "{{ with .password }}{{ .field }}{{ end }}",
        ];
        for source in templates {
            let err = Template::parse("password", source)
                .and_then(|t| t.render(&data))
                .expect_err(source)
                .to_string();
            assert!(!err.contains(secret), "{source}: {err}");
            assert!(err.starts_with("template: password:"), "{err}");
        }
    }

    #[test]
    fn an_index_taken_from_a_secret_is_not_shown() {
        // The first byte of the password ('P' = 80) as an index past the end of "".
        let data = BTreeMap::from([("password".to_string(), b"Pa55".to_vec())]);
        let err = Template::parse("password", "{{ index \"\" (index .password 0) }}")
            .and_then(|t| t.render(&data))
            .expect_err("out of range")
            .to_string();
        assert!(err.ends_with("index out of range"), "{err}");
        assert!(!err.contains("80"), "{err}");
    }

    #[test]
    fn binary_values_pass_through_and_escape_like_go() {
        let data = BTreeMap::from([("bin".to_string(), vec![0xff, 0x00, 0xc3, b'a'])]);
        let render = |source: &str| {
            let out = Template::parse("bin", source)
                .unwrap()
                .render(&data)
                .unwrap();
            out.to_vec()
        };
        assert_eq!(render("{{ .bin }}"), [0xff, 0x00, 0xc3, b'a']);
        assert_eq!(render("{{ quote .bin }}"), br#""\xff\x00\xc3a""#);
        assert_eq!(render("{{ toJson .bin }}"), br#""\ufffd\u0000\ufffda""#);
        assert_eq!(render("{{ upper .bin }}"), "\u{fffd}\0\u{fffd}A".as_bytes());
        assert_eq!(
            render("{{ .bin | b64enc | b64dec }}"),
            [0xff, 0x00, 0xc3, b'a']
        );
    }

    /// The way `unseal.rs` calls the module.
    #[test]
    fn string_context_and_byte_output() {
        let mut context: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
        context.insert("user".into(), Zeroizing::new("app".into()));
        let (key, source) = ("dsn".to_string(), "{{ .user }}@db".to_string());
        let template = Template::parse(&key, &source)
            .map_err(|e| e.to_string())
            .unwrap();
        let rendered = template
            .render(&context)
            .map_err(|e| e.to_string())
            .unwrap();
        let stored = Zeroizing::new(rendered.as_bytes().to_vec());
        assert_eq!(&stored[..], b"app@db");
        assert_eq!(format!("{rendered:?}"), "Rendered(6 bytes)");
        assert_eq!(&rendered.into_bytes()[..], b"app@db");
    }

    #[test]
    fn parses_once_renders_many() {
        let source = "{{ .user }}@{{ .host | default \"localhost\" }}";
        let template = Template::parse("dsn", source).unwrap();
        assert_eq!(template.name(), "dsn");
        let mut data = BTreeMap::from([("user".to_string(), "app".to_string())]);
        assert_eq!(&template.render(&data).unwrap()[..], b"app@localhost");
        data.insert("host".to_string(), "db".to_string());
        assert_eq!(&template.render(&data).unwrap()[..], b"app@db");
    }

    #[test]
    fn sha256_matches_known_digests() {
        let hex = |data: &[u8]| {
            gitseal_crypto::primitives::sha256(data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let cases: [(&[u8], &str); 4] = [
            (
                b"",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                &[b'a'; 1000],
                "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3",
            ),
        ];
        for (data, want) in cases {
            assert_eq!(hex(data), want);
        }
    }

    /// Issue 12: 400 × `{{ indent 4000000 .password }}` in one SealedSecret took the
    /// controller to 7.9 GB; each template alone stays under `MAX_LEN`, so only a budget
    /// shared by all the templates of the Secret stops it.
    #[test]
    fn one_budget_bounds_all_the_templates_of_a_secret() {
        let data = data();
        let template = Template::parse("t", "{{ indent 4000000 .user }}").unwrap();
        assert_eq!(
            template.render(&data).unwrap().len(),
            4_000_005,
            "one alone fits"
        );
        let mut budget = Budget::new();
        let mut rendered = 0;
        let err = loop {
            match template.render_with_budget(&data, &mut budget) {
                Ok(_) => rendered += 1,
                Err(e) => break e.to_string(),
            }
            assert!(rendered < 400, "the budget never ran out");
        };
        // Each render creates the indented value and then prints it: 8 MB.
        assert_eq!(rendered, 2);
        assert_eq!(
            err,
            format!(
                "template: t:1:3: executing \"t\" at <indent 4000000 .user>: error calling \
                 indent: the templates of this Secret exceed their budget of {MAX_TOTAL_LEN} bytes"
            )
        );
        assert!(budget.bytes_left() < 4_000_005, "{budget:?}");
        // What is left is shared: a smaller template that would fit alone fails now.
        let err = Template::parse("u", "{{ indent 500000 .user }}")
            .unwrap()
            .render_with_budget(&data, &mut budget)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceed their budget"), "{err}");
        assert!(!err.contains("admin"), "{err}");
    }

    #[test]
    fn values_held_in_variables_count_against_the_budget() {
        // Nothing is printed, but five 4 MB values would be alive at once.
        let source: String = (0..5)
            .map(|i| format!("{{{{ $v{i} := indent 4000000 .user }}}}"))
            .collect();
        let err = render(&source).unwrap_err().to_string();
        assert!(
            err.ends_with(&format!(
                "error calling indent: the templates of this Secret exceed their budget of \
                 {MAX_TOTAL_LEN} bytes"
            )),
            "{err}"
        );
        assert!(err.contains("at <indent 4000000 .user>"), "{err}");
        // Every intermediate result is charged before it is allocated, even when the
        // result itself would fit in MAX_LEN.
        let mut budget = Budget::with_limits(1 << 20, MAX_STEPS);
        let err = Template::parse("t", "{{ indent 2000000 .user | len }}")
            .unwrap()
            .render_with_budget(&data(), &mut budget)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("exceed their budget of 1048576 bytes"),
            "{err}"
        );
        assert!(
            budget.bytes_left() > 1_000_000,
            "nothing allocated: {budget:?}"
        );
    }

    #[test]
    fn work_is_bounded_in_steps() {
        // Comparing a 3 MB value with itself 30 times reads 180 MB: more steps than the
        // budget holds, though nothing new is allocated.
        let source = format!(
            "{{{{ $a := indent 3000000 .user }}}}{}",
            "{{ eq $a $a }}".repeat(30)
        );
        let err = render(&source).unwrap_err().to_string();
        assert!(
            err.ends_with(&format!(
                "at <eq $a $a>: the templates of this Secret exceed their budget of \
                 {MAX_STEPS} steps"
            )),
            "{err}"
        );
        // Steps are shared across the templates of a Secret too.
        let template = Template::parse("t", "x{{ .user }}").unwrap();
        let mut budget = Budget::with_limits(MAX_TOTAL_LEN, 10);
        let mut rendered = 0;
        while template.render_with_budget(&data(), &mut budget).is_ok() {
            rendered += 1;
            assert!(rendered < 100);
        }
        assert_eq!(budget.steps_left(), 0);
        assert!(rendered >= 1, "{rendered}");
    }

    #[test]
    fn hostile_templates_hit_limits() {
        let nested = |n: usize| format!("{{{{ {}.user{} }}}}", "(".repeat(n), ")".repeat(n));
        assert_eq!(render(&nested(MAX_DEPTH)).as_deref(), Ok("admin"));
        let err = render(&nested(MAX_DEPTH + 1)).unwrap_err().to_string();
        assert_eq!(err, "template: password:1: max expression depth exceeded");
        let n = MAX_DEPTH + 1;
        let ifs = format!("{}x{}", "{{ if .user }}".repeat(n), "{{ end }}".repeat(n));
        let err = render(&ifs).unwrap_err().to_string();
        assert_eq!(err, "template: password:1: max nesting depth exceeded");

        let too_big = format!("result exceeds {MAX_LEN} bytes");
        let err = render("{{ indent 5000000 .user }}")
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!("error calling indent: {too_big}")),
            "{err}"
        );
        let grow = (0..6).fold(".user".to_string(), |inner, _| {
            format!("(replace \"\" \"0123456789\" {inner})")
        });
        let err = render(&format!("{{{{ {grow} }}}}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!("error calling replace: {too_big}")),
            "{err}"
        );

        let data = BTreeMap::from([("big".to_string(), vec![b'x'; 1 << 20])]);
        let template = Template::parse("big", &"{{ .big }}".repeat(5)).unwrap();
        let err = template.render(&data).unwrap_err().to_string();
        let want = format!(
            "template: big:1:43: executing \"big\" at <.big>: output exceeds {MAX_LEN} bytes"
        );
        assert_eq!(err, want);

        let text = Template::parse("text", &"x".repeat(MAX_LEN + 1)).unwrap();
        let err = text.render(&data).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("template: text: output exceeds {MAX_LEN} bytes")
        );
    }
}
