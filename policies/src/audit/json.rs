//! The JSON writer: the object/field writer and string escaping that produce one strict
//! printable-ASCII line, and the RFC 3339 timestamp written as `eventTime`.

/// A JSON object being written: tracks the comma.
pub(super) struct Obj<'a> {
    pub(super) out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    pub(super) fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_str(self.out, key);
        self.out.push(':');
    }

    pub(super) fn str(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => push_json_str(self.out, v),
            None => self.out.push_str("null"),
        }
    }

    pub(super) fn num(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(n) => push_u64(self.out, n),
            None => self.out.push_str("null"),
        }
    }

    pub(super) fn close(self) {
        self.out.push('}');
    }
}

pub(super) fn push_str_array(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, item);
    }
    out.push(']');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(nibble: u8) -> char {
    char::from(HEX.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0'))
}

pub(super) fn push_hex_byte(out: &mut String, byte: u8) {
    out.push(hex_digit(byte >> 4));
    out.push(hex_digit(byte));
}

/// Writes `s` as a JSON string of printable ASCII: `"` and `\` escaped, and every character
/// outside U+0020..U+007E written as a `\uXXXX` escape (surrogate pairs above U+FFFF), with the
/// short forms for `\n`, `\r`, `\t`, `\b`, `\f`.
pub(super) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    let [hi, lo] = unit.to_be_bytes();
                    push_hex_byte(out, hi);
                    push_hex_byte(out, lo);
                }
            }
        }
    }
    out.push('"');
}

// ------------------------------------------------------------------------------ time

/// 9999-12-31T23:59:59.999Z: RFC 3339 has four-digit years, so later times are clamped.
const MAX_EVENT_TIME_MS: u64 = 253_402_300_799_999;

/// Unix milliseconds as RFC 3339 UTC with milliseconds, e.g. `2024-02-29T12:00:00.123Z`.
/// Times after 9999-12-31T23:59:59.999Z are written as that instant.
pub fn format_rfc3339_millis(unix_ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, unix_ms);
    out
}

pub(super) fn push_rfc3339_millis(out: &mut String, unix_ms: u64) {
    let ms = unix_ms.min(MAX_EVENT_TIME_MS);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, month, 2);
    out.push('-');
    push_padded(out, day, 2);
    out.push('T');
    push_padded(out, sod / 3600, 2);
    out.push(':');
    push_padded(out, sod % 3600 / 60, 2);
    out.push(':');
    push_padded(out, sod % 60, 2);
    out.push('.');
    push_padded(out, ms % 1000, 3);
    out.push('Z');
}

// ------------------------------------------------------------------------------ numbers

/// `n` in decimal. The record is written on every request: digits are pushed directly, without
/// the formatting machinery (`write!`).
pub(crate) fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// `n` in decimal, zero-padded on the left to at least `width` digits.
pub(crate) fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut len = 0;
    let mut rest = n;
    for d in digits.iter_mut().rev() {
        // `rest % 10` < 10: the cast is exact.
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
        if rest == 0 {
            break;
        }
    }
    for _ in len..width {
        out.push('0');
    }
    let start = digits.len() - len;
    for d in digits.iter().skip(start) {
        out.push(char::from(*d));
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day). Counts in 400-year eras
/// of 146097 days, with years starting on 1 March so the leap day is the last day of a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
