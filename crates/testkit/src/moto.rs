//! A local AWS (PyPI `moto[server]`: Secrets Manager, STS, KMS…) for provider tests:
//! started on a free loopback port, killed when dropped.
//!
//! The Python that has moto installed is `$GITSEAL_MOTO_PYTHON` (`scripts/test.sh` makes
//! one); without it, [`Moto::start`] prints a skip notice and returns `None`, or panics when
//! `GITSEAL_REQUIRE_TOOLS=1`.
//!
//! ```no_run
//! let Some(moto) = gitseal_testkit::moto::Moto::start() else { return };
//! moto.boto3("sm.create_secret(Name='db', SecretString='{\"password\": \"p\"}')");
//! println!("{}", moto.url());
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    url: String,
    python: PathBuf,
}

impl Moto {
    /// Starts moto and waits until it accepts connections; `None` (after a skip notice)
    /// when `GITSEAL_MOTO_PYTHON` is not set and tools are not required.
    pub fn start() -> Option<Self> {
        let Some(python) = std::env::var_os("GITSEAL_MOTO_PYTHON").map(PathBuf::from) else {
            let message = "GITSEAL_MOTO_PYTHON is not set (a Python with moto[server]); \
                           scripts/test.sh installs one";
            if std::env::var("GITSEAL_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto.server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {url}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Self { child, url, python })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs Python `code` with boto3 clients bound to this server (`sm`: Secrets Manager,
    /// `sts`, `kms`; region `us-east-1`) and returns what it printed; panics if it fails.
    pub fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import boto3, json\n\
             def client(name):\n    return boto3.client(name, endpoint_url={url:?}, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             sm = client('secretsmanager')\nsts = client('sts')\nkms = client('kms')\n{code}\n",
            url = self.url
        );
        let output = Command::new(&self.python)
            .args(["-c", &script])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run python");
        assert!(
            output.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
