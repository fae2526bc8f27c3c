//! The External Secrets dialect: outputs as Go's text/template with Sprig 3.3 and ESO's
//! functions produce them, rendered as ESO renders (`missingkey=error`).

use std::collections::BTreeMap;

use crate::*;

fn data() -> BTreeMap<String, Vec<u8>> {
    [
        ("user", "admin"),
        ("password", "s3cr<e>t"),
        ("json", r#"{"user":"u1","port":8080,"ratio":1.5,"tags":["a","b"],"nested":{"k":"v"},"big":1e21,"none":null,"ok":true}"#),
        ("badjson", "{\"a\": x}"),
        ("csv", "a,b,c"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

fn options() -> Options {
    Options::new(Dialect::ExternalSecrets).missing_key(MissingKey::Error)
}

fn render(source: &str) -> Result<String, TemplateError> {
    let out = Template::parse_with("t", source, &options())?.render(&data())?;
    Ok(String::from_utf8(out.to_vec()).expect("UTF-8 output"))
}

fn check(cases: &[(&str, &str)]) {
    for (source, want) in cases {
        match render(source) {
            Ok(got) => assert_eq!(&got, want, "{source}"),
            Err(e) => panic!("{source}: {e}"),
        }
    }
}

fn check_err(cases: &[(&str, &str)]) {
    for (source, want) in cases {
        match render(source) {
            Ok(got) => panic!("{source}: rendered {got:?}, expected an error"),
            Err(e) => assert_eq!(e.to_string(), *want, "{source}"),
        }
    }
}

#[test]
fn values_print_like_go() {
    check(&[
        ("{{ list \"a\" \"b\" \"c\" }}", "[a b c]"),
        ("{{ list }}", "[]"),
        ("{{ list 1 nil true (list 2) }}", "[1 <nil> true [2]]"),
        ("{{ dict \"b\" 2 \"a\" 1 }}", "map[a:1 b:2]"),
        ("{{ dict \"a\" }}", "map[a:]"),
        ("{{ printf \"%q\" (list \"a\" \"b\") }}", "[\"a\" \"b\"]"),
        ("{{ (fromJson .json).port }}", "8080"),
        ("{{ (fromJson .json).ratio }}", "1.5"),
        ("{{ (fromJson .json).big }}", "1e+21"),
        (
            "{{ float64 \"1000000\" }} {{ float64 \"123456\" }} {{ float64 \"0.0001\" }} {{ float64 \"0.00001\" }}",
            "1e+06 123456 0.0001 1e-05",
        ),
        ("{{ (fromJson .json).tags }}", "[a b]"),
        ("{{ (fromJson .json).nested }}", "map[k:v]"),
        ("{{ (fromJson .json).none }}", "<no value>"),
        ("{{ len (list 1 2 3) }} {{ len (dict \"a\" 1) }}", "3 1"),
        ("{{ index (list \"x\" \"y\") 1 }}", "y"),
        ("{{ index (dict \"k\" \"v\") \"k\" }}", "v"),
        ("{{ index (fromJson .json) \"tags\" 0 }}", "a"),
        (
            "{{ range $i, $v := list \"a\" \"b\" }}{{ $i }}={{ $v }};{{ end }}",
            "0=a;1=b;",
        ),
        (
            "{{ range $k, $v := dict \"b\" 2 \"a\" 1 }}{{ $k }}={{ $v }};{{ end }}",
            "a=1;b=2;",
        ),
        ("{{ range list }}x{{ else }}empty{{ end }}", "empty"),
        (
            "{{ if list }}t{{ else }}f{{ end }}{{ if dict \"a\" 1 }}t{{ end }}",
            "ft",
        ),
        ("{{ eq (float64 \"1.5\") (float64 \"1.5\") }}", "true"),
        (
            "{{ $d := dict }}{{ $_ := set $d \"k\" \"v\" }}{{ $d.k }}",
            "v",
        ),
    ]);
}

#[test]
fn json_functions() {
    check(&[
        (
            "{{ toJson (fromJson .json) }}",
            r#"{"big":1e+21,"nested":{"k":"v"},"none":null,"ok":true,"port":8080,"ratio":1.5,"tags":["a","b"],"user":"u1"}"#,
        ),
        (
            "{{ toJson (list 1 \"<a>\" (dict)) }}",
            r#"[1,"\u003ca\u003e",{}]"#,
        ),
        ("{{ toRawJson (list \"<a>\") }}", r#"["<a>"]"#),
        (
            "{{ toPrettyJson (dict \"a\" (list 1 2) \"b\" (dict \"c\" (list)) ) }}",
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": []\n  }\n}",
        ),
        ("{{ fromJson .badjson }}", "<no value>"),
        (
            "{{ toJson (fromJson \"\\\"\\\\ud83d\\\\ude00\\\\u00e9\\\"\") }}",
            "\"😀é\"",
        ),
        ("{{ toJson (float64 \"0.0000001\") }}", "1e-7"),
        (
            "{{ toJson (float64 \"100000000000000000000\") }}",
            "100000000000000000000",
        ),
        ("{{ (fromJson .json).user }}", "u1"),
        (
            "{{ get (fromJson .json) \"user\" }}|{{ get (fromJson .json) \"nope\" }}|",
            "u1||",
        ),
    ]);
    check_err(&[
        (
            "{{ mustFromJson \"nope\" }}",
            "template: t:1:3: executing \"t\" at <mustFromJson \"nope\">: error calling mustFromJson: invalid character in literal null (expecting 'u')",
        ),
        (
            "{{ mustFromJson .badjson }}",
            "template: t:1:3: executing \"t\" at <mustFromJson .badjson>: error calling mustFromJson: invalid character looking for beginning of value",
        ),
        (
            "{{ mustFromJson .empty }}",
            "template: t:1:3: executing \"t\" at <mustFromJson .empty>: error calling mustFromJson: unexpected end of JSON input",
        ),
        (
            "{{ (fromJson .json).missing }}",
            "template: t:1:4: executing \"t\" at <fromJson .json>: map has no entry for key \"missing\"",
        ),
    ]);
}

#[test]
fn string_functions() {
    check(&[
        (
            "{{ substr 1 4 \"fooo\" }}|{{ substr 0 3 \"hello\" }}|{{ substr -1 2 \"hello\" }}|{{ substr 2 99 \"hello\" }}",
            "ooo|hel|he|llo",
        ),
        (
            "{{ trunc 5 \"Hello World\" }}|{{ trunc -5 \"Hello World\" }}|{{ trunc 50 \"ab\" }}",
            "Hello|World|ab",
        ),
        (
            "{{ title \"hello wORLD-foo_bar ǆx\" }}",
            "Hello WORLD-Foo_bar ǅx",
        ),
        (
            "{{ repeat 3 \"hi\" }}|{{ repeat 0 \"hi\" }}|{{ repeat 9223372036854775807 \"\" }}|",
            "hihihi|||",
        ),
        (
            "{{ trimAll \"$\" \"$5.00$\" }}|{{ trimall \"ab\" \"abxba\" }}|{{ trimAll \"\" \" x \" }}|",
            "5.00|x| x |",
        ),
        ("{{ .csv | split \",\" }}", "map[_0:a _1:b _2:c]"),
        (
            "{{ $v := \"foo$bar$baz\" | split \"$\" }}{{ $v._1 }}",
            "bar",
        ),
        (
            "{{ splitn \"$\" 2 \"foo$bar$baz\" }}",
            "map[_0:foo _1:bar$baz]",
        ),
        (
            "{{ splitList \",\" .csv }}|{{ splitList \"\" \"abc\" }}|{{ len (splitList \",\" \"\") }}",
            "[a b c]|[a b c]|1",
        ),
        (
            "{{ join \"-\" (list 1 \"b\" nil 3) }}|{{ join \",\" .csv }}|{{ splitList \",\" .csv | join \";\" }}",
            "1-b-3|a,b,c|a;b;c",
        ),
        (
            "{{ toStrings (list 1 \"a\" true) }}|{{ sortAlpha (list \"b\" \"c\" \"a\") }}",
            "[1 a true]|[a b c]",
        ),
        (
            "{{ quote (list \"a\" 1) \"b\" }} {{ squote (float64 \"1.5\") }}",
            "\"[a 1]\" \"b\" '1.5'",
        ),
        (
            "{{ plural \"one\" \"many\" 1 }} {{ plural \"one\" \"many\" 2 }}",
            "one many",
        ),
        ("{{ toString (dict \"a\" (list 1)) }}", "map[a:[1]]"),
        ("{{ cat \"a\" nil (list 1 2) }}", "a [1 2]"),
    ]);
    check_err(&[
        (
            "{{ substr 3 1 \"hello\" }}",
            "template: t:1:3: executing \"t\" at <substr 3 1 \"hello\">: error calling substr: runtime error: slice bounds out of range",
        ),
        (
            "{{ repeat -1 \"x\" }}",
            "template: t:1:3: executing \"t\" at <repeat -1 \"x\">: error calling repeat: strings: negative Repeat count",
        ),
        (
            "{{ upper 1 }}",
            "template: t:1:9: executing \"t\" at <1>: expected string; found 1",
        ),
        (
            "{{ upper (list) }}",
            "template: t:1:10: executing \"t\" at <list>: wrong type for value; expected string; got []interface {}",
        ),
    ]);
}

#[test]
fn hash_and_encoding_functions() {
    check(&[
        (
            "{{ sha1sum \"12345\" }}",
            "8cb2237d0679ca88db6464eac60da96345513964",
        ),
        (
            "{{ sha256sum \"12345\" }}",
            "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5",
        ),
        (
            "{{ sha512sum \"12345\" }}",
            "3627909a29c31381a071ec27f7c9ca97726182aed29a7ddd2e54353322cfb30abb9e3a6df2ac2c20fe23436311d678564d0c8d305930575f60e2d3d048184d79",
        ),
        ("{{ adler32sum \"hello world\" }}", "436929629"),
        (
            "{{ b64enc .user }}|{{ b64dec \"YWRtaW4=\" }}|{{ b64dec \"abc!\" }}",
            "YWRtaW4=|admin|illegal base64 data at input byte 3",
        ),
        (
            "{{ htpasswd \"foo1\" \"FZ4jR;l]ON;pHKi=_'zh79P\" \"sha\" }}",
            "foo1:{SHA}wtdJD6OIjUniEJkTlewnKzfFxA4=",
        ),
        (
            "{{ htpasswd \"a:b\" \"pw\" \"bcrypt\" }}",
            "invalid username: a:b",
        ),
    ]);
}

#[test]
fn htpasswd_makes_a_bcrypt_hash_of_go_cost() {
    let out = render("{{ htpasswd .user .password \"bcrypt\" }}").unwrap();
    let hash = out.strip_prefix("admin:").unwrap();
    assert!(hash.starts_with("$2a$10$"), "{hash}");
    assert!(bcrypt::verify("s3cr<e>t", hash).unwrap());
    let long = "x".repeat(73);
    assert_eq!(
        render(&format!("{{{{ htpasswd \"u\" \"{long}\" \"\" }}}}")).unwrap(),
        "u:failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
    );
    // The ESO documentation's example: one line per user of a JSON object.
    let source = "{{- $creds := list }}\
        {{- range $user, $pw := (dict \"alice\" \"pw1\" \"bob\" \"pw2\") }}\
        {{- $creds = append $creds (printf \"%s\" (htpasswd $user $pw \"bcrypt\")) }}\
        {{- end }}auth: {{ $creds | join \"\\n\" | quote }}";
    let out = render(source).unwrap();
    let inner = out
        .strip_prefix("auth: \"")
        .unwrap()
        .strip_suffix('"')
        .unwrap();
    let lines: Vec<&str> = inner.split("\\n").collect();
    assert_eq!(lines.len(), 2);
    assert!(bcrypt::verify("pw1", lines[0].strip_prefix("alice:").unwrap()).unwrap());
    assert!(bcrypt::verify("pw2", lines[1].strip_prefix("bob:").unwrap()).unwrap());
}

#[test]
fn numbers() {
    check(&[
        (
            "{{ atoi \"42\" }} {{ atoi \"4x\" }} {{ atoi \"-3\" }}",
            "42 0 -3",
        ),
        (
            "{{ int \"0x1F\" }} {{ int64 \"8080.00\" }} {{ int (float64 \"1.9\") }} {{ int true }} {{ int nil }} {{ int \"x\" }}",
            "31 8080 1 1 0 0",
        ),
        (
            "{{ float64 \"1.5\" }} {{ float64 3 }} {{ float64 \"x\" }}",
            "1.5 3 0",
        ),
        (
            "{{ add 1 2 \"3\" }} {{ sub 3 1 }} {{ mul 2 3 4 }} {{ div 10 3 }} {{ mod 10 3 }} {{ add1 \"5\" }}",
            "6 2 24 3 1 6",
        ),
        ("{{ max 1 5 3 }} {{ min 1 5 3 }} {{ biggest 2 9 }}", "5 1 9"),
        ("{{ add (fromJson .json).port 1 }}", "8081"),
    ]);
    check_err(&[(
        "{{ div 1 0 }}",
        "template: t:1:3: executing \"t\" at <div 1 0>: error calling div: runtime error: integer divide by zero",
    )]);
}

#[test]
fn lists_and_dicts() {
    check(&[
        (
            "{{ first (list 1 2) }} {{ last (list 1 2) }} {{ first list }}",
            "1 2 <no value>",
        ),
        (
            "{{ rest (list 1 2 3) }} {{ initial (list 1 2 3) }} {{ reverse (list 1 2 3) }}",
            "[2 3] [1 2] [3 2 1]",
        ),
        (
            "{{ append (list 1) 2 }} {{ prepend (list 1) 0 }} {{ concat (list 1) (list 2 3) }}",
            "[1 2] [0 1] [1 2 3]",
        ),
        (
            "{{ uniq (list 1 1 \"1\" 2 (list 3) (list 3)) }}",
            "[1 1 2 [3]]",
        ),
        (
            "{{ has 2 (list 1 2) }} {{ has \"2\" (list 1 2) }} {{ has 1 nil }}",
            "true false false",
        ),
        (
            "{{ without (list 1 2 3 2) 2 }} {{ compact (list 1 \"\" nil 0 \"a\") }}",
            "[1 3] [1 a]",
        ),
        (
            "{{ keys (dict \"b\" 1 \"a\" 2) }} {{ values (dict \"b\" 1 \"a\" 2) }}",
            "[a b] [2 1]",
        ),
        (
            "{{ pluck \"a\" (dict \"a\" 1) (dict \"b\" 2) (dict \"a\" 3) }}",
            "[1 3]",
        ),
        (
            "{{ hasKey (dict \"a\" 1) \"a\" }} {{ hasKey (dict \"a\" 1) \"b\" }}",
            "true false",
        ),
        (
            "{{ pick (dict \"a\" 1 \"b\" 2 \"c\" 3) \"a\" \"c\" }} {{ omit (dict \"a\" 1 \"b\" 2) \"a\" }}",
            "map[a:1 c:3] map[b:2]",
        ),
        (
            "{{ $d := dict \"a\" 1 }}{{ $_ := unset $d \"a\" }}{{ len $d }}",
            "0",
        ),
        (
            "{{ $d := dict }}{{ range $i, $v := list \"x\" \"y\" }}{{ $_ := set $d $v $i }}{{ end }}{{ $d }}",
            "map[x:0 y:1]",
        ),
        (
            "{{ deepEqual (list 1 (dict \"a\" 2)) (list 1 (dict \"a\" 2)) }} {{ deepEqual 1 \"1\" }}",
            "true false",
        ),
        (
            "{{ all 1 \"a\" (list 1) }} {{ all 1 \"\" }} {{ any 0 \"\" (list) }} {{ any 0 \"x\" }}",
            "true false false true",
        ),
        (
            "{{ empty (list) }} {{ empty (dict) }} {{ empty (float64 \"0\") }} {{ default \"d\" (list) }}",
            "true true true d",
        ),
        (
            "{{ coalesce (list) (dict) \"x\" }} {{ ternary (list 1) \"no\" true }}",
            "x [1]",
        ),
    ]);
    check_err(&[
        (
            "{{ first \"abc\" }}",
            "template: t:1:3: executing \"t\" at <first \"abc\">: error calling first: Cannot find first on type string",
        ),
        (
            "{{ first nil }}",
            "template: t:1:3: executing \"t\" at <first nil>: error calling first: runtime error: invalid memory address or nil pointer dereference",
        ),
        (
            "{{ keys . }}",
            "template: t:1:8: executing \"t\" at <.>: wrong type for value; expected map[string]interface {}; got map[string]string",
        ),
        (
            "{{ index (list 1) 5 }}",
            "template: t:1:3: executing \"t\" at <index (list 1) 5>: error calling index: index out of range",
        ),
        (
            "{{ eq (list) (list) }}",
            "template: t:1:3: executing \"t\" at <eq (list) (list)>: error calling eq: non-comparable type []interface {}",
        ),
        (
            "{{ $d := dict }}{{ set $d \"me\" $d }}",
            "template: t:1:19: executing \"t\" at <set $d \"me\" $d>: error calling set: a dict cannot contain itself",
        ),
    ]);
}

#[test]
fn regular_expressions() {
    check(&[
        (
            "{{ regexMatch \"^[a-z]+$\" \"abc\" }} {{ regexMatch \"(\" \"abc\" }} {{ regexMatch \"^\\\\d+$\" \"١٢\" }}",
            "true false false",
        ),
        (
            "{{ regexFind \"[0-9]+\" \"abc123def456\" }}|{{ regexFind \"x\" \"abc\" }}|",
            "123||",
        ),
        (
            "{{ regexFindAll \"[0-9]+\" \"a1b22c333\" -1 }} {{ regexFindAll \"[0-9]+\" \"a1b22c333\" 2 }} {{ regexFindAll \"a*\" \"baaac\" -1 }}",
            "[1 22 333] [1 22] [ aaa ]",
        ),
        (
            "{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"T\" }} {{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"$1\" }} {{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"$1W\" }} {{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }}",
            "-T-T- --xx- --- -W-xxW-",
        ),
        (
            "{{ regexReplaceAllLiteral \"a(x*)b\" \"-ab-axxb-\" \"${1}\" }}",
            "-${1}-${1}-",
        ),
        ("{{ regexReplaceAll \"a*\" \"baaac\" \"x\" }}", "xbxcx"),
        (
            "{{ regexSplit \"a*\" \"abaabaccadaaae\" 5 }}|{{ regexSplit \"z+\" \"pizza\" -1 }}|{{ regexSplit \"z+\" \"pizza\" 0 }}|{{ regexSplit \"\" \"abc\" -1 }}",
            "[ b b c cadaaae]|[pi a]|[]|[a b c]",
        ),
        ("{{ regexQuoteMeta \"1.5+[x]\" }}", "1\\.5\\+\\[x\\]"),
        ("{{ regexFind \"\\\\Qa.b\\\\E+\" \"xa.bbb\" }}", "a.bbb"),
        (
            "{{ regexMatch \"[[:alpha:]]+\" \"abc\" }} {{ regexMatch \"^[\\\\w.]+$\" \"a_b.c\" }}",
            "true true",
        ),
    ]);
    check_err(&[
        (
            "{{ regexFind \"(\" \"abc\" }}",
            "template: t:1:3: executing \"t\" at <regexFind \"(\" \"abc\">: error calling regexFind: regexp: Compile: error parsing regexp: invalid or unsupported syntax",
        ),
        (
            "{{ mustRegexMatch \"(\" \"abc\" }}",
            "template: t:1:3: executing \"t\" at <mustRegexMatch \"(\" \"abc\">: error calling mustRegexMatch: error parsing regexp: invalid or unsupported syntax",
        ),
    ]);
}

#[test]
fn to_yaml_matches_go_yaml_v2() {
    let words = ["aaaaaaaaa"; 10].join(" ");
    let folded = format!("k: {}\n  aaaaaaaaa aaaaaaaaa", ["aaaaaaaaa"; 8].join(" "));
    let long = format!("{{{{ toYaml (dict \"k\" \"{words}\") }}}}");
    check(&[
        (
            "{{ toYaml (dict \"b\" \"x\" \"a\" (list 1 2) \"c\" (dict \"d\" \"true\")) }}",
            "a:\n- 1\n- 2\nb: x\nc:\n  d: \"true\"",
        ),
        (
            "{{ toYaml (dict \"cert\" \"line1\\nline2\\n\") }}",
            "cert: |\n  line1\n  line2",
        ),
        (
            "{{ toYaml (dict \"cert\" \"line1\\nline2\") }}",
            "cert: |-\n  line1\n  line2",
        ),
        (
            "{{ toYaml (dict \"k\" \" lead\\nx\") }}",
            "k: |2-\n   lead\n  x",
        ),
        (
            "{{ toYaml (dict \"e\" \"\" \"c\" \"a: b\" \"n\" \"123\" \"d\" \"-x\" \"s\" \" x\" \"q\" \"it's\" \"y\" \"yes\" \"t\" \"a\\tb\" \"h\" \"#x\" \"u\" \"héllo\") }}",
            // go-yaml v2 quotes the keys `n` and `y` too: YAML 1.1 reads them as booleans.
            "c: 'a: b'\nd: -x\ne: \"\"\nh: '#x'\n\"n\": \"123\"\nq: it's\ns: ' x'\nt: \"a\\tb\"\nu: héllo\n\"y\": \"yes\"",
        ),
        (
            "{{ toYaml (dict \"l\" (list) \"m\" (dict) \"z\" nil \"b\" true) }}",
            "b: true\nl: []\nm: {}\nz: null",
        ),
        (
            "{{ toYaml (list (dict \"a\" 1 \"b\" 2) (list 1 2) \"x\") }}",
            "- a: 1\n  b: 2\n- - 1\n  - 2\n- x",
        ),
        (
            "{{ toYaml (dict \"a10\" 1 \"a2\" 2 \"b\" 3 \"B\" 4 \"_\" 5) }}",
            "_: 5\nB: 4\na2: 2\na10: 1\nb: 3",
        ),
        (
            "{{ toYaml (fromJson .json) }}",
            "big: 1e+21\nnested:\n  k: v\nnone: null\nok: true\nport: 8080\nratio: 1.5\ntags:\n- a\n- b\nuser: u1",
        ),
        (
            "{{ toYaml (dict \"outer\" (dict \"inner\" (list (dict \"k\" \"v\")))) }}",
            "outer:\n  inner:\n  - k: v",
        ),
        ("{{ toYaml . | sha256sum | len }}", "64"),
        ("{{ toYaml (list) }}|{{ toYaml (dict) }}", "[]|{}"),
        ("{{ toYaml \"plain\" }}", "plain\n..."),
        (long.as_str(), folded.as_str()),
    ]);
}

#[test]
fn filter_pem() {
    let bundle = "junk\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\
        -----BEGIN PRIVATE KEY-----\r\nAAAA\r\n-----END PRIVATE KEY-----\n\
        -----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n";
    let items = BTreeMap::from([("b".to_string(), bundle.to_string())]);
    let t = |source: &str| {
        Template::parse_with("t", source, &options())
            .and_then(|t| t.render(&items))
            .map(|out| String::from_utf8(out.to_vec()).unwrap())
    };
    assert_eq!(
        t("{{ .b | filterPEM \"CERTIFICATE\" }}").unwrap(),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\
         -----BEGIN CERTIFICATE-----\nQUJDREVG\n-----END CERTIFICATE-----\n"
    );
    assert_eq!(
        t("{{ .b | filterPEM \"private key\" }}").unwrap(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    );
    assert_eq!(t("{{ .b | filterPEM \"NONE\" }}").unwrap(), "");
    check(&[("{{ filterPEM \"X\" \"\" }}|", "|")]);
    check_err(&[(
        "{{ filterPEM \"CERTIFICATE\" \"not a pem\" }}",
        "template: t:1:3: executing \"t\" at <filterPEM \"CERTIFICATE\" \"not a pem\">: error calling filterPEM: error filtering pem: found junk",
    )]);
}

/// ESO's documentation: a `.dockerconfigjson` from a user and a password.
#[test]
fn docker_config_json() {
    check(&[
        (
            "{{ dict \"auths\" (dict \"registry.example.com\" (dict \"auth\" (printf \"%s:%s\" .user .password | b64enc))) | toJson }}",
            r#"{"auths":{"registry.example.com":{"auth":"YWRtaW46czNjcjxlPnQ="}}}"#,
        ),
        (
            r#"{"auths":{"r.io":{"username":"{{ .user }}","password":{{ .password | toJson }},"auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}"#,
            r#"{"auths":{"r.io":{"username":"admin","password":"s3cr\u003ce\u003et","auth":"YWRtaW46czNjcjxlPnQ="}}}"#,
        ),
        (
            "{{- $json := .json | fromJson }}{{ range $k, $v := $json.nested }}{{ $k }}={{ $v }}{{ end }} {{ get $json \"user\" }} {{ range $json.tags }}[{{ . }}]{{ end }}",
            "k=v u1 [a][b]",
        ),
    ]);
}

#[test]
fn growth_is_bounded_by_the_budget() {
    let t = |source: &str| Template::parse_with("t", source, &options()).unwrap();
    let small = |source: &str| {
        t(source)
            .render_with_budget(&data(), &mut Budget::with_limits(1 << 20, MAX_STEPS))
            .unwrap_err()
            .to_string()
    };
    // A repeat bomb is refused before anything is allocated.
    assert!(small("{{ repeat 1000000000 \"xxxxxxxx\" }}").contains("exceeds"));
    // A list doubling in a loop runs out of bytes.
    let bomb = "{{ $l := list 1 }}{{ range 40 }}{{ $l = concat $l $l }}{{ end }}";
    assert!(
        small(bomb).contains("budget of 1048576 bytes"),
        "{}",
        small(bomb)
    );
    // As does a dict filled in a loop.
    let bomb = "{{ $d := dict }}{{ range $i := 1000000 }}{{ $_ := set $d (print $i) $i }}{{ end }}";
    assert!(
        small(bomb).contains("exceed their budget"),
        "{}",
        small(bomb)
    );
    // And a nest of lists stops at the depth limit, without exhausting the stack.
    let deep = "{{ $l := list }}{{ range 1000 }}{{ $l = list $l }}{{ end }}";
    assert!(
        small(deep).contains("nest deeper than 100 levels"),
        "{}",
        small(deep)
    );
    // Sharing makes a value that weighs 2^60 elements in 60 steps: functions reading it
    // are charged for all of it, and stop at once.
    let dag = "{{ $x := list 1 }}{{ range 60 }}{{ $x = list $x $x }}{{ end }}{{ len $x }}";
    let err = t(dag).render(&data()).unwrap_err().to_string();
    assert!(err.contains("steps"), "{err}");
    let dag = "{{ $x := list 1 }}{{ range 60 }}{{ $x = list $x $x }}{{ end }}";
    let err = t(&format!("{dag}{{{{ $x }}}}"))
        .render(&data())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bytes") || err.contains("steps"), "{err}");
    // Comparisons cost steps.
    let slow = "{{ $d := dict }}{{ range $i := 3000 }}{{ $_ := set $d (print $i) $i }}{{ end }}\
        {{ $l := keys $d }}{{ range 100 }}{{ $_ := uniq $l }}{{ end }}";
    let err = t(slow)
        .render_with_budget(&data(), &mut Budget::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("steps"), "{err}");
}

#[test]
fn deep_structures_built_with_set_are_dropped_and_printed_safely() {
    // A chain of dicts made deep by `set`, one level at a time: it may be built (and is
    // dropped without recursion), but not printed.
    let source = "{{ $top := dict }}{{ $cur := $top }}\
        {{ range 30000 }}{{ $n := dict }}{{ $_ := set $cur \"x\" $n }}{{ $cur = $n }}{{ end }}{{ len $top }}";
    assert_eq!(render(source).unwrap(), "1");
    let source = source.replace("{{ len $top }}", "{{ $top }}");
    let err = render(&source).unwrap_err().to_string();
    assert!(err.contains("nest deeper than 100 levels"), "{err}");
    let source = "{{ $a := dict }}{{ $b := dict \"a\" (dict \"a\" $a) }}{{ $c := dict }}{{ range 98 }}{{ $c = dict \"c\" $c }}{{ end }}\
        {{ $_ := set $a \"c\" $c }}{{ toJson $b | len }}";
    let err = render(source).unwrap_err().to_string();
    assert!(err.contains("nest deeper than 100 levels"), "{err}");
}

#[test]
fn dialects_keep_their_own_functions() {
    let sealed = Options::new(Dialect::SealedSecrets);
    assert_eq!(
        Template::parse_with("t", "{{ list }}", &sealed)
            .unwrap_err()
            .to_string(),
        "template: t:1: function \"list\" not defined"
    );
    for refused in [
        "env",
        "expandenv",
        "getHostByName",
        "randAlphaNum",
        "now",
        "uuidv4",
    ] {
        let err = Template::parse_with("t", &format!("{{{{ {refused} }}}}"), &options());
        assert!(err.is_err(), "{refused}");
    }
    let names: Vec<_> = Dialect::ExternalSecrets.function_names().collect();
    for name in [
        "toYaml",
        "fromJson",
        "htpasswd",
        "filterPEM",
        "regexReplaceAll",
        "printf",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}

#[test]
fn custom_delimiters_and_missing_keys() {
    let options = options().delims("<<", ">>");
    let t = Template::parse_with("t", "<< .user | upper >>-{{ .user }}", &options).unwrap();
    assert_eq!(&t.render(&data()).unwrap()[..], b"ADMIN-{{ .user }}");
    let t = Template::parse_with("t", "<< .nope >>", &options).unwrap();
    assert_eq!(
        t.render(&data()).unwrap_err().to_string(),
        "template: t:1:3: executing \"t\" at <.nope>: map has no entry for key \"nope\""
    );
}

#[test]
fn from_yaml_goes_through_json_as_sigs_yaml() {
    check(&[
        // ESO's own test: a YAML document rendered as JSON.
        (
            "{{ \"a: 1\\nb:\\n  - p\\n  - q\\nc:\\n  d: true\\n\" | fromYaml | toJson }}",
            r#"{"a":1,"b":["p","q"],"c":{"d":true}}"#,
        ),
        ("{{ (fromYaml \"port: 8080\").port }}", "8080"),
        ("{{ (fromYaml \"k: v\").k }}", "v"),
        ("{{ fromYaml \"\" }}", "map[]"),
        (
            "{{ (fromYaml \"json\" | toJson) }}",
            r#"{"Error":"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go value of type map[string]interface {}"}"#,
        ),
    ]);
    // A syntax error: a map with only `Error`, which names the line, not the text.
    let out = render("{{ (fromYaml \"a: [s3cr3t\").Error }}").unwrap();
    assert!(
        out.starts_with("error converting YAML to JSON: yaml:"),
        "{out}"
    );
    assert!(!out.contains("s3cr3t"), "{out}");
}
