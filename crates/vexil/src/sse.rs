//! A server-sent-events parser (the WHATWG "event stream interpretation"), fed bytes as they
//! arrive: lines end with LF, CR or CRLF (possibly split across chunks); `event:`, `data:`
//! (joined with newlines), `id:` (kept across events, as the spec's last-event-ID buffer) and
//! `retry:` fields; comments start with `:`; an empty line dispatches the event.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` field; `message` when absent.
    pub(crate) event: String,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
    /// The last event id seen on this stream, if any.
    pub(crate) id: Option<String>,
}

/// A line or event grew past the parser's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

/// The parser's state between chunks.
#[derive(Debug)]
pub(crate) struct Parser {
    line: Vec<u8>,
    /// The previous byte was a CR: a LF right after it ends nothing.
    after_cr: bool,
    /// Nothing has been read yet (a leading byte-order mark is dropped).
    start: bool,
    event: String,
    data: String,
    last_id: Option<String>,
    limit: usize,
}

impl Parser {
    /// A parser that refuses lines and events larger than `limit` bytes.
    pub(crate) fn new(limit: usize) -> Parser {
        Parser {
            line: Vec::new(),
            after_cr: false,
            start: true,
            event: String::new(),
            data: String::new(),
            last_id: None,
            limit,
        }
    }

    /// Feeds a chunk; every event it completes is pushed to `out`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        if self.start && !bytes.is_empty() {
            self.start = false;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process(&line, out)?;
                }
                None => {
                    self.push(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), TooLarge> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(TooLarge);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(TooLarge);
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            // `retry` (the server's reconnection hint) is not used: the client has its own
            // backoff. Unknown fields are ignored, as the spec says.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = std::mem::take(&mut self.event);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return;
        }
        data.pop();
        out.push(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_fields_and_comments() {
        let out = parse_chunks(&[
            b": heartbeat\n\nevent: put\nid: 7\ndata: {\"a\":1}\n\n: heartbeat\n\ndata:x\ndata: y\n\n",
        ]);
        assert_eq!(
            out,
            vec![
                ev("put", "{\"a\":1}", Some("7")),
                ev("message", "x\ny", Some("7"))
            ]
        );
    }

    #[test]
    fn every_line_ending_and_any_split() {
        let text = b"event: patch\r\nid: 12\rdata: a\n\r\nevent: put\ndata: b\r\r";
        let whole = parse_chunks(&[text]);
        assert_eq!(
            whole,
            vec![ev("patch", "a", Some("12")), ev("put", "b", Some("12"))]
        );
        for split in 0..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(parse_chunks(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_chunks(&bytes), whole);
    }

    #[test]
    fn bom_field_without_colon_and_empty_data() {
        let out = parse_chunks(&[b"\xEF\xBB\xBFdata\n\nevent: x\n\ndata: z\n\n"]);
        // `data` alone is an empty data line: the event is dispatched with empty data. An
        // event with no data at all is not.
        assert_eq!(out, vec![ev("message", "", None), ev("message", "z", None)]);
    }

    #[test]
    fn oversized_lines_are_refused() {
        let mut p = Parser::new(8);
        let mut out = Vec::new();
        assert_eq!(p.feed(b"data: 0123456789", &mut out), Err(TooLarge));
    }
}
