//! A TCP proxy for fault injection, between the app and Redis or
//! PostgreSQL: it can pass traffic, delay every reply, swallow everything
//! (a hung server), or cut every connection and refuse new ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PASS: u8 = 0;
const BLACKHOLE: u8 = 1;
const CUT: u8 = 2;

pub struct FaultProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    cuts: watch::Sender<u64>,
}

impl FaultProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (cuts, _) = watch::channel(0);
        let (accept_mode, accept_delay, accept_cuts) =
            (mode.clone(), delay_ms.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accept_mode.load(Ordering::SeqCst) == CUT {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                let (mode, delay, cut) = (
                    accept_mode.clone(),
                    accept_delay.clone(),
                    accept_cuts.subscribe(),
                );
                tokio::spawn(relay(client, server, mode, delay, cut));
            }
        });
        Self {
            port,
            mode,
            delay_ms,
            cuts,
        }
    }

    pub fn pass(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
        self.mode.store(PASS, Ordering::SeqCst);
    }

    /// Every reply from the server waits this long.
    pub fn delay(&self, by: Duration) {
        self.delay_ms.store(by.as_millis() as u64, Ordering::SeqCst);
        self.mode.store(PASS, Ordering::SeqCst);
    }

    /// Connections stay open; nothing gets through either way.
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones until `pass`.
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.cuts.send_modify(|generation| *generation += 1);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    mut cut: watch::Receiver<u64>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = {
        let mode = mode.clone();
        async move {
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let read = client_read.read(&mut buffer).await.unwrap_or(0);
                if read == 0 {
                    return;
                }
                if mode.load(Ordering::SeqCst) == PASS
                    && server_write.write_all(&buffer[..read]).await.is_err()
                {
                    return;
                }
            }
        }
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = server_read.read(&mut buffer).await.unwrap_or(0);
            if read == 0 {
                return;
            }
            let delay = delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if mode.load(Ordering::SeqCst) == PASS
                && client_write.write_all(&buffer[..read]).await.is_err()
            {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        _ = cut.changed() => {}
    }
}
