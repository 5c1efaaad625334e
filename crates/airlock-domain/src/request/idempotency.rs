//! A create that can be retried: the client names it with an `Idempotency-Key` (IETF
//! draft-ietf-httpapi-idempotency-key-header), and the key decides the new request's id.
//!
//! Why the id and not a lookup table: a create whose answer was lost (a timeout, a dropped
//! connection, a restart of the Function App) is retried by careful clients; without a key
//! each retry makes another draft, and the researcher finds two. Deriving the id from the
//! key makes the store's own create-if-absent the guard: two retries racing each other both
//! aim at one id, and only one record can be written. Nothing extra is stored or expires.

use super::{AirlockRequest, RequestType};
use crate::DomainError;
use sha2::{Digest, Sha256};

/// The longest key taken (the draft sets none; 255 is what common APIs accept).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A client's name for one create, as sent in the `Idempotency-Key` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Reads the header's value: a Structured Field string (`"..."`, as the draft defines it)
    /// or, as many clients send, the bare text. 1 to 255 visible ASCII characters; a quoted
    /// string may not hold a quote or a backslash (its escapes are refused, not decoded, so a
    /// key has exactly one spelling).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = |why: &str| {
            DomainError::Invalid(format!(
                "Idempotency-Key {why}: send 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters, for example a new UUID per request to create"
            ))
        };
        let inner = match raw.strip_prefix('"') {
            Some(rest) => {
                let inner = rest
                    .strip_suffix('"')
                    .ok_or_else(|| invalid("has an opening quote without a closing one"))?;
                if inner.contains(['"', '\\']) {
                    return Err(invalid("holds a quote or a backslash"));
                }
                inner
            }
            None => raw,
        };
        if inner.is_empty() {
            return Err(invalid("is empty"));
        }
        if inner.len() > MAX_IDEMPOTENCY_KEY_CHARS {
            return Err(invalid("is too long"));
        }
        if !inner.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(invalid("holds a character that is not visible ASCII"));
        }
        Ok(IdempotencyKey(inner.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request this key creates for `user_id` in `workspace_id`: a UUID
    /// (version 8) over a sha256 of the three. The same key sent by another user, or in
    /// another workspace, names another request, so a key neither finds nor blocks anyone
    /// else's.
    pub fn request_id(&self, workspace_id: &str, user_id: &str) -> String {
        self.derive(&[workspace_id, user_id])
    }

    /// The id of the comment this key writes for `user_id` on request `request_id` (a
    /// different space from request ids: the parts are tagged).
    pub fn comment_id(&self, request_id: &str, user_id: &str) -> String {
        self.derive(&["comment", request_id, user_id])
    }

    /// A UUID (version 8) over a sha256 of `scope` and the key.
    fn derive(&self, scope: &[&str]) -> String {
        let mut hash = Sha256::new();
        // Length-prefixed, so no two lists run together into the same bytes.
        for part in scope.iter().copied().chain([self.0.as_str()]) {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

impl AirlockRequest {
    /// Whether this request is what a create with these fields made: a retry of that
    /// create, to be answered with this request, rather than a different request sent under
    /// a reused key (refused). Compares as [`AirlockRequest::create`] stores (trimmed).
    pub fn made_by_create(
        &self,
        request_type: RequestType,
        title: &str,
        business_justification: &str,
        user_id: &str,
    ) -> bool {
        self.request_type == request_type
            && self.created_by.id == user_id
            && self.title == title.trim()
            && self.business_justification == business_justification.trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_as_the_draft_and_common_clients_send_them() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "\"8e03978e-40d5-43e8-bc93-6894a57f9324\"",
                Some("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ),
            (
                "8e03978e-40d5-43e8-bc93-6894a57f9324",
                Some("8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ),
            ("create 1 of 3", Some("create 1 of 3")),
            ("\"a\"", Some("a")),
            ("", None),
            ("\"\"", None),
            ("\"unterminated", None),
            ("\"a\\\"b\"", None),
            ("\"a\"b\"", None),
            ("tab\there", None),
            ("caf\u{e9}", None),
            ("line\nbreak", None),
        ];
        for (raw, want) in cases {
            let got = IdempotencyKey::parse(raw).ok();
            assert_eq!(got.as_ref().map(IdempotencyKey::as_str), *want, "{raw:?}");
        }
        let longest = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS);
        assert!(IdempotencyKey::parse(&longest).is_ok());
        assert!(IdempotencyKey::parse(&format!("{longest}k")).is_err());
        assert!(IdempotencyKey::parse(&format!("\"{longest}k\"")).is_err());
    }

    #[test]
    fn a_key_names_one_request_per_user_and_workspace() {
        let key = IdempotencyKey::parse("k1").unwrap();
        let id = key.request_id("ws-a", "alice");
        assert_eq!(id, key.request_id("ws-a", "alice"), "stable");
        assert_eq!(
            id,
            IdempotencyKey::parse("\"k1\"")
                .unwrap()
                .request_id("ws-a", "alice"),
            "quoted or bare, one key"
        );
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        let others = [
            key.request_id("ws-b", "alice"),
            key.request_id("ws-a", "bob"),
            IdempotencyKey::parse("k2")
                .unwrap()
                .request_id("ws-a", "alice"),
            // Without length prefixes these two would hash the same bytes.
            IdempotencyKey::parse("1")
                .unwrap()
                .request_id("ws-a", "alicek"),
            IdempotencyKey::parse("k1")
                .unwrap()
                .request_id("ws-aalice", ""),
        ];
        for other in others {
            assert_ne!(id, other);
        }
        let comment = key.comment_id("req-1", "alice");
        assert_eq!(comment, key.comment_id("req-1", "alice"));
        assert_ne!(comment, key.comment_id("req-2", "alice"));
        assert_ne!(comment, key.comment_id("req-1", "bob"));
        assert_ne!(comment, key.request_id("req-1", "alice"));
    }
}
