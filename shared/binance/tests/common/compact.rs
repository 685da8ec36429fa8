//! Removing the whitespace outside strings from JSON text: a fixture as it comes off the socket.
//! Shared by the integration tests, the unit tests of the hot path and the benchmark (by `#[path]`).

/// Removes the whitespace outside strings, keeping everything else (key order included).
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}
