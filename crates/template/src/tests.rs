use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::*;

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
        // range, define, template and block (supported since the crate split).
        (
            "{{ range . }}{{ else }}{{ break }}{{ end }}",
            "template: password:1: {{break}} outside {{range}}",
        ),
        (
            "{{ if 1 }}{{ define \"x\" }}{{ end }}{{ end }}",
            "template: password:1: unexpected <define> in command",
        ),
        (
            "{{ template x }}",
            "template: password:1: unexpected \"x\" in template clause",
        ),
        (
            "{{ define \"x\" }}a{{ end }}{{ define \"x\" }}b{{ end }}",
            "template: password:1: template: multiple definition of template \"x\"",
        ),
        (
            "{{ range $a, $b, $c := . }}{{ end }}",
            "template: password:1: too many declarations in range",
        ),
        (
            "{{ with $a, $b := . }}{{ end }}",
            "template: password:1: too many declarations in with",
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
    let want =
        format!("template: big:1:43: executing \"big\" at <.big>: output exceeds {MAX_LEN} bytes");
    assert_eq!(err, want);

    let text = Template::parse("text", &"x".repeat(MAX_LEN + 1)).unwrap();
    let err = text.render(&data).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("template: text: output exceeds {MAX_LEN} bytes")
    );
}
