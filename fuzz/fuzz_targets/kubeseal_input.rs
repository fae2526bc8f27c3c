//! What `kubeseal` (and `gitseal seal`) read on standard input or from a file: a JSON or
//! YAML stream of Secret manifests. Documents that read must render (JSON and YAML, as
//! kubeseal writes them) to text that reads as the same documents; sealing the stream to
//! the process's key gives SealedSecrets or an error, never a panic.
#![no_main]

use gitseal::kubeseal::seal_documents;
use gitseal::manifest::{Format, parse_documents, render};
use gitseal::sealing::SealOptions;
use gitseal_crypto::sealed::Scope;
use gitseal_fuzz::rsa_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(documents) = parse_documents(data) else {
        return;
    };
    // A JSON stream may hold `null` documents, which YAML output drops: skip them.
    for document in documents.iter().filter(|d| !d.is_null()) {
        for format in [Format::Json, Format::Yaml] {
            let text = render(document, format).expect("a document renders");
            let again = parse_documents(text.as_bytes()).expect("rendered text reads");
            assert_eq!(again.len(), 1, "one document renders as one");
            assert!(
                again[0] == *document,
                "a document changes on a {format:?} round trip"
            );
        }
    }
    let key = rsa_key().public_key();
    for scope in [Scope::Strict, Scope::ClusterWide] {
        let options = SealOptions {
            key: &key,
            scope,
            name: None,
            namespace: None,
            default_namespace: "default".into(),
            allow_empty_data: false,
            gitops_annotations: true,
        };
        let _ = seal_documents(data, &options, Format::Yaml);
    }
});
