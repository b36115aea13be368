//! Bounded line reading for the control socket: a client can neither make the server buffer
//! more than [`crate::MAX_REQUEST`] bytes nor make it wait past the socket's timeout.

use std::io::BufRead;

/// Why no request line came.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The line went past the limit (the rest of the connection cannot be trusted to be
    /// framed: answer and close).
    #[error("request line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Reading failed (a timeout shows as `WouldBlock` / `TimedOut`).
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one line of at most `max` bytes (newline excluded, a trailing `\r` removed).
/// `Ok(None)` at end of input with nothing read; a last line without a newline is returned.
pub fn read_line<R: BufRead>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Err(FrameError::TooLong { max });
        }
        line.extend_from_slice(&buf[..take]);
        r.consume(take + usize::from(done));
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    #[test]
    fn lines_are_split_and_bounded() {
        let mut r = BufReader::with_capacity(4, Cursor::new(b"ab\r\ncdef\nlast".to_vec()));
        assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"ab".to_vec()));
        assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"cdef".to_vec()));
        assert_eq!(read_line(&mut r, 10).unwrap(), Some(b"last".to_vec()));
        assert_eq!(read_line(&mut r, 10).unwrap(), None);

        let mut r = BufReader::with_capacity(3, Cursor::new(b"0123456789ab\n".to_vec()));
        assert!(matches!(
            read_line(&mut r, 10),
            Err(FrameError::TooLong { max: 10 })
        ));
        // Exactly at the limit is fine.
        let mut r = Cursor::new(b"0123456789\n".to_vec());
        assert_eq!(read_line(&mut r, 10).unwrap().unwrap().len(), 10);
    }

    #[test]
    fn an_endless_line_stops_at_the_limit() {
        // A reader that never ends and never sends a newline.
        let mut r = BufReader::new(std::io::repeat(b'x'));
        assert!(matches!(
            read_line(&mut r, crate::MAX_REQUEST),
            Err(FrameError::TooLong { .. })
        ));
    }
}
