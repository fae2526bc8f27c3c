//! # gitseal-template
//!
//! Go's [`text/template`](https://pkg.go.dev/text/template) for gitseal, with the
//! function set of the program whose templates it renders, chosen as a [`Dialect`]: the
//! [Sprig](https://masterminds.github.io/sprig/) functions that Bitnami's sealed-secrets
//! controller offers for a SealedSecret's `spec.template.data`
//! ([`Dialect::SealedSecrets`], the default), or the External Secrets Operator's template
//! engine v2 ([`Dialect::ExternalSecrets`]). Sync, no I/O; output and work are bounded,
//! and values are wiped from memory when dropped.
//!
//! ## Which call do I need?
//!
//! | you want to…                                                  | use                                     |
//! |---------------------------------------------------------------|-----------------------------------------|
//! | render one template once                                      | [`Template::parse`], [`Template::render`] |
//! | render all the templates of one Secret within one budget      | [`Budget::new`], [`Template::render_with_budget`] |
//! | other delimiters, `missingkey=error`, another function set    | [`Options`], [`Template::parse_with`]   |
//! | list the functions of a dialect                               | [`Dialect::function_names`]             |
//! | render an ExternalSecret's templates as ESO does              | [`Options::new`]`(`[`Dialect::ExternalSecrets`]`)` with [`MissingKey::Error`] |
//!
//! Parse each template once and render it as often as needed: a [`Template`] holds the
//! parse tree with every function already resolved.
//!
//! ```
//! use std::collections::BTreeMap;
//! use gitseal_template::{Budget, Dialect, MissingKey, Options, Template};
//!
//! let items = BTreeMap::from([("user".to_string(), "admin".to_string())]);
//! let dsn = Template::parse("dsn", "postgres://{{ .user }}@{{ .host | default \"db\" }}")?;
//! let mut budget = Budget::new(); // shared by all the templates of one Secret
//! assert_eq!(&dsn.render_with_budget(&items, &mut budget)?[..], b"postgres://admin@db");
//!
//! let strict = Options::new(Dialect::SealedSecrets).missing_key(MissingKey::Error);
//! let t = Template::parse_with("t", "{{ .host }}", &strict)?;
//! assert_eq!(
//!     t.render(&items).unwrap_err().to_string(),
//!     "template: t:1:3: executing \"t\" at <.host>: map has no entry for key \"host\"",
//! );
//! # Ok::<(), gitseal_template::TemplateError>(())
//! ```
//!
//! ## The Sealed Secrets dialect
//!
//! A template sees the decrypted items of its SealedSecret as a map from item
//! name to value, as upstream does: `{{ .password }}`, `{{ index . "my-key" }}`.
//! Within what is described below the output is the one Go 1.25 with Sprig 3.3 (what
//! upstream builds with) produces, byte for byte. Anything else
//! is refused with an error in Go's words, such as
//! `template: password:1: function "env" not defined`. So a template either
//! renders as it would upstream or fails with an error.
//!
//! ### Syntax
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
//! - `{{ range pipeline }} ... {{ else }} ... {{ end }}`, with `{{ range $v := pipeline }}`
//!   or `{{ range $k, $v := pipeline }}`, and `{{ break }}` / `{{ continue }}` inside: over
//!   the item map (in key order; `$k` is the item name, `.` and `$v` its value) and over an
//!   integer `n` (`0` to `n-1`, Go 1.22). A missing value runs the `else` branch; any other
//!   value is an error.
//! - `{{ define "name" }} ... {{ end }}` at top level, `{{ template "name" }}`,
//!   `{{ template "name" pipeline }}` and `{{ block "name" pipeline }} ... {{ end }}`. A
//!   template sees the ones defined in its own text, and itself under its own name.
//!   Invoked templates nest at most 100 deep.
//! - Other delimiters than `{{ }}` and `missingkey=zero|error`: see [`Options`].
//!
//! ### Functions
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
//! ### Behaviour carried over from upstream
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
//! ### Deliberate differences
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
//! - Error messages of `range` over a value it cannot iterate name the type of the
//!   value, not the value (Go prints it).
//!
//! ## The External Secrets dialect
//!
//! [`Dialect::ExternalSecrets`] is ESO's template engine v2 (`engineVersion: v2`): Go's
//! `text/template` with Sprig 3.3's text functions (less `env`, `expandenv` and
//! `getHostByName`) and ESO's own. ESO renders `target.template.data`, `templateFrom`
//! and `rewrite[].transform.template` against a map of the fetched keys (as strings)
//! with `missingkey=error`, and with the delimiters of its `--template-left-delimiter`
//! and `--template-right-delimiter` flags (`{{ }}` by default):
//!
//! ```
//! use std::collections::BTreeMap;
//! use gitseal_template::{Dialect, MissingKey, Options, Template};
//!
//! let eso = Options::new(Dialect::ExternalSecrets).missing_key(MissingKey::Error);
//! let t = Template::parse_with(
//!     ".dockerconfigjson",
//!     r#"{{ dict "auths" (dict "r.io" (dict "auth" (printf "%s:%s" .user .pass | b64enc))) | toJson }}"#,
//!     &eso,
//! )?;
//! let fetched = BTreeMap::from([("user", "u"), ("pass", "p")].map(|(k, v)| (k.to_string(), v)));
//! assert_eq!(&t.render(&fetched)?[..], br#"{"auths":{"r.io":{"auth":"dTpw"}}}"#);
//! # Ok::<(), gitseal_template::TemplateError>(())
//! ```
//!
//! Everything said above of the syntax, of Go's built-ins and of the deliberate
//! differences holds here too. Besides strings, integers and booleans, values may be:
//!
//! - lists (Go's `[]interface{}`, from `list`, `splitList`, `fromJson`...), printed
//!   `[a b c]`, and dicts (`map[string]interface{}`, from `dict`, `split`, `fromJson`...),
//!   printed `map[a:1 b:2]` in key order. `range`, `index`, `len`, `.field` (on dicts),
//!   `toJson` and `toYaml` work on both. A dict is shared, as Go's maps are: `set` changes
//!   it for every holder;
//! - floats (`float64`, from `fromJson`, whose numbers are all floats, and `float64`),
//!   printed as Go prints them: `8080`, `1.5`, `1e+06`; `toJson` writes `1e+21`.
//!   Float literals (`1.5`) remain refused.
//!
//! ### Functions
//!
//! Go's built-ins, then:
//!
//! - defaults and logic: `default`, `empty`, `coalesce`, `ternary`, `all`, `any`,
//!   `deepEqual`, `fail`;
//! - strings: `quote`, `squote`, `cat`, `upper`, `lower`, `title`, `trim`, `trimAll`
//!   (`trimall`), `trimPrefix`, `trimSuffix`, `nospace`, `replace`, `repeat`, `substr`,
//!   `trunc`, `contains`, `hasPrefix`, `hasSuffix`, `indent`, `nindent`, `plural`, `split`
//!   (a dict `_0`, `_1`...), `splitList`, `splitn`, `join`, `toStrings`, `sortAlpha`,
//!   `toString`;
//! - encodings and hashes: `b64enc`, `b64dec`, `sha1sum`, `sha256sum`, `sha512sum`,
//!   `adler32sum`, `htpasswd USER PASSWORD ALGORITHM` (`"sha"` for `{SHA}`, anything else
//!   bcrypt at Go's cost 10, `$2a$`), `bcrypt`;
//! - JSON and YAML: `toJson`, `mustToJson`, `toRawJson`, `mustToRawJson`,
//!   `toPrettyJson`, `mustToPrettyJson`, `fromJson` (nil for text that is not JSON),
//!   `mustFromJson`, `fromYaml` (through JSON, as `sigs.k8s.io/yaml`; a map with only
//!   `Error` for what is not a YAML mapping), `toYaml` (`sigs.k8s.io/yaml`: keys in go-yaml v2's order, strings
//!   quoted only where YAML 1.1 needs it, multi-line strings as `|` blocks, lines folded
//!   after column 80);
//! - numbers (`cast`'s conversions; 0 for what does not convert): `atoi`, `int`,
//!   `int64`, `float64`, `add`, `add1`, `sub`, `mul`, `div`, `mod`, `max` (`biggest`),
//!   `min`;
//! - lists: `list` (`tuple`), `first`, `last`, `rest`, `initial`, `reverse`, `append`
//!   (`push`), `prepend`, `concat`, `uniq`, `without`, `compact`, `has`, and their `must`
//!   forms;
//! - dicts: `dict`, `get` (`""` when missing), `set`, `unset`, `hasKey`, `keys`, `values`,
//!   `pluck`, `pick`, `omit`;
//! - regular expressions (Go's RE2 syntax): `regexMatch`, `regexFind`, `regexFindAll`,
//!   `regexReplaceAll`, `regexReplaceAllLiteral`, `regexSplit`, their `must` forms, and
//!   `regexQuoteMeta`;
//! - ESO's `filterPEM TYPE PEM`: the PEM blocks of one type, as Go re-encodes them.
//!
//! Not available (a parse error, `function "NAME" not defined`): `env`, `expandenv` and
//! `getHostByName`, as in ESO; the random and clock functions (`randAlphaNum`,
//! `randBytes`, `uuidv4`, `now`, `date` and the other date functions, `genPrivateKey`,
//! `genCA`...), since a template must render the same Secret each time and must not
//! generate secrets; and, not implemented yet, ESO's `pkcs12key`,
//! `pkcs12keyPass`, `pkcs12cert`, `pkcs12certPass`, `pemToPkcs12`, `pemToPkcs12Pass`,
//! `fullPemToPkcs12`, `fullPemToPkcs12Pass`, `pemTruststoreToPKCS12`,
//! `pemTruststoreToPKCS12Pass`, `filterCertChain`, `certSANs`, `jwkPublicKeyPem`,
//! `jwkPrivateKeyPem`, `rsaDecrypt`, and Sprig's `abbrev`, `abbrevboth`, `initials`,
//! `untitle`, `swapcase`, `wrap`, `wrapWith`, the case conversions (`camelcase`,
//! `snakecase`, `kebabcase`), `b32enc`, `b32dec`, `hexdec`, `seq`, `until`, `untilStep`,
//! `addf` and the other float arithmetic, `ceil`, `floor`, `round`, `toDecimal`,
//! `chunk`, `slice`, `dig`, `merge` and its forms, `deepCopy`, the `typeOf`/`kindOf`
//! family, the path and URL functions, `semver`, `semverCompare`, `encryptAES`,
//! `decryptAES`, `derivePassword`, `mustToDate` and `hello`.
//!
//! ### Differences from ESO
//!
//! - `keys` and `values` list a dict in key order; Go's order is random.
//! - `set` refuses to put a dict inside itself (Go would build a cycle that nothing can
//!   print), and lists and dicts nest at most 100 deep when printed or encoded.
//! - Messages never contain a value: `mustFromJson`'s leave out the offending character
//!   (`invalid character looking for beginning of value`), `substr`'s the bounds,
//!   regular expression errors the pattern, and `fail`'s its message.
//! - `htpasswd` and `bcrypt` each cost 1% of [`MAX_STEPS`]: a Secret's templates may
//!   compute at most 100 bcrypt hashes. Comparisons (`uniq`, `has`, `without`) cost steps
//!   too, and every list or dict element counts against [`MAX_TOTAL_LEN`].
//! - Regular expressions are run by Rust's `regex` crate: `\d`, `\w`, `\s` and `\b` are
//!   ASCII-only as in Go, but a pattern that only one of the two accepts (such as `a{`,
//!   a literal in Go) is an error here, and invalid UTF-8 in the subject is not matched by
//!   `.` as Go does. Compiled patterns are limited to 1 MiB.
//! - `toYaml` refuses keys longer than 128 bytes or of several lines (go-yaml writes them
//!   as `? ` complex keys), and line breaks other than `\n` in single-quoted or block
//!   strings.

mod exec;
mod func;
mod gofmt;
mod lexer;
mod literal;
mod options;
mod parser;
mod tree;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_actions;
#[cfg(test)]
mod tests_eso;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use zeroize::Zeroizing;

pub use options::{Dialect, MissingKey, Options};

use exec::Exec;
use gofmt::quoted;
use lexer::Lexer;
use parser::Parser;
use tree::Node;
use value::{Buf, Meter, Root, Value};

pub(crate) const MAX_LEN: usize = 4 << 20;
/// How deep `if`/`with` blocks and parentheses may nest.
pub(crate) const MAX_DEPTH: usize = 100;
/// How deep the executor may recurse (node lists and pipelines, across template calls):
/// a few templates' worth of [`MAX_DEPTH`], far from the end of a 2 MiB thread stack.
pub(crate) const MAX_NESTING: usize = 3 * MAX_DEPTH;
/// The bytes of values (rendered output, function results, copies of items)
/// that all the renders sharing one [`Budget`] may create together: 16 MiB, for
/// Secrets that Kubernetes caps at about 1 MiB.
pub const MAX_TOTAL_LEN: usize = 16 << 20;
/// The steps that all the renders sharing one [`Budget`] may take together: one
/// per node executed, per argument evaluated and per function called, plus one
/// per 64 bytes of input a function reads.
pub const MAX_STEPS: u64 = 1_000_000;
/// How many bytes of function input cost one step.
pub(crate) const BYTES_PER_STEP: usize = 64;

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

/// A parsed template, ready to be rendered against any number of item maps. Its
/// functions are resolved and its `define`d templates collected when it is parsed.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    source: String,
    root: Vec<Node>,
    /// The templates of `{{ define }}` and `{{ block }}`, by name.
    defs: BTreeMap<String, Vec<Node>>,
    missing_key: MissingKey,
}

impl Template {
    /// Parses `source` with the default [`Options`] (the Sealed Secrets dialect). `name`
    /// (the item name in upstream) appears in error messages.
    pub fn parse(name: &str, source: &str) -> Result<Self, TemplateError> {
        Self::parse_with(name, source, &Options::default())
    }

    /// Parses `source` with `options`: its delimiters, its function set and what a
    /// missing map key yields when the template is rendered.
    pub fn parse_with(name: &str, source: &str, options: &Options) -> Result<Self, TemplateError> {
        let items = Lexer::new(source, options.left_delim(), options.right_delim()).run();
        let (root, defs) = Parser::new(name, items, options.dialect()).parse()?;
        Ok(Template {
            name: name.to_string(),
            source: source.to_string(),
            root,
            defs,
            missing_key: options.missing_key_mode(),
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
            steps: Cell::new(budget.steps),
            max_steps: budget.max_steps,
        });
        let mut exec = Exec {
            vars: vec![("$", dot.clone())],
            out: Buf::new(&meter),
            at: None,
            meter: meter.clone(),
            template: self,
            current: &self.name,
            depth: 0,
            nesting: 0,
        };
        // The parser accepts break and continue only inside range: the top level ends normally.
        let result = exec.walk(&dot, &self.root).and_then(|_| {
            if let Some(overflow) = exec.out.overflow {
                return Err(exec.fail(overflow.message("output")));
            }
            Ok(())
        });
        budget.bytes = meter.left.get();
        budget.steps = meter.steps.get();
        let Err(fail) = result else {
            return Ok(Rendered(exec.out.bytes));
        };
        let name = &self.name;
        let Some((pos, ctx)) = fail.at else {
            return Err(TemplateError::Exec(format!(
                "template: {}: {}",
                fail.template, fail.msg
            )));
        };
        let before = &self.source[..pos];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        Err(TemplateError::Exec(format!(
            "template: {name}:{line}:{col}: executing {} at <{ctx}>: {}",
            quoted(&fail.template),
            fail.msg
        )))
    }
}
