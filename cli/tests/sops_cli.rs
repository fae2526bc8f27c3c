//! `gitseal sops` as a process on its own: sops' exit codes for bad input, atomic output,
//! the legacy flag forms, the binary invoked as `sops`, edit through $EDITOR, exec-env,
//! exec-file, the age key sources and `gitseal keygen`.

use std::path::Path;
use std::process::{Command, Output};

struct Env {
    /// The scratch directory, removed when the `Env` is dropped.
    dir: tempfile::TempDir,
    recipient: String,
}

impl Env {
    fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gitseal-sops-cli-{name}-"))
            .tempdir()
            .unwrap();
        let keygen = Command::new(env!("CARGO_BIN_EXE_gitseal"))
            .args(["keygen", "-o"])
            .arg(dir.path().join("keys.txt"))
            .output()
            .unwrap();
        assert!(keygen.status.success());
        let text = std::fs::read_to_string(dir.path().join("keys.txt")).unwrap();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_owned();
        Self { dir, recipient }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitseal"));
        command.arg("sops").args(args);
        self.configure(command)
    }

    /// The test's directory and key file, and none of the caller's sops settings.
    fn configure(&self, mut command: Command) -> Command {
        command
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.dir.path().join("keys.txt"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("none"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_CONFIG");
        command
    }

    /// `gitseal sops ARGS` with at most 4 GB of address space and two minutes: if a limit
    /// regresses (an alias bomb expanded, a read that never ends), the test fails instead
    /// of exhausting the machine.
    fn bounded(&self, args: &[&str]) -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", "ulimit -v 4000000 && exec timeout 120 \"$@\"", "sh"])
            .arg(env!("CARGO_BIN_EXE_gitseal"))
            .arg("sops")
            .args(args);
        self.configure(command)
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
        std::fs::write(self.dir.path().join(name), text).unwrap();
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

    let text = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
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
        .env("SOPS_AGE_KEY_FILE", env.dir.path().join(other))
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
    assert!(!env.dir.path().join("never.yaml").exists());
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
    let link = env.dir.path().join("sops");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitseal"), &link).unwrap();
    let output = Command::new(&link)
        .args(["decrypt", "--output-type", "yaml", &file])
        .current_dir(env.dir.path())
        .env("SOPS_AGE_KEY_FILE", env.dir.path().join("keys.txt"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "token: t0k3n\ncount: 2\n"
    );
    // SOPS_AGE_KEY and SOPS_AGE_KEY_CMD work as key sources too.
    let key = std::fs::read_to_string(env.dir.path().join("keys.txt")).unwrap();
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
            format!("cat {}", env.dir.path().join("keys.txt").display()),
        )
        .output()
        .unwrap();
    assert!(
        by_cmd.status.success(),
        "{}",
        String::from_utf8_lossy(&by_cmd.stderr)
    );
    // The default key file under XDG_CONFIG_HOME.
    std::fs::create_dir_all(env.dir.path().join("cfg/sops/age")).unwrap();
    std::fs::copy(
        env.dir.path().join("keys.txt"),
        env.dir.path().join("cfg/sops/age/keys.txt"),
    )
    .unwrap();
    let by_default = env
        .command(&["decrypt", &file])
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("XDG_CONFIG_HOME", env.dir.path().join("cfg"))
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
        .arg(env.dir.path().join("keys.txt"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join("keys.txt")).unwrap(),
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
    let before = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
    // An editor that changes one value; the other ciphertext stays byte-identical.
    let editor = env.write(
        "editor.sh",
        b"#!/bin/sh\nsed -i 's/MODE=prod/MODE=staging/' \"$1\"\n",
    );
    let output = env
        .command(&["edit", &file])
        .env(
            "EDITOR",
            format!("sh {}", env.dir.path().join(editor).display()),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
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
    assert_eq!(
        std::fs::read_to_string(env.dir.path().join(&file)).unwrap(),
        after
    );
    // exec-env and exec-file see the plaintext; the temporary file is gone afterwards.
    let out = env.ok(&["exec-env", &file, "printf %s \"$MODE\""]);
    assert_eq!(out, b"staging");
    let out = env.ok(&["exec-file", &file, "cat {}; echo; echo {} > seen-path"]);
    assert!(String::from_utf8_lossy(&out).contains("MODE=staging"));
    let seen = std::fs::read_to_string(env.dir.path().join("seen-path")).unwrap();
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
        .env("SOPS_AGE_KEY_FILE", env.dir.path().join(second_file))
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
    let text = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
    let pgp = "    pgp:\n        - created_at: \"2024-01-01T00:00:00Z\"\n          enc: |-\n            -----BEGIN PGP MESSAGE-----\n            wcBMA0r4f0ZA\n            -----END PGP MESSAGE-----\n          fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n";
    let with_pgp = text.replacen("    lastmodified:", &format!("{pgp}    lastmodified:"), 1);
    env.write(&file, with_pgp.as_bytes());
    env.ok(&["set", &file, "[\"password\"]", "\"changed\""]);
    let after = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
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
        .env("SOPS_AGE_KEY_FILE", env.dir.path().join(other))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "{stderr}");
    assert!(stderr.contains("pgp: not supported by gitseal"), "{stderr}");
}

/// Runs `command` and returns its exit status and standard error, after checking that it
/// printed nothing and did not crash (a signal, or a panic's 101).
fn failure(mut command: Command) -> (i32, String) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {stderr}"));
    assert!(
        !matches!(code, 0 | 101 | 124 | 134),
        "exit {code} (124: timeout, 134: abort): {stderr}"
    );
    assert!(output.stdout.is_empty(), "printed something: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (code, stderr)
}

/// `levels` nested block mappings, each indented one space more: the document's root
/// is the first.
fn nested_maps(levels: usize) -> String {
    let mut text = String::new();
    for i in 0..levels - 1 {
        text.push_str(&" ".repeat(i));
        text.push_str("k:\n");
    }
    text.push_str(&" ".repeat(levels - 1));
    text.push_str("k: x\n");
    text
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let env = Env::new("deep");
    let limit = "nesting deeper than 128 levels at line ";
    // 50,000 nested block sequences (100 KB), 10,000 nested block mappings, flow style
    // and JSON far beyond the limit: a usage error, never a stack overflow.
    let sequences = format!("a:\n{}x\n", "- ".repeat(50_000));
    let flow = format!("a: {}\n", "[".repeat(200));
    let json = format!("{}1{}", "{\"a\": ".repeat(10_000), "}".repeat(10_000));
    for (name, text) in [
        ("seq.yaml", sequences.as_str()),
        ("map.yaml", &nested_maps(10_000)),
        ("flow.yaml", &flow),
        ("deep.json", &json),
    ] {
        let plain = env.write(name, text.as_bytes());
        let (code, message) = failure(env.command(&["encrypt", "--age", &env.recipient, &plain]));
        assert_eq!(code, 2, "{name}: {message}");
        assert!(message.contains(limit), "{name}: {message}");
        assert!(
            !message.contains("- -") && !message.contains("k:"),
            "{message}"
        );
    }
    // The same inside an encrypted file: decrypt (with and without --ignore-mac), edit,
    // rotate and set all refuse it the same way; filestatus says it is not one.
    let file = env.encrypted("app.yaml", "password: hunter2\n");
    let text = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
    for (name, deep) in [
        ("seq.enc.yaml", sequences.replacen("a:", "deep:", 1)),
        (
            "map.enc.yaml",
            nested_maps(1_000).replacen("k:", "deep:", 1),
        ),
    ] {
        let hostile = env.write(name, format!("{deep}{text}").as_bytes());
        for args in [
            vec!["decrypt", &hostile],
            vec!["decrypt", "--ignore-mac", &hostile],
            vec!["rotate", "-i", &hostile],
            vec!["set", &hostile, "[\"password\"]", "\"x\""],
        ] {
            let (code, message) = failure(env.command(&args));
            assert_eq!(code, 2, "{args:?}: {message}");
            assert!(message.contains(limit), "{args:?}: {message}");
        }
        assert_eq!(
            env.ok(&["filestatus", &hostile]),
            b"{\"encrypted\":false}\n"
        );
    }
    // At the limit, 128 levels are written and read back.
    let fits = format!("a:\n{}x\n", "- ".repeat(127));
    let file = env.encrypted("fits.yaml", &fits);
    let plain = env.ok(&["decrypt", &file]);
    let again = env.encrypted("again.yaml", &String::from_utf8(plain.clone()).unwrap());
    assert_eq!(env.ok(&["decrypt", &again]), plain);
    let deeper = env.write(
        "deeper.yaml",
        format!("a:\n{}x\n", "- ".repeat(128)).as_bytes(),
    );
    let (code, message) = failure(env.command(&["encrypt", "--age", &env.recipient, &deeper]));
    assert_eq!(
        (code, message.trim_end()),
        (
            2,
            "Error unmarshalling input yaml: nesting deeper than 128 levels at line 2"
        )
    );
}

#[test]
fn set_refuses_paths_deeper_than_the_limit() {
    let env = Env::new("deep-set");
    let file = env.encrypted("app.yaml", "a: 1\n");
    let before = std::fs::read(env.dir.path().join(&file)).unwrap();
    let path = |steps: usize| "[\"k\"]".repeat(steps);
    // 10,000 keys (sops set writes a file nothing reads back); one level too many.
    for (steps, value) in [(10_000, "\"v\""), (128, "{\"x\": 1}"), (129, "\"v\"")] {
        let (code, message) = failure(env.command(&["set", &file, &path(steps), value]));
        assert_eq!(code, 91, "{message}");
        assert!(
            message.contains("nesting deeper than 128 levels"),
            "{message}"
        );
        assert_eq!(
            std::fs::read(env.dir.path().join(&file)).unwrap(),
            before,
            "the file was changed"
        );
    }
    let (code, message) = failure(env.command(&[
        "set",
        &file,
        "[\"a\"]",
        &format!("{}{}", "[".repeat(200), "]".repeat(200)),
    ]));
    assert_eq!(code, 7, "{message}");
    assert!(
        message.contains("nests deeper than 127 levels"),
        "{message}"
    );
    // The document is the first level: 128 keys reach a scalar, and read back.
    env.ok(&["set", &file, &path(128), "\"deep\""]);
    assert_eq!(
        env.ok(&["decrypt", "--extract", &path(128), &file]),
        b"deep"
    );
    env.ok(&["decrypt", "--output-type", "json", &file]);
}

/// sops' issue with YAML anchors: nine levels of nine aliases each, 342 bytes, nine to the
/// ninth (387 million) values once expanded.
fn alias_bomb() -> String {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    let mut text = format!("a: &a [{}]\n", ["\"x\""; 9].join(","));
    for pair in names.windows(2) {
        let aliases = vec![format!("*{}", pair[0]); 9].join(",");
        text.push_str(&format!("{}: &{} [{aliases}]\n", pair[1], pair[1]));
    }
    text
}

#[test]
fn alias_bombs_stop_at_the_copy_limit() {
    let env = Env::new("bomb");
    let bomb = alias_bomb();
    assert!(bomb.len() < 400, "{}", bomb.len());
    let expected = "YAML anchors and aliases copy more than 1000000 nodes at line ";
    let plain = env.write("bomb.yaml", bomb.as_bytes());
    let (code, message) = failure(env.bounded(&["encrypt", "--age", &env.recipient, &plain]));
    assert_eq!(code, 2, "{message}");
    assert!(message.contains(expected), "{message}");
    // In an encrypted file: decrypt and filestatus stop too.
    let file = env.encrypted("app.yaml", "password: hunter2\n");
    let text = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
    let hostile = env.write("bomb.enc.yaml", format!("{bomb}{text}").as_bytes());
    for args in [
        vec!["decrypt", &hostile],
        vec!["decrypt", "--ignore-mac", &hostile],
    ] {
        let (code, message) = failure(env.bounded(&args));
        assert_eq!(code, 2, "{args:?}: {message}");
        assert!(message.contains(expected), "{message}");
    }
    let output = env.bounded(&["filestatus", &hostile]).output().unwrap();
    assert_eq!(
        (output.status.code(), output.stdout.as_slice()),
        (Some(0), &b"{\"encrypted\":false}\n"[..]),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A .sops.yaml bomb is stopped by the same limits.
    env.write(
        ".sops.yaml",
        format!("{bomb}creation_rules: []\n").as_bytes(),
    );
    let small = env.write("small.yaml", b"a: 1\n");
    let (code, message) = failure(env.bounded(&["encrypt", &small]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("over the limits"), "{message}");
}

#[test]
fn indent_is_a_bounded_number() {
    let env = Env::new("indent");
    let file = env.encrypted("app.yaml", "a:\n  b: 1\n");
    for indent in [
        "18446744073709551615",
        "1000000000000",
        "100000000",
        "17",
        "-1",
        "x",
    ] {
        let (code, message) = failure(env.command(&[
            "--indent",
            indent,
            "decrypt",
            "--output-type",
            "json",
            &file,
        ]));
        assert_eq!(code, 2, "{indent}: {message}");
        assert!(message.contains(indent), "{message}");
    }
    let json = env.ok(&["--indent", "16", "decrypt", "--output-type", "json", &file]);
    assert_eq!(
        String::from_utf8(json).unwrap(),
        format!(
            "{{\n{0}\"a\": {{\n{0}{0}\"b\": 1\n{0}}}\n}}\n",
            " ".repeat(16)
        )
    );
    // YAML indents as sops writes them: 0 is the default (4); 1 and 10..16 are 2.
    for (indent, spaces) in [("0", 4), ("1", 2), ("3", 3), ("9", 9), ("10", 2), ("16", 2)] {
        let yaml = env.ok(&["--indent", indent, "decrypt", &file]);
        assert_eq!(
            String::from_utf8(yaml).unwrap(),
            format!("a:\n{}b: 1\n", " ".repeat(spaces)),
            "{indent}"
        );
    }
    // `stores:` in .sops.yaml is bounded the same way.
    env.write(".sops.yaml", b"stores:\n  json:\n    indent: 100000000\n");
    let (code, message) = failure(env.command(&["decrypt", "--output-type", "json", &file]));
    assert_eq!(code, 1, "{message}");
    assert!(
        message.contains("stores.json.indent must be at most 16"),
        "{message}"
    );
}

#[test]
fn exec_file_names_stay_in_the_private_directory() {
    let env = Env::new("exec-name");
    let file = env.encrypted("app.env", "PASSWORD=hunter2\n");
    std::fs::create_dir(env.dir.path().join("sub")).unwrap();
    let outside = env.dir.path().join("escaped");
    let absolute = outside.to_string_lossy().into_owned();
    for name in ["../escaped", absolute.as_str(), "sub/x", "", ".", ".."] {
        let mut command = env.command(&["exec-file", "--filename", name, "../app.env", "cat {}"]);
        command.current_dir(env.dir.path().join("sub"));
        let (code, message) = failure(command);
        assert_eq!(code, 2, "{name:?}: {message}");
        assert!(message.contains("not a plain file name"), "{message}");
        assert!(
            !outside.exists(),
            "{name:?} wrote outside the private directory"
        );
    }
    // A plain name is used as given, and removed with its directory afterwards.
    let out = env.ok(&[
        "exec-file",
        "--filename",
        "app.env",
        &file,
        "cat {}; echo {} > seen-path",
    ]);
    assert_eq!(out, b"PASSWORD=hunter2\n");
    let seen = std::fs::read_to_string(env.dir.path().join("seen-path")).unwrap();
    let seen = Path::new(seen.trim());
    assert_eq!(seen.file_name().unwrap(), "app.env");
    assert!(
        !seen.parent().unwrap().exists(),
        "the private directory was left behind"
    );
}

#[test]
fn reads_of_keys_values_and_config_are_bounded() {
    let env = Env::new("bounded-reads");
    let file = env.encrypted("app.yaml", "a: 1\n");
    let key_limit = "larger than 16 MiB, the maximum for a certificate or key file";
    let file_limit = "larger than 256 MiB, the maximum for a SOPS file";
    // A key file that never ends, as SOPS_AGE_KEY_FILE, as the default key file, and a
    // key command that prints too much.
    let mut by_file = env.bounded(&["decrypt", &file]);
    by_file.env("SOPS_AGE_KEY_FILE", "/dev/zero");
    std::fs::create_dir_all(env.dir.path().join("cfg/sops/age")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", env.dir.path().join("cfg/sops/age/keys.txt")).unwrap();
    let mut by_default = env.bounded(&["decrypt", &file]);
    by_default.env("XDG_CONFIG_HOME", env.dir.path().join("cfg"));
    let mut by_command = env.bounded(&["decrypt", &file]);
    by_command
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("SOPS_AGE_KEY_CMD", "head -c 20000000 /dev/zero");
    for command in [by_file, by_default, by_command] {
        let (code, message) = failure(command);
        assert_eq!(code, 1, "{message}");
        assert!(message.contains(key_limit), "{message}");
    }
    // Values for `set`, .sops.yaml and the file an editor leaves: at most a SOPS file's
    // size. (Each reads 256 MiB first, so they run side by side.)
    let before = std::fs::read(env.dir.path().join(&file)).unwrap();
    let by_value_file = env.bounded(&["set", &file, "[\"a\"]", "--value-file", "/dev/zero"]);
    let mut by_stdin = env.bounded(&["set", &file, "[\"a\"]", "--value-stdin"]);
    by_stdin.stdin(std::fs::File::open("/dev/zero").unwrap());
    let by_config = env.bounded(&[
        "--config",
        "/dev/zero",
        "encrypt",
        "--age",
        &env.recipient,
        "x.yaml",
    ]);
    env.write("x.yaml", b"a: 1\n");
    let mut by_editor = env.bounded(&["edit", &file]);
    by_editor.env("EDITOR", "truncate -s 300M");
    let running: Vec<_> = [by_value_file, by_stdin, by_config, by_editor]
        .into_iter()
        .map(|mut command| {
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, expected_code) in running.into_iter().zip([7, 7, 1, 2]) {
        let output = child.wait_with_output().unwrap();
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(expected_code), "{message}");
        assert!(message.contains(file_limit), "{message}");
    }
    assert_eq!(std::fs::read(env.dir.path().join(&file)).unwrap(), before);
}

#[test]
fn errors_about_input_show_positions_not_text() {
    let env = Env::new("no-text");
    let secret = "hunter2-s3cr3t";
    for (name, text, position) in [
        (
            "dup.yaml",
            format!("{secret}: 1\n{secret}: 2\n"),
            "line 2: mapping key already defined at line 1",
        ),
        ("quote.yaml", format!("a: \"{secret}\n"), "line"),
        ("flow.yaml", format!("a: [{secret}\n"), "line"),
        ("key.yaml", format!("1: {secret}\n"), "line 1"),
        (
            "bad.json",
            format!("{{\n  \"password\": {secret}\n}}"),
            "at line 2, column 15",
        ),
    ] {
        let plain = env.write(name, text.as_bytes());
        let (_, message) = failure(env.command(&["encrypt", "--age", &env.recipient, &plain]));
        assert!(message.contains(position), "{name}: {message}");
        assert!(!message.contains(secret), "{name}: {message}");
    }
    // .sops.yaml: the YAML reader's snippets and messages quote the file; not shown.
    env.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {secret}\n    age: [{secret}\n").as_bytes(),
    );
    let plain = env.write("plain.yaml", b"a: 1\n");
    let (code, message) = failure(env.command(&["encrypt", &plain]));
    assert_eq!(code, 1, "{message}");
    assert!(message.contains("invalid YAML input at line "), "{message}");
    assert!(!message.contains(secret), "{message}");
}
