//! Token usage from a unary JSON answer's body, read as it passes (never held back, never
//! buffered).
//!
//! Converse answers carry `usage` in the body, not in headers:
//! `{"output":…,"stopReason":…,"usage":{"inputTokens":N,"outputTokens":M,"totalTokens":T,
//! "cacheReadInputTokens"?:R,"cacheWriteInputTokens"?:W},"metrics":{"latencyMs":L}}`.
//! Anthropic Messages bodies (InvokeModel) say `input_tokens`, `output_tokens`,
//! `cache_read_input_tokens`, `cache_creation_input_tokens`; OpenAI ChatCompletions bodies say
//! `prompt_tokens`, `completion_tokens`. [`UsageScanner`] takes the body chunk by chunk and
//! keeps a fixed amount of state whatever the body's size or shape:
//!
//! * a byte loop over each chunk, tracking strings, escapes and nesting (a 128-bit stack of
//!   object/array bits: nesting deeper than [`MAX_DEPTH`] is malformed, as serde_json's own
//!   recursion limit makes it);
//! * member names are compared only where they matter (the top-level object, and the top-level
//!   `usage` object), in a fixed [`KEY_BYTES`]-byte buffer; longer names match nothing;
//! * a counter is a non-negative integer literal that fits in a `u64`; any other value (a
//!   fraction, an exponent, a sign, a string, too many digits) leaves that counter unset.
//!
//! It refuses to guess: a duplicated `usage` member, a duplicated counter (also across
//! dialects, e.g. `inputTokens` and `input_tokens`), a member name with an escape where names
//! are compared, or a body that is not one well-nested JSON object (unbalanced or mismatched
//! brackets, an unterminated string, text after the object) gives no counts. It is a scanner,
//! not a validator: it checks structure, not every token's grammar (a misspelt literal or a
//! missing comma elsewhere in the body goes unnoticed: the body comes from Bedrock over TLS),
//! and it never counts a member that is not the top-level `usage` object's.

/// Deepest nesting accepted (serde_json's default recursion limit is 128 too).
pub const MAX_DEPTH: u32 = 128;

/// Longest member name compared; every name this scanner looks for is shorter.
pub const KEY_BYTES: usize = 32;

/// Counts taken from a body's `usage` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BodyUsage {
    /// `inputTokens` / `input_tokens` / `prompt_tokens`.
    pub input: u64,
    /// `outputTokens` / `output_tokens` / `completion_tokens`.
    pub output: u64,
    /// `cacheReadInputTokens` / `cache_read_input_tokens`, when present.
    pub cache_read: Option<u64>,
    /// `cacheWriteInputTokens` / `cache_creation_input_tokens`, when present.
    pub cache_write: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Input,
    Output,
    CacheRead,
    CacheWrite,
}

impl Field {
    fn of(name: &[u8]) -> Option<Field> {
        Some(match name {
            b"inputTokens" | b"input_tokens" | b"prompt_tokens" => Field::Input,
            b"outputTokens" | b"output_tokens" | b"completion_tokens" => Field::Output,
            b"cacheReadInputTokens" | b"cache_read_input_tokens" => Field::CacheRead,
            b"cacheWriteInputTokens" | b"cache_creation_input_tokens" => Field::CacheWrite,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        match self {
            Field::Input => 0,
            Field::Output => 1,
            Field::CacheRead => 2,
            Field::CacheWrite => 3,
        }
    }
}

/// What the value being read belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Nothing this scanner counts.
    Other,
    /// The top-level `usage` member's value.
    Usage,
    /// A counter of the `usage` object.
    Counter(Field),
}

/// A counter's value as it is read: digits so far, or not a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Idle,
    Digits { value: u64, leading_zero: bool },
    Invalid,
}

/// Incremental reader of a JSON body's top-level `usage` counts (see the module
/// documentation). Feed every chunk to [`UsageScanner::push`], then call
/// [`UsageScanner::usage`] once the body ended.
#[derive(Debug, Clone)]
pub struct UsageScanner {
    /// One bit per open container (1 = object), innermost at bit `depth - 1`.
    stack: u128,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// In an object, the next string is a member name.
    expect_key: bool,
    /// The string being read is a member name that is compared.
    key_tracked: bool,
    key: [u8; KEY_BYTES],
    key_len: usize,
    /// The tracked name was longer than [`KEY_BYTES`] (it matches nothing).
    key_long: bool,
    /// The tracked name had an escape.
    key_escaped: bool,
    /// What the next value is (set by `:` after a compared name).
    pending: Pending,
    /// The last compared name, until its `:`.
    named: Pending,
    /// The `usage` object is the open container at depth 2.
    in_usage: bool,
    usage_seen: bool,
    /// A value of any kind started since the last `:` / `,` (the root counts too).
    started: bool,
    root_closed: bool,
    number: Number,
    seen: [bool; 4],
    counts: [Option<u64>; 4],
    /// Refuse every count (malformed body, duplicate member, escaped name).
    spoiled: bool,
}

impl Default for UsageScanner {
    fn default() -> Self {
        UsageScanner::new()
    }
}

impl UsageScanner {
    /// A scanner at the start of a body.
    pub fn new() -> UsageScanner {
        UsageScanner {
            stack: 0,
            depth: 0,
            in_string: false,
            escape: false,
            expect_key: false,
            key_tracked: false,
            key: [0; KEY_BYTES],
            key_len: 0,
            key_long: false,
            key_escaped: false,
            pending: Pending::Other,
            named: Pending::Other,
            in_usage: false,
            usage_seen: false,
            started: false,
            root_closed: false,
            number: Number::Idle,
            seen: [false; 4],
            counts: [None; 4],
            spoiled: false,
        }
    }

    /// Read the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.spoiled {
                return;
            }
            self.byte(b);
        }
    }

    /// The counts, once the whole body was pushed: `None` unless the body was one well-nested
    /// JSON object whose top-level `usage` object had an input and an output count (see the
    /// module documentation for what is refused).
    pub fn usage(&self) -> Option<BodyUsage> {
        if self.spoiled || !self.root_closed || self.in_string {
            return None;
        }
        Some(BodyUsage {
            input: self.counts[Field::Input.index()]?,
            output: self.counts[Field::Output.index()]?,
            cache_read: self.counts[Field::CacheRead.index()],
            cache_write: self.counts[Field::CacheWrite.index()],
        })
    }

    fn top_is_object(&self) -> bool {
        self.depth > 0 && (self.stack >> (self.depth - 1)) & 1 == 1
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            self.string_byte(b);
            return;
        }
        if self.root_closed {
            if !b.is_ascii_whitespace() {
                self.spoiled = true;
            }
            return;
        }
        match b {
            b'"' => {
                self.end_number();
                self.in_string = true;
                if self.top_is_object() && self.expect_key {
                    self.expect_key = false;
                    self.key_tracked = self.depth == 1 || (self.depth == 2 && self.in_usage);
                    self.key_len = 0;
                    self.key_long = false;
                    self.key_escaped = false;
                } else {
                    self.value_starts();
                    self.key_tracked = false;
                }
            }
            b'{' | b'[' => {
                self.end_number();
                let object = b == b'{';
                if self.depth >= MAX_DEPTH || (self.depth == 0 && self.started) {
                    self.spoiled = true;
                    return;
                }
                if self.depth == 0 && !object {
                    // The body is not an object: nothing to count.
                    self.spoiled = true;
                    return;
                }
                let usage = self.pending == Pending::Usage && object && self.depth == 1;
                self.value_starts();
                if object {
                    self.stack |= 1 << self.depth;
                } else {
                    self.stack &= !(1 << self.depth);
                }
                self.depth += 1;
                self.in_usage = self.in_usage || usage;
                self.expect_key = object;
                self.started = false;
            }
            b'}' | b']' => {
                self.end_number();
                let object = b == b'}';
                if self.depth == 0 || self.top_is_object() != object {
                    self.spoiled = true;
                    return;
                }
                self.depth -= 1;
                self.stack &= !(1 << self.depth);
                if self.depth == 1 && self.in_usage {
                    self.in_usage = false;
                }
                if self.depth == 0 {
                    self.root_closed = true;
                }
                self.expect_key = false;
                self.started = true;
            }
            b':' => {
                self.end_number();
                if !self.top_is_object() {
                    self.spoiled = true;
                    return;
                }
                self.pending = self.named;
                self.named = Pending::Other;
                self.started = false;
            }
            b',' => {
                self.end_number();
                if self.depth == 0 {
                    self.spoiled = true;
                    return;
                }
                self.expect_key = self.top_is_object();
                self.pending = Pending::Other;
                self.started = false;
            }
            b' ' | b'\t' | b'\n' | b'\r' => self.end_number(),
            _ => {
                // A number or a literal (true, false, null).
                if self.depth == 0 {
                    self.spoiled = true;
                    return;
                }
                if self.number == Number::Idle && !self.started {
                    self.value_starts();
                    if matches!(self.pending, Pending::Counter(_)) {
                        self.number = Number::Digits {
                            value: 0,
                            leading_zero: false,
                        };
                        self.digit(b, true);
                    }
                } else if matches!(self.number, Number::Digits { .. }) {
                    self.digit(b, false);
                }
            }
        }
    }

    /// A value starts where `pending` says: a counter that is not a number is not counted,
    /// and a `usage` member is remembered (twice is a duplicate).
    fn value_starts(&mut self) {
        if self.pending == Pending::Usage && self.depth == 1 {
            if self.usage_seen {
                self.spoiled = true;
            }
            self.usage_seen = true;
        }
        self.started = true;
    }

    fn digit(&mut self, b: u8, first: bool) {
        let Number::Digits {
            value,
            leading_zero,
        } = self.number
        else {
            return;
        };
        if !b.is_ascii_digit() || leading_zero {
            self.number = Number::Invalid;
            return;
        }
        let next = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')));
        self.number = match next {
            Some(value) => Number::Digits {
                value,
                leading_zero: first && b == b'0',
            },
            None => Number::Invalid,
        };
    }

    /// A number (if one was being read) ended: a counter's is kept.
    fn end_number(&mut self) {
        if let (Number::Digits { value, .. }, Pending::Counter(field)) = (self.number, self.pending)
        {
            if self.depth == 2 && self.in_usage {
                self.counts[field.index()] = Some(value);
            }
        }
        self.number = Number::Idle;
    }

    fn string_byte(&mut self, b: u8) {
        if self.escape {
            self.escape = false;
            return;
        }
        match b {
            b'\\' => {
                self.escape = true;
                if self.key_tracked {
                    self.key_escaped = true;
                }
            }
            b'"' => {
                self.in_string = false;
                if self.key_tracked {
                    self.key_tracked = false;
                    self.name_ends();
                } else {
                    self.started = true;
                }
            }
            _ => {
                if self.key_tracked {
                    match self.key.get_mut(self.key_len) {
                        Some(slot) => {
                            *slot = b;
                            self.key_len += 1;
                        }
                        None => self.key_long = true,
                    }
                }
            }
        }
    }

    /// A compared member name ended: what will its value be?
    fn name_ends(&mut self) {
        if self.key_escaped {
            // An escaped name might spell one looked for: refuse to guess.
            self.spoiled = true;
            return;
        }
        let name = if self.key_long {
            &[][..]
        } else {
            self.key.get(..self.key_len).unwrap_or_default()
        };
        self.named = if self.depth == 1 {
            if name == b"usage" {
                Pending::Usage
            } else {
                Pending::Other
            }
        } else {
            match Field::of(name) {
                Some(field) => {
                    let seen = &mut self.seen[field.index()];
                    if *seen {
                        self.spoiled = true;
                    }
                    *seen = true;
                    Pending::Counter(field)
                }
                None => Pending::Other,
            }
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
