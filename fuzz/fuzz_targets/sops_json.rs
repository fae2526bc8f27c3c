//! The SOPS json store: any input reads without panic; a file it reads, written back,
//! reads as the same tree.
#![no_main]

use gitseal_crypto::sops::store::Format;
use gitseal_fuzz::check_store_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_store_round_trip(Format::Json, data, true);
});
