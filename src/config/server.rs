//! `[server]`: the two listeners and the worker threads.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// nginx's subrequests come here: `HOST:PORT` (keep it on loopback or a pod-local address)
    /// or `unix:/PATH`, a cheaper hop when nginx runs on the same machine.
    pub auth_listen: AuthListen,
    /// Mode of the auth listener's unix socket, octal. nginx's workers must be able to write
    /// to it (connecting is writing): they run as another user than mediagate.
    #[serde(default = "default_socket_mode", deserialize_with = "octal")]
    pub auth_socket_mode: u32,
    /// Owner of the auth listener's unix socket, `UID`, `UID:GID` or `:GID` (numeric: no user
    /// database is read); changing it needs the rights to.
    #[serde(default)]
    pub auth_socket_owner: Option<String>,
    /// Admin API, health and metrics.
    pub admin_listen: SocketAddr,
    /// Worker threads for the auth listener; 0 = one per CPU.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
}

/// Where the auth listener listens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum AuthListen {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket's absolute path.
    Unix(PathBuf),
}

impl TryFrom<String> for AuthListen {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') && path.len() < 100 => {
                Ok(Self::Unix(PathBuf::from(path)))
            }
            // sun_path holds 108 bytes on Linux, fewer elsewhere.
            Some(_) => Err(format!(
                "{s:?}: unix: needs an absolute path shorter than 100 bytes"
            )),
            None => s
                .parse()
                .map(Self::Tcp)
                .map_err(|_| format!("{s:?} is neither HOST:PORT nor unix:/PATH")),
        }
    }
}

impl fmt::Display for AuthListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl AuthListen {
    /// The TCP port, if it is a TCP address.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Tcp(a) => Some(a.port()),
            Self::Unix(_) => None,
        }
    }
}

fn default_socket_mode() -> u32 {
    0o666
}

/// A mode, octal: `"0660"`. The environment's values arrive parsed (`0660` as the number 660),
/// so a number's decimal digits are read as the octal ones they were written as.
fn octal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Text(String),
        Number(u32),
    }
    let mode = match Mode::deserialize(d)? {
        Mode::Text(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        Mode::Number(n) => u32::from_str_radix(&n.to_string(), 8).ok(),
    };
    mode.filter(|m| *m <= 0o777)
        .ok_or_else(|| serde::de::Error::custom("not a file mode: write it as \"0660\""))
}

/// A numeric owner, `UID`, `UID:GID` or `:GID`.
pub fn parse_owner(s: &str) -> Result<(Option<u32>, Option<u32>), String> {
    let id = |p: &str| -> Result<Option<u32>, String> {
        if p.is_empty() {
            Ok(None)
        } else {
            p.parse()
                .map(Some)
                .map_err(|_| format!("{s:?}: owner ids are numbers (UID, UID:GID or :GID)"))
        }
    };
    let (uid, gid) = match s.split_once(':') {
        Some((u, g)) => (id(u)?, id(g)?),
        None => (id(s)?, None),
    };
    if uid.is_none() && gid.is_none() {
        return Err(format!("{s:?}: names no owner"));
    }
    Ok((uid, gid))
}

impl ServerSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.auth_listen == AuthListen::Tcp(self.admin_listen) && self.admin_listen.port() != 0 {
            problems.push("server.admin_listen: must differ from server.auth_listen".into());
        }
        if let Some(Err(e)) = self.auth_socket_owner.as_deref().map(parse_owner) {
            problems.push(format!("server.auth_socket_owner: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            AuthListen::try_from("unix:/run/mediagate/auth.sock".to_owned()),
            Ok(AuthListen::Unix("/run/mediagate/auth.sock".into()))
        );
        assert!(AuthListen::try_from("unix:relative.sock".to_owned()).is_err());
        assert!(AuthListen::try_from(format!("unix:/{}", "a".repeat(120))).is_err());
        assert_eq!(
            AuthListen::try_from("127.0.0.1:9090".to_owned()).map(|a| a.to_string()),
            Ok("127.0.0.1:9090".to_owned())
        );
        assert!(AuthListen::try_from("nowhere".to_owned()).is_err());
    }

    #[test]
    fn modes_are_octal_as_written() {
        #[derive(Deserialize)]
        struct M {
            #[serde(deserialize_with = "octal")]
            m: u32,
        }
        let mode = |v: serde_json::Value| {
            serde_json::from_value::<M>(serde_json::json!({ "m": v })).map(|m| m.m)
        };
        assert_eq!(mode("0660".into()).ok(), Some(0o660));
        assert_eq!(mode(660.into()).ok(), Some(0o660));
        assert_eq!(mode(400.into()).ok(), Some(0o400));
        assert!(mode("0999".into()).is_err() && mode(1777.into()).is_err());
    }

    #[test]
    fn owners() {
        assert_eq!(parse_owner("101"), Ok((Some(101), None)));
        assert_eq!(parse_owner("101:33"), Ok((Some(101), Some(33))));
        assert_eq!(parse_owner(":33"), Ok((None, Some(33))));
        for bad in ["", ":", "www-data", "1:x"] {
            assert!(parse_owner(bad).is_err(), "{bad}");
        }
    }
}
