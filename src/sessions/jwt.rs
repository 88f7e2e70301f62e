//! The `jwt` source: a signed token in a cookie or in `Authorization: Bearer`.
//!
//! Verification is jsonwebtoken's. The configured algorithms must share one key type, so an
//! HS token can never be checked with an RSA public key as its secret (algorithm confusion),
//! and `none` is not an algorithm here at all. `exp` is required, `nbf` checked, both with a
//! small leeway; `iss` and `aud` are required and checked when configured.

use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;

use super::{
    Caller, MAX_CREDENTIAL, SourceSettings, roles_from_json, single_cookie, user_from_json,
};

/// A configured `jwt` source.
pub struct JwtSource {
    cookie: Option<String>,
    key: DecodingKey,
    validation: Validation,
    user_claim: String,
    roles_claim: Option<String>,
}

/// The key family of an algorithm name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn parse_algorithm(name: &str) -> Result<(Algorithm, Family), String> {
    Ok(match name {
        "HS256" => (Algorithm::HS256, Family::Hmac),
        "HS384" => (Algorithm::HS384, Family::Hmac),
        "HS512" => (Algorithm::HS512, Family::Hmac),
        "RS256" => (Algorithm::RS256, Family::Rsa),
        "RS384" => (Algorithm::RS384, Family::Rsa),
        "RS512" => (Algorithm::RS512, Family::Rsa),
        "PS256" => (Algorithm::PS256, Family::Rsa),
        "PS384" => (Algorithm::PS384, Family::Rsa),
        "PS512" => (Algorithm::PS512, Family::Rsa),
        "ES256" => (Algorithm::ES256, Family::Ec),
        "ES384" => (Algorithm::ES384, Family::Ec),
        "EdDSA" => (Algorithm::EdDSA, Family::Ed),
        other => {
            return Err(format!(
                "unknown algorithm {other:?} (none is never accepted)"
            ));
        }
    })
}

impl JwtSource {
    /// Builds the source; the error names what is wrong with its settings.
    pub fn new(s: &SourceSettings) -> Result<Self, String> {
        let SourceSettings::Jwt {
            cookie,
            algorithms,
            secret,
            public_key_file,
            user_claim,
            roles_claim,
            issuer,
            audience,
            leeway_secs,
        } = s
        else {
            return Err("not a jwt source".into());
        };
        if algorithms.is_empty() {
            return Err("`algorithms` must list at least one algorithm".into());
        }
        let parsed: Vec<(Algorithm, Family)> = algorithms
            .iter()
            .map(|a| parse_algorithm(a))
            .collect::<Result<_, _>>()?;
        let family = parsed[0].1;
        if parsed.iter().any(|(_, f)| *f != family) {
            return Err(
                "all `algorithms` must use one kind of key (HS*, RS*/PS*, ES* or EdDSA)".into(),
            );
        }
        let key = match (family, secret, public_key_file) {
            (Family::Hmac, Some(secret), None) => {
                if secret.expose_secret().len() < 32 {
                    return Err("`secret` must be at least 32 characters".into());
                }
                DecodingKey::from_secret(secret.expose_secret().as_bytes())
            }
            (Family::Hmac, _, _) => {
                return Err("HS* algorithms need `secret` and no `public_key_file`".into());
            }
            (_, None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("public_key_file {}: {e}", path.display()))?;
                let key = match family {
                    Family::Rsa => DecodingKey::from_rsa_pem(&pem),
                    Family::Ec => DecodingKey::from_ec_pem(&pem),
                    _ => DecodingKey::from_ed_pem(&pem),
                };
                key.map_err(|e| format!("public_key_file {}: {e}", path.display()))?
            }
            _ => {
                return Err(
                    "RS*/PS*/ES*/EdDSA need `public_key_file` (PEM) and no `secret`".into(),
                );
            }
        };
        let mut validation = Validation::new(parsed[0].0);
        validation.algorithms = parsed.iter().map(|(a, _)| *a).collect();
        validation.leeway = *leeway_secs;
        validation.validate_nbf = true;
        // A configured check makes its claim required: jsonwebtoken checks `iss` and `aud` only
        // when the token has them, so a token without them would otherwise pass both checks.
        let mut required = vec!["exp"];
        if issuer.is_some() {
            required.push("iss");
        }
        if audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match issuer {
            Some(i) => validation.set_issuer(&[i]),
            None => validation.iss = None,
        }
        match audience {
            Some(a) => validation.set_audience(&[a]),
            None => validation.validate_aud = false,
        }
        Ok(Self {
            cookie: cookie.clone(),
            key,
            validation,
            user_claim: user_claim.clone(),
            roles_claim: roles_claim.clone(),
        })
    }

    fn token(&self, req: &HttpRequest) -> Option<String> {
        if let Some(t) = self.cookie.as_deref().and_then(|c| single_cookie(req, c)) {
            return Some(t);
        }
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.len() <= MAX_CREDENTIAL)
            .map(str::to_owned)
    }

    /// The caller, if a token is present and valid.
    pub fn resolve(&self, req: &HttpRequest) -> Option<Caller> {
        self.verify(&self.token(req)?)
    }

    /// The caller a token names, if it verifies (signature, `exp`, `nbf`, `iss`, `aud`) and
    /// holds a usable user claim. jsonwebtoken reads the clock itself.
    pub fn verify(&self, token: &str) -> Option<Caller> {
        if token.len() > MAX_CREDENTIAL {
            return None;
        }
        let claims =
            match jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation) {
                Ok(data) => data.claims,
                Err(e) => {
                    tracing::debug!(reason = %e.kind_name(), "JWT refused; no session.");
                    return None;
                }
            };
        let user_id = claims.get(&self.user_claim).and_then(user_from_json)?;
        let roles = roles_from_json(self.roles_claim.as_deref().and_then(|c| claims.get(c)));
        // Validation has required a whole-number `exp`; should it still not read as one, the
        // session counts as ending now, which only keeps nginx from caching the answer.
        let expires_at = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(i64::MIN);
        Some(Caller {
            user_id,
            roles,
            expires_at: Some(expires_at),
        })
    }
}

/// A short name of a jsonwebtoken error, without any part of the token.
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind()).chars().take(40).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    const KEY: &str = "a-jwt-secret-of-at-least-32-characters";

    fn source(issuer: Option<&str>, audience: Option<&str>) -> JwtSource {
        JwtSource::new(&SourceSettings::Jwt {
            cookie: None,
            algorithms: vec!["HS256".into()],
            secret: Some(KEY.to_owned().into()),
            public_key_file: None,
            user_claim: "sub".into(),
            roles_claim: None,
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
            leeway_secs: 10,
        })
        .unwrap()
    }

    fn token(claims: serde_json::Value) -> String {
        let mut claims = claims;
        claims["sub"] = "alice".into();
        claims["exp"] = (crate::clock::now() + 600).into();
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(KEY.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_configured_issuer_or_audience_is_required() {
        let s = source(Some("tests"), Some("mediagate"));
        let both = serde_json::json!({"iss": "tests", "aud": "mediagate"});
        assert!(s.verify(&token(both)).is_some());
        for claims in [
            serde_json::json!({}),
            serde_json::json!({"iss": "tests"}),
            serde_json::json!({"aud": "mediagate"}),
            serde_json::json!({"iss": "evil", "aud": "mediagate"}),
            serde_json::json!({"iss": "tests", "aud": "other"}),
        ] {
            assert!(s.verify(&token(claims.clone())).is_none(), "{claims}");
        }
        // Unconfigured checks ask for nothing.
        assert!(
            source(None, None)
                .verify(&token(serde_json::json!({})))
                .is_some()
        );
        assert!(
            source(Some("tests"), None)
                .verify(&token(serde_json::json!({"iss": "tests"})))
                .is_some()
        );
    }
}
