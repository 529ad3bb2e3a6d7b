//! Endpoint quarantine: once an endpoint has answered from an address outside its `cidrs`,
//! every further request to it is refused before it leaves, on every worker, for
//! [`QUARANTINE_SECONDS`].
//!
//! The response-time upstream-address check can only see where an answer came from after the
//! signed request (and its prompt) went there. The quarantine makes sure that happens once per
//! endpoint and not for every later request: the first answer from outside starts it, and from
//! then on the request-header phase refuses the endpoint's requests
//! (`destination_not_privatelink`, 403) without contacting any upstream.
//!
//! # Where it lives
//!
//! In proxy-wasm shared data under [`SHARED_KEY`]: one value shared by every worker (every VM)
//! of the same `vm_id` in the Envoy process. Keyed by the bundle endpoint's host (the entry's
//! canonical `host`, so a zonal name and its regional entry share one quarantine), not by the
//! entry's index, so it survives a bundle push (hot reload) unchanged: a new bundle neither
//! lifts nor moves it. It ends when it expires, or when Envoy restarts.
//!
//! # The value
//!
//! Printable ASCII, one entry per line: `<until, Unix ms, decimal> <host>\n`, where `host` is
//! `[a-z0-9.-]{1,253}`. At most [`MAX_ENTRIES`] entries. Lines that do not parse are ignored
//! (only this module writes the key). An empty value means nothing is quarantined; expired
//! entries are removed by the next writer, and by the first reader that sees only expired
//! ones, so the value returns to empty and a request then reads no bytes at all.
//!
//! Writers use the host's compare-and-swap (`cas`) and verify by reading back, so two workers
//! quarantining different endpoints at the same moment cannot erase each other's entry.

use proxy_wasm::types::Status;

use crate::host::{Host, HostError};

/// How long an endpoint stays quarantined after its last answer from outside its ranges.
pub const QUARANTINE_SECONDS: u64 = 300;
/// The shared-data key (shared by all workers of one `vm_id`).
pub const SHARED_KEY: &str = "bedrock_guard.quarantine.v1";
/// Most endpoints held at once (a bundle lists few endpoints; the oldest entry gives way).
pub const MAX_ENTRIES: usize = 64;
/// Read-modify-write attempts before giving up on a contended value.
const WRITE_ATTEMPTS: usize = 8;

const QUARANTINE_MS: u64 = QUARANTINE_SECONDS * 1000;

/// One quarantined endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub host: &'a str,
    /// Unix milliseconds at which the quarantine ends.
    pub until_ms: u64,
}

/// A host the value can hold: `[a-z0-9.-]{1,253}`.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let space = line.iter().position(|&b| b == b' ')?;
    let (until, host) = line.split_at_checked(space)?;
    let host = std::str::from_utf8(host.get(1..)?).ok()?;
    if until.is_empty() || until.len() > 20 || !until.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let until_ms = std::str::from_utf8(until).ok()?.parse::<u64>().ok()?;
    valid_host(host).then_some(Entry { host, until_ms })
}

/// Every well-formed entry of `value`, in order.
pub fn entries(value: &[u8]) -> impl Iterator<Item = Entry<'_>> {
    value
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(parse_line)
}

/// Is `host` quarantined at `now_ms`? Its end time when it is. Allocates nothing.
pub fn active_until(value: &[u8], host: &str, now_ms: u64) -> Option<u64> {
    entries(value)
        .filter(|e| e.host == host && e.until_ms > now_ms)
        .map(|e| e.until_ms)
        .max()
}

/// Does `value` hold anything that is not a live entry (an expired entry or a malformed line)?
pub fn needs_pruning(value: &[u8], now_ms: u64) -> bool {
    value
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .any(|line| parse_line(line).is_none_or(|e| e.until_ms <= now_ms))
}

fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.host.len() + 22).sum());
    for e in entries {
        out.extend_from_slice(e.until_ms.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(e.host.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `value` without expired entries and malformed lines (one entry per host, the latest end).
pub fn pruned(value: &[u8], now_ms: u64) -> Vec<u8> {
    let mut live: Vec<Entry<'_>> = Vec::new();
    for e in entries(value).filter(|e| e.until_ms > now_ms) {
        match live.iter_mut().find(|l| l.host == e.host) {
            Some(l) => l.until_ms = l.until_ms.max(e.until_ms),
            None => live.push(e),
        }
    }
    encode(&live)
}

/// What adding an entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The new value to store.
    pub value: Vec<u8>,
    /// True when `host` was not quarantined before (a quarantine starts); false when a live
    /// quarantine was only extended.
    pub started: bool,
}

/// `value` with `host` quarantined until `until_ms` (an existing later end is kept), expired
/// entries dropped, and at most [`MAX_ENTRIES`] entries (the ones ending first give way).
/// `None` when `host` cannot be stored.
pub fn add(value: &[u8], host: &str, until_ms: u64, now_ms: u64) -> Option<Added> {
    if !valid_host(host) {
        return None;
    }
    let mut live: Vec<Entry<'_>> = Vec::new();
    for e in entries(value).filter(|e| e.until_ms > now_ms) {
        match live.iter_mut().find(|l| l.host == e.host) {
            Some(l) => l.until_ms = l.until_ms.max(e.until_ms),
            None => live.push(e),
        }
    }
    let started = match live.iter_mut().find(|l| l.host == host) {
        Some(l) => {
            l.until_ms = l.until_ms.max(until_ms);
            false
        }
        None => {
            live.push(Entry { host, until_ms });
            true
        }
    };
    while live.len() > MAX_ENTRIES {
        // Never evict the entry just written.
        let victim = live
            .iter()
            .enumerate()
            .filter(|(_, e)| e.host != host)
            .min_by_key(|(_, e)| e.until_ms)
            .map(|(i, _)| i);
        match victim {
            Some(i) => {
                live.remove(i);
            }
            None => break,
        }
    }
    Some(Added {
        value: encode(&live),
        started,
    })
}

// ------------------------------------------------------------------------------ host side

/// Is the endpoint `host` quarantined now? One host call; when nothing is quarantined the host
/// hands back no bytes and nothing is allocated. A value holding only expired entries is
/// cleared on the way (compare-and-swap; losing the race is harmless). A host failure is
/// logged and read as "not quarantined": this is the backstop, the cluster pinned to the
/// endpoint is the primary control.
pub fn check(env: &impl Host, host: &str, now_ms: u64) -> Option<u64> {
    let (value, cas) = match env.shared_data(SHARED_KEY) {
        Ok((Some(value), cas)) => (value, cas),
        Ok((None, _)) => return None,
        Err(err) => {
            log::warn!("bedrock-guard: cannot read the endpoint quarantine: {err:?}");
            return None;
        }
    };
    let until = active_until(&value, host, now_ms);
    if needs_pruning(&value, now_ms) {
        let _ = env.set_shared_data(SHARED_KEY, &pruned(&value, now_ms), cas);
    }
    until
}

/// Quarantine the endpoint `host` for [`QUARANTINE_SECONDS`] from `now_ms`. `Some(true)` when
/// this started a quarantine, `Some(false)` when one was already running (it is extended),
/// `None` when it could not be stored (logged).
pub fn start(env: &impl Host, host: &str, now_ms: u64) -> Option<bool> {
    let until_ms = now_ms.saturating_add(QUARANTINE_MS);
    let mut started = None;
    for _ in 0..WRITE_ATTEMPTS {
        let (value, cas) = match env.shared_data(SHARED_KEY) {
            Ok((value, cas)) => (value.unwrap_or_default(), cas),
            Err(err) => {
                log::warn!("bedrock-guard: cannot read the endpoint quarantine: {err:?}");
                return None;
            }
        };
        if started.is_some() && active_until(&value, host, now_ms) >= Some(until_ms) {
            // Our write (or a later one) is in place.
            return started;
        }
        let added = add(&value, host, until_ms, now_ms)?;
        // The first read decides whether this answer started the quarantine.
        started.get_or_insert(added.started);
        match env.set_shared_data(SHARED_KEY, &added.value, cas) {
            // Either way, read back: a writer that found no value (cas 0) writes
            // unconditionally and may have replaced ours; the loop writes again until our
            // entry is seen.
            Ok(()) | Err(HostError::Status(Status::CasMismatch)) => {}
            Err(err) => {
                log::warn!("bedrock-guard: cannot write the endpoint quarantine: {err:?}");
                return None;
            }
        }
    }
    log::warn!("bedrock-guard: the endpoint quarantine is contended; {host} may not be recorded");
    started
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const A: &str = "bedrock-runtime.us-east-1.amazonaws.com";
    const B: &str = "vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com";
    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn empty_value_quarantines_nothing() {
        assert_eq!(active_until(b"", A, NOW), None);
        assert!(!needs_pruning(b"", NOW));
        assert_eq!(entries(b"").count(), 0);
    }

    #[test]
    fn add_starts_then_extends() {
        let first = add(b"", A, NOW + 300_000, NOW).unwrap();
        assert!(first.started);
        assert_eq!(first.value, format!("{} {A}\n", NOW + 300_000).into_bytes());
        assert_eq!(active_until(&first.value, A, NOW), Some(NOW + 300_000));
        assert_eq!(active_until(&first.value, B, NOW), None);

        let again = add(&first.value, A, NOW + 400_000, NOW + 100_000).unwrap();
        assert!(
            !again.started,
            "a live quarantine is extended, not restarted"
        );
        assert_eq!(active_until(&again.value, A, NOW), Some(NOW + 400_000));
        assert_eq!(entries(&again.value).count(), 1);

        // An earlier end never shortens a running quarantine.
        let earlier = add(&again.value, A, NOW + 1, NOW).unwrap();
        assert_eq!(active_until(&earlier.value, A, NOW), Some(NOW + 400_000));
    }

    #[test]
    fn endpoints_are_quarantined_independently() {
        let a = add(b"", A, NOW + 300_000, NOW).unwrap();
        let ab = add(&a.value, B, NOW + 310_000, NOW + 10_000).unwrap();
        assert!(ab.started);
        assert_eq!(
            active_until(&ab.value, A, NOW + 20_000),
            Some(NOW + 300_000)
        );
        assert_eq!(
            active_until(&ab.value, B, NOW + 20_000),
            Some(NOW + 310_000)
        );
        // A expires first; B stays.
        assert_eq!(active_until(&ab.value, A, NOW + 300_000), None);
        assert_eq!(
            active_until(&ab.value, B, NOW + 300_000),
            Some(NOW + 310_000)
        );
    }

    #[test]
    fn expiry_is_exclusive_and_expired_entries_are_pruned() {
        let v = add(b"", A, NOW + 300_000, NOW).unwrap().value;
        assert_eq!(active_until(&v, A, NOW + 299_999), Some(NOW + 300_000));
        assert_eq!(active_until(&v, A, NOW + 300_000), None);
        assert!(!needs_pruning(&v, NOW + 299_999));
        assert!(needs_pruning(&v, NOW + 300_000));
        assert_eq!(pruned(&v, NOW + 300_000), Vec::<u8>::new());
        // A new quarantine after expiry starts again.
        let again = add(&v, A, NOW + 700_000, NOW + 400_000).unwrap();
        assert!(again.started);
        assert_eq!(entries(&again.value).count(), 1);
    }

    #[test]
    fn hosts_outside_the_grammar_are_never_stored() {
        for host in ["", "Upper.example", "a b", "a\nb", "a:443", "é.example"] {
            assert_eq!(add(b"", host, NOW + 1, NOW), None, "{host:?}");
        }
        assert!(add(b"", &"a".repeat(254), NOW + 1, NOW).is_none());
        assert!(add(b"", &"a".repeat(253), NOW + 1, NOW).is_some());
    }

    #[test]
    fn malformed_lines_are_ignored_and_pruned() {
        let v = format!(
            "garbage\n{u} {A}\n\n12x {B}\n{u} UPPER\n {B}\n99999999999999999999999 {B}\n{u}\n",
            u = NOW + 5
        );
        let v = v.as_bytes();
        assert_eq!(entries(v).count(), 1);
        assert_eq!(active_until(v, A, NOW), Some(NOW + 5));
        assert_eq!(active_until(v, B, NOW), None);
        assert!(needs_pruning(v, NOW));
        assert_eq!(pruned(v, NOW), format!("{} {A}\n", NOW + 5).into_bytes());
    }

    #[test]
    fn duplicate_lines_merge_to_the_latest_end() {
        let v = format!("{} {A}\n{} {A}\n", NOW + 10, NOW + 20);
        assert_eq!(active_until(v.as_bytes(), A, NOW), Some(NOW + 20));
        let added = add(v.as_bytes(), B, NOW + 30, NOW).unwrap();
        assert_eq!(entries(&added.value).count(), 2);
        assert_eq!(active_until(&added.value, A, NOW), Some(NOW + 20));
    }

    #[test]
    fn the_value_is_bounded_and_never_drops_the_new_entry() {
        let mut v = Vec::new();
        for i in 0..MAX_ENTRIES as u64 {
            v = add(&v, &format!("h{i}.example"), NOW + 1000 + i, NOW)
                .unwrap()
                .value;
        }
        assert_eq!(entries(&v).count(), MAX_ENTRIES);
        let full = add(&v, A, NOW + 10, NOW).unwrap();
        assert_eq!(entries(&full.value).count(), MAX_ENTRIES);
        assert_eq!(active_until(&full.value, A, NOW), Some(NOW + 10));
        // The entry ending first gave way.
        assert_eq!(active_until(&full.value, "h0.example", NOW), None);
        assert!(active_until(&full.value, "h1.example", NOW).is_some());
    }

    #[test]
    fn the_value_is_printable_ascii_lines() {
        let v = add(b"", B, u64::MAX, NOW).unwrap().value;
        assert!(v.iter().all(|b| *b == b'\n' || (b' '..=b'~').contains(b)));
        assert_eq!(active_until(&v, B, NOW), Some(u64::MAX));
    }
}
