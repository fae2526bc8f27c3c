//! AWS KMS keys against a local KMS (PyPI `moto[server]`, started here on a loopback
//! port and stopped at the end): gitseal and the real sops read each other's KMS-wrapped
//! files, the encryption context is honoured, and a changed context fails with 128.

use std::path::{Path, PathBuf};

use gitseal_testkit::moto::Moto;
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    moto: Moto,
    python: PathBuf,
}

impl Env {
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL_KMS", self.moto.url())
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("XDG_CONFIG_HOME", self.dir.join("none"))
            .env_remove("AWS_PROFILE")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY");
        command
    }

    fn gitseal(&self, args: &[&str]) -> Output {
        let mut all = vec!["sops"];
        all.extend(args);
        self.command(Path::new(env!("CARGO_BIN_EXE_gitseal")), &all)
            .output()
            .unwrap()
    }

    fn create_key(&self) -> String {
        let script = "import boto3, sys\nkms = boto3.client('kms', endpoint_url=sys.argv[1], region_name='eu-west-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nprint(kms.create_key()['KeyMetadata']['Arn'])\n";
        let output = Command::new(&self.python)
            .args(["-c", script, self.moto.url()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

fn ok(output: Output, what: &str) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn kms_keys_with_an_encryption_context_work_both_ways() {
    let Some(python) = gitseal_tests::tool_from_env(
        "GITSEAL_MOTO_PYTHON",
        "a Python with moto[server] and boto3",
    ) else {
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("gitseal-sops-kms-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let env = Env {
        moto: Moto::start().expect("GITSEAL_MOTO_PYTHON is set"),
        dir: dir.to_path_buf(),
        python,
    };
    let arn = env.create_key();
    assert!(arn.starts_with("arn:aws:kms:eu-west-1:"), "{arn}");
    std::fs::write(
        dir.join("app.yaml"),
        "db:\n    password: hunter2\nreplicas: 3\n",
    )
    .unwrap();
    let context = "app:web,env:prod";
    let ours = ok(
        env.gitseal(&[
            "encrypt",
            "--kms",
            &arn,
            "--encryption-context",
            context,
            "app.yaml",
        ]),
        "gitseal encrypt",
    );
    let text = String::from_utf8(ours.clone()).unwrap();
    assert!(
        text.contains(&format!("arn: {arn}")) && text.contains("env: prod"),
        "{text}"
    );
    std::fs::write(dir.join("ours.yaml"), &ours).unwrap();
    let plain = ok(env.gitseal(&["decrypt", "ours.yaml"]), "gitseal decrypt");
    assert_eq!(
        String::from_utf8(plain).unwrap(),
        "db:\n    password: hunter2\nreplicas: 3\n"
    );

    // The encryption context is authenticated: changed, nothing can decrypt the data key.
    std::fs::write(
        dir.join("tampered.yaml"),
        text.replace("env: prod", "env: dev"),
    )
    .unwrap();
    let output = env.gitseal(&["decrypt", "tampered.yaml"]);
    assert_eq!(
        output.status.code(),
        Some(128),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains(&arn));

    // Against the real sops, when it is installed.
    if let Some(sops) = gitseal_tests::tool("sops", "GITSEAL_SOPS") {
        let theirs = ok(
            env.command(&sops, &["decrypt", "ours.yaml"])
                .output()
                .unwrap(),
            "sops decrypt",
        );
        assert_eq!(
            String::from_utf8(theirs).unwrap(),
            "db:\n    password: hunter2\nreplicas: 3\n"
        );
        let by_sops = ok(
            env.command(
                &sops,
                &[
                    "encrypt",
                    "--kms",
                    &arn,
                    "--encryption-context",
                    context,
                    "app.yaml",
                ],
            )
            .output()
            .unwrap(),
            "sops encrypt",
        );
        std::fs::write(dir.join("sops.yaml"), &by_sops).unwrap();
        let plain = ok(
            env.gitseal(&["decrypt", "sops.yaml"]),
            "gitseal decrypt of sops' file",
        );
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "db:\n    password: hunter2\nreplicas: 3\n"
        );
        let output = env
            .command(&sops, &["decrypt", "tampered.yaml"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(128));
    }
    // A malformed context is refused before any call (exit 6).
    let output = env.gitseal(&[
        "encrypt",
        "--kms",
        &arn,
        "--encryption-context",
        "novalue",
        "app.yaml",
    ]);
    assert_eq!(output.status.code(), Some(6));
}
