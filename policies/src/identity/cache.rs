//! Cache of verified tokens, keyed by the SHA-256 of the token bytes (the token itself is never
//! stored), so a token reused across requests is verified once.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::principal::Principal;

/// Verified tokens a [`super::Verifier`] keeps (per VM: per Envoy worker): at 1025 the oldest
/// insertion is evicted, and that token is verified in full again when next seen.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// SHA-256 of the exact token bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a token.
    pub fn of(token: &[u8]) -> TokenHash {
        TokenHash(Sha256::digest(token).into())
    }

    /// The first 12 hex characters, for audit records.
    pub fn fingerprint(&self) -> String {
        let mut out = String::with_capacity(12);
        for byte in self.0.iter().take(6) {
            for nibble in [byte >> 4, byte & 0x0f] {
                // A nibble is always a hex digit.
                out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
            }
        }
        out
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.fingerprint())
    }
}

/// First 12 hex characters of the token's SHA-256: identifies a token in audit records without
/// revealing it.
pub fn fingerprint(token: &[u8]) -> String {
    TokenHash::of(token).fingerprint()
}

/// A successfully verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The caller.
    pub principal: Arc<Principal>,
    /// The token's `exp` (rounded down), seconds since the epoch.
    pub expires_at: u64,
}

struct Entry {
    principal: Arc<Principal>,
    expires_at: u64,
    seq: u64,
}

/// A bounded map from [`TokenHash`] to the principal, expiring entries at the token's `exp`
/// and evicting the oldest insertion when full.
pub struct TokenCache {
    capacity: usize,
    entries: BTreeMap<TokenHash, Entry>,
    /// Insertion order; records whose `seq` no longer matches the entry are stale and skipped.
    order: VecDeque<(TokenHash, u64)>,
    next_seq: u64,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (0 disables caching).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The cached token, unless absent or expired (`now >= exp`: an expired entry is evicted).
    pub fn get(&mut self, hash: &TokenHash, now: u64) -> Option<VerifiedToken> {
        let entry = self.entries.get(hash)?;
        if now >= entry.expires_at {
            self.entries.remove(hash);
            return None;
        }
        Some(VerifiedToken {
            principal: Arc::clone(&entry.principal),
            expires_at: entry.expires_at,
        })
    }

    /// Caches a verified token until `expires_at`, evicting the oldest entry when full.
    pub fn insert(&mut self, hash: TokenHash, principal: Arc<Principal>, expires_at: u64) {
        if self.capacity == 0 {
            return;
        }
        self.entries.remove(&hash);
        while self.entries.len() >= self.capacity {
            let Some((oldest, seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).is_some_and(|e| e.seq == seq) {
                self.entries.remove(&oldest);
            }
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(
            hash,
            Entry {
                principal,
                expires_at,
                seq,
            },
        );
        self.order.push_back((hash, seq));
        // Expired and replaced entries leave stale order records behind; keep them bounded.
        if self.order.len() > self.capacity.saturating_mul(2).saturating_add(16) {
            let entries = &self.entries;
            self.order
                .retain(|(h, s)| entries.get(h).is_some_and(|e| e.seq == *s));
        }
    }

    /// Drops every entry (e.g. after a provider's keys changed).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Number of cached tokens (expired ones count until looked up or evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.entries.len())
            .finish()
    }
}
