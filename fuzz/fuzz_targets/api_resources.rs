//! The custom resources as the CLI and the controller decode them: a JSON or YAML stream
//! (read by the CLI's manifest reader, with the project's limits) whose documents are
//! decoded as a SealedSecret, SopsSecret, ExternalSecret (`external-secrets.io/v1` and
//! `v1beta1` share the type), ClusterExternalSecret, SecretStore and ClusterSecretStore.
//! A resource that decodes must encode to JSON that decodes to the same JSON.
#![no_main]

use gitseal_api::{
    ClusterExternalSecret, ClusterSecretStore, ExternalSecret, SealedSecret, SecretStore,
    SopsSecret,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn check<T: DeserializeOwned + Serialize>(document: &Value) {
    let Ok(resource) = serde_json::from_value::<T>(document.clone()) else {
        return;
    };
    let json = serde_json::to_value(&resource).expect("a resource encodes");
    let again: T = serde_json::from_value(json.clone()).expect("own encoding decodes");
    assert_eq!(
        serde_json::to_value(&again).expect("a resource encodes"),
        json,
        "a resource changes on a JSON round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(documents) = gitseal::manifest::parse_documents(data) else {
        return;
    };
    for document in &documents {
        check::<SealedSecret>(document);
        check::<SopsSecret>(document);
        check::<ExternalSecret>(document);
        check::<ClusterExternalSecret>(document);
        check::<SecretStore>(document);
        check::<ClusterSecretStore>(document);
    }
});
