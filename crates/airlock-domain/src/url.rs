//! Pieces of URLs, percent-encoded as RFC 3986 says, with the `percent-encoding` crate (the
//! one `url` and `reqwest` use): a path segment or a query value keeps only unreserved
//! characters; a blob path keeps its `/` too.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// As [`UNRESERVED`], keeping `/` (a blob name's folders).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// One path segment, or one query parameter's value.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A path whose `/` separate segments (a blob name).
pub fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

/// The text a percent-encoded string stands for; `None` when a `%` is not followed by two
/// hex digits or the bytes are not UTF-8 (the crate alone would pass a bad escape through).
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_as_rfc_3986_says() {
        let table = [
            (
                "plain-name_1.csv~",
                "plain-name_1.csv~",
                "plain-name_1.csv~",
            ),
            ("a b/c+d=e", "a%20b%2Fc%2Bd%3De", "a%20b/c%2Bd%3De"),
            (
                "résumé ✓",
                "r%C3%A9sum%C3%A9%20%E2%9C%93",
                "r%C3%A9sum%C3%A9%20%E2%9C%93",
            ),
            ("100%", "100%25", "100%25"),
        ];
        for (text, component, path) in table {
            assert_eq!(encode_component(text), component, "{text}");
            assert_eq!(encode_path(text), path, "{text}");
            assert_eq!(decode(component).as_deref(), Some(text));
            assert_eq!(decode(path).as_deref(), Some(text));
        }
        for bad in ["%", "%2", "%zz", "a%G0", "%C3%28"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
