//! The HTTP servers: the listening socket, the app of the public port, and
//! the metrics listener.

use std::net::{TcpListener, ToSocketAddrs};

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use super::AppState;
use crate::config::{ServerSettings, Settings};
use crate::controllers;
use crate::controllers::client_guard::{self, BodyDeadline, ConnectionLimits};
use crate::controllers::client_ip::TrustedProxies;
use crate::controllers::cors;
use crate::controllers::security_headers;
use crate::telemetry;

/// The listening socket, with the configured backlog: `std`'s listener
/// always asks for 128, and a burst of new connections past the queue waits
/// a second for the client's SYN retransmit.
pub(super) fn listen(server: &ServerSettings) -> anyhow::Result<TcpListener> {
    let (host, port) = (server.host.as_str(), server.port);
    let cannot = || format!("cannot listen on {host}:{port}");
    let address = (host, port)
        .to_socket_addrs()
        .with_context(cannot)?
        .next()
        .with_context(cannot)?;
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .with_context(cannot)?;
    // As std does: a restarted server can bind while old connections linger.
    socket.set_reuse_address(true).with_context(cannot)?;
    socket.bind(&address.into()).with_context(cannot)?;
    let backlog = i32::try_from(server.backlog).unwrap_or(i32::MAX);
    socket.listen(backlog).with_context(cannot)?;
    Ok(socket.into())
}

pub(super) fn serve(
    listener: TcpListener,
    state: AppState,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let cors_enabled = state.cors.allows_any();
    let connections = ConnectionLimits::new(
        settings.server.max_connections_per_client,
        TrustedProxies::parse(&settings.rate_limit.trusted_proxies)?,
    );
    let body_deadline = web::Data::new(BodyDeadline::new(&settings.server));
    let metrics_here = settings.server.metrics_port.is_none();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(client_guard::guard_requests))
            .wrap(from_fn(telemetry::trace_requests))
            .wrap(from_fn(security_headers::add_security_headers))
            // Outside the rest, so that every answer, the early 413
            // included, is readable by an allowed origin.
            .wrap(Condition::new(cors_enabled, state.cors.middleware()))
            .wrap(Condition::new(
                cors_enabled,
                from_fn(cors::explain_refusals),
            ))
            .app_data(body_deadline.clone())
            .app_data(state.auth.clone())
            .app_data(state.accounts.clone())
            .app_data(state.refresh_cookie.clone())
            .app_data(state.audit.clone())
            .app_data(state.users.clone())
            .app_data(state.health.clone())
            .app_data(state.cache_admin.clone())
            .app_data(state.rate_limits.clone())
            .app_data(state.clients.clone())
            .app_data(state.jobs.clone())
            .app_data(state.cors.clone())
            .app_data(state.metrics.clone())
            .app_data(state.metrics_service.clone())
            .configure(|config| {
                if metrics_here {
                    controllers::configure_metrics(config);
                }
            })
            .configure(controllers::configure)
    })
    .on_connect(move |connection, data| connections.on_connect(connection, data))
    .shutdown_timeout(settings.server.shutdown_timeout_seconds)
    // Our own handler: actix treats SIGINT as "stop now", we drain on both.
    .disable_signals()
    .listen(listener)?;
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.run())
}

/// `/metrics` alone, on the listener of `server.metrics_port`: one worker
/// is plenty for a scraper.
pub(super) fn serve_metrics(
    listener: TcpListener,
    state: &AppState,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let (metrics, metrics_service) = (state.metrics.clone(), state.metrics_service.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(telemetry::trace_requests))
            .app_data(metrics.clone())
            .app_data(metrics_service.clone())
            .configure(controllers::configure_metrics_listener)
    })
    .workers(1)
    .shutdown_timeout(settings.server.shutdown_timeout_seconds)
    .disable_signals()
    .listen(listener)?;
    Ok(server.run())
}
