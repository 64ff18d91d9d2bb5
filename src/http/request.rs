//! One HTTP/1.x request out of a connection's input: `httparse` for the
//! head, the limits, and what the server needs from the headers.

/// Longest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 32;
/// Largest body accepted (a POST's JSON body: `scale` reads it).
pub const MAX_BODY: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// What the server uses of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// The path, without the query, as sent (`/api/v1/services/web`).
    pub path: String,
    /// Decoded `key=value` pairs of the query, in order.
    pub query: Vec<(String, String)>,
    /// Keep the connection open after the response.
    pub keep_alive: bool,
    pub authorization: Option<String>,
    pub origin: Option<String>,
    pub host: Option<String>,
    /// The body (`Content-Length` bytes; empty without one).
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of looking at the front of a connection's input.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Not a whole request yet.
    Partial,
    /// A request, and the bytes it took (head and body).
    Done(Request, usize),
    /// Unusable: answer with this status and message, then close.
    Bad(u16, &'static str),
}

/// Parse the request at the front of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                Parsed::Bad(431, "request head too large")
            } else {
                Parsed::Partial
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Parsed::Bad(431, "too many headers"),
        Err(httparse::Error::Version) => {
            return Parsed::Bad(505, "HTTP version not supported; use HTTP/1.1")
        }
        Err(_) => return Parsed::Bad(400, "malformed request"),
    };
    if head_len > MAX_HEAD {
        return Parsed::Bad(431, "request head too large");
    }
    let version = req.version.unwrap_or(1);
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let target = req.path.unwrap_or("");
    if !target.starts_with('/') {
        return Parsed::Bad(400, "the request target must be a path starting with /");
    }
    let mut content_length = 0usize;
    let mut connection = None;
    let mut r = Request {
        method,
        path: String::new(),
        query: Vec::new(),
        keep_alive: false,
        authorization: None,
        origin: None,
        host: None,
        body: Vec::new(),
    };
    let mut seen_length = false;
    for h in req.headers.iter() {
        let value = match std::str::from_utf8(h.value) {
            Ok(v) => v.trim(),
            Err(_) => continue,
        };
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if !seen_length || n == content_length => content_length = n,
                _ => return Parsed::Bad(400, "invalid Content-Length"),
            }
            seen_length = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Bad(
                501,
                "Transfer-Encoding is not supported; send Content-Length",
            );
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("authorization") {
            r.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("origin") {
            r.origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("host") {
            if r.host.is_some() {
                return Parsed::Bad(400, "more than one Host header");
            }
            r.host = Some(value.to_string());
        }
    }
    if version == 1 && r.host.is_none() {
        return Parsed::Bad(400, "HTTP/1.1 requests need a Host header");
    }
    if content_length > MAX_BODY {
        return Parsed::Bad(413, "request body too large");
    }
    let total = head_len + content_length;
    if buf.len() < total {
        return Parsed::Partial;
    }
    let has = |tok: &str| {
        connection
            .as_deref()
            .is_some_and(|c| c.split(',').any(|t| t.trim() == tok))
    };
    r.keep_alive = if version == 1 {
        !has("close")
    } else {
        has("keep-alive")
    };
    r.body = buf[head_len..total].to_vec();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    r.path = path.to_string();
    r.query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Parsed::Done(r, total)
}

/// Percent-decoding, `+` as a space (form encoding), invalid UTF-8 replaced.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Request, usize) {
        match parse(buf) {
            Parsed::Done(r, n) => (r, n),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn parses_path_query_and_headers() {
        let buf: &[u8] =
            b"GET /api/v1/services/web/logs?lines=5&grep=a%20b+c&since=10m HTTP/1.1\r\n\
              Host: 127.0.0.1:9100\r\nAuthorization: Bearer tok\r\nOrigin: http://x\r\n\r\nrest";
        let (r, n) = done(buf);
        assert_eq!(n, buf.len() - 4);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/api/v1/services/web/logs");
        assert_eq!(r.param("lines"), Some("5"));
        assert_eq!(r.param("grep"), Some("a b c"));
        assert_eq!(r.param("since"), Some("10m"));
        assert_eq!(r.param("nope"), None);
        assert_eq!(r.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(r.origin.as_deref(), Some("http://x"));
        assert!(r.keep_alive);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let (r, _) = done(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = done(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = done(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(r.keep_alive);
    }

    #[test]
    fn partial_requests_and_bodies_wait_for_more() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: h\r\n"), Parsed::Partial);
        assert_eq!(parse(b""), Parsed::Partial);
        let req = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab";
        assert_eq!(parse(req), Parsed::Partial);
        let mut whole = req.to_vec();
        whole.extend_from_slice(b"cdGET");
        let (r, n) = done(&whole);
        assert_eq!((r.method, n), (Method::Post, whole.len() - 3));
        assert_eq!(r.body, b"abcd");
    }

    #[test]
    fn bad_requests_get_the_right_status() {
        assert_eq!(
            parse(b"\x01\x02garbage\r\n\r\n"),
            Parsed::Bad(400, "malformed request")
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Parsed::Bad(400, "HTTP/1.1 requests need a Host header")
        );
        assert!(matches!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Parsed::Bad(505, _)
        ));
        let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..40 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Parsed::Bad(431, "too many headers"));
        let mut long = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
        long.extend(std::iter::repeat(b'a').take(MAX_HEAD));
        assert!(matches!(parse(&long), Parsed::Bad(431, _)));
        long.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse(&long), Parsed::Bad(431, _)));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999\r\n\r\n"),
            Parsed::Bad(413, _)
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Bad(501, _)
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Bad(400, _)
        ));
        assert!(matches!(
            parse(b"GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            Parsed::Bad(400, _)
        ));
        let (r, _) = done(b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.method, Method::Other);
    }

    #[test]
    fn decoding_is_lenient() {
        assert_eq!(decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(decode("%C3%A9+x"), "é x");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }
}
