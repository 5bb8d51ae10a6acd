//! Processes a test starts: signalled from Rust (no `kill` command, which a
//! minimal system may lack), and killed when dropped, so a test that fails
//! half-way leaves nothing running.

use std::process::{Child, Command, ExitStatus, Output};

pub use nix::sys::signal::Signal;
use nix::sys::signal::kill;
use nix::unistd::Pid;

pub struct Running(Option<Child>);

impl Running {
    pub fn spawn(command: &mut Command) -> Self {
        Self(Some(command.spawn().expect("the process starts")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running process")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("a running process").id()
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.id()).expect("a pid"));
        kill(pid, signal).unwrap_or_else(|error| panic!("{signal} to {pid}: {error}"));
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("its status")
    }

    pub fn wait(&mut self) -> ExitStatus {
        self.child().wait().expect("its exit")
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let child = self.child();
        child.kill().expect("SIGKILL");
        child.wait().expect("its exit");
    }

    /// Waits for the exit, with what it wrote to its piped stdout and stderr.
    pub fn wait_with_output(mut self) -> Output {
        self.0
            .take()
            .expect("a running process")
            .wait_with_output()
            .expect("its exit and output")
    }

    /// Its stderr pipe, to read from or to close.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child().stderr.take()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
