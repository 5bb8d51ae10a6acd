//! A Redis Cluster of the test's own (3 masters, 3 replicas), to kill a
//! master of or to reshard: the shared test cluster must not be disturbed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::Running;

pub struct RedisCluster {
    pub first_port: u16,
    nodes: Vec<Option<Running>>,
    dir: std::path::PathBuf,
    /// `requirepass` of every node, when set.
    password: Option<String>,
    /// TLS only (clients, replication and the cluster bus), when set.
    tls: Option<ClusterTls>,
}

/// PEM files for a cluster that speaks only TLS.
#[derive(Clone)]
pub struct ClusterTls {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

/// A master as `CLUSTER NODES` lists it.
#[derive(Debug, Clone)]
pub struct Master {
    pub id: String,
    pub port: u16,
}

impl RedisCluster {
    /// Six nodes on `first_port`..`first_port + 5` (ports 17010-17099 are
    /// the tests' own), joined with `redis-cli --cluster create`.
    pub fn start(first_port: u16) -> Self {
        Self::start_with(first_port, None, None)
    }

    /// The same, every node asking for `password`.
    pub fn start_with_password(first_port: u16, password: &str) -> Self {
        Self::start_with(first_port, Some(password.to_string()), None)
    }

    /// The same, every node speaking only TLS.
    pub fn start_with_tls(first_port: u16, tls: ClusterTls) -> Self {
        Self::start_with(first_port, None, Some(tls))
    }

    /// redis-cli, with the cluster's password when it has one.
    fn redis_cli(&self) -> Command {
        let mut command = Command::new("redis-cli");
        if let Some(password) = &self.password {
            command.env("REDISCLI_AUTH", password);
        }
        if let Some(tls) = &self.tls {
            command.args(["--tls", "--cacert", &tls.ca]);
        }
        command.stdin(Stdio::null());
        command
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = self
            .redis_cli()
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn start_with(first_port: u16, password: Option<String>, tls: Option<ClusterTls>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "user-api-test-cluster-{first_port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut nodes = Vec::new();
        for port in first_port..first_port + 6 {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("cluster node directory");
            let mut command = Command::new("redis-server");
            match &tls {
                None => command.args(["--port", &port.to_string()]),
                Some(tls) => command
                    .args(["--port", "0", "--tls-port", &port.to_string()])
                    .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                    .args(["--tls-cert-file", &tls.cert, "--tls-key-file", &tls.key])
                    .args(["--tls-ca-cert-file", &tls.ca, "--tls-auth-clients", "no"]),
            };
            command
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--save", "", "--appendonly", "no"])
                // A replica that never synced cannot take over: sync at once.
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(password) = &password {
                command.args(["--requirepass", password, "--masterauth", password]);
            }
            nodes.push(Some(Running::spawn(&mut command)));
        }
        let cluster = Self {
            first_port,
            nodes,
            dir,
            password,
            tls,
        };
        for port in cluster.ports() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cluster.cli(port, &["PING"]).contains("PONG") {
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addresses: Vec<String> = cluster
            .ports()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = cluster
            .redis_cli()
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            created.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        cluster.wait_until_ok(Duration::from_secs(20));
        cluster
    }

    fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        self.first_port..self.first_port + 6
    }

    /// The seed nodes, as `redis.cluster_nodes` takes them.
    pub fn seeds(&self) -> String {
        self.ports()
            .map(|port| {
                let scheme = if self.tls.is_some() {
                    "rediss"
                } else {
                    "redis"
                };
                match &self.password {
                    Some(password) => format!("{scheme}://:{password}@127.0.0.1:{port}"),
                    None => format!("{scheme}://127.0.0.1:{port}"),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Until every running node says `cluster_state:ok` and sees three
    /// masters with slots.
    pub fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let all_ok = self.running_ports().iter().all(|&port| {
                self.cli(port, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
                    && self.masters_seen_by(port).len() == 3
            });
            // And every replica has its copy (else it could not fail over).
            let synced = self.running_ports().iter().all(|&port| {
                let replication = self.cli(port, &["INFO", "replication"]);
                replication.contains("role:master") || replication.contains("master_link_status:up")
            });
            if all_ok && synced {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn running_ports(&self) -> Vec<u16> {
        self.ports()
            .zip(&self.nodes)
            .filter(|(_, node)| node.is_some())
            .map(|(port, _)| port)
            .collect()
    }

    fn masters_seen_by(&self, port: u16) -> Vec<Master> {
        self.cli(port, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let is_master = fields.get(2)?.split(',').any(|flag| flag == "master");
                let failed = fields.get(2)?.contains("fail");
                let has_slots = fields.len() > 8;
                let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                (is_master && !failed && has_slots).then(|| Master {
                    id: fields[0].to_string(),
                    port,
                })
            })
            .collect()
    }

    /// The masters holding slots, as a running node sees them.
    pub fn masters(&self) -> Vec<Master> {
        let port = self.running_ports()[0];
        let mut masters = self.masters_seen_by(port);
        masters.sort_by_key(|master| master.port);
        masters
    }

    /// SIGKILLs the node on `port` (its replica takes over after the node
    /// timeout, 1 s).
    pub fn kill(&mut self, port: u16) {
        let index = usize::from(port - self.first_port);
        if let Some(mut node) = self.nodes[index].take() {
            node.kill();
        }
    }

    /// Moves `slots` slots from one master to another with
    /// `redis-cli --cluster reshard`, keys included (MIGRATE), while
    /// whatever runs meanwhile keeps running.
    pub fn reshard(&self, from: &Master, to: &Master, slots: u32) -> std::process::Output {
        self.redis_cli()
            .args(["--cluster", "reshard", &format!("127.0.0.1:{}", from.port)])
            .args(["--cluster-from", &from.id, "--cluster-to", &to.id])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            .args(["--cluster-pipeline", "20"])
            .output()
            .expect("redis-cli --cluster reshard runs")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(mut node) = node.take() {
                node.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
