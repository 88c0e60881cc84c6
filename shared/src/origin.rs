//! The `ALLOWED_ORIGIN` check on WebSocket upgrades, shared by both services.

use std::fmt;

/// The origins allowed to open a socket; empty means any origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// Parses a comma-separated list such as `https://example.com, http://localhost:8080`.
    ///
    /// # Errors
    /// A message naming the entry that is not a bare `http(s)://host[:port]` origin.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let origin = normalize(entry).ok_or_else(|| {
                format!("`{entry}` is not an origin: expected scheme://host[:port], e.g. https://example.com")
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(AllowedOrigins(origins))
    }

    /// Whether any origin is allowed.
    pub fn allows_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request with this `Origin` header may open a socket. With a list set, a missing
    /// header is refused: browsers always send one, and the list exists to keep others out.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        if self.allows_any() {
            return true;
        }
        match origin.and_then(normalize) {
            Some(origin) => self.0.contains(&origin),
            None => false,
        }
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allows_any() {
            f.write_str("any")
        } else {
            f.write_str(&self.0.join(","))
        }
    }
}

/// Lower-cases scheme and host and drops a default port, so that equal origins compare equal.
fn normalize(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let host_port = rest.to_ascii_lowercase();
    let valid = !host_port.is_empty()
        && host_port.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if !valid {
        return None;
    }
    let host_port = host_port.strip_suffix(default_port).unwrap_or(&host_port);
    Some(format!("{scheme}://{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_allows_any_origin_and_none() {
        let any = AllowedOrigins::parse(" ").unwrap();
        assert!(any.allows(Some("https://evil.example")));
        assert!(any.allows(None));
    }

    #[test]
    fn a_listed_origin_is_allowed_whatever_its_case_or_default_port() {
        let list = AllowedOrigins::parse("https://Example.com, http://localhost:8080").unwrap();
        assert!(list.allows(Some("https://example.com")));
        assert!(list.allows(Some("https://EXAMPLE.com:443")));
        assert!(list.allows(Some("http://localhost:8080")));
    }

    #[test]
    fn an_unlisted_or_missing_origin_is_refused() {
        let list = AllowedOrigins::parse("https://example.com").unwrap();
        assert!(!list.allows(Some("http://example.com")));
        assert!(!list.allows(Some("https://example.com.evil.net")));
        assert!(!list.allows(Some("https://example.com:8443")));
        assert!(!list.allows(Some("null")));
        assert!(!list.allows(None));
    }

    #[test]
    fn malformed_entries_are_refused_at_start_up() {
        for bad in ["example.com", "ftp://example.com", "https://", "https://exa mple.com", "https://a.com/path"] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
