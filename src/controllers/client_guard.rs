//! What one client can hold of the server: its open connections (per
//! address), and the time it takes to send a request body. actix-web bounds
//! the time to send the headers (`client_request_timeout`) but not the body:
//! a client that declares 60,000 bytes and sends a few would hold its
//! connection, and what the handler has buffered, forever.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use futures_util::StreamExt;

use super::client_ip::TrustedProxies;
use super::extract::BODY_LIMIT;
use crate::config::ServerSettings;
use crate::error::AppError;
use crate::services::rate_limit::ClientKey;

/// Open connections per client address, shared by every worker.
#[derive(Clone)]
pub struct ConnectionLimits {
    max_per_client: u32,
    proxies: TrustedProxies,
    open: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

/// Held in a connection's data while it counts against its address; the
/// count goes down when the connection (and so its data) is dropped.
struct ConnectionSlot {
    client: ClientKey,
    open: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Marks a connection opened while its address held all it may: each of
/// its requests is answered 429 and the connection closed.
struct OverLimit;

impl ConnectionLimits {
    pub fn new(max_per_client: u32, proxies: TrustedProxies) -> Self {
        Self {
            max_per_client,
            proxies,
            open: Arc::default(),
        }
    }

    /// For `HttpServer::on_connect`: counts the new connection against its
    /// peer address. A trusted proxy carries many clients: not counted.
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        if self.proxies.trusts(peer.ip()) {
            return;
        }
        let client = ClientKey::of(peer.ip());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.max_per_client {
            data.insert(OverLimit);
            return;
        }
        *count += 1;
        drop(open);
        data.insert(ConnectionSlot {
            client,
            open: self.open.clone(),
        });
    }
}

/// How long a request body may take, from the moment its headers are in.
#[derive(Clone, Copy)]
pub struct BodyDeadline(Duration);

impl BodyDeadline {
    pub fn new(settings: &ServerSettings) -> Self {
        Self(Duration::from_millis(settings.body_timeout_ms))
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

fn declared_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > BODY_LIMIT as u64)
}

async fn read_body(payload: &mut Payload) -> Result<web::Bytes, AppError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            PayloadError::Overflow => AppError::PayloadTooLarge,
            _ => AppError::validation("body", "could not be read"),
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// An error answer that closes the connection. actix closes a connection
/// whose body is unread when the answer has been written, but drains a
/// chunked one whose reader is gone — for as long as the client cares to
/// trickle it. So the reader is kept a moment longer than the answer takes.
fn closing(request: ServiceRequest, error: AppError) -> ServiceResponse<BoxBody> {
    let (request, payload) = request.into_parts();
    actix_web::rt::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(payload);
    });
    let mut response: HttpResponse = error.error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    ServiceResponse::new(request, response)
}

/// Refuses requests on connections over their address's limit, and reads
/// every request body ahead within the deadline (at most 64 KiB, so the
/// buffer is the one the body extractor would have made anyway).
pub async fn guard_requests(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if request.conn_data::<OverLimit>().is_some() {
        return Ok(closing(request, AppError::TooManyConnections));
    }
    if has_body(request.headers()) {
        if declared_too_large(request.headers()) {
            return Ok(closing(request, AppError::PayloadTooLarge));
        }
        let deadline = request
            .app_data::<web::Data<BodyDeadline>>()
            .map_or(Duration::from_secs(5), |deadline| deadline.0);
        let mut payload = request.take_payload();
        let body = match tokio::time::timeout(deadline, read_body(&mut payload)).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                request.set_payload(payload);
                return Ok(closing(request, error));
            }
            Err(_) => {
                request.set_payload(payload);
                tracing::info!("request body not received in time");
                return Ok(closing(request, AppError::RequestTimeout));
            }
        };
        request.set_payload(Payload::from(body));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}
