//! Renders the nginx configuration from the snippets in `nginx/`, the one source that the
//! `nginx/` directory ships, `mediagate nginx-config` prints, and the tests run.

use std::path::{Path, PathBuf};

use crate::config::NginxSettings;

const HTTP_SNIPPET: &str = include_str!("../nginx/mediagate-http.conf");
const SERVER_SNIPPET: &str = include_str!("../nginx/mediagate-server.conf");
const FULL: &str = include_str!("../nginx/nginx.conf.template");
const DECISION_CACHE_ZONE: &str = include_str!("../nginx/mediagate-decision-cache-http.conf");
const DECISION_CACHE: &str = include_str!("../nginx/mediagate-decision-cache.conf");
const STORAGE_LOCAL: &str = include_str!("../nginx/mediagate-storage-local.conf");
const STORAGE_BUCKET: &str = include_str!("../nginx/mediagate-storage-bucket.conf");
const FILE_HEADERS: &str = include_str!("../nginx/mediagate-file-headers.conf");

/// How nginx reaches a bucket at `endpoint` (the AWS SDKs' own when `None`): over TLS unless
/// the endpoint is `http://`, and with a resolver unless its host is an address (AWS's
/// endpoints are host names): `nginx.resolver`, else the nameservers of `resolv_conf` (the
/// text of `/etc/resolv.conf`).
pub fn bucket_bytes(
    settings: &NginxSettings,
    endpoint: Option<&str>,
    resolv_conf: Option<&str>,
) -> Result<Bytes, RenderError> {
    let parsed = endpoint
        .map(crate::config::endpoint_host)
        .transpose()
        .map_err(RenderError::Bucket)?;
    let (is_address, plain_http) = match &parsed {
        Some((host, http)) => (host.parse::<std::net::IpAddr>().is_ok(), *http),
        None => (false, false),
    };
    let resolver = match (&settings.resolver, is_address) {
        (_, true) => None,
        (Some(r), false) => Some(r.clone()),
        (None, false) => Some(resolv_conf.and_then(nameservers).ok_or_else(|| {
            RenderError::Bucket(
                "nginx.resolver: the bucket's endpoint is a host name, and /etc/resolv.conf names no nameserver; set nginx.resolver"
                    .into(),
            )
        })?),
    };
    Ok(Bytes::Bucket {
        resolver,
        trusted_certificate: (!plain_http).then(|| settings.trusted_certificate.clone()),
    })
}

/// The nameservers of a resolv.conf (IPv6 ones in brackets, as nginx wants them).
fn nameservers(resolv_conf: &str) -> Option<String> {
    let servers: Vec<String> = resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| match a {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        })
        .collect();
    (!servers.is_empty()).then(|| servers.join(" "))
}

/// Which part to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// A complete nginx.conf.
    Full,
    /// The `upstream` block, for the `http { }` context.
    Http,
    /// The locations, for a `server { }` block.
    Server,
}

/// The values substituted into the templates.
#[derive(Debug, Clone)]
pub struct Params {
    /// `listen` of the generated server (full config only).
    pub listen: String,
    /// Where nginx serves the bytes from.
    pub storage: Bytes,
    /// Address of the auth listener, `host:port` or `unix:/path`.
    pub auth_upstream: String,
    /// Public URL prefix, e.g. `/media/`.
    pub media_prefix: String,
    /// nginx's error log (full config only): a path under the prefix, or `stderr`.
    pub error_log: String,
    /// nginx's access log (full config only): a path, or `off`.
    pub access_log: String,
    /// Whether nginx keeps mediagate's allows (`nginx.decision_cache_secs` > 0).
    pub decision_cache: bool,
}

/// Where nginx serves the bytes from.
#[derive(Debug, Clone)]
pub enum Bytes {
    /// A local storage root; made absolute, since nginx resolves relative paths against its
    /// prefix.
    Local(PathBuf),
    /// A bucket, fetched with the URL each allow carries.
    Bucket {
        /// nginx's `resolver` (one or more addresses), needed when the endpoint is a host name.
        resolver: Option<String>,
        /// The CA bundle to verify an `https` endpoint with; `None` for a plain-HTTP one.
        trusted_certificate: Option<String>,
    },
}

/// The configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A value that would not stay one token in the config.
    #[error("{0}: {1:?} may not contain whitespace, quotes or any of ; {{ }} $ #")]
    Unsafe(&'static str, String),
    /// The storage root could not be made absolute.
    #[error("storage root: {0}")]
    Root(#[from] std::io::Error),
    /// How to reach the bucket could not be worked out.
    #[error("{0}")]
    Bucket(String),
}

/// Refuses values that could end a directive or open a block: the config is rendered by
/// substitution, so a value must stay one token.
fn token(name: &'static str, value: &str) -> Result<String, RenderError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"';{}$#\\".contains(c));
    if bad {
        Err(RenderError::Unsafe(name, value.to_owned()))
    } else {
        Ok(value.to_owned())
    }
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let p = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    // Resolve `..` and symlinks where the directory exists; nginx's `disable_symlinks` would
    // otherwise refuse a root reached through a symlink.
    Ok(std::fs::canonicalize(&p).unwrap_or(p))
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{by}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces the line holding `marker` (a `{{NAME}}` of the template) with `text` at that
/// line's indentation, or drops the line when there is no text.
fn fill(template: &str, marker: &str, text: Option<&str>) -> String {
    template
        .split_inclusive('\n')
        .map(|line| match line.find(marker) {
            None => line.to_owned(),
            Some(at) => text.map_or_else(String::new, |t| indent(t, &line[..at]) + "\n"),
        })
        .collect()
}

/// The `access_log` arguments: the path in the query-less format of the full config, or `off`
/// (which nginx takes with no format).
fn access_log(value: &str) -> Result<String, RenderError> {
    let path = token("access log", value)?;
    Ok(if path == "off" {
        path
    } else {
        format!("{path} mediagate_noquery")
    })
}

/// The location that serves the bytes, and where the media location hands an allowed request.
fn storage(bytes: &Bytes) -> Result<(String, &'static str, Option<&'static str>), RenderError> {
    let headers = |t: &str| fill(t, "{{FILE_HEADERS}}", Some(FILE_HEADERS));
    Ok(match bytes {
        Bytes::Local(root) => {
            let root = absolute(root)?;
            let root = token("storage root", root.to_string_lossy().trim_end_matches('/'))?;
            (
                headers(STORAGE_LOCAL).replace("{{STORAGE_ROOT}}", &root),
                "/_mediagate/files/$mediagate_path",
                None,
            )
        }
        Bytes::Bucket {
            resolver,
            trusted_certificate,
        } => {
            let resolver = resolver
                .as_deref()
                .map(|r| {
                    let addresses = r
                        .split([' ', ','])
                        .filter(|a| !a.is_empty())
                        .map(|a| token("nginx.resolver", a))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok::<_, RenderError>(format!("resolver {} valid=30s;", addresses.join(" ")))
                })
                .transpose()?;
            let tls = trusted_certificate
                .as_deref()
                .map(|ca| {
                    Ok::<_, RenderError>(format!(
                        "proxy_ssl_server_name on;\nproxy_ssl_verify on;\nproxy_ssl_trusted_certificate {};",
                        token("nginx.trusted_certificate", ca)?
                    ))
                })
                .transpose()?;
            let location = fill(
                &fill(
                    &headers(STORAGE_BUCKET),
                    "{{RESOLVER}}",
                    resolver.as_deref(),
                ),
                "{{UPSTREAM_TLS}}",
                tls.as_deref(),
            );
            (
                location,
                "@mediagate_bucket",
                Some(
                    "auth_request_set $mediagate_upstream $upstream_http_x_media_upstream;\n\
                     auth_request_set $mediagate_etag $upstream_http_x_media_etag;",
                ),
            )
        }
    })
}

/// Renders one part.
pub fn render(part: Part, params: &Params) -> Result<String, RenderError> {
    let upstream = token("auth upstream", &params.auth_upstream)?;
    let prefix = token("media prefix", &params.media_prefix)?;
    let cache = |text| params.decision_cache.then_some(text);
    let http = fill(
        HTTP_SNIPPET,
        "{{DECISION_CACHE_ZONE}}",
        cache(DECISION_CACHE_ZONE),
    )
    .replace("{{AUTH_UPSTREAM}}", &upstream);
    let (location, target, variable) = storage(&params.storage)?;
    let server = fill(SERVER_SNIPPET, "{{DECISION_CACHE}}", cache(DECISION_CACHE));
    let server = fill(&server, "{{UPSTREAM_VARIABLE}}", variable);
    let server = fill(&server, "{{STORAGE_LOCATION}}", Some(&location))
        .replace("{{MEDIA_PREFIX}}", &prefix)
        .replace("{{STORAGE_TARGET}}", target);
    Ok(match part {
        Part::Http => http,
        Part::Server => server,
        Part::Full => FULL
            .replace("{{LISTEN}}", &token("listen", &params.listen)?)
            .replace("{{ERROR_LOG}}", &token("error log", &params.error_log)?)
            .replace("{{ACCESS_LOG}}", &access_log(&params.access_log)?)
            .replace("{{HTTP_SNIPPET}}", &indent(&http, "    "))
            .replace("{{SERVER_SNIPPET}}", &indent(&server, "        ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            listen: "127.0.0.1:8080".into(),
            storage: Bytes::Local("/srv/media".into()),
            auth_upstream: "127.0.0.1:9090".into(),
            media_prefix: "/media/".into(),
            error_log: "error.log".into(),
            access_log: "access.log".into(),
            decision_cache: false,
        }
    }

    #[test]
    fn the_decision_cache_is_rendered_only_when_it_is_on() {
        let off = render(Part::Full, &params()).unwrap();
        assert!(!off.contains("proxy_cache"), "{off}");
        let on = render(
            Part::Full,
            &Params {
                decision_cache: true,
                ..params()
            },
        )
        .unwrap();
        assert!(!on.contains("{{"), "{on}");
        assert!(
            on.contains("\n    proxy_cache_path mediagate_decisions "),
            "{on}"
        );
        // In the subrequest's location, at its indentation, with the key of every credential.
        let auth = &on[on.find("location = /_mediagate/auth {").unwrap()..];
        let auth = &auth[..auth.find("\n        }").unwrap()];
        assert!(
            auth.contains("\n            proxy_cache mediagate_decisions;"),
            "{auth}"
        );
        assert!(
            auth.contains(r#"proxy_cache_key "$request_method\n$request_uri\n$http_cookie\n$http_authorization";"#),
            "{auth}"
        );
        // Only mediagate's X-Accel-Expires makes an answer cacheable, and nothing stale is used.
        let directive = |name: &str| on.lines().any(|l| l.trim_start().starts_with(name));
        assert!(!directive("proxy_cache_valid") && !directive("proxy_cache_use_stale"));
    }

    #[test]
    fn full_config_has_no_placeholder_left() {
        let conf = render(Part::Full, &params()).unwrap();
        assert!(!conf.contains("{{"), "{conf}");
        assert!(conf.contains("location ^~ /media/ {"));
        assert!(conf.contains("alias /srv/media/;"));
        assert!(conf.contains("server 127.0.0.1:9090 max_fails=0;"));
        assert!(conf.contains("listen 127.0.0.1:8080;"));
        // Share links' signatures stay out of the access log.
        assert!(conf.contains("access_log access.log mediagate_noquery;"));
        assert!(conf.contains("\"$request_method $uri $server_protocol\""));
        let off = render(
            Part::Full,
            &Params {
                access_log: "off".into(),
                ..params()
            },
        )
        .unwrap();
        assert!(off.contains("access_log off;"), "{off}");
    }

    #[test]
    fn a_bucket_gets_a_resolver_and_tls_as_its_endpoint_needs() {
        let settings = NginxSettings {
            decision_cache_secs: 0,
            resolver: None,
            trusted_certificate: "/etc/ssl/certs/ca-certificates.crt".into(),
        };
        let conf = "# generated\nnameserver 10.96.0.10\nnameserver fd00::a\nsearch x\n";
        let bytes = |endpoint| bucket_bytes(&settings, endpoint, Some(conf)).unwrap();
        let Bytes::Bucket {
            resolver,
            trusted_certificate,
        } = bytes(None)
        else {
            panic!()
        };
        assert_eq!(resolver.as_deref(), Some("10.96.0.10 [fd00::a]"));
        assert_eq!(
            trusted_certificate.as_deref(),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        let Bytes::Bucket {
            resolver,
            trusted_certificate,
        } = bytes(Some("http://127.0.0.1:9000"))
        else {
            panic!()
        };
        assert_eq!((resolver, trusted_certificate), (None, None));
        let Bytes::Bucket { resolver, .. } = bytes(Some("https://[::1]:9000")) else {
            panic!()
        };
        assert_eq!(resolver, None);
        assert!(bucket_bytes(&settings, Some("https://minio.example"), Some("# none\n")).is_err());
        let named = NginxSettings {
            resolver: Some("kube-dns.kube-system.svc.cluster.local".into()),
            ..settings
        };
        let Bytes::Bucket { resolver, .. } =
            bucket_bytes(&named, Some("https://minio.example"), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            resolver.as_deref(),
            Some("kube-dns.kube-system.svc.cluster.local")
        );
        // Rendered: the resolver in the bucket's location, TLS verified.
        let conf = render(
            Part::Server,
            &Params {
                storage: bucket_bytes(&named, None, None).unwrap(),
                ..params()
            },
        )
        .unwrap();
        assert!(
            conf.contains("resolver kube-dns.kube-system.svc.cluster.local valid=30s;"),
            "{conf}"
        );
        assert!(
            conf.contains("proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;"),
            "{conf}"
        );
        assert!(!conf.contains("{{"), "{conf}");
    }

    #[test]
    fn values_cannot_inject_directives() {
        for (field, value) in [
            ("listen", "80; include /etc/passwd"),
            ("upstream", "x { }"),
            ("prefix", "/media/ {"),
        ] {
            let mut p = params();
            match field {
                "listen" => p.listen = value.into(),
                "upstream" => p.auth_upstream = value.into(),
                _ => p.media_prefix = value.into(),
            }
            assert!(render(Part::Full, &p).is_err(), "{field}");
        }
    }
}
