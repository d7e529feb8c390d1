//! Registry authentication as Docker does it: the `/v2/` challenge, Basic credentials and
//! the Bearer token flow. Secrets live only in [`Credential`] and the token types, whose
//! `Debug` output is redacted, and never reach any message.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

/// What the registry's `/v2/` endpoint asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `/v2/` answered 200: requests go out anonymous.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header. Bearer wins over Basic when both are offered.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let mut basic = false;
    for c in &challenges {
        if c.scheme.eq_ignore_ascii_case("bearer") {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            let realm = param("realm")?;
            return Some(Challenge::Bearer {
                realm,
                service: param("service"),
            });
        }
        basic |= c.scheme.eq_ignore_ascii_case("basic");
    }
    basic.then_some(Challenge::Basic)
}

/// A username and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl Credential {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A token endpoint's answer (distribution's token spec accepts both names).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub fn into_token(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        // Tokens without expires_in live 60 s (token spec); keep a safety margin.
        let ttl = Duration::from_secs(self.expires_in.unwrap_or(60).max(20) - 10);
        Some((token, ttl))
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenResponse(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_realm_and_service() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("garbage ==="), None);
        assert_eq!(parse_challenge("Bearer service=x"), None, "no realm");
    }

    #[test]
    fn secrets_are_redacted_and_basic_is_encoded() {
        let c = Credential {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.basic_header(), "Basic dTpzM2NyZXQ=");
    }

    #[test]
    fn token_responses() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Duration::from_secs(290))));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }
}
