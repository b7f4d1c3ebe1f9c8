//! A throwaway PostgreSQL server for tests: a cluster of its own (initdb in a scratch directory,
//! `postgres` on a free loopback port), stopped and removed on drop. Found from `initdb` on the
//! PATH or in `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package), or from
//! `SMDS_TEST_PG_BINDIR`. When none is found the test fails saying how to install it: it is never
//! skipped. As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).

use crate::common::TempDir;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster, superuser `postgres`, trust authentication on loopback.
pub struct Postgres {
    bindir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    /// `-c name=value` settings beyond the defaults.
    settings: Vec<String>,
    child: Option<Child>,
    _dir: TempDir,
}

/// Where the server binaries are.
fn bindir() -> PathBuf {
    if let Some(d) = std::env::var_os("SMDS_TEST_PG_BINDIR") {
        return PathBuf::from(d);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file());
    // /usr/local/bin may hold links to a versioned directory: psql and friends are there.
    if let Some(d) = on_path {
        return std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(d);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    debian.sort();
    match debian.pop() {
        Some((_, d)) => d,
        None => panic!(
            "PostgreSQL server binaries (initdb, postgres) were not found on the PATH or in \
             /usr/lib/postgresql/*/bin. Install them (Debian: `apt-get install postgresql`; \
             `bash .ci/run` does this) or set SMDS_TEST_PG_BINDIR to their directory."
        ),
    }
}

/// The uid and gid of the `postgres` (else `nobody`) account, read from /etc/passwd.
fn unprivileged_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 3
                && f[0] == name
                && let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse())
            {
                return (u, g);
            }
        }
    }
    panic!("running as root, and there is no postgres or nobody account to run PostgreSQL as")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Postgres {
    /// initdb and start a new cluster.
    pub fn start() -> Postgres {
        Self::start_with(|_| Vec::new())
    }

    /// A cluster that also accepts TLS (`ssl = on`), with a server certificate for 127.0.0.1
    /// and localhost issued by a test CA (made with the openssl command); returns the CA's PEM.
    pub fn start_tls() -> (Postgres, PathBuf) {
        let mut ca = PathBuf::new();
        let pg = Self::start_with(|dir| {
            let run = |args: &[&str]| {
                let out = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .output()
                    .expect("openssl");
                assert!(
                    out.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let ec = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ];
            run(&[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=smds test database CA",
                ],
            ]
            .concat());
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat());
            std::fs::write(
                dir.join("ext.cnf"),
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
            )
            .expect("ext");
            run(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ]);
            // PostgreSQL refuses a key file that others may read.
            for key in ["server.key", "ca.key"] {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600))
                    .expect("chmod the key");
            }
            ca = dir.join("ca.pem");
            vec![
                "ssl=on".into(),
                format!("ssl_cert_file={}", dir.join("server.pem").display()),
                format!("ssl_key_file={}", dir.join("server.key").display()),
            ]
        });
        (pg, ca)
    }

    /// A new cluster; `settings` gets the scratch directory (before the server user owns it)
    /// and returns extra `name=value` settings.
    fn start_with(settings: impl FnOnce(&Path) -> Vec<String>) -> Postgres {
        let bindir = bindir();
        let dir = TempDir::new("pg");
        let root = std::fs::metadata(&dir.0)
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let user = root.then(unprivileged_user);
        let settings = settings(&dir.0);
        if let Some((u, g)) = user {
            for entry in std::fs::read_dir(&dir.0).into_iter().flatten().flatten() {
                let _ = std::os::unix::fs::chown(entry.path(), Some(u), Some(g));
            }
            std::os::unix::fs::chown(&dir.0, Some(u), Some(g)).expect("chown the cluster dir");
        }
        let data = dir.0.join("data");
        let mut initdb = Command::new(bindir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-N", "-E", "UTF8"])
            .arg("--locale=C");
        if let Some((u, g)) = user {
            initdb.uid(u).gid(g);
        }
        let out = initdb.output().unwrap_or_else(|e| {
            panic!("{}: {e}", bindir.join("initdb").display());
        });
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            log: dir.0.join("postgres.log"),
            bindir,
            data,
            port: 0,
            user,
            settings,
            child: None,
            _dir: dir,
        };
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port();
            match pg.try_run() {
                Ok(()) => return pg,
                Err(log) => last = log,
            }
        }
        panic!("PostgreSQL did not start:\n{last}");
    }

    /// Starts the server on its port; the log on failure.
    fn try_run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        if let Some((u, g)) = self.user {
            let _ = std::os::unix::fs::chown(&self.log, Some(u), Some(g));
        }
        let start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(self.bindir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.data.parent().unwrap_or(Path::new("/tmp")))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=200"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some((u, g)) = self.user {
            cmd.uid(u).gid(g);
        }
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log_since(start);
            if text.contains("ready to accept connections") {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                return Err(text);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not ready after 30 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            use std::io::Seek;
            let _ = f.seek(std::io::SeekFrom::Start(offset));
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The server's process id (its connections are its child processes), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (see [`Postgres::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
        self.url(db)
    }

    /// Runs SQL with the cluster's own psql; panics with its output on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = self.bindir.join("psql");
        let out = Command::new(&psql)
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", psql.display()));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server: `fast` (SIGINT: clients disconnected, clean shutdown) or not (SIGQUIT:
    /// immediate, crash recovery at the next start).
    pub fn stop(&mut self, fast: bool) {
        if let Some(mut child) = self.child.take() {
            let sig = if fast { "-INT" } else { "-QUIT" };
            let _ = Command::new("sh")
                .args(["-c", &format!("kill {sig} {}", child.id())])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop(true);
        self.resume();
    }

    /// Starts a stopped server again on the same port and data.
    pub fn resume(&mut self) {
        if let Err(log) = self.try_run() {
            panic!("PostgreSQL did not start again:\n{log}");
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop(false);
    }
}
