//! The SSRF guard: a model's base URL (and an identity provider's addresses) make the server
//! send requests. By default only `https` to public addresses; the operator may allow more
//! (`OUTBOUND_ALLOWED_HOSTS`, or its older name `AI_ALLOWED_HOSTS`: `host:port` pairs, e.g. a
//! local Ollama). The name is resolved once here and the request connects to the address
//! checked (no DNS rebinding between check and connect).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

use crate::ProviderError;

#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<(String, u16)>,
}

/// A URL that passed: connect to `address` for `host`.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    pub host: String,
    pub address: SocketAddr,
}

impl Guard {
    /// `allowed`: `host:port` pairs the operator trusts (any scheme, any address).
    pub fn new(allowed: &[String]) -> Result<Guard, String> {
        let allowed = allowed
            .iter()
            .map(|entry| {
                let (host, port) = entry
                    .trim()
                    .rsplit_once(':')
                    .ok_or_else(|| format!("{entry:?} is not host:port"))?;
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("{entry:?} has no valid port"))?;
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase();
                Ok((host, port))
            })
            .collect::<Result<_, String>>()?;
        Ok(Guard { allowed })
    }

    fn is_allowed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|(h, p)| h == host && *p == port)
    }

    /// Check `url` and resolve its host to the one address the request will use.
    pub async fn check(&self, url: &Url) -> Result<Checked, ProviderError> {
        let blocked = |why: String| ProviderError::Blocked(format!("{}: {why}", redact_url(url)));
        let host = url
            .host_str()
            .ok_or_else(|| blocked("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| blocked("no port".into()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(blocked("credentials in the URL are not accepted".into()));
        }
        let allowed = self.is_allowed(&host, port);
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            "http" => return Err(blocked(
                "only https is allowed (the operator may allow a host with OUTBOUND_ALLOWED_HOSTS)"
                    .into(),
            )),
            other => return Err(blocked(format!("the scheme {other} is not allowed"))),
        }
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| blocked(format!("cannot resolve the host: {e}")))?
                .collect(),
        };
        let first = *addresses
            .first()
            .ok_or_else(|| blocked("the host resolves to no address".into()))?;
        if !allowed {
            if let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
                return Err(blocked(format!(
                    "it resolves to {}, which is not a public address (the operator may allow it with OUTBOUND_ALLOWED_HOSTS)",
                    private.ip()
                )));
            }
        }
        Ok(Checked {
            url: url.clone(),
            host,
            address: first,
        })
    }
}

/// A URL for messages: no credentials, no query (keys sometimes travel there).
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

/// An address on the public internet: not loopback, private, link-local, shared (CGNAT),
/// multicast, reserved, documentation or benchmarking space, in IPv4 or IPv6 (mapped and
/// NAT64 addresses are judged by the IPv4 address inside).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            let o = v6.octets();
            // NAT64's well-known prefix and 6to4 reach the IPv4 address inside them.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            if s[0] == 0x2002 {
                return is_public_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 (RFC 8215)
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
                || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
                || (s[0] == 0x2001 && s[1] == 0) // Teredo: the server would tunnel
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and the like
                && v6 != Ipv6Addr::UNSPECIFIED
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)) // IETF protocol assignments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:ffff::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "100::1",
            "2001:2::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "2002:101:101::1",
            "64:ff9b::101:101",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn urls_are_refused_unless_https_to_a_public_address_or_allowed() {
        let guard = Guard::new(&["127.0.0.1:11434".into()]).unwrap();
        for refused in [
            "http://api.example.com/v1",
            "https://127.0.0.1/v1",
            "https://127.0.0.1:5432/v1",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8080/v1",
            "https://localhost:11434/v1",
            "https://user:pass@1.1.1.1/v1",
            "ftp://1.1.1.1/v1",
            "http://127.0.0.1:11435/v1",
        ] {
            let url = Url::parse(refused).unwrap();
            assert!(
                matches!(guard.check(&url).await, Err(ProviderError::Blocked(_))),
                "{refused}"
            );
        }
        let ollama = guard
            .check(&Url::parse("http://127.0.0.1:11434/v1").unwrap())
            .await
            .unwrap();
        assert_eq!(ollama.address, "127.0.0.1:11434".parse().unwrap());
        let public = guard
            .check(&Url::parse("https://1.1.1.1/v1").unwrap())
            .await
            .unwrap();
        assert_eq!(public.address, "1.1.1.1:443".parse().unwrap());
    }
}
