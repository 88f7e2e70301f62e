//! `[storage]` and `[media]`: where the bytes are (a local directory, or an S3-compatible
//! bucket), and the public URL prefix they are served under.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Directory holding file bytes when they are local; nginx serves it from its internal
    /// location.
    pub root: PathBuf,
    /// Where the bytes live: unset or `file:///PATH` (local, `root`), or `s3://BUCKET[/PREFIX]`.
    pub url: Option<String>,
    /// `[storage.s3]`: overrides of the AWS SDKs' environment variables.
    #[serde(default)]
    pub s3: S3Settings,
}

/// `[storage.s3]`. Each key, when set, overrides the AWS SDKs' variable named beside it; the
/// rest (web identity, container credentials) comes from those variables only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: a custom endpoint (MinIO, Ceph, Garage, R2, …); path-style then.
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretString>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<SecretString>,
    /// `AWS_ALLOW_HTTP`: allow a plain-HTTP endpoint.
    pub allow_http: Option<bool>,
    /// How long the URL nginx fetches an object with is valid (seconds). It lives only inside
    /// nginx, for one request; short keeps a URL that reaches a log useless soon.
    #[serde(default = "default_presign_secs")]
    pub presign_secs: u64,
    /// The endpoint the application's clients send direct uploads to, when they reach the
    /// bucket under another address than mediagate does (default: `endpoint`).
    pub upload_endpoint: Option<String>,
    /// How long a direct upload may take from its creation to its completion (seconds).
    #[serde(default = "default_upload_secs")]
    pub upload_secs: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: None,
            presign_secs: default_presign_secs(),
            upload_endpoint: None,
            upload_secs: default_upload_secs(),
        }
    }
}

fn default_presign_secs() -> u64 {
    30
}

fn default_upload_secs() -> u64 {
    3600
}

/// The host of a bucket endpoint URL, and whether it is plain HTTP.
pub fn endpoint_host(endpoint: &str) -> Result<(String, bool), String> {
    let url = object_store::signer::Url::parse(endpoint)
        .map_err(|e| format!("storage.s3.endpoint {endpoint:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("storage.s3.endpoint {endpoint:?}: no host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    Ok((host, url.scheme() == "http"))
}

/// Where the bytes live, parsed from `storage.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory (`storage.root`, or the path of `file:///PATH`).
    Local(PathBuf),
    /// `s3://BUCKET[/PREFIX]`.
    Bucket {
        /// The bucket's name.
        bucket: String,
        /// A key prefix every object is under, without slashes at either end ("" for none).
        prefix: String,
    },
}

impl StorageSettings {
    /// Where the bytes live.
    pub fn location(&self) -> Result<StorageUrl, String> {
        let Some(url) = self.url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(StorageUrl::Local(self.root.clone()));
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err("file:// needs an absolute path, e.g. file:///srv/media".into());
            }
            return Ok(StorageUrl::Local(PathBuf::from(path)));
        }
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err("must be file:///PATH or s3://BUCKET[/PREFIX]".into());
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3 to 63 of a-z 0-9 . -, starting and ending alphanumeric.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(format!(
                "{bucket:?} is not a bucket name (3-63 of a-z 0-9 . -)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix.split('/').all(|seg| {
            prefix.is_empty()
                || (!seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        });
        if !prefix_ok {
            return Err(format!(
                "prefix {prefix:?}: segments of A-Z a-z 0-9 - _ . only"
            ));
        }
        Ok(StorageUrl::Bucket {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// Public URL prefix, starting and ending with `/`.
    pub prefix: String,
}

impl StorageSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.root.as_os_str().is_empty() {
            problems.push("storage.root: must not be empty".into());
        }
        if let Err(why) = self.location() {
            problems.push(format!("storage.url: {why}"));
        }
        if !(1..=3600).contains(&self.s3.presign_secs) {
            problems.push("storage.s3.presign_secs: must be between 1 and 3600".into());
        }
        if !(1..=7 * 86_400).contains(&self.s3.upload_secs) {
            problems.push("storage.s3.upload_secs: must be between 1 and 604800".into());
        }
    }
}

impl MediaSettings {
    /// The prefix must be a path nginx's normalization leaves alone, so that the location it
    /// matches and the path mediagate parses are the same.
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let p = &self.prefix;
        let prefix_ok = p.len() >= 2
            && p.starts_with('/')
            && p.ends_with('/')
            && !p.contains("//")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
            && !p.split('/').any(|s| s == "." || s == "..");
        if !prefix_ok {
            problems.push(format!(
                "media.prefix: {p:?} must start and end with '/' and contain only A-Z a-z 0-9 - . _ ~ in non-dot segments"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(url: Option<&str>) -> Result<StorageUrl, String> {
        StorageSettings {
            root: "./var/media".into(),
            url: url.map(str::to_owned),
            s3: S3Settings::default(),
        }
        .location()
    }

    #[test]
    fn storage_urls_name_a_directory_or_a_bucket() {
        assert_eq!(at(None), Ok(StorageUrl::Local("./var/media".into())));
        assert_eq!(at(Some("")), Ok(StorageUrl::Local("./var/media".into())));
        assert_eq!(
            at(Some("file:///srv/media")),
            Ok(StorageUrl::Local("/srv/media".into()))
        );
        assert_eq!(
            at(Some("s3://media-bucket")),
            Ok(StorageUrl::Bucket {
                bucket: "media-bucket".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            at(Some("s3://media.example/site/uploads/")),
            Ok(StorageUrl::Bucket {
                bucket: "media.example".into(),
                prefix: "site/uploads".into()
            })
        );
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Media",
            "s3://-media",
            "s3://media/../x",
            "s3://media/a//b",
            "s3://media/a b",
            "file://relative",
            "gs://media",
        ] {
            assert!(at(Some(bad)).is_err(), "{bad}");
        }
    }
}
