//! The template engine: parse any text (byte 0 picks the dialect, `missingkey=error` and
//! `[[ ]]` delimiters), then render what parses against a few items, within one Secret's
//! budget. Rendering must stay bounded: no hang (libFuzzer's `-timeout`), no unbounded
//! memory (`-rss_limit_mb`), no output beyond `MAX_TOTAL_LEN`, no budget overdrawn.
#![no_main]

use std::collections::BTreeMap;

use gitseal_template::{Budget, Dialect, MAX_STEPS, MAX_TOTAL_LEN, MissingKey, Options, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, source)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let dialect = if flags & 1 == 0 {
        Dialect::SealedSecrets
    } else {
        Dialect::ExternalSecrets
    };
    let mut options = Options::new(dialect);
    if flags & 2 != 0 {
        options = options.missing_key(MissingKey::Error);
    }
    if flags & 4 != 0 {
        options = options.delims("[[", "]]");
    }
    let Ok(template) = Template::parse_with("fuzz", source, &options) else {
        return;
    };
    let items = BTreeMap::from([
        ("user".to_string(), b"admin".to_vec()),
        ("password".to_string(), b"s3cr3t\n".to_vec()),
        (
            "json".to_string(),
            br#"{"a":[1,2,{"b":"c"}],"n":null}"#.to_vec(),
        ),
        ("binary".to_string(), vec![0, 0xff, 0xfe, b'\n']),
        ("number".to_string(), b"42".to_vec()),
    ]);
    let mut budget = Budget::new();
    if let Ok(output) = template.render_with_budget(&items, &mut budget) {
        assert!(output.len() <= MAX_TOTAL_LEN);
    }
    assert!(budget.bytes_left() <= MAX_TOTAL_LEN);
    assert!(budget.steps_left() <= MAX_STEPS);
});
