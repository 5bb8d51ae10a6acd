//! A redis-server of the test's own, to stop, pause and restart.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::child::{Running, Signal};
use crate::helpers::free_port;

pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    child: Running,
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
        command.stdout(Stdio::null()).stderr(Stdio::null());
        // (scripts/test installs redis-server)
        let child = Running::spawn(&mut command);
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
        self.child.signal(Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        self.child.signal(Signal::SIGCONT);
    }

    pub fn stop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
    }

    /// A new, empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start_on(self.port, self.password.clone());
    }
}

// Dropping `child` kills it (SIGKILL works on a paused process too).
