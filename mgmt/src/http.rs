//! The smallest HTTP/1.x server side the metrics endpoint needs: read a bounded request
//! head, answer `GET /metrics` (and `HEAD`), 404 anything else, close the connection.

/// Longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (a query string is ignored); `head` for `HEAD`.
    Metrics {
        /// `HEAD`: headers only.
        head: bool,
    },
    /// Another path.
    NotFound,
    /// Another method.
    MethodNotAllowed,
    /// Not an HTTP request line.
    BadRequest,
}

/// Whether `buf` holds a whole request head (ends with an empty line).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// Routes a request by its first line.
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(&head[..line_end]) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head: false },
        ("HEAD", "/metrics") => Route::Metrics { head: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

/// A complete response (the connection closes after it).
pub fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// The response to `head`, with `metrics` called only for the metrics route.
pub fn respond(head: &[u8], metrics: impl FnOnce() -> String) -> Vec<u8> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match route(head) {
        Route::Metrics { head } => response(
            200,
            crate::metrics::CONTENT_TYPE,
            metrics().as_bytes(),
            head,
        ),
        Route::NotFound => response(404, TEXT, b"only /metrics here\n", false),
        Route::MethodNotAllowed => response(405, TEXT, b"GET /metrics\n", false),
        Route::BadRequest => response(400, TEXT, b"bad request\n", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"garbage"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe / HTTP/1.1\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n"), Route::BadRequest);
        assert!(head_complete(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn responses_have_length_and_close() {
        let r = String::from_utf8(respond(b"GET /metrics HTTP/1.1\r\n\r\n", || "a 1\n".into()))
            .unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Length: 4\r\n"));
        assert!(r.ends_with("\r\n\r\na 1\n"));
        let r = String::from_utf8(respond(b"GET /x HTTP/1.1\r\n\r\n", || unreachable!())).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 "));
    }
}
