//! A deliberately small HTTP/1.1 server on `std::net`: one request per connection
//! (`Connection: close`), `Content-Length` bodies only, bounded sizes and timeouts.
//!
//! The control API sees a handful of requests a minute from SDKs on loopback, so a thread
//! per connection (at most [`MAX_CONNECTIONS`] at once) is enough, and it keeps the
//! daemon's dependency tree unchanged (see README, Dependencies).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

/// Largest request head (request line + headers) we read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body we read.
const MAX_BODY: usize = 64 * 1024;
/// Connections served at the same time; more are refused with 503.
pub const MAX_CONNECTIONS: usize = 32;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The path without the query, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), still percent-encoded.
    pub query: String,
    /// Header names lowercased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// All values of a header, in arrival order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// What answers a request.
pub type Handler = Arc<dyn Fn(&Request, SocketAddr) -> Response + Send + Sync>;

/// Serves `handler` on `listener` until `stop` is set (checked every 200 ms).
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>, handler: Handler) {
    let active = Arc::new(AtomicUsize::new(0));
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!("API listener: {e}");
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => {
                debug!("API accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = s.set_nonblocking(false);
            let _ = write_response(&mut s, &plain(503, "too many connections"));
            continue;
        }
        let handler = handler.clone();
        let active2 = active.clone();
        let spawned = std::thread::Builder::new()
            .name("api-conn".into())
            .spawn(move || {
                connection(stream, peer, &*handler);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &(dyn Fn(&Request, SocketAddr) -> Response + Send + Sync),
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut out = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    let resp = match read_request(stream) {
        Ok(req) => handler(&req, peer),
        Err(resp) => resp,
    };
    if let Err(e) = write_response(&mut out, &resp) {
        debug!(%peer, "API write: {e}");
    }
}

/// Reads one request; an error is the response to send instead.
pub fn read_request(stream: impl Read) -> Result<Request, Response> {
    let mut r = BufReader::new(stream.take((MAX_HEAD + MAX_BODY) as u64));
    let mut head_len = 0;
    let mut line = String::new();
    let mut next_line = |r: &mut BufReader<_>, line: &mut String| -> Result<(), Response> {
        line.clear();
        let n = r
            .read_line(line)
            .map_err(|_| plain(400, "bad request head"))?;
        head_len += n;
        if n == 0 || head_len > MAX_HEAD {
            return Err(plain(400, "request head missing or too long"));
        }
        Ok(())
    };
    next_line(&mut r, &mut line)?;
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(plain(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(plain(505, "HTTP/1.x only"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        ..Request::default()
    };
    loop {
        next_line(&mut r, &mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(plain(400, "bad header line"));
        };
        req.headers
            .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    if req.header("transfer-encoding").is_some() {
        return Err(plain(
            411,
            "chunked bodies are not supported; send Content-Length",
        ));
    }
    let len = match req.header("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| plain(400, "bad Content-Length"))?,
    };
    if len > MAX_BODY {
        return Err(plain(413, "body too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)
        .map_err(|_| plain(400, "body shorter than Content-Length"))?;
    req.body = body;
    Ok(req)
}

pub fn write_response(w: &mut impl Write, resp: &Response) -> std::io::Result<()> {
    let reason = match resp.status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        resp.content_type,
        resp.body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)?;
    w.flush()
}

fn plain(status: u16, text: &str) -> Response {
    Response {
        status,
        content_type: "text/plain",
        body: text.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_form_post() {
        let raw = b"POST /?Action=X&a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Acs-Date: d\r\n\r\nk=v";
        let req = read_request(&raw[..]).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/");
        assert_eq!(req.query, "Action=X&a=b");
        assert_eq!(req.header("x-acs-date"), Some("d"));
        assert_eq!(req.body, b"k=v");
    }

    #[test]
    fn rejects_garbage_and_oversized() {
        assert_eq!(
            read_request(&b"GARBAGE\r\n\r\n"[..]).unwrap_err().status,
            400
        );
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(read_request(big.as_bytes()).unwrap_err().status, 413);
        assert_eq!(read_request(&b""[..]).unwrap_err().status, 400);
    }
}
