//! Store URLs: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX/VM[?cacert=F&cert=F&key=F]`
//! (README "Running a fleet").

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The scheme of an etcd store URL.
pub const SCHEME: &str = "etcd://";

/// Whether `text` names an etcd store (and not a file).
pub fn is_etcd_url(text: &str) -> bool {
    text.starts_with(SCHEME)
}

/// Client TLS files, as etcdctl takes them (`--cacert`, `--cert`, `--key`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// CA bundle that signs the members' certificates; TLS is on when set.
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for members that ask for one.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Fills what is unset here from `other` (command-line options win
    /// over the URL's query).
    pub fn or(self, other: TlsFiles) -> TlsFiles {
        TlsFiles {
            cacert: self.cacert.or(other.cacert),
            cert: self.cert.or(other.cert),
            key: self.key.or(other.key),
        }
    }

    /// Whether the connection uses TLS.
    pub fn enabled(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some()
    }
}

/// A parsed etcd store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdUrl {
    /// `HOST:PORT` as written.
    pub endpoints: Vec<String>,
    /// Path segments before the VM name.
    pub prefix: Vec<String>,
    pub vm: String,
    pub tls: TlsFiles,
}

/// Why a store URL is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    #[error("{0:?}: not an etcd store URL (etcd://HOST:PORT[,HOST:PORT...]/PREFIX/VM)")]
    Scheme(String),
    #[error("{url:?}: {problem}")]
    Invalid { url: String, problem: String },
    #[error("{endpoint}: cannot resolve it: {reason}")]
    Resolve { endpoint: String, reason: String },
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl EtcdUrl {
    /// Parses `etcd://HOST:PORT[,HOST:PORT...]/PREFIX/VM[?QUERY]`.
    pub fn parse(text: &str) -> Result<EtcdUrl, UrlError> {
        let bad = |problem: &str| UrlError::Invalid {
            url: text.to_string(),
            problem: problem.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| UrlError::Scheme(text.to_string()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no /PREFIX/VM after the endpoints"))?;
        let endpoints: Vec<String> = hosts.split(',').map(str::to_string).collect();
        for e in &endpoints {
            let port = e.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            if !matches!(port, Some((h, Ok(p))) if !h.is_empty() && p != 0) {
                return Err(bad(&format!("endpoint {e:?} is not HOST:PORT")));
            }
        }
        let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
        if segments.len() < 2 || !segments.iter().all(|s| valid_segment(s)) {
            return Err(bad(
                "the path must be /PREFIX/VM: at least two segments of letters, digits, '.', '_' or '-'",
            ));
        }
        let vm = segments.pop().unwrap_or_default();
        let mut tls = TlsFiles::default();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(&format!("query item {pair:?} is not KEY=VALUE")))?;
            let slot = match k {
                "cacert" => &mut tls.cacert,
                "cert" => &mut tls.cert,
                "key" => &mut tls.key,
                _ => return Err(bad(&format!("unknown query key {k:?} (cacert, cert, key)"))),
            };
            *slot = Some(PathBuf::from(v));
        }
        Ok(EtcdUrl {
            endpoints,
            prefix: segments,
            vm,
            tls,
        })
    }

    /// The common prefix of every key of this store: `/PREFIX/VM/`.
    pub fn key_base(&self) -> String {
        format!("/{}/{}/", self.prefix.join("/"), self.vm)
    }

    /// The URL without its query (what messages name).
    pub fn label(&self) -> String {
        format!(
            "{SCHEME}{}/{}/{}",
            self.endpoints.join(","),
            self.prefix.join("/"),
            self.vm
        )
    }

    /// The endpoints' addresses, resolved now: the sandboxed service
    /// cannot read /etc/hosts or ask a DNS server later, and its Landlock
    /// rules allow connecting to these ports only.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>, UrlError> {
        let mut out = Vec::new();
        for e in &self.endpoints {
            let addrs = e.to_socket_addrs().map_err(|err| UrlError::Resolve {
                endpoint: e.clone(),
                reason: err.to_string(),
            })?;
            out.extend(addrs);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The first endpoint's host name (the name the members' certificates
    /// are checked against with TLS).
    pub fn first_host(&self) -> &str {
        self.endpoints
            .first()
            .and_then(|e| e.rsplit_once(':'))
            .map_or("", |(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_endpoints_prefix_vm_and_tls_files() {
        let u =
            EtcdUrl::parse("etcd://10.0.0.1:2379,h2:2380/fleet/uefi/vm-7?cacert=/ca.pem&key=/k")
                .unwrap();
        assert_eq!(u.endpoints, ["10.0.0.1:2379", "h2:2380"]);
        assert_eq!(u.prefix, ["fleet", "uefi"]);
        assert_eq!(u.vm, "vm-7");
        assert_eq!(u.key_base(), "/fleet/uefi/vm-7/");
        assert_eq!(u.tls.cacert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(u.tls.key, Some(PathBuf::from("/k")));
        assert_eq!(u.tls.cert, None);
        assert_eq!(u.label(), "etcd://10.0.0.1:2379,h2:2380/fleet/uefi/vm-7");
    }

    #[test]
    fn malformed_urls_are_refused() {
        for bad in [
            "etcd://h:2379/vm",
            "etcd://h:2379",
            "etcd://h/p/vm",
            "etcd://h:0/p/vm",
            "etcd://:2379/p/vm",
            "etcd://h:2379/p//vm",
            "etcd://h:2379/p/../vm",
            "etcd://h:2379/p/v m",
            "etcd://h:2379/p/vm?user=x",
            "file:///p/vm",
        ] {
            assert!(EtcdUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
