//! TLS to PostgreSQL (`sslmode`) and to Redis (`rediss://`), against local
//! servers of the test's own that accept TLS only, with a certificate from
//! a CA made for the test (as with a private or self-signed CA).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use user_api::config::Settings;
use user_api::startup::Application;

use crate::child::Running;
use crate::child::Signal;
use crate::helpers::{Backend, TestApp, free_port, spawn_app_with, test_settings};
use crate::redis_cluster::{ClusterTls, RedisCluster};
use crate::test_redis::put_on_cluster;

/// A folder with `ca.pem` and a `server.pem`/`server.key` for 127.0.0.1
/// signed by it (made with the `openssl` command, which PostgreSQL's
/// packages install). The certificate serves as a client's too: cluster
/// nodes present it to each other on the TLS cluster bus.
struct Certificates {
    dir: PathBuf,
}

impl Certificates {
    fn create() -> Self {
        let dir =
            std::env::temp_dir().join(format!("user-api-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=user-api test CA",
            ],
        );
        openssl(
            &dir,
            &["req"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ],
            &["-CAcreateserial"],
            &["-out", "server.pem", "-days", "2", "-extfile", "server.ext"],
        );
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, a: &[&str], b: &[&str], c: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(a)
        .args(b)
        .args(c)
        .output()
        .expect("the openssl command is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_for_port(port: u16, server: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(server.try_wait().is_none(), "the server exited");
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A redis-server answering only TLS.
fn redis_with_tls(certificates: &Certificates) -> (Running, u16) {
    let port = free_port();
    let mut command = Command::new("redis-server");
    command
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--tls-cert-file", &certificates.path("server.pem")])
        .args(["--tls-key-file", &certificates.path("server.key")])
        .args(["--tls-ca-cert-file", &certificates.path("ca.pem")])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = Running::spawn(&mut command);
    wait_for_port(port, &mut server);
    (server, port)
}

/// The user and group ids of `postgres` (PostgreSQL will not run as root).
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|line| line.starts_with("postgres:"))
        .expect("a postgres user (scripts/test installs PostgreSQL)");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

fn postgres_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries (scripts/test installs them)")
        .map(|entry| entry.unwrap().path())
        .collect();
    versions.sort();
    versions.last().unwrap().join("bin").join(name)
}

/// A postmaster stopped with SIGQUIT when dropped, which ends its backends
/// too (SIGKILL would leave them to notice on their own).
struct Postgres(Running);

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.0.try_wait().is_none() {
            self.0.signal(Signal::SIGQUIT);
            self.0.wait();
        }
    }
}

/// A PostgreSQL of its own whose only login rule is `hostssl`: a
/// connection without TLS is refused.
fn postgres_with_tls(certificates: &Certificates) -> (Postgres, u16) {
    let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let run_as_postgres = |command: &mut Command| {
        if as_root {
            let (uid, gid) = postgres_ids();
            command.uid(uid).gid(gid);
        }
    };
    if as_root {
        let (uid, gid) = postgres_ids();
        for name in ["", "server.pem", "server.key"] {
            std::os::unix::fs::chown(certificates.dir.join(name), Some(uid), Some(gid)).unwrap();
        }
    }
    let data = certificates.dir.join("data");
    let mut initdb = Command::new(postgres_bin("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .stdout(Stdio::null());
    run_as_postgres(&mut initdb);
    let output = initdb.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(
        data.join("pg_hba.conf"),
        "hostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let port = free_port();
    let mut command = Command::new(postgres_bin("postgres"));
    command
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&certificates.dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "ssl=on",
            "-c",
            "fsync=off",
        ])
        .args([
            "-c",
            &format!("ssl_cert_file={}", certificates.path("server.pem")),
        ])
        .args([
            "-c",
            &format!("ssl_key_file={}", certificates.path("server.key")),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    run_as_postgres(&mut command);
    let mut server = Running::spawn(&mut command);
    wait_for_port(port, &mut server);
    (Postgres(server), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_postgres_over_tls_with_a_private_ca() {
    let certificates = Certificates::create();
    let (_postgres, port) = postgres_with_tls(&certificates);
    let url = format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        certificates.path("ca.pem")
    );
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.database.url = SecretString::from(url.clone());
    })
    .await;
    let alice = app.user("alice").await;
    let response = app
        .get(&format!("/api/v1/users/{}", alice.id), &alice.token)
        .await;
    assert_eq!(response.status(), 200);
    let user_api::repositories::sql::Database::Postgres(pool) = &app.database else {
        panic!("a PostgreSQL pool")
    };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(encrypted);

    // The same server with the public roots only: its certificate is not
    // trusted, and start-up says so.
    let mut settings = test_settings();
    settings.database.url = SecretString::from(format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full"
    ));
    let error = format!(
        "{:#}",
        Application::build(settings).await.err().expect("refused")
    );
    assert!(error.contains("TLS"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_redis_over_tls_with_a_private_ca() {
    let certificates = Certificates::create();
    let (_redis, port) = redis_with_tls(&certificates);
    let url = format!("rediss://127.0.0.1:{port}/0");
    let ca = certificates.path("ca.pem");
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.redis.url = SecretString::from(url.clone());
        settings.redis.tls_ca_file = ca.clone();
    })
    .await;
    served_cached_and_evicted(&app).await;

    // Without the CA the server's certificate is not trusted.
    refused_without_the_ca(&certificates, |settings| {
        settings.redis.url = SecretString::from(url);
    })
    .await;
}

/// TLS on a Redis Cluster as on a single Redis: every node speaks only TLS
/// (clients, replication and the cluster bus), the service trusts the
/// private CA of `redis.tls_ca_file`, and without it the start is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_a_redis_cluster_over_tls_with_a_private_ca() {
    let certificates = Certificates::create();
    let tls = ClusterTls {
        cert: certificates.path("server.pem"),
        key: certificates.path("server.key"),
        ca: certificates.path("ca.pem"),
    };
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start_with_tls(17040, tls))
        .await
        .unwrap();
    let ca = certificates.path("ca.pem");
    let seeds = cluster.seeds();
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        put_on_cluster(settings, seeds.clone());
        settings.redis.tls_ca_file = ca.clone();
    })
    .await;
    served_cached_and_evicted(&app).await;
    assert_eq!(
        app.request(reqwest::Method::GET, "/health/ready", None, None)
            .await
            .status(),
        200
    );

    // Without the CA the nodes' certificates are not trusted.
    refused_without_the_ca(&certificates, |settings| put_on_cluster(settings, seeds)).await;
}

/// A user read twice (MISS, then HIT), and its entry evicted by an admin:
/// the cache, sessions and eviction all work over the connection.
async fn served_cached_and_evicted(app: &TestApp) {
    let alice = app.user("alice").await;
    let path = format!("/api/v1/users/{}", alice.id);
    assert_eq!(
        app.get(&path, &alice.token).await.headers()["x-cache"],
        "MISS"
    );
    assert_eq!(
        app.get(&path, &alice.token).await.headers()["x-cache"],
        "HIT"
    );
    let admin = app.admin("root").await;
    let evicted = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/admin/cache/keys?prefix=user:",
            Some(&admin.token),
            None,
        )
        .await;
    let evicted: serde_json::Value = evicted.json().await.unwrap();
    assert_eq!(
        evicted["deleted"], 1,
        "alice's entry (on a cluster, over every master)"
    );
}

/// The service, pointed at the TLS server(s) by `point` without the CA,
/// refuses to start: the certificate is not trusted.
async fn refused_without_the_ca(certificates: &Certificates, point: impl FnOnce(&mut Settings)) {
    let mut settings = test_settings();
    settings.database.url = SecretString::from(format!("sqlite://{}", certificates.path("app.db")));
    point(&mut settings);
    let error = format!(
        "{:#}",
        Application::build(settings).await.err().expect("refused")
    );
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
