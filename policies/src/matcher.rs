//! IAM-style wildcard patterns (`*`, `?`), compiled once.
//!
//! Semantics follow IAM `StringLike` (which is also how IAM treats the resource part of an ARN):
//! `*` matches any run of characters, including none and including `:` and `/`; `?` matches
//! exactly one character; everything else is literal and case-sensitive. There is no escape
//! syntax: a pattern cannot match a literal `*` or `?` other than through a wildcard.
//!
//! A pattern is split once, at compile time, into the pieces between its stars. Matching then
//! places the first piece at the start, the last piece at the end, and every middle piece at its
//! leftmost possible position. Leftmost placement is always safe because each middle piece has a
//! fixed length in characters and the stars around it absorb whatever lies between, so no
//! backtracking is ever needed: matching is `O(len(s) * len(piece))` in the worst case and never
//! allocates.

use std::collections::{HashMap, HashSet};

/// One element of a piece: a literal run or a single-character wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    AnyChar,
}

/// The text between two stars (or a pattern edge): a fixed number of characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Piece {
    tokens: Vec<Token>,
    /// Length in characters (each `?` counts one).
    chars: usize,
}

impl Piece {
    fn parse(text: &str) -> Piece {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut chars = 0;
        for c in text.chars() {
            chars += 1;
            if c == '?' {
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::AnyChar);
            } else {
                literal.push(c);
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Piece { tokens, chars }
    }

    /// Match this piece starting at byte `start` of `s`, without reading past byte `end`.
    /// Returns the byte position just after the match.
    fn match_at(&self, s: &str, start: usize, end: usize) -> Option<usize> {
        let window = s.get(..end)?;
        let mut pos = start;
        for token in &self.tokens {
            let rest = window.get(pos..)?;
            match token {
                Token::Literal(lit) => {
                    if !rest.starts_with(lit.as_str()) {
                        return None;
                    }
                    pos += lit.len();
                }
                Token::AnyChar => {
                    pos += rest.chars().next()?.len_utf8();
                }
            }
        }
        Some(pos)
    }

    /// Leftmost match of this piece in `s[from..end]`; returns the byte position after it.
    fn find(&self, s: &str, from: usize, end: usize) -> Option<usize> {
        let window = s.get(..end)?;
        let hay = window.get(from..)?;
        // Jump straight to candidate positions when the piece starts with a literal.
        if let Some(Token::Literal(first)) = self.tokens.first() {
            let mut offset = 0;
            while let Some(found) = hay.get(offset..).and_then(|h| h.find(first.as_str())) {
                let at = from + offset + found;
                if let Some(after) = self.match_at(s, at, end) {
                    return Some(after);
                }
                // Advance one character past the candidate.
                let step = hay
                    .get(offset + found..)
                    .and_then(|h| h.chars().next())
                    .map_or(1, char::len_utf8);
                offset += found + step;
            }
            return None;
        }
        for (i, _) in hay.char_indices() {
            if let Some(after) = self.match_at(s, from + i, end) {
                return Some(after);
            }
        }
        // An empty piece (or a piece of only `?`s that did not fit) at the very end.
        self.match_at(s, end, end)
    }
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    /// Pieces between stars; `pieces.len() == stars + 1`.
    pieces: Vec<Piece>,
}

impl Pattern {
    /// Compile a pattern. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Pattern {
        Pattern {
            source: pattern.to_string(),
            pieces: pattern.split('*').map(Piece::parse).collect(),
        }
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Does the pattern contain no wildcard at all (so it matches only itself)?
    pub fn is_literal(&self) -> bool {
        is_literal(&self.source)
    }

    /// Does `s` match the whole pattern?
    pub fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return s.is_empty(),
        };
        let (last, middle) = match rest.split_last() {
            Some(split) => split,
            // No star: the single piece must cover the whole string.
            None => return first.match_at(s, 0, s.len()) == Some(s.len()),
        };
        let Some(mut pos) = first.match_at(s, 0, s.len()) else {
            return false;
        };
        // The last piece is anchored at the end: find where it must start.
        let Some(tail_start) = nth_char_from_end(s, last.chars) else {
            return false;
        };
        if tail_start < pos || last.match_at(s, tail_start, s.len()) != Some(s.len()) {
            return false;
        }
        for piece in middle {
            match piece.find(s, pos, tail_start) {
                Some(after) => pos = after,
                None => return false,
            }
        }
        true
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Does `pattern` contain no `*` or `?`?
pub fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?'])
}

/// Byte index at which the last `n` characters of `s` begin.
fn nth_char_from_end(s: &str, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(s.len());
    }
    s.char_indices().rev().nth(n - 1).map(|(i, _)| i)
}

/// A set of patterns compiled for lookup: literal patterns in a hash set, wildcard patterns in
/// a list tried in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet {
    exact: HashSet<String>,
    wildcards: Vec<Pattern>,
}

impl PatternSet {
    /// Compile `patterns` into a set (a repeated pattern is kept once).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> PatternSet {
        let mut set = PatternSet::default();
        for p in patterns {
            set.insert(p);
        }
        set
    }

    /// Add one pattern.
    pub(crate) fn insert(&mut self, pattern: &str) {
        if is_literal(pattern) {
            self.exact.insert(pattern.to_string());
        } else if !self.wildcards.iter().any(|w| w.as_str() == pattern) {
            self.wildcards.push(Pattern::new(pattern));
        }
    }

    /// Does any pattern of the set match `s`?
    pub fn matches(&self, s: &str) -> bool {
        self.exact.contains(s) || self.wildcards.iter().any(|p| p.matches(s))
    }

    /// Is `s` one of the set's literal (wildcard-free) patterns?
    pub fn contains_exact(&self, s: &str) -> bool {
        self.exact.contains(s)
    }

    /// Does the set hold no pattern (so it matches nothing)?
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty()
    }

    /// The number of distinct patterns.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcards.len()
    }
}

/// A pattern set that matches without regard to ASCII case: patterns are folded to lower case
/// once, when compiled, and a candidate is folded only when it has an upper-case letter (so a
/// lower-case candidate, the common case, costs no allocation). Deny rules use it: a case
/// variant of a denied id must never slip past the deny.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldedPatternSet {
    inner: PatternSet,
}

impl FoldedPatternSet {
    /// Add one pattern (folded to lower case).
    pub fn insert(&mut self, pattern: &str) {
        self.inner.insert(&pattern.to_ascii_lowercase());
    }

    /// Does any pattern match `s`, compared without regard to ASCII case?
    pub fn matches(&self, s: &str) -> bool {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            self.inner.matches(&s.to_ascii_lowercase())
        } else {
            self.inner.matches(s)
        }
    }
}

/// Many rules' patterns in one structure, for finding which rules can match a string without
/// trying every rule: literal patterns in a hash map, prefix patterns (a single trailing `*`,
/// no `?`) in a hash map keyed by the prefix (looked up once per distinct prefix length), and
/// only the remaining patterns tried one by one. Each pattern carries the number of the rule it
/// came from; [`PatternIndex::candidates`] adds the numbers of every rule with a pattern that
/// matches (each rule at most once per call, in no particular order). The set of rules found
/// is exactly the set whose patterns [`Pattern::matches`] the string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternIndex {
    exact: HashMap<String, Vec<u32>>,
    prefix: HashMap<String, Vec<u32>>,
    /// The distinct prefix lengths in bytes, ascending.
    prefix_lens: Vec<usize>,
    general: Vec<(Pattern, u32)>,
}

impl PatternIndex {
    /// Add `pattern` of rule number `rule`.
    pub(crate) fn insert(&mut self, pattern: &str, rule: u32) {
        let push = |list: &mut Vec<u32>| {
            if !list.contains(&rule) {
                list.push(rule);
            }
        };
        if is_literal(pattern) {
            push(self.exact.entry(pattern.to_string()).or_default());
            return;
        }
        match pattern.strip_suffix('*') {
            Some(prefix) if is_literal(prefix) => {
                if let Err(at) = self.prefix_lens.binary_search(&prefix.len()) {
                    self.prefix_lens.insert(at, prefix.len());
                }
                push(self.prefix.entry(prefix.to_string()).or_default());
            }
            _ => self.general.push((Pattern::new(pattern), rule)),
        }
    }

    /// Add to `out` the rules whose literal patterns equal `s` (wildcards not considered).
    pub(crate) fn exact_candidates(&self, s: &str, out: &mut Vec<u32>) {
        if let Some(rules) = self.exact.get(s) {
            out.extend_from_slice(rules);
        }
    }

    /// Add to `out` the rules with a pattern that matches `s`.
    pub(crate) fn candidates(&self, s: &str, out: &mut Vec<u32>) {
        self.exact_candidates(s, out);
        for &len in &self.prefix_lens {
            let Some(head) = s.get(..len) else {
                // Longer than `s`, or not at a character boundary (then no literal prefix of
                // that length can equal it either).
                if len > s.len() {
                    break;
                }
                continue;
            };
            if let Some(rules) = self.prefix.get(head) {
                out.extend_from_slice(rules);
            }
        }
        for (pattern, rule) in &self.general {
            if pattern.matches(s) {
                out.push(*rule);
            }
        }
    }

    /// Does the index hold no pattern?
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefix.is_empty() && self.general.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_set_ignores_case_both_ways() {
        let mut set = FoldedPatternSet::default();
        set.insert("*Claude-OPUS*");
        assert!(set.matches("us.anthropic.claude-opus-4"));
        assert!(set.matches("US.Anthropic.CLAUDE-opus-4"));
        assert!(!set.matches("us.anthropic.claude-sonnet-4"));
    }

    #[test]
    fn star_spans_separators() {
        assert!(Pattern::new("arn:aws:bedrock:*")
            .matches("arn:aws:bedrock:us-east-1::foundation-model/x:0"));
    }

    #[test]
    fn question_mark_counts_characters_not_bytes() {
        assert!(Pattern::new("a?c").matches("aéc"));
        assert!(!Pattern::new("a??c").matches("aéc"));
        assert!(Pattern::new("*?").matches("é"));
    }

    fn found(index: &PatternIndex, s: &str) -> Vec<u32> {
        let mut out = Vec::new();
        index.candidates(s, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn index_finds_exactly_the_rules_whose_patterns_match() {
        let patterns: &[(&str, u32)] = &[
            ("anthropic.claude-3-5-sonnet-20240620-v1:0", 0),
            ("anthropic.claude-*", 1),
            ("anthropic.*", 2),
            ("*opus*", 3),
            ("a?thropic.claude-3-5-sonnet-20240620-v1:0", 4),
            ("*", 5),
            ("anthropic.claude-*", 6),
            ("é*", 7),
            ("", 8),
        ];
        let mut index = PatternIndex::default();
        for (p, r) in patterns {
            index.insert(p, *r);
        }
        for s in [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "anthropic.claude-opus-4",
            "anthropic",
            "anthropic.",
            "éa",
            "",
            "x",
            "a",
        ] {
            let mut expected: Vec<u32> = patterns
                .iter()
                .filter(|(p, _)| Pattern::new(p).matches(s))
                .map(|(_, r)| *r)
                .collect();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(found(&index, s), expected, "{s:?}");
        }
    }
}
