//! The lexer: Go's `text/template/parse/lex.go`.

use std::fmt;

use crate::gofmt::{fmt_u, quoted};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typ {
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
pub(crate) enum Kw {
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
pub(crate) struct Item {
    pub(crate) typ: Typ,
    pub(crate) val: String,
    pub(crate) pos: usize,
    pub(crate) line: usize,
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

pub(crate) enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    Action,
    Done,
}

pub(crate) struct Lexer<'s> {
    pub(crate) input: &'s str,
    /// The delimiters: `{{` and `}}` unless [`crate::Options::delims`] says otherwise.
    pub(crate) left: &'s str,
    pub(crate) right: &'s str,
    pub(crate) start: usize,
    pub(crate) pos: usize,
    pub(crate) start_line: usize,
    pub(crate) paren_depth: i32,
    pub(crate) items: Vec<Item>,
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(crate) fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(crate) fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

pub(crate) fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(input: &'s str, left: &'s str, right: &'s str) -> Self {
        Lexer {
            input,
            left,
            right,
            start: 0,
            pos: 0,
            start_line: 1,
            paren_depth: 0,
            items: Vec::new(),
        }
    }

    pub(crate) fn run(mut self) -> Vec<Item> {
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

    pub(crate) fn rest(&self) -> &'s str {
        &self.input[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(crate) fn emit(&mut self, typ: Typ) {
        let val = &self.input[self.start..self.pos];
        self.items.push(Item {
            typ,
            val: val.to_string(),
            pos: self.start,
            line: self.start_line,
        });
        self.ignore();
    }

    pub(crate) fn ignore(&mut self) {
        self.start_line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
    }

    pub(crate) fn errorf(&mut self, msg: String) -> State {
        self.items.push(Item {
            typ: Typ::Error,
            val: msg,
            pos: self.start,
            line: self.start_line,
        });
        State::Done
    }

    pub(crate) fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    pub(crate) fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[2..].starts_with(self.right) {
            return (true, true);
        }
        (rest.starts_with(self.right), false)
    }

    pub(crate) fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(self.right),
        }
    }

    pub(crate) fn lex_text(&mut self) -> State {
        let Some(x) = self.rest().find(self.left) else {
            self.pos = self.input.len();
            if self.pos > self.start {
                self.emit(Typ::Text);
            }
            self.emit(Typ::Eof);
            return State::Done;
        };
        self.pos += x;
        let mut trim = 0;
        if has_left_trim_marker(&self.rest()[self.left.len()..]) {
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

    pub(crate) fn lex_left_delim(&mut self) -> State {
        self.pos += self.left.len();
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

    pub(crate) fn lex_comment(&mut self) -> State {
        self.pos += 2;
        let Some(i) = self.rest().find("*/") else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += i + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        self.pos += self.right.len() + if trim { 2 } else { 0 };
        if trim {
            self.skip_left_trim();
        }
        self.ignore();
        State::Text
    }

    pub(crate) fn skip_left_trim(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    pub(crate) fn lex_right_delim(&mut self) -> State {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += self.right.len();
        self.emit(Typ::RightDelim);
        if trim {
            self.skip_left_trim();
            self.ignore();
        }
        State::Text
    }

    pub(crate) fn lex_inside_action(&mut self) -> State {
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

    pub(crate) fn lex_space(&mut self) -> State {
        let mut spaces = 0;
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
            spaces += 1;
        }
        // A space followed by "-}}" is a trim marker, not an argument separator.
        if has_right_trim_marker(&self.input[self.pos - 1..])
            && self.input[self.pos + 1..].starts_with(self.right)
        {
            self.pos -= 1;
            if spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(Typ::Space);
        State::Action
    }

    pub(crate) fn lex_identifier(&mut self) -> State {
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

    pub(crate) fn bad_character(&mut self) -> State {
        let c = self.peek().unwrap_or('\u{fffd}');
        self.errorf(format!("bad character {}", fmt_u(c)))
    }

    /// `.name` or `$name`; a lone `.` is the dot and a lone `$` the root variable.
    pub(crate) fn lex_field_or_variable(&mut self, typ: Typ) -> State {
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
    pub(crate) fn lex_quote(&mut self, quote: char) -> State {
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

    pub(crate) fn lex_number(&mut self) -> State {
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

    pub(crate) fn bad_number(&mut self) -> State {
        let text = quoted(&self.input[self.start..self.pos]);
        self.errorf(format!("bad number syntax: {text}"))
    }

    pub(crate) fn scan_number(&mut self) -> bool {
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
