//! The client's address, as far as it can be trusted: nginx's `X-Real-IP` (or the last
//! `X-Forwarded-For` hop, the one nginx added) when the request came from a configured
//! proxy, else the peer of the TCP connection. A client that talks to a service directly
//! cannot pick its own address by sending the header.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// `req`'s client address, or `None` when actix knows no peer (only in unit tests).
pub fn client_address(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(forwarded_for(req, peer, trusted).unwrap_or(peer))
}

fn forwarded_for(req: &HttpRequest, peer: IpAddr, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return None;
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(ip) = header("x-real-ip").and_then(|v| v.trim().parse().ok()) {
        return Some(ip);
    }
    header("x-forwarded-for").and_then(|v| v.rsplit(',').next()).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        // (peer, headers, the client it names, case)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case<'_>; 6] = [
            ("127.0.0.1:5000", &[("x-real-ip", "203.0.113.7")], "203.0.113.7", "nginx on loopback"),
            ("10.1.2.3:5000", &[("x-forwarded-for", "1.1.1.1, 203.0.113.8")], "203.0.113.8", "last hop"),
            ("198.51.100.9:5000", &[("x-real-ip", "203.0.113.7")], "198.51.100.9", "untrusted peer"),
            ("127.0.0.1:5000", &[], "127.0.0.1", "no header"),
            ("127.0.0.1:5000", &[("x-real-ip", "not an address")], "127.0.0.1", "garbage"),
            ("127.0.0.1:5000", &[("x-real-ip", "2001:db8::1")], "2001:db8::1", "IPv6"),
        ];
        for (peer, headers, want, case) in cases {
            let mut req = actix_web::test::TestRequest::default().peer_addr(peer.parse().unwrap());
            for (k, v) in headers {
                req = req.insert_header((*k, *v));
            }
            let got = client_address(&req.to_http_request(), &trusted).unwrap();
            assert_eq!(got, want.parse::<IpAddr>().unwrap(), "{case}");
        }
    }
}
