//! Cross-check of age data-key wrapping with the reference `age` command-line tool:
//! what we wrap, `age -d` decrypts; what `age -e -a` encrypts, we unwrap.

use std::process::Command;

use gitseal_crypto::keys::age::{self, AgeIdentities};
use gitseal_tests::{run_with_stdin as run, tool};

#[test]
fn age_cli_and_gitseal_read_each_others_wrapped_keys() {
    let Some(age_bin) = tool("age", "GITSEAL_AGE") else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-age-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let identities = AgeIdentities::generate();
    let identity_file = dir.join("keys.txt");
    std::fs::write(&identity_file, identities.to_text().as_bytes()).unwrap();
    let recipient = identities.recipients().remove(0);

    for key in [[0u8; 32], [0xA5; 32], *b"0123456789abcdef0123456789abcdef"] {
        // Ours → age -d.
        let armored = age::wrap(&key, &recipient).unwrap();
        assert!(armored.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        let out = run(
            Command::new(&age_bin)
                .arg("-d")
                .arg("-i")
                .arg(&identity_file),
            armored.as_bytes(),
        );
        assert_eq!(out, key);

        // age -e -a → ours.
        let armored = run(
            Command::new(&age_bin).args(["-e", "-a", "-r", &recipient]),
            &key,
        );
        let unwrapped = age::unwrap(std::str::from_utf8(&armored).unwrap(), &identities).unwrap();
        assert_eq!(unwrapped.expose(), key);
    }
}
