//! Listing bakes newest first, a page at a time: the filter, the cursor and the paging loop, in
//! one place for every engine. An engine only answers "the next `n` bakes older than this
//! position" ([`BakeStore::older_than`]); filtering and paging are written once here
//! ([`list`]), so both engines page and filter alike.
//!
//! Order and stability: bakes are ordered by `(created_ms, id)`, newest first, and a cursor is
//! the position of the last bake a page covered. The next page starts strictly below it, so a
//! bake created while a client pages (it is newer than the cursor) never shifts a page: nothing
//! is listed twice and nothing is skipped.
//!
//! Bounds: a page holds at most [`MAX_LIMIT`] bakes, and one call examines at most
//! [`SCAN_BUDGET`] bakes. When a rare filter runs out of budget the page is short (even empty)
//! and still carries a cursor: the client goes on from there.

use super::{BakeStore, StoreResult};
use crate::bake::{BakeRecord, Phase};

/// The most bakes one page holds; a larger `limit` is capped to it.
pub const MAX_LIMIT: usize = 100;

/// The page size when a request names none.
pub const DEFAULT_LIMIT: usize = 20;

/// The most bakes one listing examines, whatever the filter (each costs a decode).
pub const SCAN_BUDGET: usize = 2000;

/// How many bakes a listing asks its engine for at a time.
const BATCH: usize = 200;

/// The longest bake id a cursor may hold (ids kiln makes are far shorter).
const MAX_CURSOR_ID: usize = 256;

/// Which bakes a listing keeps. Every field left `None` keeps every bake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BakeFilter {
    pub phase: Option<Phase>,
    /// One package name: keeps bakes whose request's package list holds it exactly.
    pub package: Option<String>,
    pub region: Option<String>,
    pub provider: Option<String>,
}

impl BakeFilter {
    pub fn matches(&self, r: &BakeRecord) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.phase.is_none_or(|p| p == r.phase)
            && same(&self.region, &r.region)
            && same(&self.provider, &r.provider)
            && self.package.as_deref().is_none_or(|want| {
                r.request
                    .get("package")
                    .and_then(|p| p.as_str())
                    .is_some_and(|list| list.split_whitespace().any(|p| p == want))
            })
    }
}

/// A position in the newest-first order: a bake's `(created_ms, id)`. A listing goes on strictly
/// below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn of(r: &BakeRecord) -> Cursor {
        Cursor {
            created_ms: r.created_ms,
            id: r.id.clone(),
        }
    }

    /// The opaque text a client passes back: hex, so clients treat it as a token rather than
    /// something to build (hand-written: three lines, no crate needed for it).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_ms, self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a cursor from [`Cursor::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Cursor> {
        if !text.len().is_multiple_of(2) || text.len() > 2 * (MAX_CURSOR_ID + 24) {
            return None;
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once('.')?;
        let created_ms = ms.parse::<i64>().ok().filter(|ms| *ms >= 0)?;
        let valid =
            !id.is_empty() && id.len() <= MAX_CURSOR_ID && !id.chars().any(char::is_control);
        valid.then(|| Cursor {
            created_ms,
            id: id.to_string(),
        })
    }
}

/// What an engine answers to [`BakeStore::older_than`].
#[derive(Debug, Default)]
pub struct Batch {
    /// The readable bakes among those examined, newest first.
    pub records: Vec<BakeRecord>,
    /// The position of the last bake examined, readable or not (`None` when none was).
    pub last: Option<Cursor>,
    /// Whether the engine ran out of bakes (it examined fewer than asked).
    pub exhausted: bool,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    pub bakes: Vec<BakeRecord>,
    /// Where the next page starts; `None` when the listing reached the oldest bake.
    pub next: Option<Cursor>,
}

/// Up to `limit` (capped to [`MAX_LIMIT`], at least 1) bakes that match `filter`, newest first,
/// strictly older than `after`; examines at most [`SCAN_BUDGET`] bakes.
pub fn list(
    store: &(impl BakeStore + ?Sized),
    filter: &BakeFilter,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut position = after.cloned();
    let mut page = Page::default();
    let mut examined = 0;
    while examined < SCAN_BUDGET {
        let ask = BATCH.min(SCAN_BUDGET - examined);
        let batch = store.older_than(position.as_ref(), ask)?;
        let Some(last) = batch.last.clone() else {
            return Ok(page);
        };
        for r in batch.records {
            if filter.matches(&r) {
                page.bakes.push(r);
                if page.bakes.len() == limit {
                    // Full: the next page starts below this bake, whatever this batch held after it.
                    let at = page.bakes.last().map(Cursor::of);
                    let at_the_end = batch.exhausted && at.as_ref() == Some(&last);
                    page.next = if at_the_end { None } else { at };
                    return Ok(page);
                }
            }
        }
        if batch.exhausted {
            return Ok(page);
        }
        // Every examined bake counts, readable or not, so the loop always ends.
        examined += ask;
        position = Some(last);
    }
    page.next = position;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_nothing_else_decodes() {
        let c = Cursor {
            created_ms: 1_700_000_000_123,
            id: "6f1c-ab.x:y".to_string(),
        };
        let text = c.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        assert_eq!(Cursor::decode(&text), Some(c));
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for bad in [
            String::new(),
            "zz".to_string(),
            "abc".to_string(),
            hex("nodot"),
            hex("-5.id"),
            hex("12."),
            hex("x.id"),
            hex("12.a\nb"),
            hex(&format!("12.{}", "i".repeat(300))),
            "ff".repeat(10),
        ] {
            assert_eq!(Cursor::decode(&bad), None, "{bad}");
        }
    }
}
