//! `range`, `define`, `template`, `block`, the options and the function table.

use std::collections::BTreeMap;

use crate::*;

fn items() -> BTreeMap<String, String> {
    [("user", "admin"), ("host", "db"), ("port", "5432")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn render_with(source: &str, options: &Options) -> Result<String, TemplateError> {
    let out = Template::parse_with("t", source, options)?.render(&items())?;
    Ok(String::from_utf8(out.to_vec()).expect("UTF-8"))
}

fn render(source: &str) -> Result<String, TemplateError> {
    render_with(source, &Options::default())
}

#[test]
fn range_over_items_and_integers() {
    let cases = [
        ("{{ range . }}[{{ . }}]{{ end }}", "[db][5432][admin]"),
        (
            "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}",
            "host=db;port=5432;user=admin;",
        ),
        ("{{ range $v := . }}{{ $v }},{{ end }}", "db,5432,admin,"),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ("{{ range $i := 3 }}{{ $i }}{{ end }}", "012"),
        ("{{ range 0 }}x{{ else }}none{{ end }}", "none"),
        ("{{ range .missing }}x{{ else }}none{{ end }}", "none"),
        (
            "{{ range $k, $v := . }}{{ if eq $k \"port\" }}{{ break }}{{ end }}{{ $v }}{{ end }}",
            "db",
        ),
        (
            "{{ range $k, $v := . }}{{ if eq $k \"port\" }}{{ continue }}{{ end }}{{ $v }}{{ end }}",
            "dbadmin",
        ),
        // Variables declared inside the body do not outlive an iteration.
        (
            "{{ $n := 0 }}{{ range 3 }}{{ $n = . }}{{ end }}{{ $n }}",
            "2",
        ),
        ("{{ range 2 }}{{ range 2 }}x{{ end }}{{ end }}", "xxxx"),
    ];
    for (source, want) in cases {
        assert_eq!(render(source).as_deref(), Ok(want), "{source}");
    }
    let err = render("{{ range .user }}{{ end }}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "template: t:1:9: executing \"t\" at <.user>: range can't iterate over value of type string"
    );
    assert!(!err.contains("admin"), "{err}");
}

#[test]
fn define_template_and_block() {
    let cases = [
        (
            "{{ define \"dsn\" }}{{ .user }}@{{ .host }}{{ end }}x={{ template \"dsn\" . }}",
            "x=admin@db",
        ),
        (
            "{{ define \"n\" }}[{{ . }}]{{ end }}{{ template \"n\" .port }}{{ template \"n\" }}",
            "[5432][<no value>]",
        ),
        (
            "{{ block \"b\" . }}{{ .user }}{{ end }}-{{ template \"b\" . }}",
            "admin-admin",
        ),
        // A define later in the text replaces an empty block body, as in Go.
        (
            "{{ block \"b\" . }}{{ end }}{{ define \"b\" }}{{ .host }}{{ end }}",
            "db",
        ),
        // Invoked templates see no variable of their caller but their own `$`.
        (
            "{{ define \"v\" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template \"v\" \"s\" }}",
            "s",
        ),
    ];
    for (source, want) in cases {
        assert_eq!(render(source).as_deref(), Ok(want), "{source}");
    }
    let err = render("{{ template \"nope\" . }}").unwrap_err().to_string();
    assert_eq!(
        err,
        "template: t:1:12: executing \"t\" at <{{template \"nope\" .}}>: template \"nope\" not defined"
    );
    // Errors inside a defined template name it, at its place in the text.
    let err = render("{{ define \"d\" }}\n{{ .user.x }}{{ end }}{{ template \"d\" . }}")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "template: t:2:8: executing \"d\" at <.user.x>: can't evaluate field x in type string"
    );
    // Recursion is bounded.
    let err = render("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}")
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("exceeded maximum template depth (100)"),
        "{err}"
    );
}

#[test]
fn missingkey_option() {
    let default = Options::default();
    assert_eq!(
        render_with("{{ .nope }}|{{ index . \"nope\" }}", &default).as_deref(),
        Ok("<no value>|")
    );
    let zero = Options::default().missing_key(MissingKey::Zero);
    assert_eq!(render_with("[{{ .nope }}]", &zero).as_deref(), Ok("[]"));
    let error = Options::default().missing_key(MissingKey::Error);
    assert_eq!(
        render_with("{{ .nope }}", &error).unwrap_err().to_string(),
        "template: t:1:3: executing \"t\" at <.nope>: map has no entry for key \"nope\""
    );
    // `index` is not affected, as in Go; present keys render as usual.
    assert_eq!(
        render_with("{{ .user }}[{{ index . \"nope\" }}]", &error).as_deref(),
        Ok("admin[]")
    );
}

#[test]
fn custom_delimiters() {
    let options = Options::default().delims("[[", "]]");
    assert_eq!(
        render_with(
            "{{ .user }} [[ .user ]] [[- \" x \" -]] [[/* c */]]!",
            &options
        )
        .as_deref(),
        Ok("{{ .user }} admin x !")
    );
    let options = Options::default().delims("<%", "%>");
    assert_eq!(
        render_with("<% if .host %><% .host | upper %><% end %>", &options).as_deref(),
        Ok("DB")
    );
    // Empty strings stand for the defaults.
    let options = Options::default().delims("", "");
    assert_eq!(render_with("{{ .host }}", &options).as_deref(), Ok("db"));
}

#[test]
fn functions_are_resolved_at_parse_time() {
    let names: Vec<_> = Dialect::SealedSecrets.function_names().collect();
    for name in ["and", "printf", "index", "b64enc", "toJson", "nindent"] {
        assert!(names.contains(&name), "{name}");
    }
    let err = Template::parse("t", "{{ if false }}{{ env \"HOME\" }}{{ end }}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "template: t:1: function \"env\" not defined"
    );
}

#[test]
fn templates_calling_deeply_nested_templates_fail_instead_of_overflowing_the_stack() {
    // Each call nests 98 blocks (under the per-template limit) and calls itself: without
    // one bound across calls this recursed about 10,000 frames deep and aborted the
    // process. Rendered on a 2 MiB thread, as tokio's blocking pool gives the controller.
    let ifs = "{{ if 1 }}".repeat(98);
    let ends = "{{ end }}".repeat(98);
    let source = format!(
        "{{{{ define \"r\" }}}}{ifs}x{{{{ template \"r\" . }}}}{ends}{{{{ end }}}}{{{{ template \"r\" . }}}}"
    );
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || render(&source))
        .unwrap()
        .join()
        .expect("no stack overflow");
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("exceeded maximum nesting depth (300)"),
        "{error}"
    );
}
