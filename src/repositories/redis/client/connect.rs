//! Setting a client up: where and how to connect (URL, TLS), the first
//! PING, and start-up errors that say which usual failure this is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::{AsyncConnectionConfig, ConnectionInfo, IntoConnectionInfo};
use secrecy::ExposeSecret;

use super::cluster::connect_cluster;
use super::lanes::Shared;
use super::{RedisClient, RedisError};
use crate::config::{RedisSettings, redact_url};

impl RedisClient {
    /// Checks the settings and that Redis answers, and opens
    /// `pool_min_idle` connections up front for the calling thread.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let seeds = settings.cluster_seeds();
        let cluster = if seeds.is_empty() {
            None
        } else {
            Some(Arc::new(connect_cluster(settings, &seeds).await?))
        };
        let shown = redact_url(settings.url.expose_secret());
        let connection = if cluster.is_some() {
            // Unused on a cluster; kept so the type stays one.
            "redis://127.0.0.1:6379".into_connection_info()?
        } else {
            connection_info(settings).with_context(|| format!("invalid Redis URL {shown}"))?
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(settings.create_timeout_ms)))
            .set_response_timeout(Some(settings.operation_timeout()));
        let client = Self {
            shared: Arc::new(Shared::new(connection, config, settings)),
            cluster,
            operation_timeout: settings.operation_timeout(),
        };
        if client.cluster.is_some() {
            return Ok(client);
        }
        client
            .ping()
            .await
            .map_err(|error| anyhow::anyhow!("Redis at {shown} {}", describe(&error)))?;
        client.warm_up(settings.pool_min_idle).await;
        Ok(client)
    }
}

/// The CA of `redis.tls_ca_file` as the one trusted root, when it is set
/// (a self-signed or private CA); `None` trusts the public roots.
pub fn tls_certificates(
    settings: &RedisSettings,
) -> Result<Option<redis::TlsCertificates>, RedisError> {
    if settings.tls_ca_file.is_empty() {
        return Ok(None);
    }
    let file = &settings.tls_ca_file;
    let pem = std::fs::read(file).map_err(|error| {
        RedisError::Setup(format!("cannot read redis.tls_ca_file {file}: {error}"))
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// Where and how to connect: `redis.url`, with [`tls_certificates`] for a
/// `rediss://` URL.
pub fn connection_info(settings: &RedisSettings) -> Result<ConnectionInfo, RedisError> {
    let info = settings.url.expose_secret().into_connection_info()?;
    let Some(certificates) = tls_certificates(settings)? else {
        return Ok(info);
    };
    let client = redis::Client::build_with_tls(info, certificates).map_err(|error| {
        RedisError::Setup(format!(
            "redis.tls_ca_file {} needs a rediss:// URL and a PEM certificate: {error}",
            settings.tls_ca_file
        ))
    })?;
    Ok(client.get_connection_info().clone())
}

/// Says which of the usual start-up failures this is.
fn describe(error: &RedisError) -> String {
    let cause = match error {
        RedisError::Timeout(after) => format!("did not answer within {after:?} (timeout)"),
        RedisError::Pool(deadpool_redis::PoolError::Timeout(_)) => {
            "did not answer in time (timeout)".to_string()
        }
        RedisError::Pool(deadpool_redis::PoolError::Backend(inner))
        | RedisError::Command(inner) => describe_redis(inner),
        RedisError::Pool(other) => other.to_string(),
        RedisError::Setup(reason) => reason.clone(),
        RedisError::Encode(inner) => inner.to_string(),
    };
    format!("is not usable: {cause}")
}

pub(super) fn describe_redis(error: &redis::RedisError) -> String {
    if error.is_connection_refusal() {
        format!("connection refused ({error})")
    } else if error.is_timeout() {
        format!("timeout ({error})")
    } else if matches!(error.kind(), redis::ErrorKind::Parse) {
        format!(
            "something answers there, but not as Redis does: another service on that port, \
             or a TLS port named with redis:// (TLS needs rediss://) ({error})"
        )
    } else if matches!(error.kind(), redis::ErrorKind::AuthenticationFailed)
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        format!("authentication failed ({error})")
    } else {
        error.to_string()
    }
}
