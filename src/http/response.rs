//! Responses as bytes: status line, a few fixed headers, the body.

use std::fmt::Write as _;

pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (`Allow`, `Content-Security-Policy` ...).
    pub headers: Vec<(&'static str, String)>,
}

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub const HTML: &str = "text/html; charset=utf-8";
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub const CSS: &str = "text/css; charset=utf-8";
#[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, JSON, body)
    }

    /// `{"error": "..."}` with the status.
    pub fn error(status: u16, message: &str) -> Self {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes to send; `head_only` for HEAD requests (the length stays).
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        out.extend_from_slice(head.as_bytes());
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// The head of a Server-Sent Events stream (the body lasts until close).
pub fn event_stream_head(out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          X-Content-Type-Options: nosniff\r\nX-Accel-Buffering: no\r\n\r\n",
    );
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_head_and_body() {
        let mut out = Vec::new();
        Response::new(404, TEXT, "nope\n")
            .header("Allow", "GET")
            .write_to(&mut out, false, false);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"), "{s}");
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.contains("Allow: GET\r\n"));
        assert!(s.contains("Connection: close\r\n"));
        assert!(s.ends_with("\r\n\r\nnope\n"));
        let mut out = Vec::new();
        Response::new(200, TEXT, "body").write_to(&mut out, true, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("Content-Length: 4\r\n") && s.ends_with("\r\n\r\n"));
        assert!(!s.contains("Connection: close"));
    }
}
