//! Unit tests of the YAML store.

use super::*;
use crate::limits::MAX_DEPTH;
use crate::sops::store::fastyaml;
use crate::sops::tree::{MapItem, Node, Scalar};

#[test]
fn floats_as_go_formats_them() {
    assert_eq!(format_yaml_float(1.0), "1");
    assert_eq!(format_yaml_float(6.02e23), "6.02e+23");
    assert_eq!(format_yaml_float(1e6), "1e+06");
    assert_eq!(format_yaml_float(123456.0), "123456");
    assert_eq!(format_yaml_float(0.0001), "0.0001");
    assert_eq!(format_yaml_float(0.00001), "1e-05");
    assert_eq!(format_yaml_float(2.71), "2.71");
    assert_eq!(format_yaml_float(f64::NEG_INFINITY), "-.inf");
}

#[test]
fn scalars_resolve_as_go_yaml_does() {
    assert!(matches!(resolve_plain("0755"), Ok(Scalar::Int(493))));
    assert!(matches!(resolve_plain("0x1F"), Ok(Scalar::Int(31))));
    assert!(matches!(resolve_plain("1_000"), Ok(Scalar::Int(1000))));
    assert!(matches!(resolve_plain("+12"), Ok(Scalar::Int(12))));
    assert!(matches!(resolve_plain("1e3"), Ok(Scalar::Float(f)) if f == 1000.0));
    assert!(matches!(resolve_plain("yes"), Ok(Scalar::Str(_))));
    assert!(matches!(resolve_plain("~"), Ok(Scalar::Null)));
    assert!(
        matches!(resolve_plain("2024-01-15"), Ok(Scalar::Time(t)) if t == "2024-01-15T00:00:00Z")
    );
    assert!(matches!(
        resolve_plain("18446744073709551615"),
        Err(SopsError::Unsupported(_))
    ));
}

#[test]
fn strings_are_quoted_like_go_yaml() {
    for (text, expected) in [
        ("plain", "plain"),
        ("123", "\"123\""),
        ("true", "\"true\""),
        ("y", "\"y\""),
        ("null", "\"null\""),
        ("a: b", "'a: b'"),
        (" lead", "' lead'"),
        ("#hash", "'#hash'"),
        ("it's", "it's"),
        ("Grüße 🔐", "\"Grüße \\U0001F510\""),
        ("", "\"\""),
        ("1:20", "\"1:20\""),
    ] {
        assert_eq!(string_repr(text), expected, "{text}");
    }
}

#[test]
fn comments_keep_their_places() {
    let text = "# top\na: 1 # inline\nb:\n    # inside b\n    c: \"x # not\"\n    d: |\n        # not a comment\n    # foot of b\n# before e\ne:\n    - x\n    # between\n    - z\n";
    let docs = parse(text).unwrap();
    let out = emit(&docs, 4);
    assert_eq!(
        out,
        "# top\n# inline\na: 1\nb:\n    # inside b\n    c: 'x # not'\n    d: |\n        # not a comment\n    # foot of b\n# before e\ne:\n    - x\n    # between\n    - z\n"
    );
}

/// `n` levels of block mappings (the document's root being the first).
fn block_maps(n: usize, indent: usize) -> String {
    let mut text = String::new();
    for i in 0..n - 1 {
        text.push_str(&" ".repeat(i * indent));
        text.push_str("k:\n");
    }
    text.push_str(&" ".repeat((n - 1) * indent));
    text.push_str("k: x\n");
    text
}

fn too_deep(result: Result<Vec<Map>, SopsError>) -> String {
    match result {
        Err(error @ SopsError::Syntax { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("nesting deeper than 128 levels at line "),
                "{message}"
            );
            message
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a document deeper than the limit was read"),
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_by_both_readers() {
    // Block mappings (the fast reader's subset), block sequences (the general
    // reader's), flow collections: MAX_DEPTH levels are read, one more is refused.
    let sequences = |n: usize| format!("a:\n{}x\n", "- ".repeat(n - 1));
    let flow = |n: usize| format!("a: {}x{}\n", "[".repeat(n - 1), "]".repeat(n - 1));
    for make in [
        &(|n| block_maps(n, 2)) as &dyn Fn(usize) -> String,
        &(|n| block_maps(n, 1)),
        &sequences,
        &flow,
    ] {
        let fits = make(MAX_DEPTH);
        let docs = parse(&fits).unwrap();
        assert!(docs == parse_events(&fits).unwrap());
        assert!(crate::sops::tree::check_depth(&docs).is_ok());
        let written = emit(&docs, 2);
        assert!(parse(&written).unwrap() == docs);
        too_deep(parse(&make(MAX_DEPTH + 1)));
        too_deep(parse_events(&make(MAX_DEPTH + 1)));
    }
    assert!(fastyaml::parse(&block_maps(MAX_DEPTH - 1, 2)).is_some());
    assert!(fastyaml::parse(&block_maps(MAX_DEPTH + 1, 2)).is_none());
    // The line of the first level too many, never the text.
    assert_eq!(
        too_deep(parse(&block_maps(200, 2))),
        "yaml: nesting deeper than 128 levels at line 129"
    );
    // Far deeper inputs stop there too, without exhausting the stack.
    too_deep(parse(&sequences(50_000)));
    too_deep(parse(&block_maps(5_000, 1)));
    too_deep(parse(&format!("a: {}\n", "[".repeat(250))));
}

#[test]
fn aliases_count_against_depth_and_copy_limits() {
    let flow = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
    // An anchored list 100 levels deep, aliased 28 levels down: 1 + 28 + 100 > 128.
    let deep = format!("a: &x {}\nb: {}\n", flow(100, "v"), flow(28, "*x"));
    too_deep(parse(&deep));
    let fits = format!("a: &x {}\nb: {}\n", flow(100, "v"), flow(27, "*x"));
    assert_eq!(parse(&fits).unwrap().len(), 1);
    // A small alias bomb (ten copies per level): refused once anchors and aliases
    // copied a million nodes, long before the ten million of its full expansion.
    let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..7 {
        let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
        bomb.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
    }
    let error = parse(&bomb).err().expect("the alias bomb was expanded");
    assert_eq!(
        error.to_string(),
        "yaml: YAML anchors and aliases copy more than 1000000 nodes at line 6"
    );
    // Big scalars copied by aliases count by their size.
    let big = "x".repeat(1 << 20);
    let mut text = format!("a: &a \"{big}\"\nb: [");
    text.push_str(&vec!["*a"; 300].join(", "));
    text.push_str("]\n");
    let error = parse(&text).err().expect("aliases copied 300 MiB");
    assert!(
        error
            .to_string()
            .contains("make the document larger than 256 MiB, the maximum for a SOPS file"),
        "{error}"
    );
    // A handful of aliases, as real files have them, is fine.
    let docs = parse("base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\n").unwrap();
    assert_eq!(docs[0].len(), 3);
}

#[test]
fn errors_show_positions_never_text() {
    for (text, expected) in [
        (
            "secret-key: 1\nsecret-key: 2\n",
            "line 2: mapping key already defined at line 1",
        ),
        ("a: \"hunter2\n", "line"),
        ("a: [hunter2\n", "line"),
    ] {
        let message = parse(text).err().expect(text).to_string();
        assert!(message.contains(expected), "{message}");
        assert!(
            !message.contains("secret-key") && !message.contains("hunter2"),
            "{message}"
        );
    }
    let message = parse("? [a]\n: b\n").err().unwrap().to_string();
    assert!(!message.contains("[a]"), "{message}");
    let message = parse("1: hunter2\n").err().unwrap().to_string();
    assert!(
        !message.contains("hunter2") && message.contains("line 1"),
        "{message}"
    );
}

#[test]
fn indents_are_chosen_as_sops_and_go_yaml_choose_them() {
    let docs = parse("a:\n  b: 1\n").unwrap();
    for (indent, expected) in [(0, 4), (1, 2), (2, 2), (3, 3), (9, 9), (10, 2), (16, 2)] {
        let pad = " ".repeat(expected);
        assert_eq!(emit(&docs, indent), format!("a:\n{pad}b: 1\n"), "{indent}");
    }
}

#[test]
fn anchors_expand_and_bad_documents_fail() {
    let docs = parse("base: &b {x: 1}\ncopy: *b\n").unwrap();
    assert_eq!(emit(&docs, 2), "base:\n  x: 1\ncopy:\n  x: 1\n");
    assert!(parse("- a\n").is_err());
    assert!(parse("a: 1\na: 2\n").is_err());
    assert!(matches!(parse("1: a\n"), Err(SopsError::Unsupported(_))));
    assert!(parse("").unwrap().is_empty());
    assert_eq!(parse("---\n---\na: 1\n").unwrap().len(), 2);
}

#[test]
fn multi_line_strings_written_double_quoted_end_their_line() {
    // Found by the sops_yaml fuzz target: a multi-line value that cannot be a literal
    // block (an unprintable character, a line ending in a space) was written
    // double-quoted without its newline, so the next key joined its line.
    for text in ["\u{12}>- a\nb", "a \nb", " a\nb", "a\nb "] {
        let doc = vec![
            MapItem::Entry("text".into(), Node::Scalar(Scalar::Str(text.into()))),
            MapItem::Entry("next".into(), Node::Scalar(Scalar::Str("v".into()))),
        ];
        let written = emit(std::slice::from_ref(&doc), 4);
        assert!(written.ends_with("\"\nnext: v\n"), "{written:?}");
        assert!(parse(&written).unwrap() == vec![doc], "{written:?}");
    }
}

#[test]
fn a_lone_cr_ends_a_comment() {
    // Found by the sops_yaml fuzz target: a comment ran on past a lone CR (a line break in
    // YAML) over the next line, so the written file held that line twice.
    let text = "---\n# c a on a\rb: 2";
    let docs = parse(text).unwrap();
    assert!(matches!(&docs[0][0], MapItem::Comment(c) if c == " c a on a"));
    let written = emit(&docs, 4);
    assert!(!written.contains('\r'), "{written:?}");
    assert!(parse(&written).unwrap() == docs, "{written:?}");
    let crlf = parse("a: 1 # one\r\n# two\r\nb: 2\r\n").unwrap();
    assert!(parse(&emit(&crlf, 4)).unwrap() == crlf);
}

#[test]
fn block_scalars_starting_with_a_bracket_or_a_quote_hold_their_hashes() {
    // Found by the sops_yaml fuzz target: the general reader ended a block scalar whose
    // text starts with `}` (or a quote) where a flow collection (or quoted scalar) starting
    // there would end, and read the rest of its line as a comment.
    for (text, value) in [
        ("e: |\n } #\n", "} #\n"),
        ("e: |-\n ] # x\nf: 1\n", "] # x"),
        ("e: >\n \"a\" #x\n", "\"a\" #x\n"),
        ("e: |\n 'a' # x\n", "'a' # x\n"),
    ] {
        let docs = parse_events(text).unwrap();
        assert!(
            matches!(&docs[0][0], MapItem::Entry(k, v) if k == "e" && v.as_str() == Some(value)),
            "{text:?}: {:?}",
            emit(&docs, 4)
        );
        assert!(
            docs[0]
                .iter()
                .all(|item| matches!(item, MapItem::Entry(..))),
            "{text:?}"
        );
    }
}

#[test]
fn keys_longer_than_128_bytes_are_written_as_explicit_keys() {
    // Found by the sops_yaml fuzz target: a key of more than 1,024 characters was written
    // as a simple key, which no YAML reader takes. go-yaml (and so sops 3.11.0, whose
    // output this is) writes any key of more than 128 bytes as `? key` / `: value`.
    let long = "k".repeat(130);
    let edge = "k".repeat(128);
    let text = format!(
        "{long}: v\n{edge}: w\n{long}x:\n    n: 1\n    {long}: [1, 2]\nlst:\n    - {long}: 3\n    - {long}:\n        - a\n    - {long}:\n        b: 1\n        c: 2\n    - x:\n        {long}:\n            - z\n"
    );
    let expected = format!(
        "? {long}\n: v\n{edge}: w\n? {long}x\n:   \"n\": 1\n    ? {long}\n    :   - 1\n        - 2\nlst:\n    - ? {long}\n      : 3\n    - ? {long}\n      : - a\n    - ? {long}\n      : b: 1\n        c: 2\n    - x:\n        ? {long}\n        :   - z\n"
    );
    let docs = parse(&text).unwrap();
    let written = emit(&docs, 4);
    assert_eq!(written, expected);
    assert!(parse(&written).unwrap() == docs);
    let huge = format!("\"{}\": 1\n", "x\\f".repeat(600));
    let docs = parse(&huge).unwrap();
    assert!(parse(&emit(&docs, 4)).unwrap() == docs);
}
