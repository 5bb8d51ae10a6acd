//! Who the client is, for rate limiting: the peer address, or — only when
//! the peer is a configured trusted proxy — the rightmost address in
//! `Forwarded` / `X-Forwarded-For` that is not a trusted proxy. IPv6 clients
//! are grouped by /64, since one host commonly holds a whole /64.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_governor::{GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError};
use actix_web::HttpRequest;
use actix_web::dev::ServiceRequest;
use anyhow::Context;
use ipnet::IpNet;

use crate::config::RateLimitSettings;
use crate::services::rate_limit::{ClientKey, LocalLimiter};

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR ranges.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .with_context(|| {
                        format!("rate_limit.trusted_proxies: {entry:?} is not an IP or CIDR range")
                    })
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client address of a request with this peer and these headers.
    fn client_address(
        &self,
        peer: IpAddr,
        forwarded: Option<&str>,
        x_forwarded_for: Option<&str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = match (forwarded, x_forwarded_for) {
            (Some(forwarded), _) => forwarded_for(forwarded),
            (None, Some(list)) => list
                .split(',')
                .filter_map(|entry| parse_address(entry.trim()))
                .collect(),
            (None, None) => Vec::new(),
        };
        // Walk from the proxy nearest to us outwards; the first address we do
        // not trust is the client. If every hop is trusted, the farthest is.
        chain
            .iter()
            .rev()
            .find(|address| !self.trusts(**address))
            .or(chain.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// The `for=` addresses of a `Forwarded` header, in order.
fn forwarded_for(header: &str) -> Vec<IpAddr> {
    header
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("for")
                .then_some(value.trim())
        })
        .filter_map(|value| parse_address(value.trim_matches('"')))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
}

/// Extracts the client key of a request; also actix-governor's key extractor.
#[derive(Debug, Clone)]
pub struct ClientKeyExtractor {
    proxies: Arc<TrustedProxies>,
}

impl ClientKeyExtractor {
    pub fn new(proxies: TrustedProxies) -> Self {
        Self {
            proxies: Arc::new(proxies),
        }
    }

    pub fn client(&self, request: &HttpRequest) -> ClientKey {
        ClientKey::of(self.address(request))
    }

    /// The client's address: the peer, or what trusted proxies say.
    pub fn address(&self, request: &HttpRequest) -> IpAddr {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
        };
        let peer = request
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |address| address.ip());
        self.proxies
            .client_address(peer, header("forwarded"), header("x-forwarded-for"))
    }
}

impl KeyExtractor for ClientKeyExtractor {
    type Key = ClientKey;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, request: &ServiceRequest) -> Result<ClientKey, Self::KeyExtractionError> {
        Ok(self.client(request.request()))
    }
}

/// The in-process tier of the general limit, built once per process (not
/// per worker, or each worker would allow the whole limit).
pub fn local_shield(
    settings: &RateLimitSettings,
    extractor: ClientKeyExtractor,
) -> anyhow::Result<Arc<LocalLimiter>> {
    let requests = settings.requests.max(1);
    let period = Duration::from_secs(settings.window_seconds) / requests;
    let config = GovernorConfigBuilder::default()
        .key_extractor(extractor)
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(requests)
        .use_headers()
        .finish()
        .context("rate_limit: requests and window_seconds must be positive")?;
    Ok(config.limiter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let spoofed = "203.0.113.9";
        assert_eq!(
            proxies.client_address(ip("198.51.100.1"), None, Some(spoofed)),
            ip("198.51.100.1")
        );
        assert_eq!(
            proxies.client_address(ip("10.1.2.3"), None, Some(spoofed)),
            ip(spoofed)
        );
        // A client-supplied first entry is skipped: the rightmost untrusted wins.
        let chain = "1.1.1.1, 203.0.113.9, 10.0.0.5";
        assert_eq!(
            proxies.client_address(ip("10.0.0.6"), None, Some(chain)),
            ip("203.0.113.9")
        );
        let forwarded = r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https, for=192.0.2.1"#;
        assert_eq!(
            proxies.client_address(ip("192.0.2.1"), Some(forwarded), None),
            ip("2001:db8::7")
        );
        assert_eq!(
            proxies.client_address(ip("10.0.0.6"), None, None),
            ip("10.0.0.6")
        );
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:aaaa::1")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2:bbbb::9")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:192.0.2.8")).to_string(),
            "192.0.2.8"
        );
        assert_eq!(ClientKey::of(ip("192.0.2.8")).to_string(), "192.0.2.8");
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.example").is_err());
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
    }
}
