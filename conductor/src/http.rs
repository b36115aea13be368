//! A minimal HTTP/1.1: one request per connection (`Connection: close`), bounded sizes,
//! `Content-Length` bodies only (no chunked encoding). Enough for the conductor's JSON API
//! and its light clients; anything else is refused.

use std::io::{Read, Write};

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body (a CSR and a token fit many times over).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest response a client reads (a rendered configuration).
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;

/// Why a request or response was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Over one of the size limits.
    #[error("message too large (limit {limit} bytes)")]
    TooLarge {
        /// The limit passed.
        limit: usize,
    },
    /// Not HTTP/1.1 as this server speaks it.
    #[error("malformed HTTP: {0}")]
    Malformed(&'static str),
    /// The connection failed or timed out.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`.
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Query parameters in order (no percent-decoding: our values are numbers and names).
    pub query: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads bytes until the blank line that ends the head; returns head and the bytes after it.
fn read_head<R: Read>(r: &mut R, limit: usize) -> Result<(Vec<u8>, Vec<u8>), HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > limit {
                return Err(HttpError::TooLarge { limit });
            }
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Ok((buf, rest));
        }
        if buf.len() > limit {
            return Err(HttpError::TooLarge { limit });
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(HttpError::Malformed(
                "connection closed before the end of the head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn content_length(lines: &[&str]) -> Result<usize, HttpError> {
    let mut len = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header without ':'"));
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = value
                .trim()
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("Transfer-Encoding is not supported"));
        }
    }
    Ok(len)
}

fn read_body<R: Read>(r: &mut R, mut body: Vec<u8>, len: usize) -> Result<Vec<u8>, HttpError> {
    if body.len() > len {
        return Err(HttpError::Malformed("more bytes than Content-Length"));
    }
    let have = body.len();
    body.resize(len, 0);
    r.read_exact(&mut body[have..])?;
    Ok(body)
}

/// Reads one request (see the module documentation for the limits).
pub fn read_request<R: Read>(r: &mut R) -> Result<Request, HttpError> {
    let (head, rest) = read_head(r, MAX_HEAD)?;
    let head = std::str::from_utf8(&head).map_err(|_| HttpError::Malformed("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some("HTTP/1.1"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    let headers: Vec<&str> = lines.collect();
    let len = content_length(&headers)?;
    if len > MAX_BODY {
        return Err(HttpError::TooLarge { limit: MAX_BODY });
    }
    let body = read_body(r, rest, len)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes a response and flushes.
pub fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Writes a request and flushes.
pub fn write_request<W: Write>(
    w: &mut W,
    method: &str,
    target: &str,
    host: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Reads a response: status and body.
pub fn read_response<R: Read>(r: &mut R) -> Result<(u16, Vec<u8>), HttpError> {
    let (head, rest) = read_head(r, MAX_HEAD)?;
    let head = std::str::from_utf8(&head).map_err(|_| HttpError::Malformed("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed("status line"))?;
    let headers: Vec<&str> = lines.collect();
    let len = content_length(&headers)?;
    if len > MAX_RESPONSE {
        return Err(HttpError::TooLarge {
            limit: MAX_RESPONSE,
        });
    }
    Ok((status, read_body(r, rest, len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_and_limits() {
        let mut wire = Vec::new();
        write_request(&mut wire, "POST", "/v1/config?after=3&node=n1", "c", b"{}").unwrap();
        let req = read_request(&mut wire.as_slice()).unwrap();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/v1/config")
        );
        assert_eq!(
            (req.param("after"), req.param("node")),
            (Some("3"), Some("n1"))
        );
        assert_eq!(req.body, b"{}");

        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            read_request(&mut big.as_bytes()),
            Err(HttpError::TooLarge { .. })
        ));
        let long_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(matches!(
            read_request(&mut long_head.as_bytes()),
            Err(HttpError::TooLarge { .. })
        ));
        for bad in [
            "GET /\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\n",
        ] {
            assert!(read_request(&mut bad.as_bytes()).is_err(), "{bad:?}");
        }
        // A body shorter than announced is an error, not a hang or a panic.
        assert!(
            read_request(&mut &b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"[..]).is_err()
        );

        let mut wire = Vec::new();
        write_response(&mut wire, 204, "text/plain", b"").unwrap();
        assert_eq!(
            read_response(&mut wire.as_slice()).unwrap(),
            (204, Vec::new())
        );
    }
}
