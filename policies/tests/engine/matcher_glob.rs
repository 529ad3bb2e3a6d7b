use policies::matcher::{Pattern, PatternSet};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn m(pattern: &str, s: &str) -> bool {
    Pattern::new(pattern).matches(s)
}

#[test]
fn literal_pattern_matches_only_itself() {
    assert!(m(
        "amazon.titan-text-express-v1",
        "amazon.titan-text-express-v1"
    ));
    assert!(!m(
        "amazon.titan-text-express-v1",
        "amazon.titan-text-express-v12"
    ));
    assert!(!m(
        "amazon.titan-text-express-v1",
        "amazon.titan-text-express-v"
    ));
}

#[test]
fn matching_is_case_sensitive() {
    assert!(!m("anthropic.claude-*", "Anthropic.claude-3"));
    assert!(!m("a?c", "ABC"));
}

#[test]
fn star_matches_any_run_including_empty_colon_and_slash() {
    assert!(m("anthropic.claude-*", "anthropic.claude-"));
    assert!(m(
        "anthropic.claude-*",
        "anthropic.claude-3-haiku-20240307-v1:0"
    ));
    assert!(m(
        "arn:aws:bedrock:*",
        "arn:aws:bedrock:us-east-1::foundation-model/a.b:0"
    ));
    assert!(m("*", ""));
    assert!(m("**", "anything/at:all"));
}

#[test]
fn star_prefix_does_not_match_a_shorter_string() {
    assert!(!m("anthropic.claude-*", "anthropic.claud"));
    assert!(!m("anthropic.claude-*", "anthropic.claude"));
}

#[test]
fn pattern_is_anchored_at_both_ends() {
    assert!(!m("anthropic.claude-*", "us.anthropic.claude-x"));
    assert!(!m("*claude", "claude-x"));
    assert!(m(
        "*claude-opus*",
        "us.anthropic.claude-opus-4-1-20250805-v1:0"
    ));
}

#[test]
fn question_mark_matches_exactly_one_character() {
    assert!(m("v?", "v1"));
    assert!(!m("v?", "v"));
    assert!(!m("v?", "v12"));
    assert!(m("a?c", "a:c"));
    assert!(!m("?", ""));
}

#[test]
fn dot_is_literal() {
    assert!(!m("anthropic.claude", "anthropicXclaude"));
    assert!(m("anthropic.claude", "anthropic.claude"));
}

#[test]
fn stars_and_question_marks_combine() {
    assert!(m("a*?c", "abc"));
    assert!(!m("a*?c", "ac"));
    assert!(m("*-v?:?", "amazon.titan-v1:0"));
    assert!(m("a*b*c", "a-b-b-c"));
    assert!(!m("a*b*c", "a-c-b"));
    assert!(m("*a*a", "aa"));
    assert!(!m("*a*a", "a"));
}

#[test]
fn middle_piece_may_not_overlap_the_tail() {
    // The middle "ab" must lie before the final "ba".
    assert!(!m("*ab*ba", "aba"));
    assert!(m("*ab*ba", "abba"));
}

#[test]
fn multibyte_characters_count_once() {
    assert!(m("??", "éé"));
    assert!(!m("???", "éé"));
    assert!(m("*é", "aé"));
}

#[test]
fn pathological_pattern_is_fast() {
    let s = "a".repeat(2000);
    let p = Pattern::new("*a*a*a*a*b");
    let start = Instant::now();
    for _ in 0..100 {
        assert!(!p.matches(&s));
    }
    let p2 = Pattern::new("*a?a*a?a*a*?b*");
    for _ in 0..100 {
        assert!(!p2.matches(&s));
    }
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn is_literal_and_display() {
    assert!(Pattern::new("a.b").is_literal());
    assert!(!Pattern::new("a.*").is_literal());
    assert!(!Pattern::new("a.?").is_literal());
    assert_eq!(Pattern::new("a*b").to_string(), "a*b");
}

#[test]
fn pattern_set_uses_exact_and_wildcards() {
    let set = PatternSet::new(["amazon.titan-text-express-v1", "anthropic.claude-*"]);
    assert!(set.matches("amazon.titan-text-express-v1"));
    assert!(set.matches("anthropic.claude-3"));
    assert!(!set.matches("amazon.titan-text-express-v1:0"));
    assert!(!set.matches("us.anthropic.claude-3"));
    assert_eq!(set.len(), 2);
    assert!(PatternSet::default().is_empty());
    assert!(!PatternSet::default().matches(""));
}

/// Straightforward recursive reference matcher over characters.
fn reference(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_reference(p in "[ab*?é.]{0,8}", s in "[abé.]{0,10}") {
        let pc: Vec<char> = p.chars().collect();
        let sc: Vec<char> = s.chars().collect();
        prop_assert_eq!(Pattern::new(&p).matches(&s), reference(&pc, &sc), "pattern {:?} string {:?}", p, s);
    }

    #[test]
    fn literal_always_matches_itself(s in "[a-z0-9.:/-]{0,20}") {
        prop_assert!(Pattern::new(&s).matches(&s));
    }
}
