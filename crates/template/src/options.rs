//! Parse options: the dialect (function set), delimiters and `missingkey`.

/// The function set a template may call, besides Go's built-ins. Each dialect is the set
/// of one upstream program, so a template renders as it does there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Bitnami sealed-secrets' `spec.template.data`: Sprig's text functions that upstream
    /// keeps (no `env`, `expandenv` or `getHostByName`). See the crate docs for the list.
    #[default]
    SealedSecrets,
    /// The External Secrets Operator's template engine v2 (`engineVersion: v2`): Sprig's
    /// text functions less `env`, `expandenv` and `getHostByName`, plus ESO's own
    /// (`toYaml`, `filterPEM`, ...). See the crate docs for the list. Render with
    /// [`MissingKey::Error`], as ESO does.
    ExternalSecrets,
}

impl Dialect {
    /// The names of the functions a template of this dialect may call, Go's built-ins
    /// included, in no particular order.
    pub fn function_names(self) -> impl Iterator<Item = &'static str> {
        crate::func::table(self).map(|def| def.name)
    }
}

/// What `{{ .key }}` yields when the map has no `key`: Go's `missingkey` option.
/// `index` is not affected: it yields the zero value (an empty string) either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum MissingKey {
    /// `missingkey=default` (or `invalid`): the missing value, printed `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the zero value of the map's elements, an empty string.
    Zero,
    /// `missingkey=error`: execution stops with `map has no entry for key "key"`.
    Error,
}

/// How to parse and run a template: Go's `Delims`, `Option("missingkey=...")` and the
/// `FuncMap`, chosen as a [`Dialect`].
///
/// ```
/// use gitseal_template::{Dialect, MissingKey, Options};
/// let options = Options::new(Dialect::SealedSecrets)
///     .delims("[[", "]]")
///     .missing_key(MissingKey::Error);
/// assert_eq!(options.left_delim(), "[[");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    dialect: Dialect,
    left: String,
    right: String,
    missing_key: MissingKey,
}

impl Default for Options {
    fn default() -> Self {
        Self::new(Dialect::default())
    }
}

impl Options {
    /// The defaults of Go's `template.New`: delimiters `{{` and `}}`,
    /// `missingkey=default`, with the functions of `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Options {
            dialect,
            left: "{{".into(),
            right: "}}".into(),
            missing_key: MissingKey::Default,
        }
    }

    /// Go's `Delims(left, right)`: an empty string stands for the default (`{{` or `}}`).
    pub fn delims(mut self, left: &str, right: &str) -> Self {
        self.left = if left.is_empty() { "{{" } else { left }.into();
        self.right = if right.is_empty() { "}}" } else { right }.into();
        self
    }

    /// Go's `Option("missingkey=...")`.
    pub fn missing_key(mut self, missing_key: MissingKey) -> Self {
        self.missing_key = missing_key;
        self
    }

    /// The function set.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The left delimiter.
    pub fn left_delim(&self) -> &str {
        &self.left
    }

    /// The right delimiter.
    pub fn right_delim(&self) -> &str {
        &self.right
    }

    /// What a missing map key yields.
    pub fn missing_key_mode(&self) -> MissingKey {
        self.missing_key
    }
}
