//! `gitseal sops` as a process on its own: sops' exit codes for bad input, atomic output,
//! the legacy flag forms, the binary invoked as `sops`, edit through $EDITOR, exec-env,
//! exec-file, the age key sources and `gitseal keygen`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    recipient: String,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("gitseal-sops-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let keygen = Command::new(env!("CARGO_BIN_EXE_gitseal"))
            .args(["keygen", "-o"])
            .arg(dir.join("keys.txt"))
            .output()
            .unwrap();
        assert!(keygen.status.success());
        let text = std::fs::read_to_string(dir.join("keys.txt")).unwrap();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_owned();
        Self { dir, recipient }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
        command
            .arg("sops")
            .args(args)
            .current_dir(&self.dir)
            .env("SOPS_AGE_KEY_FILE", self.dir.join("keys.txt"))
            .env("XDG_CONFIG_HOME", self.dir.join("none"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_CONFIG");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn code(&self, args: &[&str]) -> (i32, String) {
        let output = self.run(args);
        assert!(
            output.stdout.is_empty(),
            "{args:?} printed {:?}",
            String::from_utf8_lossy(&output.stdout)
        );
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn write(&self, name: &str, text: &[u8]) -> String {
        std::fs::write(self.dir.join(name), text).unwrap();
        name.to_owned()
    }

    fn encrypted(&self, name: &str, plain: &str) -> String {
        let source = self.write(&format!("plain-{name}"), plain.as_bytes());
        let out = self.ok(&[
            "encrypt",
            "--age",
            &self.recipient,
            "--filename-override",
            name,
            &source,
        ]);
        self.write(name, &out)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn bad_input_gets_sops_exit_codes() {
    let env = Env::new("codes");
    let file = env.encrypted(
        "app.yaml",
        "user: admin\npassword: hunter2\nport_unencrypted: 5432\n",
    );
    assert_eq!(env.code(&["decrypt", "missing.yaml"]).0, 100);
    let plain = env.write("plain.yaml", b"a: 1\n");
    let (code, message) = env.code(&["decrypt", &plain]);
    assert_eq!(
        (code, message.contains("sops metadata not found")),
        (1, true),
        "{message}"
    );
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &file]).0,
        203
    );
    let empty = env.write("empty.yaml", b"");
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &empty]).0,
        92
    );
    let list = env.write("list.yaml", b"- a\n- b\n");
    assert_eq!(env.code(&["encrypt", "--age", &env.recipient, &list]).0, 2);
    let json_list = env.write("list.json", b"[1, 2]");
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &json_list])
            .0,
        2
    );
    let dup = env.write("dup.yaml", b"a: 1\na: 2\n");
    assert_eq!(env.code(&["encrypt", "--age", &env.recipient, &dup]).0, 2);
    let int_key = env.write("intkey.yaml", b"1: a\n");
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &int_key]).0,
        23
    );
    let huge_int = env.write("huge.yaml", b"n: 18446744073709551615\n");
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &huge_int]).0,
        23
    );
    let bad_env = env.write("bad.env", b"GOOD=1\nno equals sign\n");
    assert_eq!(
        env.code(&["encrypt", "--age", &env.recipient, &bad_env]).0,
        2
    );
    let no_keys = env.write("nokeys.yaml", b"a: 1\n");
    let (code, message) = env.code(&["encrypt", &no_keys]);
    assert_eq!(
        (code, message.contains("no keys provided")),
        (1, true),
        "{message}"
    );
    assert_eq!(
        env.code(&[
            "encrypt",
            "--age",
            &env.recipient,
            "--encrypted-regex",
            "a",
            "--unencrypted-suffix",
            "b",
            &no_keys
        ])
        .0,
        8
    );

    let text = std::fs::read_to_string(env.dir.join(&file)).unwrap();
    // A value changed in the clear: MAC mismatch (51), unless --ignore-mac.
    let clear_changed = env.write(
        "clear.yaml",
        text.replace("port_unencrypted: 5432", "port_unencrypted: 5433")
            .as_bytes(),
    );
    let (code, message) = env.code(&["decrypt", &clear_changed]);
    assert_eq!(code, 51, "{message}");
    assert!(!message.contains("ENC["), "{message}");
    env.ok(&["decrypt", "--ignore-mac", &clear_changed]);
    // An encrypted value moved to another key: it does not decrypt (25).
    let moved = env.write("moved.yaml", text.replacen("user:", "login:", 1).as_bytes());
    assert_eq!(env.code(&["decrypt", &moved]).0, 25);
    // No version: refused as sops refuses it.
    let versionless: String = text
        .lines()
        .filter(|l| !l.contains("version:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let versionless = env.write("noversion.yaml", versionless.as_bytes());
    let (code, message) = env.code(&["decrypt", &versionless]);
    assert_eq!(
        (code, message.contains("Version string empty")),
        (1, true),
        "{message}"
    );
    // Another identity: no key can decrypt the data key (128), and the hint says where keys go.
    let other = env.write(
        "other.txt",
        gitseal_crypto::keys::age::AgeIdentities::generate()
            .to_text()
            .as_bytes(),
    );
    let output = env
        .command(&["decrypt", &file])
        .env("SOPS_AGE_KEY_FILE", env.dir.join(other))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "{stderr}");
    assert!(
        stderr.contains(&env.recipient) && stderr.contains("SOPS_AGE_KEY_FILE"),
        "{stderr}"
    );
    // Bad --extract paths: 91.
    assert_eq!(
        env.code(&["decrypt", "--extract", "[\"nope\"]", &file]).0,
        91
    );
    assert_eq!(env.code(&["decrypt", "--extract", "nope", &file]).0, 91);
    // --output with --in-place conflicts (8); a failed run writes no output file.
    assert_eq!(
        env.code(&["decrypt", "-i", "--output", "x.yaml", &file]).0,
        8
    );
    assert_eq!(
        env.code(&["decrypt", "--output", "never.yaml", &moved]).0,
        25
    );
    assert!(!env.dir.join("never.yaml").exists());
}

#[test]
fn legacy_forms_multi_call_keygen_and_key_sources() {
    let env = Env::new("legacy");
    let plain = env.write("s.json", b"{\"token\": \"t0k3n\", \"count\": 1}");
    let encrypted = env.ok(&["-e", "--age", &env.recipient, &plain]);
    let file = env.write("s.enc.json", &encrypted);
    assert_eq!(env.ok(&["-d", "--extract", "[\"token\"]", &file]), b"t0k3n");
    env.ok(&["--set", "[\"count\"] 2", &file]);
    assert_eq!(
        env.ok(&["decrypt", "--extract", "[\"count\"]", &file]),
        b"2"
    );
    // The binary invoked as `sops`.
    let link = env.dir.join("sops");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitseal"), &link).unwrap();
    let output = Command::new(&link)
        .args(["decrypt", "--output-type", "yaml", &file])
        .current_dir(&env.dir)
        .env("SOPS_AGE_KEY_FILE", env.dir.join("keys.txt"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "token: t0k3n\ncount: 2\n"
    );
    // SOPS_AGE_KEY and SOPS_AGE_KEY_CMD work as key sources too.
    let key = std::fs::read_to_string(env.dir.join("keys.txt")).unwrap();
    let by_env = env
        .command(&["decrypt", &file])
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("SOPS_AGE_KEY", &key)
        .output()
        .unwrap();
    assert!(
        by_env.status.success(),
        "{}",
        String::from_utf8_lossy(&by_env.stderr)
    );
    let by_cmd = env
        .command(&["decrypt", &file])
        .env_remove("SOPS_AGE_KEY_FILE")
        .env(
            "SOPS_AGE_KEY_CMD",
            format!("cat {}", env.dir.join("keys.txt").display()),
        )
        .output()
        .unwrap();
    assert!(
        by_cmd.status.success(),
        "{}",
        String::from_utf8_lossy(&by_cmd.stderr)
    );
    // The default key file under XDG_CONFIG_HOME.
    std::fs::create_dir_all(env.dir.join("cfg/sops/age")).unwrap();
    std::fs::copy(
        env.dir.join("keys.txt"),
        env.dir.join("cfg/sops/age/keys.txt"),
    )
    .unwrap();
    let by_default = env
        .command(&["decrypt", &file])
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("XDG_CONFIG_HOME", env.dir.join("cfg"))
        .output()
        .unwrap();
    assert!(
        by_default.status.success(),
        "{}",
        String::from_utf8_lossy(&by_default.stderr)
    );
    // keygen refuses to overwrite a key file.
    let again = Command::new(env!("CARGO_BIN_EXE_gitseal"))
        .args(["keygen", "-o"])
        .arg(env.dir.join("keys.txt"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(env.dir.join("keys.txt")).unwrap(),
        key
    );
    let help = env.ok(&["--help"]);
    let help = String::from_utf8_lossy(&help);
    for sub in [
        "encrypt",
        "decrypt",
        "edit",
        "rotate",
        "updatekeys",
        "set",
        "unset",
        "exec-env",
        "exec-file",
        "filestatus",
    ] {
        assert!(help.contains(sub), "--help lacks {sub}");
    }
}

#[test]
fn edit_exec_env_exec_file_and_updatekeys() {
    let env = Env::new("edit");
    let file = env.encrypted("app.env", "DB_PASSWORD=hunter2\nMODE=prod\n");
    let before = std::fs::read_to_string(env.dir.join(&file)).unwrap();
    // An editor that changes one value; the other ciphertext stays byte-identical.
    let editor = env.write(
        "editor.sh",
        b"#!/bin/sh\nsed -i 's/MODE=prod/MODE=staging/' \"$1\"\n",
    );
    let output = env
        .command(&["edit", &file])
        .env("EDITOR", format!("sh {}", env.dir.join(editor).display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = std::fs::read_to_string(env.dir.join(&file)).unwrap();
    let line = |t: &str, k: &str| t.lines().find(|l| l.starts_with(k)).unwrap().to_owned();
    assert_eq!(line(&after, "DB_PASSWORD="), line(&before, "DB_PASSWORD="));
    assert_ne!(line(&after, "MODE="), line(&before, "MODE="));
    // An editor that changes nothing: exit 200, file untouched.
    let output = env
        .command(&["edit", &file])
        .env("EDITOR", "true")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(200));
    assert_eq!(std::fs::read_to_string(env.dir.join(&file)).unwrap(), after);
    // exec-env and exec-file see the plaintext; the temporary file is gone afterwards.
    let out = env.ok(&["exec-env", &file, "printf %s \"$MODE\""]);
    assert_eq!(out, b"staging");
    let out = env.ok(&["exec-file", &file, "cat {}; echo; echo {} > seen-path"]);
    assert!(String::from_utf8_lossy(&out).contains("MODE=staging"));
    let seen = std::fs::read_to_string(env.dir.join("seen-path")).unwrap();
    assert!(
        !Path::new(seen.trim()).exists(),
        "the plaintext file was left behind"
    );
    // updatekeys: add a second recipient from .sops.yaml; both keys can then decrypt.
    let second = gitseal_crypto::keys::age::AgeIdentities::generate();
    let second_recipient = second.recipients().remove(0);
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: \\.env$\n    age: {}, {second_recipient}\n",
            env.recipient
        )
        .as_bytes(),
    );
    env.ok(&["updatekeys", "-y", &file]);
    let second_file = env.write("second.txt", second.to_text().as_bytes());
    let output = env
        .command(&["decrypt", &file])
        .env("SOPS_AGE_KEY_FILE", env.dir.join(second_file))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "DB_PASSWORD=hunter2\nMODE=staging\n"
    );
}

#[test]
fn large_inputs_round_trip() {
    let env = Env::new("large");
    // 8 MiB of arbitrary bytes through the binary store.
    let mut blob = vec![0u8; 8 << 20];
    gitseal_crypto::primitives::fill_random(&mut blob);
    let plain = env.write("blob.bin", &blob);
    let encrypted = env.ok(&["encrypt", "--age", &env.recipient, &plain]);
    let file = env.write("blob.enc.bin", &encrypted);
    assert_eq!(env.ok(&["decrypt", &file]), blob);
    // A YAML file with 20,000 values (split over the CPUs when decrypting).
    let mut doc = String::new();
    for i in 0..20_000 {
        doc.push_str(&format!("key{i:05}: value-{i}\n"));
    }
    let file = env.encrypted("many.yaml", &doc);
    assert_eq!(String::from_utf8(env.ok(&["decrypt", &file])).unwrap(), doc);
}

#[test]
fn keys_of_other_types_are_kept_when_a_file_is_rewritten() {
    let env = Env::new("other-keys");
    let file = env.encrypted("app.yaml", "password: hunter2\n");
    // A PGP key beside the age key, as a file encrypted for both would carry.
    let text = std::fs::read_to_string(env.dir.join(&file)).unwrap();
    let pgp = "    pgp:\n        - created_at: \"2024-01-01T00:00:00Z\"\n          enc: |-\n            -----BEGIN PGP MESSAGE-----\n            wcBMA0r4f0ZA\n            -----END PGP MESSAGE-----\n          fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n";
    let with_pgp = text.replacen("    lastmodified:", &format!("{pgp}    lastmodified:"), 1);
    env.write(&file, with_pgp.as_bytes());
    env.ok(&["set", &file, "[\"password\"]", "\"changed\""]);
    let after = std::fs::read_to_string(env.dir.join(&file)).unwrap();
    assert!(
        after.contains("fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"),
        "{after}"
    );
    assert!(after.contains("wcBMA0r4f0ZA"), "{after}");
    assert_eq!(
        env.ok(&["decrypt", "--extract", "[\"password\"]", &file]),
        b"changed"
    );
    // Without the age identity, the PGP key is named as unusable.
    let other = env.write(
        "other.txt",
        gitseal_crypto::keys::age::AgeIdentities::generate()
            .to_text()
            .as_bytes(),
    );
    let output = env
        .command(&["decrypt", &file])
        .env("SOPS_AGE_KEY_FILE", env.dir.join(other))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "{stderr}");
    assert!(stderr.contains("pgp: not supported by gitseal"), "{stderr}");
}
