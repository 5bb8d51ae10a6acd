//! Where log lines go: a thread of its own writes them to stderr. A line
//! that thread cannot take at once (the reader is slow or stopped reading)
//! is dropped, and write errors (a closed pipe) are ignored: logging never
//! blocks a request and never stops the service.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writing thread; beyond this they are dropped.
const QUEUED_LINES: usize = 4096;

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it has been written.
    Flush(mpsc::Sender<()>),
}

#[derive(Clone)]
pub struct LogWriter {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

static WRITER: OnceLock<LogWriter> = OnceLock::new();

impl LogWriter {
    /// The process's writer, its thread started on first use.
    pub fn global() -> LogWriter {
        WRITER
            .get_or_init(|| {
                let (sender, receiver) = mpsc::sync_channel(QUEUED_LINES);
                let dropped = Arc::new(AtomicU64::new(0));
                let counted = dropped.clone();
                // If the thread cannot start, lines are dropped: still no block.
                let _ = std::thread::Builder::new()
                    .name("log-writer".into())
                    .spawn(move || write_lines(receiver, std::io::stderr(), counted));
                LogWriter { sender, dropped }
            })
            .clone()
    }

    fn send(&self, line: Vec<u8>) {
        match self.sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (at most `limit`) until the lines logged so far are written.
    pub fn flush(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let (done, finished) = mpsc::channel();
        let mut message = Message::Flush(done);
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = finished.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

fn write_lines(receiver: Receiver<Message>, mut output: impl Write, dropped: Arc<AtomicU64>) {
    let mut reported = 0;
    for message in receiver {
        match message {
            Message::Line(line) => {
                let now = dropped.load(Ordering::Relaxed);
                if now > reported {
                    let note = format!("log-writer: {} lines dropped\n", now - reported);
                    let _ = output.write_all(note.as_bytes());
                    reported = now;
                }
                // A closed pipe or a full disk: the line is lost, nothing else.
                let _ = output.write_all(&line);
            }
            Message::Flush(done) => {
                let _ = output.flush();
                let _ = done.send(());
            }
        }
    }
}

/// One event's text, sent as one line when tracing drops the writer.
pub struct LineBuffer {
    writer: LogWriter,
    line: Vec<u8>,
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.writer.send(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer {
            writer: self.clone(),
            line: Vec::with_capacity(256),
        }
    }
}
