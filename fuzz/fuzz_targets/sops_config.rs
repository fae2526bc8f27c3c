//! `.sops.yaml` as `gitseal sops` reads it: the text after the first `0xff` byte is the
//! configuration, the text before it the file name whose creation rule is looked up.
//! Any input gives a rule, no rule or an error, never a panic.
#![no_main]

use std::path::Path;

use gitseal_fuzz::split_once;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, config) = split_once(data);
    let file = String::from_utf8_lossy(file);
    let file = if file.is_empty() {
        "secrets.yaml"
    } else {
        &file
    };
    let _ = gitseal::sops::check_config(
        Path::new("/fuzz/.sops.yaml"),
        config,
        &Path::new("/fuzz").join(file),
    );
});
