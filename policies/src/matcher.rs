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

use std::collections::HashSet;

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
    pub fn as_str(&self) -> &str {
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
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> PatternSet {
        let mut set = PatternSet::default();
        for p in patterns {
            set.insert(p);
        }
        set
    }

    pub fn insert(&mut self, pattern: &str) {
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

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty()
    }

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

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
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
}
