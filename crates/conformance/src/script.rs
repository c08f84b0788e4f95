//! The packetdrill script language: syntax tree and parser.
//!
//! A script is a list of command-line options (`--tolerance_usecs=50000`) and
//! timed events, one per line:
//!
//! ```text
//! +0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
//! +0.00 > S  0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>
//! +0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>
//! +0.00 < icmp unreachable port_unreachable [0:0(0)]
//!  0.00 `sysctl -w net.inet.tcp.rfc1323=1`
//! +0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%
//! ```
//!
//! Times are absolute (`0.10`), relative to the previous event (`+0.10`),
//! ranges (`0.10...0.20`, also written `0.10~0.20`; a relative range is
//! `+0.10...0.20`, both ends relative) or `*` (any time). Comments are `//` to
//! the end of the line and `/* ... */`. Lines between `#ifdef NAME` and
//! `#endif` (with optional `#else`, and `#ifndef`) are kept only when `NAME`
//! is defined; the runner defines `STANDARD` so that scripts choose the
//! RFC-conforming branch over the FreeBSD-specific one.
//!
//! The parser never panics: malformed input yields a [`ParseError`] naming the
//! line.

use std::collections::HashSet;
use std::fmt;

use wire::TcpFlags;

/// Microseconds, the unit of every time in a script.
pub type Micros = u64;

/// A parse failure, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A parsed script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// `--name[=value]` options in the order given.
    pub options: Vec<ScriptOption>,
    /// The timed events in the order given.
    pub events: Vec<Event>,
}

impl Script {
    /// The value of option `name` (the last one wins, as on a command line).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|o| o.name == name)
            .map(|o| o.value.as_deref().unwrap_or(""))
    }
}

/// One `--name[=value]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOption {
    /// 1-based line number.
    pub line: usize,
    /// Name without the leading dashes.
    pub name: String,
    /// Value after `=`, if any.
    pub value: Option<String>,
}

/// When an event happens, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// `0.10`: from the start of the script.
    Absolute(Micros),
    /// `+0.10`: after the previous event.
    Relative(Micros),
    /// `0.10...0.20`: between two absolute times (for a blocking system
    /// call: starts at the first, returns at the second).
    AbsoluteRange(Micros, Micros),
    /// `+0.10...0.20`: a range whose ends are both relative to the previous event.
    RelativeRange(Micros, Micros),
    /// `*`: any time.
    Any,
}

/// A timed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 1-based line number.
    pub line: usize,
    /// When it happens.
    pub time: EventTime,
    /// What happens.
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A segment injected into (`<`) or expected from (`>`) the stack.
    Packet(PacketEvent),
    /// A system call and its expected result.
    Syscall(Syscall),
    /// A backtick shell command.
    Command(Command),
    /// A `%{ ... }%` code block (packetdrill runs it in Python).
    Code(CodeBlock),
}

/// Direction of a packet event, seen from the stack under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: the script sends it to the stack.
    Inbound,
    /// `>`: the stack must send it.
    Outbound,
}

/// A packet line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketEvent {
    /// `<` or `>`.
    pub direction: Direction,
    /// IP-level annotation in brackets after the direction (`[noecn]`, `[ect0]`).
    pub ip_annotation: Option<String>,
    /// The TCP segment or ICMP message.
    pub body: PacketBody,
}

/// What a packet line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketBody {
    /// A TCP segment.
    Tcp(TcpSpec),
    /// An ICMP error quoting one of the stack's segments.
    Icmp(IcmpSpec),
}

/// A TCP segment as written in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    /// Control bits: `S F R P . E W U` (`.` is ACK, `E` ECE, `W` CWR).
    pub flags: TcpFlags,
    /// Sequence range.
    pub seq: SeqSpec,
    /// `ack N` (relative to the other side's ISN).
    pub ack: Option<u32>,
    /// `win N` (the raw window field).
    pub win: Option<u32>,
    /// TCP options.
    pub options: OptionsSpec,
}

/// `start:end(len)`, or `...(len)` when the start is left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqSpec {
    /// A relative start and end and the payload length.
    Range {
        /// First sequence number, relative to the sender's ISN.
        start: u32,
        /// Sequence number after the payload.
        end: u32,
        /// Payload length.
        len: u32,
    },
    /// `...(len)`: any sequence number, with this payload length.
    Any {
        /// Payload length.
        len: u32,
    },
}

impl SeqSpec {
    /// The payload length.
    pub fn len(&self) -> u32 {
        match *self {
            SeqSpec::Range { len, .. } | SeqSpec::Any { len } => len,
        }
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The options of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsSpec {
    /// No `<...>` part: the segment has no options.
    None,
    /// `<...>`: any options.
    Any,
    /// The options listed, in order.
    List(Vec<TcpOptionSpec>),
}

/// One TCP option in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOptionSpec {
    /// `nop` (kind 1).
    Nop,
    /// `eol` (kind 0).
    Eol,
    /// `mss N` (kind 2).
    Mss(u16),
    /// `wscale N` (kind 3).
    WindowScale(u8),
    /// `sackOK` (kind 4).
    SackPermitted,
    /// `sack a:b c:d` (kind 5), edges relative to the receiver's view of the
    /// data sender's ISN.
    Sack(Vec<(u32, u32)>),
    /// `TS val N ecr M` (kind 8).
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
}

/// An ICMP message in a script: `icmp TYPE [CODE] [mtu N] [start:end(len)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpSpec {
    /// ICMP type number (RFC 792).
    pub icmp_type: u8,
    /// ICMP code number.
    pub code: u8,
    /// Type name as written.
    pub type_name: String,
    /// Code name as written (empty when the type has none).
    pub code_name: String,
    /// `mtu N` for fragmentation-needed (RFC 1191).
    pub mtu: Option<u32>,
    /// The sequence range of the quoted TCP segment, relative to the stack's ISN.
    pub quoted: Option<SeqSpec>,
}

/// A system call line: `name(args) = result [ERRNO] [(text)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// Call name (`connect`).
    pub name: String,
    /// Arguments.
    pub args: Vec<Expr>,
    /// Expected return value.
    pub result: Expr,
    /// Expected errno name (`EINPROGRESS`), when given.
    pub errno: Option<String>,
    /// The free text in parentheses after the result, if any.
    pub note: Option<String>,
}

/// An expression in a system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `...`: any value / elided argument.
    Ellipsis,
    /// An integer (decimal or `0x` hex, possibly negative).
    Int(i64),
    /// A symbolic name (`SOCK_STREAM`, `ECONNRESET`).
    Ident(String),
    /// A quoted string.
    Str(String),
    /// `A | B | C`.
    BitOr(Vec<Expr>),
    /// `[x, y]`: a pointer to the values listed.
    Array(Vec<Expr>),
    /// `{...}`: a structure, kept as raw text.
    Struct(String),
}

impl Expr {
    /// The integer value, looking inside a one-element array (`[4]`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Int(v) => Some(*v),
            Expr::Array(v) if v.len() == 1 => v[0].as_int(),
            _ => None,
        }
    }

    /// The identifier, looking inside a one-element array.
    pub fn as_ident(&self) -> Option<&str> {
        match self {
            Expr::Ident(s) => Some(s),
            Expr::Array(v) if v.len() == 1 => v[0].as_ident(),
            _ => None,
        }
    }

    /// The identifiers of an `A | B` expression (or a lone identifier).
    pub fn idents(&self) -> Vec<&str> {
        match self {
            Expr::Ident(s) => vec![s.as_str()],
            Expr::BitOr(v) => v.iter().flat_map(Expr::idents).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Ellipsis => write!(f, "..."),
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Ident(s) => write!(f, "{s}"),
            Expr::Str(s) => write!(f, "{s:?}"),
            Expr::Struct(s) => write!(f, "{{{s}}}"),
            Expr::BitOr(v) => {
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, " | ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Expr::Array(v) => {
                write!(f, "[")?;
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// A backtick shell line, split into the commands the runner understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The text between the backticks.
    pub text: String,
    /// The commands, `;`-separated in the text.
    pub parts: Vec<ShellCommand>,
}

/// One shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellCommand {
    /// `sysctl -w name=value [name=value ...]`.
    Sysctl(Vec<(String, String)>),
    /// `sockstat ... [-p PORT] ... | grep -c STATE | grep N`: the number of
    /// TCP connections in `STATE` (FreeBSD names: `SYN_RCVD`, `TIME_WAIT`...),
    /// on local port `PORT` when given, is `N`.
    SockstatCount {
        /// FreeBSD state name.
        state: String,
        /// `-p PORT` filter.
        port: Option<u16>,
        /// Expected count.
        count: u32,
    },
    /// `tcpdrop -s STATE`: drop every connection in `STATE`.
    TcpDrop {
        /// FreeBSD state name.
        state: String,
    },
    /// Anything else, kept verbatim.
    Other(String),
}

/// A `%{ ... }%` block. Only `assert NAME == VALUE` is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBlock {
    /// The code between the delimiters, trimmed.
    pub text: String,
    /// `assert lhs == rhs`, when the block is exactly that.
    pub assert_eq: Option<(String, String)>,
}

/// Parses a script with no preprocessor names defined except `defines`.
pub fn parse(text: &str, defines: &HashSet<String>) -> Result<Script, ParseError> {
    let lines = preprocess(text, defines)?;
    let mut script = Script::default();
    let mut i = 0;
    while i < lines.len() {
        let (line_no, raw) = &lines[i];
        let line_no = *line_no;
        let mut line = raw.trim().to_string();
        i += 1;
        if line.is_empty() {
            continue;
        }
        // A code block may span lines: join until the closing `}%`.
        if line.contains("%{") && !line.contains("}%") {
            while i < lines.len() && !line.contains("}%") {
                line.push(' ');
                line.push_str(lines[i].1.trim());
                i += 1;
            }
        }
        if let Some(opt) = line.strip_prefix("--") {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
                None => (opt.trim(), None),
            };
            if name.is_empty() {
                return Err(err(line_no, "empty option name"));
            }
            script.options.push(ScriptOption {
                line: line_no,
                name: name.to_string(),
                value,
            });
            continue;
        }
        let event = parse_event(&line).map_err(|m| err(line_no, m))?;
        script.events.push(Event {
            line: line_no,
            time: event.0,
            kind: event.1,
        });
    }
    Ok(script)
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Strips comments and applies `#ifdef`/`#ifndef`/`#else`/`#endif`, keeping
/// the original line numbers.
fn preprocess(text: &str, defines: &HashSet<String>) -> Result<Vec<(usize, String)>, ParseError> {
    let mut out = Vec::new();
    // Each entry: (this branch active, any enclosing branch inactive, seen #else).
    let mut stack: Vec<(bool, bool, bool)> = Vec::new();
    let mut in_block_comment = false;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = strip_comments(raw, &mut in_block_comment);
        let trimmed = line.trim();
        let active = stack.iter().all(|&(a, _, _)| a);
        if let Some(rest) = trimmed.strip_prefix('#') {
            let mut words = rest.split_whitespace();
            let directive = words.next().unwrap_or("");
            let name = words.next();
            match directive {
                "ifdef" | "ifndef" => {
                    let name = name.ok_or_else(|| err(line_no, "#ifdef without a name"))?;
                    let defined = defines.contains(name);
                    let on = if directive == "ifdef" {
                        defined
                    } else {
                        !defined
                    };
                    stack.push((on, !active, false));
                }
                "else" => {
                    let top = stack
                        .last_mut()
                        .ok_or_else(|| err(line_no, "#else without #ifdef"))?;
                    if top.2 {
                        return Err(err(line_no, "second #else"));
                    }
                    top.0 = !top.0;
                    top.2 = true;
                }
                "endif" => {
                    stack
                        .pop()
                        .ok_or_else(|| err(line_no, "#endif without #ifdef"))?;
                }
                _ => return Err(err(line_no, format!("unknown directive #{directive}"))),
            }
            continue;
        }
        if active {
            out.push((line_no, line));
        }
    }
    if !stack.is_empty() {
        return Err(err(text.lines().count(), "#ifdef without #endif"));
    }
    Ok(out)
}

/// Removes `//` and `/* */` comments outside backticks and quotes.
fn strip_comments(line: &str, in_block: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let bytes: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut in_backtick = false;
    let mut in_quote = false;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if *in_block {
            if c == '*' && next == Some('/') {
                *in_block = false;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if !in_backtick && !in_quote {
            if c == '/' && next == Some('/') {
                break;
            }
            if c == '/' && next == Some('*') {
                *in_block = true;
                i += 2;
                continue;
            }
        }
        if c == '`' && !in_quote {
            in_backtick = !in_backtick;
        } else if c == '"' && !in_backtick {
            in_quote = !in_quote;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A cursor over one line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected `{token}` at `{}`", self.rest()))
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.rest().is_empty()
    }

    /// A run of characters satisfying `f` (possibly empty).
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let end = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += end;
        &rest[..end]
    }

    fn word(&mut self) -> Result<&'a str, String> {
        self.skip_ws();
        let w = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        if w.is_empty() {
            Err(format!("expected a name at `{}`", self.rest()))
        } else {
            Ok(w)
        }
    }

    fn uint(&mut self) -> Result<u64, String> {
        self.skip_ws();
        let digits = self.take_while(|c| c.is_ascii_digit());
        digits
            .parse::<u64>()
            .map_err(|_| format!("expected a number at `{}`", self.rest()))
    }

    fn uint_bounded(&mut self, max: u64, what: &str) -> Result<u64, String> {
        let v = self.uint()?;
        if v > max {
            Err(format!("{what} {v} out of range (max {max})"))
        } else {
            Ok(v)
        }
    }
}

/// Parses `S.F` fractional seconds into microseconds.
fn parse_seconds(text: &str) -> Result<Micros, String> {
    let bad = || format!("bad time `{text}`");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return Err(bad());
    }
    let secs: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut usecs: u64 = 0;
    for (i, c) in frac.chars().enumerate() {
        usecs += u64::from(c as u8 - b'0') * 10u64.pow(5 - i as u32);
    }
    secs.checked_mul(1_000_000)
        .and_then(|s| s.checked_add(usecs))
        .ok_or_else(bad)
}

/// Digits with at most one decimal point, stopping before a `...` range marker.
fn take_number_text<'a>(c: &mut Cursor<'a>) -> &'a str {
    c.skip_ws();
    let start = c.pos;
    c.take_while(|ch| ch.is_ascii_digit());
    let rest = c.rest();
    if rest.starts_with('.') && !rest.starts_with("...") {
        c.pos += 1;
        c.take_while(|ch| ch.is_ascii_digit());
    }
    &c.s[start..c.pos]
}

fn parse_time(c: &mut Cursor<'_>) -> Result<EventTime, String> {
    c.skip_ws();
    if c.eat("*") {
        return Ok(EventTime::Any);
    }
    let relative = c.eat("+");
    let first = parse_seconds(take_number_text(c))?;
    // A range: `A...B` or `A~B`. `...` directly after a number (no space).
    let rest = c.rest();
    let second = if let Some(r) = rest.strip_prefix("...") {
        c.pos += rest.len() - r.len();
        Some(parse_seconds(take_number_text(c))?)
    } else if let Some(r) = rest.strip_prefix('~') {
        c.pos += rest.len() - r.len();
        c.eat("+");
        Some(parse_seconds(take_number_text(c))?)
    } else {
        None
    };
    Ok(match (relative, second) {
        (false, None) => EventTime::Absolute(first),
        (true, None) => EventTime::Relative(first),
        (false, Some(b)) => {
            if b < first {
                return Err("range ends before it starts".into());
            }
            EventTime::AbsoluteRange(first, b)
        }
        (true, Some(b)) => {
            if b < first {
                return Err("range ends before it starts".into());
            }
            EventTime::RelativeRange(first, b)
        }
    })
}

fn parse_event(line: &str) -> Result<(EventTime, EventKind), String> {
    let mut c = Cursor::new(line);
    let time = parse_time(&mut c)?;
    c.skip_ws();
    let kind = match c.peek() {
        Some('<') | Some('>') => EventKind::Packet(parse_packet(&mut c)?),
        Some('`') => EventKind::Command(parse_command(&mut c)?),
        Some('%') => EventKind::Code(parse_code(&mut c)?),
        Some(ch) if ch.is_ascii_alphabetic() || ch == '_' => {
            EventKind::Syscall(parse_syscall(&mut c)?)
        }
        _ => return Err(format!("unrecognised event `{}`", c.rest())),
    };
    if !c.at_end() {
        return Err(format!("trailing text `{}`", c.rest()));
    }
    Ok((time, kind))
}

fn parse_packet(c: &mut Cursor<'_>) -> Result<PacketEvent, String> {
    let direction = if c.eat("<") {
        Direction::Inbound
    } else {
        c.expect(">")?;
        Direction::Outbound
    };
    let ip_annotation = if c.eat("[") {
        let inner = c.take_while(|ch| ch != ']');
        c.expect("]")?;
        Some(inner.trim().to_string())
    } else {
        None
    };
    c.skip_ws();
    let body = if c.rest().starts_with("icmp") {
        c.pos += 4;
        PacketBody::Icmp(parse_icmp(c)?)
    } else {
        PacketBody::Tcp(parse_tcp(c)?)
    };
    Ok(PacketEvent {
        direction,
        ip_annotation,
        body,
    })
}

fn parse_flags(text: &str) -> Result<TcpFlags, String> {
    let mut flags = TcpFlags::empty();
    for ch in text.chars() {
        flags |= match ch {
            'S' => TcpFlags::SYN,
            'F' => TcpFlags::FIN,
            'R' => TcpFlags::RST,
            'P' => TcpFlags::PSH,
            '.' => TcpFlags::ACK,
            'U' => TcpFlags::URG,
            'E' => TcpFlags::ECE,
            'W' => TcpFlags::CWR,
            _ => return Err(format!("unknown TCP flag `{ch}` in `{text}`")),
        };
    }
    Ok(flags)
}

fn parse_seq(c: &mut Cursor<'_>) -> Result<SeqSpec, String> {
    c.skip_ws();
    if c.eat("...") {
        c.expect("(")?;
        let len = c.uint_bounded(u64::from(u32::MAX), "length")? as u32;
        c.expect(")")?;
        return Ok(SeqSpec::Any { len });
    }
    let start = c.uint_bounded(u64::from(u32::MAX), "sequence number")? as u32;
    c.expect(":")?;
    let end = c.uint_bounded(u64::from(u32::MAX), "sequence number")? as u32;
    c.expect("(")?;
    let len = c.uint_bounded(u64::from(u32::MAX), "length")? as u32;
    c.expect(")")?;
    if end.wrapping_sub(start) != len {
        return Err(format!("{start}:{end}({len}): end - start != length"));
    }
    Ok(SeqSpec::Range { start, end, len })
}

fn parse_tcp(c: &mut Cursor<'_>) -> Result<TcpSpec, String> {
    c.skip_ws();
    let flag_text = c.take_while(|ch| !ch.is_whitespace());
    if flag_text.is_empty() {
        return Err("missing TCP flags".into());
    }
    let flags = parse_flags(flag_text)?;
    let seq = parse_seq(c)?;
    let mut ack = None;
    let mut win = None;
    let mut options = OptionsSpec::None;
    loop {
        c.skip_ws();
        if c.eat("<") {
            options = parse_options(c)?;
            continue;
        }
        if c.at_end() {
            break;
        }
        let w = c.word()?;
        match w {
            "ack" => ack = Some(c.uint_bounded(u64::from(u32::MAX), "ack")? as u32),
            "win" => win = Some(c.uint_bounded(u64::from(u32::MAX), "window")? as u32),
            other => return Err(format!("unexpected `{other}` in a TCP segment")),
        }
    }
    Ok(TcpSpec {
        flags,
        seq,
        ack,
        win,
        options,
    })
}

/// Parses the options after `<` up to and including `>`.
fn parse_options(c: &mut Cursor<'_>) -> Result<OptionsSpec, String> {
    if c.eat("...") {
        c.expect(">")?;
        return Ok(OptionsSpec::Any);
    }
    let mut list = Vec::new();
    if c.eat(">") {
        return Ok(OptionsSpec::List(list));
    }
    loop {
        let name = c.word()?;
        let opt = match name {
            "nop" => TcpOptionSpec::Nop,
            "eol" => TcpOptionSpec::Eol,
            "mss" => TcpOptionSpec::Mss(c.uint_bounded(u64::from(u16::MAX), "mss")? as u16),
            "wscale" => TcpOptionSpec::WindowScale(c.uint_bounded(255, "wscale")? as u8),
            "sackOK" => TcpOptionSpec::SackPermitted,
            "sack" => {
                let mut blocks = Vec::new();
                loop {
                    c.skip_ws();
                    if !c.peek().is_some_and(|ch| ch.is_ascii_digit()) {
                        break;
                    }
                    let l = c.uint_bounded(u64::from(u32::MAX), "sack edge")? as u32;
                    c.expect(":")?;
                    let r = c.uint_bounded(u64::from(u32::MAX), "sack edge")? as u32;
                    blocks.push((l, r));
                }
                if blocks.is_empty() {
                    return Err("sack option without blocks".into());
                }
                TcpOptionSpec::Sack(blocks)
            }
            "TS" => {
                if c.word()? != "val" {
                    return Err("expected `TS val N ecr M`".into());
                }
                let val = c.uint_bounded(u64::from(u32::MAX), "TS val")? as u32;
                if c.word()? != "ecr" {
                    return Err("expected `TS val N ecr M`".into());
                }
                let ecr = c.uint_bounded(u64::from(u32::MAX), "TS ecr")? as u32;
                TcpOptionSpec::Timestamp { val, ecr }
            }
            other => return Err(format!("unknown TCP option `{other}`")),
        };
        list.push(opt);
        if c.eat(",") {
            continue;
        }
        c.expect(">")?;
        return Ok(OptionsSpec::List(list));
    }
}

/// ICMP type and code names as packetdrill spells them (RFC 792, RFC 1812).
fn icmp_type_code(type_name: &str, code_name: &str) -> Option<(u8, u8)> {
    const UNREACHABLE: [&str; 16] = [
        "net_unreachable",
        "host_unreachable",
        "protocol_unreachable",
        "port_unreachable",
        "frag_needed",
        "source_route_failed",
        "net_unknown",
        "host_unknown",
        "source_host_isolated",
        "net_prohibited",
        "host_prohibited",
        "net_unreachable_for_tos",
        "host_unreachable_for_tos",
        "packet_filtered",
        "precedence_violation",
        "precedence_cutoff",
    ];
    let numbered = |prefix: &str| -> Option<u8> { code_name.strip_prefix(prefix)?.parse().ok() };
    match type_name {
        "unreachable" => {
            let code = UNREACHABLE
                .iter()
                .position(|n| *n == code_name)
                .map(|p| p as u8)
                .or_else(|| numbered("code_"))?;
            Some((3, code))
        }
        "source_quench" => Some((4, numbered("code_").unwrap_or(0))),
        "redirect" => {
            let code = match code_name {
                "" | "redirect_net" => 0,
                "redirect_host" => 1,
                "redirect_tos_net" => 2,
                "redirect_tos_host" => 3,
                other => other.strip_prefix("code_")?.parse().ok()?,
            };
            Some((5, code))
        }
        "time_exceeded" => {
            let code = match code_name {
                "ttl_exceeded_in_transit" => 0,
                "frag_reass_exceeded" => 1,
                other => other.strip_prefix("code_")?.parse().ok()?,
            };
            Some((11, code))
        }
        "parameter_problem" => Some((12, numbered("code_").unwrap_or(0))),
        _ => None,
    }
}

fn parse_icmp(c: &mut Cursor<'_>) -> Result<IcmpSpec, String> {
    let type_name = c.word()?.to_string();
    c.skip_ws();
    let code_name = if c.peek().is_some_and(|ch| ch.is_ascii_alphabetic()) {
        let save = c.pos;
        let w = c.word()?;
        if w == "mtu" {
            c.pos = save;
            String::new()
        } else {
            w.to_string()
        }
    } else {
        String::new()
    };
    let (icmp_type, code) = icmp_type_code(&type_name, &code_name)
        .ok_or_else(|| format!("unknown ICMP type/code `{type_name} {code_name}`"))?;
    let mut mtu = None;
    let mut quoted = None;
    loop {
        if c.at_end() {
            break;
        }
        if c.eat("[") {
            quoted = Some(parse_seq(c)?);
            c.expect("]")?;
            continue;
        }
        let w = c.word()?;
        match w {
            "mtu" => mtu = Some(c.uint_bounded(u64::from(u32::MAX), "mtu")? as u32),
            other => return Err(format!("unexpected `{other}` in an ICMP message")),
        }
    }
    Ok(IcmpSpec {
        icmp_type,
        code,
        type_name,
        code_name,
        mtu,
        quoted,
    })
}

fn parse_syscall(c: &mut Cursor<'_>) -> Result<Syscall, String> {
    let name = c.word()?.to_string();
    c.expect("(")?;
    let mut args = Vec::new();
    if !c.eat(")") {
        loop {
            args.push(parse_expr(c)?);
            if c.eat(",") {
                continue;
            }
            c.expect(")")?;
            break;
        }
    }
    c.expect("=")?;
    let result = parse_expr(c)?;
    c.skip_ws();
    let errno = if c.peek().is_some_and(|ch| ch.is_ascii_uppercase()) {
        Some(c.word()?.to_string())
    } else {
        None
    };
    let note = if c.eat("(") {
        // Free text up to the matching parenthesis.
        let mut depth = 1;
        let start = c.pos;
        let mut end = None;
        for (i, ch) in c.rest().char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or("unterminated `(` after the result")?;
        let text = c.s[start..start + end].trim().to_string();
        c.pos = start + end + 1;
        Some(text)
    } else {
        None
    };
    Ok(Syscall {
        name,
        args,
        result,
        errno,
        note,
    })
}

fn parse_expr(c: &mut Cursor<'_>) -> Result<Expr, String> {
    let first = parse_atom(c)?;
    if !c.rest().trim_start().starts_with('|') {
        return Ok(first);
    }
    let mut parts = vec![first];
    while c.eat("|") {
        parts.push(parse_atom(c)?);
    }
    Ok(Expr::BitOr(parts))
}

fn parse_atom(c: &mut Cursor<'_>) -> Result<Expr, String> {
    c.skip_ws();
    if c.eat("...") {
        return Ok(Expr::Ellipsis);
    }
    if c.eat("[") {
        let mut items = Vec::new();
        if c.eat("]") {
            return Ok(Expr::Array(items));
        }
        loop {
            items.push(parse_expr(c)?);
            if c.eat(",") {
                continue;
            }
            c.expect("]")?;
            return Ok(Expr::Array(items));
        }
    }
    if c.eat("{") {
        let mut depth = 1;
        let start = c.pos;
        for (i, ch) in c.rest().char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let text = c.s[start..start + i].trim().to_string();
                        c.pos = start + i + 1;
                        return Ok(Expr::Struct(text));
                    }
                }
                _ => {}
            }
        }
        return Err("unterminated `{`".into());
    }
    if c.eat("\"") {
        let text = c.take_while(|ch| ch != '"').to_string();
        c.expect("\"")?;
        return Ok(Expr::Str(text));
    }
    let negative = c.eat("-");
    c.skip_ws();
    match c.peek() {
        Some(ch) if ch.is_ascii_digit() => {
            let text = c.take_while(|ch| ch.is_ascii_alphanumeric());
            let value = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
                i64::from_str_radix(hex, 16)
            } else {
                text.parse::<i64>()
            }
            .map_err(|_| format!("bad number `{text}`"))?;
            Ok(Expr::Int(if negative { -value } else { value }))
        }
        Some(ch) if !negative && (ch.is_ascii_alphabetic() || ch == '_') => {
            Ok(Expr::Ident(c.word()?.to_string()))
        }
        _ => Err(format!("expected an expression at `{}`", c.rest())),
    }
}

fn parse_command(c: &mut Cursor<'_>) -> Result<Command, String> {
    c.expect("`")?;
    let text = c.take_while(|ch| ch != '`').to_string();
    c.expect("`")?;
    let parts = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(parse_shell)
        .collect::<Result<Vec<_>, _>>()?;
    if parts.is_empty() {
        return Err("empty shell command".into());
    }
    Ok(Command { text, parts })
}

fn parse_shell(text: &str) -> Result<ShellCommand, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.first().copied() {
        Some("sysctl") => {
            let mut settings = Vec::new();
            for w in &words[1..] {
                if w.starts_with('-') {
                    continue;
                }
                let (name, value) = w
                    .split_once('=')
                    .ok_or_else(|| format!("sysctl `{w}` has no `=value`"))?;
                settings.push((name.to_string(), value.to_string()));
            }
            if settings.is_empty() {
                return Err(format!("sysctl without settings: `{text}`"));
            }
            Ok(ShellCommand::Sysctl(settings))
        }
        Some("sockstat") => parse_sockstat(text).map_or_else(
            || Ok(ShellCommand::Other(text.to_string())),
            |(state, port, count)| Ok(ShellCommand::SockstatCount { state, port, count }),
        ),
        Some("tcpdrop") if words.len() == 3 && words[1] == "-s" => Ok(ShellCommand::TcpDrop {
            state: words[2].to_string(),
        }),
        _ => Ok(ShellCommand::Other(text.to_string())),
    }
}

/// `sockstat <flags> [-p PORT] | [grep NAME |] grep -c STATE | grep N`.
fn parse_sockstat(text: &str) -> Option<(String, Option<u16>, u32)> {
    let stages: Vec<Vec<&str>> = text
        .split('|')
        .map(|s| s.split_whitespace().collect())
        .collect();
    let first = stages.first()?;
    let port = first
        .iter()
        .position(|w| *w == "-p")
        .and_then(|i| first.get(i + 1))
        .map(|p| p.parse::<u16>().ok())
        .map_or(Some(None), |p| p.map(Some))?;
    let mut state = None;
    let mut count = None;
    for stage in &stages[1..] {
        match stage.as_slice() {
            ["grep", "-c", s] => state = Some((*s).to_string()),
            ["grep", n] if state.is_some() => count = Some(n.parse().ok()?),
            ["grep", _] => {}
            _ => return None,
        }
    }
    Some((state?, port, count?))
}

fn parse_code(c: &mut Cursor<'_>) -> Result<CodeBlock, String> {
    c.expect("%{")?;
    let rest = c.rest();
    let end = rest.find("}%").ok_or("unterminated `%{`")?;
    let text = rest[..end].trim().to_string();
    c.pos += end + 2;
    let assert_eq = text.strip_prefix("assert").and_then(|e| {
        let (l, r) = e.split_once("==")?;
        let (l, r) = (l.trim(), r.trim());
        let ok =
            |s: &str| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        (ok(l) && ok(r)).then(|| (l.to_string(), r.to_string()))
    });
    Ok(CodeBlock { text, assert_eq })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> HashSet<String> {
        ["STANDARD".to_string()].into_iter().collect()
    }

    fn one(line: &str) -> Event {
        let s = parse(line, &defs()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(s.events.len(), 1, "{line}");
        s.events.into_iter().next().unwrap()
    }

    fn tcp(line: &str) -> (Direction, TcpSpec) {
        match one(line).kind {
            EventKind::Packet(PacketEvent {
                direction,
                body: PacketBody::Tcp(t),
                ..
            }) => (direction, t),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn times() {
        let cases = [
            ("0.00 close(3) = 0", EventTime::Absolute(0)),
            (" 1.5 close(3) = 0", EventTime::Absolute(1_500_000)),
            ("+0.10 close(3) = 0", EventTime::Relative(100_000)),
            ("+ 0.10 close(3) = 0", EventTime::Relative(100_000)),
            ("+65.00 close(3) = 0", EventTime::Relative(65_000_000)),
            (
                "1.00...6.00 close(3) = 0",
                EventTime::AbsoluteRange(1_000_000, 6_000_000),
            ),
            (
                "0.1~0.2 close(3) = 0",
                EventTime::AbsoluteRange(100_000, 200_000),
            ),
            (
                "+0.1~+0.2 close(3) = 0",
                EventTime::RelativeRange(100_000, 200_000),
            ),
            (
                "+0...0.25 close(3) = 0",
                EventTime::RelativeRange(0, 250_000),
            ),
            ("* > S 0:0(0) win 1", EventTime::Any),
            ("0.000001 close(3) = 0", EventTime::Absolute(1)),
        ];
        for (line, want) in cases {
            assert_eq!(one(line).time, want, "{line}");
        }
        for bad in [
            "0.1234567 close(3) = 0",
            "x close(3) = 0",
            "2.0...1.0 close(3) = 0",
        ] {
            assert!(parse(bad, &defs()).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments() {
        let (d, t) = tcp(
            "+0.00 > S  0:0(0)       win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>",
        );
        assert_eq!(d, Direction::Outbound);
        assert_eq!(t.flags, TcpFlags::SYN);
        assert_eq!(
            t.seq,
            SeqSpec::Range {
                start: 0,
                end: 0,
                len: 0
            }
        );
        assert_eq!(t.ack, None);
        assert_eq!(t.win, Some(65535));
        assert_eq!(
            t.options,
            OptionsSpec::List(vec![
                TcpOptionSpec::Mss(1460),
                TcpOptionSpec::Nop,
                TcpOptionSpec::WindowScale(6),
                TcpOptionSpec::SackPermitted,
                TcpOptionSpec::Timestamp { val: 100, ecr: 0 },
            ])
        );
        let (d, t) = tcp("+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>");
        assert_eq!(d, Direction::Inbound);
        assert_eq!(t.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(t.ack, Some(1));
        let (_, t) = tcp("+0 > P. 4825:5361(536) ack 1 win 65535");
        assert_eq!(t.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(
            t.seq,
            SeqSpec::Range {
                start: 4825,
                end: 5361,
                len: 536
            }
        );
        assert_eq!(t.options, OptionsSpec::None);
        let (_, t) = tcp("+0 > SEW 0:0(0) win 65535 <...>");
        assert_eq!(t.flags, TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR);
        assert_eq!(t.options, OptionsSpec::Any);
        let (_, t) = tcp("+0 < SF 65537:65537(0) win 32767");
        assert_eq!(t.flags, TcpFlags::SYN | TcpFlags::FIN);
        let (_, t) = tcp("+0 > S. ...(0) ack 65537 win 65535 <mss 1460>");
        assert_eq!(t.seq, SeqSpec::Any { len: 0 });
        let (_, t) = tcp("+0 > R 0:0(0)");
        assert_eq!((t.flags, t.win), (TcpFlags::RST, None));
        let (_, t) = tcp("+0 < . 1:1(0) ack 1 win 100 <nop,nop,sack 10:20 30:40>");
        assert_eq!(
            t.options,
            OptionsSpec::List(vec![
                TcpOptionSpec::Nop,
                TcpOptionSpec::Nop,
                TcpOptionSpec::Sack(vec![(10, 20), (30, 40)])
            ])
        );
        let (_, t) = tcp("+0 < S 0:0(0) win 1 <mss 1000,wscale 6,TS val 100 ecr 0,sackOK, eol>");
        assert_eq!(
            t.options,
            OptionsSpec::List(vec![
                TcpOptionSpec::Mss(1000),
                TcpOptionSpec::WindowScale(6),
                TcpOptionSpec::Timestamp { val: 100, ecr: 0 },
                TcpOptionSpec::SackPermitted,
                TcpOptionSpec::Eol,
            ])
        );
        match one("+0.01 <[noecn] . 1:1(0) ack 1 win 65535").kind {
            EventKind::Packet(p) => assert_eq!(p.ip_annotation.as_deref(), Some("noecn")),
            other => panic!("{other:?}"),
        }
        match one("+0 > [ect0] P. 1:11(10) ack 1").kind {
            EventKind::Packet(p) => assert_eq!(p.ip_annotation.as_deref(), Some("ect0")),
            other => panic!("{other:?}"),
        }
        for bad in [
            "+0 > Q 0:0(0)",
            "+0 > S 0:5(4)",
            "+0 > S 0:0(0) win",
            "+0 > S 0:0(0) <mss 70000>",
            "+0 > S 0:0(0) <bogus 1>",
            "+0 > S 0:0(0) <mss 1460",
            "+0 > S 0:0(0) foo 3",
        ] {
            assert!(parse(bad, &defs()).is_err(), "{bad}");
        }
    }

    #[test]
    fn icmp() {
        let cases = [
            (
                "+0 < icmp unreachable port_unreachable [0:0(0)]",
                3,
                3,
                None,
            ),
            ("+0 <icmp unreachable net_unreachable [0:0(0)]", 3, 0, None),
            (
                "+0 < icmp unreachable frag_needed mtu 1234 [0:0(0)]",
                3,
                4,
                Some(1234),
            ),
            (
                "+0 < icmp time_exceeded ttl_exceeded_in_transit [1:1(0)]",
                11,
                0,
                None,
            ),
            ("+0 < icmp parameter_problem code_2 [0:0(0)]", 12, 2, None),
            ("+0 < icmp redirect [0:0(0)]", 5, 0, None),
            ("+0 < icmp source_quench [0:0(0)]", 4, 0, None),
            (
                "+0 < icmp unreachable packet_filtered [4294967295:4294967295(0)]",
                3,
                13,
                None,
            ),
        ];
        for (line, ty, code, mtu) in cases {
            match one(line).kind {
                EventKind::Packet(PacketEvent {
                    direction: Direction::Inbound,
                    body: PacketBody::Icmp(i),
                    ..
                }) => {
                    assert_eq!((i.icmp_type, i.code, i.mtu), (ty, code, mtu), "{line}");
                    assert!(i.quoted.is_some());
                }
                other => panic!("{line}: {other:?}"),
            }
        }
        assert!(parse("+0 < icmp nonsense [0:0(0)]", &defs()).is_err());
    }

    #[test]
    fn syscalls() {
        let s = match one("+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)")
            .kind
        {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.name, "connect");
        assert_eq!(s.args, vec![Expr::Int(3), Expr::Ellipsis, Expr::Ellipsis]);
        assert_eq!(s.result, Expr::Int(-1));
        assert_eq!(s.errno.as_deref(), Some("EINPROGRESS"));
        assert_eq!(s.note.as_deref(), Some("Operation now in progress"));

        let s = match one("+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0").kind {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.args[2].idents(), vec!["O_RDWR", "O_NONBLOCK"]);
        let s = match one("+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)").kind {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.result, Expr::Int(2));
        assert_eq!(s.errno, None);
        let s = match one("+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0").kind {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.args[3].as_ident(), Some("ECONNRESET"));
        assert_eq!(s.args[4].as_int(), Some(4));
        let s = match one("+0 write (3, ..., 10) = 10").kind {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!((s.name.as_str(), s.args[2].as_int()), ("write", Some(10)));
        let s = match one("+0 read(3, ..., 100) = -1 EWOULDBLOCK (Operation would block)").kind {
            EventKind::Syscall(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.errno.as_deref(), Some("EWOULDBLOCK"));
        // Trailing comment glued to the line.
        assert!(matches!(
            one("+0.00 close(3) = 0//").kind,
            EventKind::Syscall(_)
        ));
        let s =
            match one("+0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0").kind {
                EventKind::Syscall(s) => s,
                other => panic!("{other:?}"),
            };
        assert_eq!(s.args[3], Expr::Struct("onoff=1, linger=0".into()));
        for bad in [
            "+0 close(3 = 0",
            "+0 close(3)",
            "+0 close(3) = ",
            "+0 close(3) = 0 (x",
        ] {
            assert!(parse(bad, &defs()).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands() {
        let c = match one("+0.00 `sysctl -w net.inet.tcp.rfc1323=1`").kind {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.parts,
            vec![ShellCommand::Sysctl(vec![(
                "net.inet.tcp.rfc1323".into(),
                "1".into()
            )])]
        );
        let c = match one("+0 `sysctl -w a.b=1; sysctl -w c=2 d=3`").kind {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.parts,
            vec![
                ShellCommand::Sysctl(vec![("a.b".into(), "1".into())]),
                ShellCommand::Sysctl(vec![("c".into(), "2".into()), ("d".into(), "3".into())]),
            ]
        );
        let c = match one("+0.10 `sockstat -4 -P tcp -s -p 8080 | grep -c SYN_RCVD | grep 1`").kind
        {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.parts,
            vec![ShellCommand::SockstatCount {
                state: "SYN_RCVD".into(),
                port: Some(8080),
                count: 1
            }]
        );
        let c = match one(
            "+0.10 `sockstat -4 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1`",
        )
        .kind
        {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.parts,
            vec![ShellCommand::SockstatCount {
                state: "TIME_WAIT".into(),
                port: None,
                count: 1
            }]
        );
        let c = match one("+0 `tcpdrop -s TIME_WAIT`").kind {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            c.parts,
            vec![ShellCommand::TcpDrop {
                state: "TIME_WAIT".into()
            }]
        );
        let c = match one("+0 `ifconfig tun0 mtu 1500`").kind {
            EventKind::Command(c) => c,
            other => panic!("{other:?}"),
        };
        assert!(matches!(c.parts[0], ShellCommand::Other(_)));
        assert!(parse("+0 `sysctl -w foo`", &defs()).is_err());
    }

    #[test]
    fn code_blocks() {
        match one("+0.00 %{ assert tcpi_state == TCPI_CLOSE_WAIT }%").kind {
            EventKind::Code(c) => {
                assert_eq!(
                    c.assert_eq,
                    Some(("tcpi_state".into(), "TCPI_CLOSE_WAIT".into()))
                )
            }
            other => panic!("{other:?}"),
        }
        match one("+0.00 %{ assert tcpi_options == 0}%").kind {
            EventKind::Code(c) => {
                assert_eq!(c.assert_eq, Some(("tcpi_options".into(), "0".into())))
            }
            other => panic!("{other:?}"),
        }
        let s = parse("+0 %{\nx = 1\nprint(x)\n}%\n+0 close(3) = 0", &defs()).unwrap();
        assert_eq!(s.events.len(), 2);
        match &s.events[0].kind {
            EventKind::Code(c) => assert_eq!(c.assert_eq, None),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.events[1].line, 5);
    }

    #[test]
    fn options_comments_and_ifdef() {
        let text = "\
// header
--ip_version=ipv4
--tolerance_usecs=50000
/* block
   comment */ 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
#ifdef STANDARD
+0.00 close(3) = 0
#else
+0.00 close(4) = 0
#endif
#ifdef FreeBSD
+0.00 close(5) = 0
#ifdef STANDARD
+0.00 close(6) = 0
#endif
#endif
#ifndef FreeBSD
+0.00 close(7) = 0
#endif
";
        let s = parse(text, &defs()).unwrap();
        assert_eq!(s.option("ip_version"), Some("ipv4"));
        assert_eq!(s.option("tolerance_usecs"), Some("50000"));
        assert_eq!(s.option("mtu"), None);
        let lines: Vec<usize> = s.events.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![5, 7, 18]);
        for bad in [
            "#ifdef X\n",
            "#endif\n",
            "#else\n",
            "#bogus\n",
            "#ifdef X\n#else\n#else\n#endif\n",
        ] {
            assert!(parse(bad, &defs()).is_err(), "{bad:?}");
        }
    }

    /// Every script of the shared FreeBSD suite parses (skipped when the
    /// suite is not beside the checkout).
    #[test]
    fn freebsd_suite_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance/freebsd-tcp-testsuite");
        if !dir.is_dir() {
            eprintln!("skipping: {} not found", dir.display());
            return;
        }
        let files = crate::collect_scripts(&[dir]).expect("list scripts");
        assert_eq!(files.len(), 350, "the suite has 350 scripts");
        let mut failures = Vec::new();
        let mut events = 0;
        for f in &files {
            let text = std::fs::read_to_string(&f.path).expect("read");
            match parse(&text, &defs()) {
                Ok(s) => {
                    assert!(s.option("tolerance_usecs").is_some(), "{}", f.name);
                    events += s.events.len();
                    for e in &s.events {
                        if let EventKind::Command(c) = &e.kind {
                            for p in &c.parts {
                                assert!(
                                    !matches!(p, ShellCommand::Other(_)),
                                    "{}:{}: unrecognised shell command {p:?}",
                                    f.name,
                                    e.line
                                );
                            }
                        }
                        if let EventKind::Code(c) = &e.kind {
                            assert!(c.assert_eq.is_some(), "{}:{}", f.name, e.line);
                        }
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", f.name)),
            }
        }
        assert!(
            failures.is_empty(),
            "parse errors:\n{}",
            failures.join("\n")
        );
        assert!(events > 8_000, "{events} events");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const LINES: &[&str] = &[
        "+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
        "+0.00 > S  0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>",
        "+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>",
        " 1.00...6.00 connect(3, ..., ...) = -1 ETIMEDOUT (Operation timed out)",
        "+0.00 `sysctl -w net.inet.tcp.rfc1323=1`",
        "+0.10 `sockstat -4 -P tcp -s -p 8080 | grep -c SYN_RCVD | grep 1`",
        "+0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%",
        "+0.00 < icmp unreachable frag_needed mtu 1234 [0:0(0)]",
        "+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0",
        "+0.00 > S. ...(0) ack 65537 win 65535 <...>",
        "#ifdef STANDARD",
        "#endif",
        "--tolerance_usecs=50000",
    ];

    proptest! {
        /// Arbitrary text never makes the parser panic.
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text, &HashSet::new());
        }

        /// Real lines with bytes deleted, replaced or inserted: parse or
        /// fail with a line number inside the text, never panic.
        #[test]
        fn mutated_lines(
            picks in proptest::collection::vec(0..LINES.len(), 1..6),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "[ -~]"), 0..6),
        ) {
            let mut text: String = picks.iter().map(|&i| LINES[i]).collect::<Vec<_>>().join("\n");
            for (at, kind, ch) in edits {
                if text.is_empty() {
                    break;
                }
                let mut pos = at.index(text.len());
                while !text.is_char_boundary(pos) {
                    pos -= 1;
                }
                match kind {
                    0 => {
                        if pos < text.len() {
                            text.remove(pos);
                        }
                    }
                    1 => text.insert_str(pos, &ch),
                    _ => {
                        text.truncate(pos);
                    }
                }
            }
            let defines: HashSet<String> = ["STANDARD".to_string()].into_iter().collect();
            if let Err(e) = parse(&text, &defines) {
                prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e}");
            }
        }
    }
}
