//! A redis-server of the test's own, to stop, pause and restart.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    child: Child,
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port(), None)
    }

    /// A server that wants this password (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_on(free_port(), Some(password.to_string()))
    }

    fn start_on(port: u16, password: Option<String>) -> Self {
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = &password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        let server = Self {
            port,
            password,
            child,
        };
        server.wait_until_up();
        server
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        while Instant::now() < deadline {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Freezes the server: connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new, empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start_on(self.port, self.password.clone());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = signal_quietly(self.child.id());
        self.stop();
    }
}

fn signal_quietly(pid: u32) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg("-CONT")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
}
