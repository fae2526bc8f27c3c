//! The test API server's request parsing. Byte 0 picks the parser:
//! 0: a `labelSelector`, 1: a `fieldSelector` (both matched against a few objects);
//! 2: a patch body (byte 1 picks merge, strategic merge or JSON patch), applied to the
//!    JSON object before the first `0xff` (a JSON merge patch applied twice must give
//!    what it gives once);
//! 3: a Kubernetes protobuf body (prefixed with `k8s\0` here); an object it decodes to,
//!    once encoded and decoded, must encode and decode back to itself.
#![no_main]

use gitseal_fuzz::split_once;
use gitseal_testkit::request;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const PATCH_TYPES: [&str; 3] = [
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
];

fn objects() -> [Value; 3] {
    [
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "db"}}}),
        json!({"metadata": {"name": "b"}, "type": "Opaque"}),
        json!({}),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 | 1 => {
            let selector = String::from_utf8_lossy(rest);
            for object in objects() {
                let _ = if which % 4 == 0 {
                    request::label_selector_matches(&selector, &object)
                } else {
                    request::field_selector_matches(&selector, &object)
                };
            }
        }
        2 => {
            let Some((&kind, rest)) = rest.split_first() else {
                return;
            };
            let content_type = PATCH_TYPES[usize::from(kind) % PATCH_TYPES.len()];
            let (target, body) = split_once(rest);
            let Ok(mut object) = serde_json::from_slice::<Value>(target) else {
                return;
            };
            if request::apply_patch(content_type, &mut object, body).is_ok()
                && content_type == PATCH_TYPES[0]
            {
                let once = object.clone();
                request::apply_patch(content_type, &mut object, body)
                    .expect("a merge patch applies again");
                assert_eq!(object, once, "a JSON merge patch is not idempotent");
            }
        }
        _ => {
            let mut body = b"k8s\0".to_vec();
            body.extend_from_slice(rest);
            let Ok(object) = request::decode_protobuf(&body) else {
                return;
            };
            // The first encoding normalises (an absent `metadata` becomes `{}`); from then
            // on, encoding and decoding must not change the object.
            let Some(encoded) = request::encode_protobuf(&object) else {
                return;
            };
            let once = request::decode_protobuf(&encoded).expect("own encoding decodes");
            let encoded = request::encode_protobuf(&once).expect("a decoded object encodes");
            let twice = request::decode_protobuf(&encoded).expect("own encoding decodes");
            assert_eq!(twice, once, "an object changes on a protobuf round trip");
        }
    }
});
