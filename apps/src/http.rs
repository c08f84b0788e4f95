//! The HTTP/1.1 subset epserver and epwget speak (RFC 9112): request and
//! response heads parsed from byte buffers without allocating, and the
//! in-memory file cache epserver answers from.
//!
//! A head is complete at the first CRLF CRLF (RFC 9112 section 2.1). Bare
//! LF line ends are accepted as RFC 9112 section 2.2 allows a recipient to.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The largest request or response head accepted (bytes).
pub const MAX_HEAD: usize = 8192;

/// Request methods the server distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the GET answer without a body (RFC 9110 section 9.3.2).
    Head,
    /// Any other well-formed token (answered 405).
    Other,
}

/// A parsed request head, borrowing the target from the input buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The request target without its query (origin form, starts with `/`).
    pub path: &'a str,
    /// True for HTTP/1.1, false for HTTP/1.0.
    pub http11: bool,
    /// Whether the connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`
    /// (RFC 9112 section 9.3).
    pub keep_alive: bool,
    /// Bytes of the head, CRLF CRLF included.
    pub head_len: usize,
    /// Bytes of body that follow the head (`Content-Length`), to be skipped.
    pub body_len: usize,
}

/// Why a request head is refused (answered 400, or 505 for the version).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than [`MAX_HEAD`].
    TooLong,
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    BadRequestLine,
    /// The target is not an origin-form path, or climbs out with `..`.
    BadTarget,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    BadVersion,
    /// A header line without a colon, or a bad Content-Length.
    BadHeader,
    /// Transfer-Encoding in a request (bodies are not supported).
    Unsupported,
}

/// Finds the end of a head: the index just past CRLF CRLF (or LF LF).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses one request head at the start of `buf`: `Ok(None)` while it is
/// incomplete.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request<'_>>, ParseError> {
    let Some(end) = head_end(buf) else {
        return if buf.len() > MAX_HEAD {
            Err(ParseError::TooLong)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(ParseError::TooLong);
    }
    let mut it = lines(&buf[..end]);
    // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line
    // before the request line.
    let mut line = it.next().unwrap_or_default();
    if line.is_empty() {
        line = it.next().unwrap_or_default();
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadRequestLine);
    };
    if !is_token(method) {
        return Err(ParseError::BadRequestLine);
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        v if v.starts_with(b"HTTP/") => return Err(ParseError::BadVersion),
        _ => return Err(ParseError::BadRequestLine),
    };
    let target = std::str::from_utf8(target).map_err(|_| ParseError::BadTarget)?;
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/')
        || path.split('/').any(|seg| seg == "..")
        || path.bytes().any(|b| b.is_ascii_control() || b == b'\\')
    {
        return Err(ParseError::BadTarget);
    }
    let mut keep_alive = http11;
    let mut body_len = 0usize;
    for line in it {
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeader)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if !is_token(name) {
            return Err(ParseError::BadHeader);
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                if option.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            body_len = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or(ParseError::BadHeader)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(ParseError::Unsupported);
        }
    }
    Ok(Some(Request {
        method,
        path,
        http11,
        keep_alive,
        head_len: end,
        body_len,
    }))
}

/// A parsed response head (what epwget needs of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Bytes of the head.
    pub head_len: usize,
    /// `Content-Length`, if given (otherwise the body ends at close).
    pub content_length: Option<usize>,
    /// The server keeps the connection open (`Connection: close` absent on 1.1).
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while incomplete.
pub fn parse_response(buf: &[u8]) -> Result<Option<ResponseHead>, ParseError> {
    let Some(end) = head_end(buf) else {
        return if buf.len() > MAX_HEAD {
            Err(ParseError::TooLong)
        } else {
            Ok(None)
        };
    };
    let mut it = lines(&buf[..end]);
    let line = it.next().unwrap_or_default();
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(ParseError::BadRequestLine);
    };
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(ParseError::BadVersion),
    };
    let status = std::str::from_utf8(code)
        .ok()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse().ok())
        .ok_or(ParseError::BadRequestLine)?;
    let mut head = ResponseHead {
        status,
        head_len: end,
        content_length: None,
        keep_alive: http11,
    };
    for line in it {
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeader)?;
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            head.content_length = Some(
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or(ParseError::BadHeader)?,
            );
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                head.keep_alive = false;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                head.keep_alive = true;
            }
        }
    }
    Ok(Some(head))
}

/// A ready-made answer: head and body, shared between connections (sending
/// one costs reference-count increments, no copy and no allocation).
#[derive(Clone, Debug)]
pub struct Answer {
    /// Status line and headers, CRLF CRLF included.
    pub head: Arc<[u8]>,
    /// The body (empty for HEAD and for most errors' HEAD).
    pub body: Arc<[u8]>,
}

/// Heads for one body in both connection modes.
#[derive(Clone, Debug)]
struct Entry {
    keep: Arc<[u8]>,
    close: Arc<[u8]>,
    body: Arc<[u8]>,
}

impl Entry {
    fn new(status: &str, content_type: &str, body: Vec<u8>) -> Self {
        let head = |conn: &str| -> Arc<[u8]> {
            format!(
                "HTTP/1.1 {status}\r\nServer: mtcp-rs epserver\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nConnection: {conn}\r\n\r\n",
                body.len()
            )
            .into_bytes()
            .into()
        };
        Entry {
            keep: head("keep-alive"),
            close: head("close"),
            body: body.into(),
        }
    }

    fn answer(&self, keep_alive: bool, with_body: bool) -> Answer {
        Answer {
            head: if keep_alive {
                self.keep.clone()
            } else {
                self.close.clone()
            },
            body: if with_body {
                self.body.clone()
            } else {
                Arc::from(&[][..])
            },
        }
    }
}

/// The files epserver serves, read into memory at start (like mTCP's
/// epserver), with their heads rendered once.
#[derive(Clone, Debug)]
pub struct FileCache {
    files: HashMap<String, Entry>,
    not_found: Entry,
    bad_request: Entry,
    not_allowed: Entry,
    bad_version: Entry,
    bytes: usize,
}

/// The Content-Type of a file name.
pub fn content_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html",
        Some("txt") => "text/plain",
        Some("css") => "text/css",
        Some("js") => "application/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

impl FileCache {
    /// A cache with the given files (`"/name"` to bytes).
    pub fn from_files<I>(files: I) -> Self
    where
        I: IntoIterator<Item = (String, Vec<u8>)>,
    {
        let mut bytes = 0;
        let files = files
            .into_iter()
            .map(|(path, body)| {
                bytes += body.len();
                let entry = Entry::new("200 OK", content_type(&path), body);
                (path, entry)
            })
            .collect();
        let page =
            |status: &str| Entry::new(status, "text/plain", format!("{status}\n").into_bytes());
        FileCache {
            files,
            not_found: page("404 Not Found"),
            bad_request: page("400 Bad Request"),
            not_allowed: page("405 Method Not Allowed"),
            bad_version: page("505 HTTP Version Not Supported"),
            bytes,
        }
    }

    /// Reads every regular file under `dir` (recursively, at most
    /// `max_bytes` in all) into memory.
    pub fn load(dir: &Path, max_bytes: usize) -> io::Result<Self> {
        let mut files = Vec::new();
        let mut total = 0usize;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let kind = entry.file_type()?;
                let path = entry.path();
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let body = std::fs::read(&path)?;
                    total += body.len();
                    if total > max_bytes {
                        return Err(io::Error::other(format!(
                            "{} holds more than {max_bytes} bytes of files",
                            dir.display()
                        )));
                    }
                    let rel = path.strip_prefix(dir).map_err(io::Error::other)?;
                    let name = rel
                        .to_str()
                        .ok_or_else(|| io::Error::other("a file name is not UTF-8"))?;
                    files.push((format!("/{name}"), body));
                }
            }
        }
        Ok(FileCache::from_files(files))
    }

    /// How many files are cached.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is cached.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes of file content cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The answer to a parsed request; `/` means `/index.html`.
    pub fn answer(&self, req: &Request<'_>) -> (u16, Answer) {
        let with_body = req.method != Method::Head;
        if req.method == Method::Other {
            return (405, self.not_allowed.answer(req.keep_alive, true));
        }
        let path = if req.path == "/" {
            "/index.html"
        } else {
            req.path
        };
        match self.files.get(path) {
            Some(e) => (200, e.answer(req.keep_alive, with_body)),
            None => (404, self.not_found.answer(req.keep_alive, with_body)),
        }
    }

    /// The answer to a request that did not parse; the connection closes after it.
    pub fn error_answer(&self, e: ParseError) -> (u16, Answer) {
        let (code, entry) = match e {
            ParseError::BadVersion => (505, &self.bad_version),
            _ => (400, &self.bad_request),
        };
        (code, entry.answer(false, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_table() {
        use Method::*;
        // (input, method, path, http11, keep_alive, body_len)
        // (input, method, path, http11, keep_alive, body_len)
        type Row = (&'static [u8], Method, &'static str, bool, bool, usize);
        let ok: &[Row] = &[
            (
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                Get,
                "/",
                true,
                true,
                0,
            ),
            (
                b"GET /a.html?x=1 HTTP/1.1\r\n\r\n",
                Get,
                "/a.html",
                true,
                true,
                0,
            ),
            (
                b"HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n",
                Head,
                "/x",
                true,
                false,
                0,
            ),
            (b"GET /x HTTP/1.0\r\n\r\n", Get, "/x", false, false, 0),
            (
                b"GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                Get,
                "/x",
                false,
                true,
                0,
            ),
            (
                b"GET /x HTTP/1.1\r\nconnection: foo, close\r\n\r\n",
                Get,
                "/x",
                true,
                false,
                0,
            ),
            (b"GET /x HTTP/1.1\n\n", Get, "/x", true, true, 0),
            (b"\r\nGET /x HTTP/1.1\r\n\r\n", Get, "/x", true, true, 0),
            (
                b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                Other,
                "/x",
                true,
                true,
                5,
            ),
        ];
        for &(input, method, path, http11, keep_alive, body_len) in ok {
            let r = parse_request(input)
                .unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(input)))
                .expect("complete");
            assert_eq!(
                (r.method, r.path, r.http11, r.keep_alive, r.body_len),
                (method, path, http11, keep_alive, body_len),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert!(r.head_len <= input.len());
        }
    }

    #[test]
    fn bad_requests() {
        let bad: &[(&[u8], ParseError)] = &[
            (b"GET\r\n\r\n", ParseError::BadRequestLine),
            (b"GET / HTTP/1.1 x\r\n\r\n", ParseError::BadRequestLine),
            (b"G(T / HTTP/1.1\r\n\r\n", ParseError::BadRequestLine),
            (b"GET / FTP/1.1\r\n\r\n", ParseError::BadRequestLine),
            (b"GET / HTTP/2.0\r\n\r\n", ParseError::BadVersion),
            (b"GET x HTTP/1.1\r\n\r\n", ParseError::BadTarget),
            (
                b"GET /../etc/passwd HTTP/1.1\r\n\r\n",
                ParseError::BadTarget,
            ),
            (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", ParseError::BadHeader),
            (
                b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                ParseError::BadHeader,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                ParseError::BadHeader,
            ),
            (
                b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
                ParseError::BadHeader,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                ParseError::Unsupported,
            ),
            (b"GET /\xff HTTP/1.1\r\n\r\n", ParseError::BadTarget),
        ];
        for &(input, want) in bad {
            assert_eq!(
                parse_request(input),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn incomplete_and_too_long() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(parse_request(b""), Ok(None));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse_request(&long), Err(ParseError::TooLong));
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&long), Err(ParseError::TooLong));
    }

    #[test]
    fn pipelined_requests_parse_one_at_a_time() {
        let two = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let a = parse_request(two).unwrap().unwrap();
        assert_eq!(a.path, "/a");
        let b = parse_request(&two[a.head_len..]).unwrap().unwrap();
        assert_eq!(b.path, "/b");
        assert_eq!(a.head_len + b.head_len, two.len());
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_length, Some(12));
        assert!(r.keep_alive);
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.status, r.content_length, r.keep_alive),
            (404, None, false)
        );
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        assert!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
        assert!(parse_response(b"SPDY 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn cache_answers() {
        let cache = FileCache::from_files([
            ("/index.html".to_string(), b"<h1>hi</h1>".to_vec()),
            ("/data.bin".to_string(), vec![7; 1000]),
        ]);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.bytes(), 1011);
        let get = parse_request(b"GET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        let (code, a) = cache.answer(&get);
        assert_eq!(code, 200);
        assert_eq!(&a.body[..], b"<h1>hi</h1>");
        let head = String::from_utf8(a.head.to_vec()).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Length: 11\r\n"));
        assert!(head.contains("Content-Type: text/html\r\n"));
        assert!(head.contains("Connection: keep-alive\r\n"));
        let head_req = parse_request(b"HEAD /data.bin HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        let (code, a) = cache.answer(&head_req);
        assert_eq!(code, 200);
        assert!(a.body.is_empty());
        let h = String::from_utf8(a.head.to_vec()).unwrap();
        assert!(h.contains("Content-Length: 1000\r\n") && h.contains("Connection: close"));
        let missing = parse_request(b"GET /nope HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cache.answer(&missing).0, 404);
        let post = parse_request(b"POST / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(cache.answer(&post).0, 405);
        assert_eq!(cache.error_answer(ParseError::BadHeader).0, 400);
        assert_eq!(cache.error_answer(ParseError::BadVersion).0, 505);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("/a/B.HTML"), "text/html");
        assert_eq!(content_type("/x"), "application/octet-stream");
        assert_eq!(content_type("/x.svg"), "image/svg+xml");
    }
}

/// epwget's side: one GET per response, parsed as it streams in.
#[derive(Clone, Debug)]
pub struct HttpGet {
    request: Vec<u8>,
    persistent: bool,
}

impl HttpGet {
    /// `GET path` to `host`, keeping connections open when `persistent`
    /// (otherwise `Connection: close`, one request per connection, as mTCP's
    /// epwget does).
    pub fn new(host: &str, path: &str, persistent: bool) -> Self {
        let conn = if persistent { "keep-alive" } else { "close" };
        HttpGet {
            request: format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mtcp-rs epwget\r\n\
                 Connection: {conn}\r\n\r\n"
            )
            .into_bytes(),
            persistent,
        }
    }
}

/// Response parser state of [`HttpGet`].
#[derive(Debug, Default)]
pub struct HttpParser {
    /// Head bytes seen so far when the head spans reads (empty otherwise:
    /// a head that arrives whole is parsed in place, without a copy).
    partial: Vec<u8>,
    /// The parsed head and the body bytes still due.
    head: Option<(ResponseHead, usize)>,
}

impl crate::client::Protocol for HttpGet {
    type Parser = HttpParser;

    fn request(&self) -> &[u8] {
        &self.request
    }

    fn feed(&self, p: &mut HttpParser, data: &[u8]) -> crate::client::Feed {
        use crate::client::Feed;
        let mut data = data;
        if p.head.is_none() {
            let parsed = if p.partial.is_empty() {
                parse_response(data).map(|h| h.map(|h| (h, h.head_len)))
            } else {
                let before = p.partial.len();
                p.partial
                    .extend_from_slice(&data[..data.len().min(MAX_HEAD + 1)]);
                parse_response(&p.partial).map(|h| h.map(|h| (h, h.head_len - before)))
            };
            match parsed {
                Err(_) => return Feed::Bad,
                Ok(None) => {
                    if p.partial.is_empty() {
                        p.partial.extend_from_slice(data);
                    }
                    return Feed::More;
                }
                Ok(Some((head, used))) => {
                    let Some(len) = head.content_length else {
                        // epserver always sends Content-Length; a body
                        // delimited by close is not measured.
                        return Feed::Bad;
                    };
                    p.partial.clear();
                    p.head = Some((head, len));
                    data = &data[used.min(data.len())..];
                }
            }
        }
        let Some((head, left)) = p.head.as_mut() else {
            return Feed::Bad;
        };
        *left = left.saturating_sub(data.len());
        if *left == 0 {
            Feed::Done {
                keep_alive: head.keep_alive,
                ok: (200..300).contains(&head.status),
            }
        } else {
            Feed::More
        }
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

#[cfg(test)]
mod get_tests {
    use super::*;
    use crate::client::{Feed, Protocol};

    #[test]
    fn whole_and_split_responses() {
        let get = HttpGet::new("h", "/x", true);
        assert!(std::str::from_utf8(get.request())
            .unwrap()
            .starts_with("GET /x HTTP/1.1\r\nHost: h\r\n"));
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let done = Feed::Done {
            keep_alive: true,
            ok: true,
        };
        // Whole.
        let mut p = HttpParser::default();
        assert_eq!(get.feed(&mut p, resp), done);
        // Split at every byte boundary.
        for cut in 1..resp.len() {
            let mut p = HttpParser::default();
            assert_eq!(get.feed(&mut p, &resp[..cut]), Feed::More, "cut {cut}");
            assert_eq!(get.feed(&mut p, &resp[cut..]), done, "cut {cut}");
        }
        // A 404 completes but is not a success.
        let mut p = HttpParser::default();
        assert_eq!(
            get.feed(
                &mut p,
                b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            ),
            Feed::Done {
                keep_alive: false,
                ok: false
            }
        );
        let mut p = HttpParser::default();
        assert_eq!(get.feed(&mut p, b"garbage\r\n\r\n"), Feed::Bad);
    }
}
