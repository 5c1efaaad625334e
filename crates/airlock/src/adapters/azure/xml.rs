//! Reading the Storage services' XML answers (container listings, queue messages) without an
//! XML library: their shapes are flat and fixed, so the text of a named element is enough.
//! Shared by every REST client of the Storage services in the workspace.

/// The text of each `<tag>...</tag>` in `xml`, in order (elements of one tag do not nest).
pub fn elements<'x>(xml: &'x str, tag: &str) -> impl Iterator<Item = &'x str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let found = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(found)
    })
}

/// Undoes XML's five character escapes.
pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
