//! The SOPS YAML store, differentially: the fast line reader (tried first by
//! `yaml::parse`) must read any input exactly as the general event reader does, or give
//! way to it; and a file the store reads, written back, reads as the same tree, comments
//! aside (a comment on the line of a list item's first key is written on a line of its
//! own and reads back elsewhere: see fuzz/README.md).
#![no_main]

use gitseal_crypto::sops::store::{Format, yaml};
use gitseal_fuzz::{check_store_round_trip, same_documents};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match (yaml::parse(text), yaml::parse_general(text)) {
        (Ok(fast), Ok(general)) => assert!(
            same_documents(&fast, &general),
            "the fast reader's tree differs from the general reader's"
        ),
        (Err(_), Err(_)) => {}
        (Ok(_), Err(_)) => panic!("the fast reader accepts what the general reader refuses"),
        (Err(_), Ok(_)) => panic!("yaml::parse refuses what the general reader accepts"),
    }
    check_store_round_trip(Format::Yaml, data, false);
});
