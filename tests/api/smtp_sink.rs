//! A small real SMTP server on loopback that records what it receives, and
//! can be told to refuse mail or to stall in the middle of a message.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Accept = 0,
    /// Answers every message with a temporary failure.
    Refuse = 1,
    /// Takes the message, then never answers (a hung server).
    Stall = 2,
}

#[derive(Default)]
struct State {
    mails: Mutex<Vec<ReceivedMail>>,
    mode: AtomicU8,
    refused: AtomicUsize,
    stalled: AtomicUsize,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    state: Arc<State>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { port, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.state.mails.lock().unwrap().clone()
    }

    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    pub fn stalled(&self) -> usize {
        self.state.stalled.load(Ordering::SeqCst)
    }

    /// Waits until `count` mails arrived, or panics after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} mails after {timeout:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn session(stream: tokio::net::TcpStream, state: Arc<State>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut to = Vec::new();
    if writer.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            if state.mode.load(Ordering::SeqCst) == Mode::Refuse as u8 {
                state.refused.fetch_add(1, Ordering::SeqCst);
                b"451 4.3.0 try again later\r\n"
            } else {
                b"250 OK\r\n"
            }
        } else if command.starts_with("RCPT TO") {
            let address = line[8..]
                .trim()
                .trim_start_matches(':')
                .trim()
                .trim_matches(['<', '>']);
            to.push(address.to_string());
            b"250 OK\r\n"
        } else if command == "DATA" {
            if writer.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                data.push_str(&line);
                data.push('\n');
            }
            if state.mode.load(Ordering::SeqCst) == Mode::Stall as u8 {
                state.stalled.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            state.mails.lock().unwrap().push(ReceivedMail {
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if command == "QUIT" {
            let _ = writer.write_all(b"221 bye\r\n").await;
            return;
        } else if command == "RSET" || command == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if writer.write_all(reply).await.is_err() {
            return;
        }
    }
}
