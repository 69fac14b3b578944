//! Reading kiln's log stream (`GET /api/kiln/v1/bakes/{id}/logs/stream`): Server-Sent Events
//! whose `data` is log text and whose `id` is the log offset after it; an `end` event when the
//! bake has ended and all is sent, a `stopping` event when kiln stops. Hand-written: the client
//! is blocking (ureq), the SSE crates are async, and kiln's events need only `id`, `event` and
//! `data` (each line at most [`MAX_LINE`] bytes: a longer one is cut).

use std::io::{BufRead, Read};

const MAX_LINE: usize = 1024 * 1024;
/// An event's data is handed on once this long, even before its end (a server that never ends
/// an event cannot grow the client without bound).
const MAX_EVENT: usize = 4 * 1024 * 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub kind: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// The events of `reader`, one at a time; `None` at the end of the stream.
pub struct Events<R> {
    reader: R,
}

impl<R: BufRead> Events<R> {
    pub fn new(reader: R) -> Self {
        Events { reader }
    }

    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        let mut event = Event::default();
        let mut data: Vec<String> = Vec::new();
        let mut seen = false;
        let mut size = 0;
        loop {
            let mut raw = Vec::new();
            let n = std::io::Read::by_ref(&mut self.reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut raw)?;
            if n == 0 {
                return Ok(seen.then(|| finish(event, data)));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if seen {
                    return Ok(Some(finish(event, data)));
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: kiln's keep-alive
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            seen = true;
            match field {
                "data" => {
                    size += value.len() + 1;
                    data.push(value.to_string());
                    if size > MAX_EVENT {
                        return Ok(Some(finish(event, data)));
                    }
                }
                "event" => event.kind = Some(value.to_string()),
                "id" => event.id = Some(value.to_string()),
                _ => {}
            }
        }
    }
}

fn finish(mut event: Event, data: Vec<String>) -> Event {
    event.data = data.join("\n");
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_id_kind_and_multi_line_data() {
        let text = ": keep-alive\n\nid: 12\ndata: line one\ndata: line two\n\n\
                    event: end\ndata: bake finished\n\n";
        let mut events = Events::new(text.as_bytes());
        let first = events.next_event().unwrap().unwrap();
        assert_eq!(first.id.as_deref(), Some("12"));
        assert_eq!(first.kind, None);
        assert_eq!(first.data, "line one\nline two");
        let end = events.next_event().unwrap().unwrap();
        assert_eq!(end.kind.as_deref(), Some("end"));
        assert_eq!(events.next_event().unwrap(), None);
    }

    #[test]
    fn a_stream_cut_mid_event_still_yields_it_and_odd_bytes_do_not_fail() {
        let mut events = Events::new(&b"id: 3\r\ndata: a\xffb"[..]);
        let e = events.next_event().unwrap().unwrap();
        assert_eq!(e.id.as_deref(), Some("3"));
        assert_eq!(e.data, "a\u{fffd}b");
    }
}
