//! From fetched values to the keys of the target Secret, as ESO does it (spec §1.5–§1.6):
//! decoding, key conversion, `rewrite`, and the final key check. Values are wiped when
//! dropped; errors name keys and positions, never values.

use std::collections::BTreeMap;

use gitseal_api::{ConversionStrategy, DecodingStrategy, ExternalSecretRewrite};
use gitseal_template::{Dialect, MissingKey, Options, Template};
use zeroize::Zeroizing;

use base64::Engine as _;

/// Secret keys and their values, wiped on drop.
pub type DataMap = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// Decodes `value` by `strategy` (ESO's `runtime/decoding`): `Auto` tries standard
/// base64, then URL-safe base64, and keeps the bytes as they are if neither fits.
pub fn decode(strategy: DecodingStrategy, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let decoded = match strategy {
        DecodingStrategy::None => Ok(value.to_vec()),
        DecodingStrategy::Base64 => STANDARD.decode(value),
        DecodingStrategy::Base64URL => URL_SAFE.decode(value),
        DecodingStrategy::Auto => STANDARD
            .decode(value)
            .or_else(|_| URL_SAFE.decode(value))
            .or_else(|_| Ok(value.to_vec())),
    };
    decoded
        .map(Zeroizing::new)
        .map_err(|e| format!("illegal base64 data: {}", base64_error(&e)))
}

fn base64_error(error: &base64::DecodeError) -> String {
    match error {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("at input byte {at}")
        }
        base64::DecodeError::InvalidLength(_) => "invalid length".into(),
        base64::DecodeError::InvalidPadding => "invalid padding".into(),
    }
}

/// Decodes every value of `map`.
pub fn decode_map(strategy: DecodingStrategy, map: DataMap) -> Result<DataMap, String> {
    map.into_iter()
        .map(|(key, value)| {
            decode(strategy, &value)
                .map(|v| (key.clone(), v))
                .map_err(|e| format!("failure decoding key {key}: {e}"))
        })
        .collect()
}

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// ESO's key conversion: characters other than letters, digits, `-`, `.` and `_` become
/// `_` (`Default`) or `_UXXXX_` (`Unicode`).
pub fn convert_key(strategy: ConversionStrategy, key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if allowed(c) {
            out.push(c);
        } else if strategy == ConversionStrategy::Unicode {
            out.push_str(&format!("_U{:04x}_", c as u32));
        } else {
            out.push('_');
        }
    }
    out
}

/// Converts every key of `map` (a later key that converts to the same name wins, in
/// key order, as in ESO's map iteration — which is random there).
pub fn convert_keys(strategy: ConversionStrategy, map: DataMap) -> DataMap {
    map.into_iter()
        .map(|(key, value)| (convert_key(strategy, &key), value))
        .collect()
}

/// Applies `rewrite` items in order to the keys of `map` (`regexp`: replace all matches,
/// with `$1` groups; `transform`: a template with `.value` = the key).
pub fn rewrite(
    items: &[ExternalSecretRewrite],
    mut map: DataMap,
    options: &Options,
) -> Result<DataMap, String> {
    for (i, item) in items.iter().enumerate() {
        if let Some(regexp) = &item.regexp {
            let re = regex::Regex::new(&regexp.source)
                .map_err(|e| format!("rewrite[{i}]: regexp failed with failed to compile: {e}"))?;
            // `$1`, `${name}`, `$$` and "the longest name wins" (`$1a` is group `1a`)
            // read the same in Go's and in this crate's replacement syntax.
            let target = regexp.target.as_str();
            map = map
                .into_iter()
                .map(|(key, value)| (re.replace_all(&key, target).into_owned(), value))
                .collect();
        } else if let Some(transform) = &item.transform {
            let template = Template::parse_with("transform", &transform.template, options)
                .map_err(|e| {
                    format!("rewrite[{i}]: transform failed with failed to parse template: {e}")
                })?;
            let mut out = DataMap::new();
            for (key, value) in map {
                let context = BTreeMap::from([("value".to_owned(), key.clone())]);
                let rendered = template.render(&context).map_err(|e| {
                    format!("rewrite[{i}]: transform failed with failed to execute template for key {key:?}: {e}")
                })?;
                let name = String::from_utf8(rendered.as_bytes().to_vec())
                    .map_err(|_| format!("rewrite[{i}]: the new name of {key:?} is not UTF-8"))?;
                out.insert(name, value);
            }
            map = out;
        } else if item.merge.is_some() {
            return Err(format!("rewrite[{i}]: merge is not supported"));
        }
    }
    Ok(map)
}

/// The template options of ESO's engine v2: its functions and `missingkey=error`.
pub fn template_options(left: &str, right: &str) -> Options {
    Options::new(Dialect::ExternalSecrets)
        .delims(left, right)
        .missing_key(MissingKey::Error)
}

/// ESO's final key check: empty keys are dropped; longer than 253 characters or other
/// characters than letters, digits, `-`, `.` and `_` fail the sync.
pub fn validate_keys(map: &mut DataMap) -> Result<(), String> {
    map.retain(|key, _| !key.is_empty());
    for key in map.keys() {
        if key.len() > 253 {
            return Err(format!(
                "invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): key has length {} but max is 253",
                key.len()
            ));
        }
        if let Some(c) = key.chars().find(|c| !allowed(*c)) {
            return Err(format!(
                "invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): key has invalid character {c:?}, only alphanumeric, '-', '.' and '_' are allowed: {key}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_api::{RewriteRegexp, RewriteTransform};

    fn map(items: &[(&str, &str)]) -> DataMap {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn decoding_strategies() {
        let d = |s, v: &str| decode(s, v.as_bytes()).map(|v| v.to_vec());
        assert_eq!(d(DecodingStrategy::Base64, "aGk=").unwrap(), b"hi");
        assert!(d(DecodingStrategy::Base64, "aGk").is_err());
        assert_eq!(
            d(DecodingStrategy::Base64URL, "-_8=").unwrap(),
            [0xfb, 0xff]
        );
        assert_eq!(d(DecodingStrategy::Auto, "-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(
            d(DecodingStrategy::Auto, "not base64!").unwrap(),
            b"not base64!"
        );
        assert_eq!(d(DecodingStrategy::None, "aGk=").unwrap(), b"aGk=");
        let err = decode_map(DecodingStrategy::Base64, map(&[("k", "secret!")])).unwrap_err();
        assert!(err.starts_with("failure decoding key k:") && !err.contains("secret!"));
    }

    #[test]
    fn keys_convert_as_eso() {
        assert_eq!(convert_key(ConversionStrategy::Default, "a/b c"), "a_b_c");
        assert_eq!(
            convert_key(ConversionStrategy::Default, "héllo.1-_"),
            "héllo.1-_"
        );
        assert_eq!(convert_key(ConversionStrategy::Unicode, "a/b"), "a_U002f_b");
    }

    #[test]
    fn rewrites_apply_in_order() {
        let items = vec![
            ExternalSecretRewrite {
                regexp: Some(RewriteRegexp {
                    source: "^db/(.*)$".into(),
                    target: "DB_$1".into(),
                }),
                ..ExternalSecretRewrite::default()
            },
            ExternalSecretRewrite {
                transform: Some(RewriteTransform {
                    template: "{{ .value | upper }}".into(),
                }),
                ..ExternalSecretRewrite::default()
            },
        ];
        let out = rewrite(
            &items,
            map(&[("db/user", "u"), ("x", "y")]),
            &template_options("", ""),
        )
        .unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["DB_USER", "X"]);
        assert_eq!(out["DB_USER"].as_slice(), b"u");
    }

    #[test]
    fn keys_are_checked() {
        let mut m = map(&[("", "x"), ("ok.key-1_", "v")]);
        validate_keys(&mut m).unwrap();
        assert_eq!(m.len(), 1);
        let mut bad = map(&[("a/b", "v4lue-9f1c")]);
        let err = validate_keys(&mut bad).unwrap_err();
        assert!(err.contains("invalid character '/'") && !err.contains("v4lue-9f1c"));
    }
}
