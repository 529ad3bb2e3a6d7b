//! `bedrock-guard report`: summarise an audit log: callers, models, refusal reasons, and tokens
//! per caller and model per UTC hour, on the terminal (or `--json`), and with `--html FILE` as
//! one self-contained page (inline CSS, inline SVG charts drawn here; no script, and a
//! Content-Security-Policy that forbids fetching anything).
//!
//! Everything taken from the log (subjects, key ids, model ids, reasons: some come from request
//! headers) is HTML-escaped in the page.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::args;
use crate::auditlog::{self, format_time, hour_of, AuditLog};
use crate::textout::{table, term};
use crate::{CliError, CliResult, EXIT_OK};

#[derive(Debug, Default, Clone)]
struct Counts {
    requests: u64,
    allowed: u64,
    denied: u64,
    dry_run_denied: u64,
    input_tokens: u64,
    output_tokens: u64,
}

impl Counts {
    fn add(&mut self, r: &auditlog::AuditRecord) {
        self.requests += 1;
        if r.allow {
            self.allowed += 1;
        } else {
            self.denied += 1;
            if r.mode == "dry-run" {
                self.dry_run_denied += 1;
            }
        }
        self.input_tokens += r.input_tokens.unwrap_or(0);
        self.output_tokens += r.output_tokens.unwrap_or(0);
    }

    fn to_json(&self) -> Value {
        json!({
            "requests": self.requests,
            "allowed": self.allowed,
            "denied": self.denied,
            "dryRunDenied": self.dry_run_denied,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
        })
    }
}

struct Summary {
    file: String,
    first: Option<i64>,
    last: Option<i64>,
    totals: Counts,
    forwarded: u64,
    callers: BTreeMap<String, (Counts, BTreeSet<String>)>,
    models: BTreeMap<String, Counts>,
    /// reason -> (denials enforced, denials in dry-run)
    reasons: BTreeMap<String, (u64, u64)>,
    hourly: BTreeMap<(String, String, String), Counts>,
    skipped_warning: Option<String>,
}

fn summarise(log: &AuditLog) -> Summary {
    let mut s = Summary {
        file: log.name.clone(),
        first: None,
        last: None,
        totals: Counts::default(),
        forwarded: 0,
        callers: BTreeMap::new(),
        models: BTreeMap::new(),
        reasons: BTreeMap::new(),
        hourly: BTreeMap::new(),
        skipped_warning: log.skipped_warning(),
    };
    for r in &log.records {
        s.first = Some(s.first.map_or(r.time_ms, |t| t.min(r.time_ms)));
        s.last = Some(s.last.map_or(r.time_ms, |t| t.max(r.time_ms)));
        s.totals.add(r);
        if r.forwarded() {
            s.forwarded += 1;
        }
        let caller = s.callers.entry(r.caller()).or_default();
        caller.0.add(r);
        caller.1.extend(r.groups.iter().cloned());
        s.models.entry(r.model_key()).or_default().add(r);
        if !r.allow {
            let e = s.reasons.entry(r.reason.clone()).or_default();
            if r.mode == "dry-run" {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
        s.hourly
            .entry((hour_of(r.time_ms), r.caller(), r.model_key()))
            .or_default()
            .add(r);
    }
    s
}

impl Summary {
    fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "from": self.first.map(format_time),
            "to": self.last.map(format_time),
            "totals": merge(self.totals.to_json(), json!({"forwarded": self.forwarded})),
            "callers": self.callers.iter().map(|(k, (c, groups))| merge(
                json!({"caller": k, "groups": groups}), c.to_json())).collect::<Vec<_>>(),
            "models": self.models.iter().map(|(k, c)| merge(json!({"model": k}), c.to_json()))
                .collect::<Vec<_>>(),
            "reasons": self.reasons.iter().map(|(k, (d, dry))| json!({
                "reason": k, "denied": d, "dryRunDenied": dry})).collect::<Vec<_>>(),
            "hourly": self.hourly.iter().map(|((h, c, m), n)| json!({
                "hour": h, "caller": c, "model": m, "requests": n.requests,
                "inputTokens": n.input_tokens, "outputTokens": n.output_tokens,
            })).collect::<Vec<_>>(),
        })
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

pub(crate) fn report_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "report";
    let mut file = None;
    let mut html = None;
    let mut json_out = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("html") => html = Some(args::value(parser, CMD)?),
            Long("json") => json_out = true,
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "AUDIT_LOG is required"))?;
    let log = auditlog::read(&file)?;
    let summary = summarise(&log);
    if let Some(w) = &summary.skipped_warning {
        eprintln!("bedrock-guard: warning: {w}");
    }
    if let Some(path) = &html {
        let page = render_html(&summary);
        write_atomically(path, page.as_bytes())?;
    }
    if json_out {
        let doc = summary.to_json();
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        print!("{}", render_text(&summary));
        if let Some(path) = &html {
            println!("\nHTML report written to {path}");
        }
    }
    Ok(EXIT_OK)
}

fn write_atomically(path: &str, bytes: &[u8]) -> CliResult<()> {
    let target = std::path::Path::new(path);
    let tmp = target.with_file_name(format!(
        ".{}.tmp{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::input(format!("cannot write {path}: {e}"))
        })
}

// ---- Terminal --------------------------------------------------------------------------------

fn render_text(s: &Summary) -> String {
    let mut out = String::new();
    let t = &s.totals;
    let _ = writeln!(
        out,
        "audit log {}: {} record(s){}",
        term(&s.file),
        t.requests,
        match (s.first, s.last) {
            (Some(a), Some(b)) => format!(", {} .. {}", format_time(a), format_time(b)),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "allowed {}, denied {} (of which dry-run, let through: {}), forwarded to Bedrock {}, \
         tokens in {} out {}",
        t.allowed, t.denied, t.dry_run_denied, s.forwarded, t.input_tokens, t.output_tokens
    );
    let counts_row = |name: &str, c: &Counts| {
        vec![
            term(name),
            c.requests.to_string(),
            c.allowed.to_string(),
            c.denied.to_string(),
            c.input_tokens.to_string(),
            c.output_tokens.to_string(),
        ]
    };
    let _ = writeln!(out, "\nCallers: {}", s.callers.len());
    let rows: Vec<_> = s
        .callers
        .iter()
        .map(|(k, (c, _))| counts_row(k, c))
        .collect();
    out.push_str(&table(
        &[
            "caller",
            "requests",
            "allowed",
            "denied",
            "tokens in",
            "tokens out",
        ],
        &rows,
    ));
    let _ = writeln!(out, "\nModels: {}", s.models.len());
    let rows: Vec<_> = s.models.iter().map(|(k, c)| counts_row(k, c)).collect();
    out.push_str(&table(
        &[
            "model",
            "requests",
            "allowed",
            "denied",
            "tokens in",
            "tokens out",
        ],
        &rows,
    ));
    let _ = writeln!(out, "\nRefusal reasons: {}", s.reasons.len());
    let rows: Vec<_> = s
        .reasons
        .iter()
        .map(|(k, (d, dry))| vec![term(k), d.to_string(), dry.to_string()])
        .collect();
    out.push_str(&table(&["reason", "denied", "dry-run"], &rows));
    let _ = writeln!(out, "\nTokens per caller and model per hour (UTC):");
    let rows: Vec<_> = s
        .hourly
        .iter()
        .map(|((h, c, m), n)| {
            vec![
                h.clone(),
                term(c),
                term(m),
                n.requests.to_string(),
                n.input_tokens.to_string(),
                n.output_tokens.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "hour",
            "caller",
            "model",
            "requests",
            "tokens in",
            "tokens out",
        ],
        &rows,
    ));
    out
}

// ---- HTML ------------------------------------------------------------------------------------

/// Escape text for HTML content and quoted attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.2em .6em}\
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
dl#totals{display:flex;flex-wrap:wrap;gap:1em}dl#totals div{border:1px solid #ccc;padding:.4em .8em}\
dt{font-size:.85em;color:#555}dd{margin:0;font-size:1.3em}\
svg text{font:12px system-ui,sans-serif}.in{fill:#4a78b5}.out{fill:#e39b3b}.bar{fill:#4a78b5}\
td[data-col=hour]{white-space:nowrap}\
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}\
.legend .in{background:#4a78b5}.legend .out{background:#e39b3b}";

/// A horizontal bar chart: one bar per (label, value), or two stacked (input, output).
fn bar_chart(id: &str, title: &str, items: &[(String, u64, u64)], stacked: bool) -> String {
    let max = items
        .iter()
        .map(|(_, a, b)| if stacked { a + b } else { *a })
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, row_h) = (260u64, 420u64, 22u64);
    let height = row_h * items.len() as u64 + 10;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{id}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{}\" height=\"{height}\">",
        esc(title),
        label_w + bar_w + 120
    );
    for (i, (label, a, b)) in items.iter().enumerate() {
        let y = row_h * i as u64 + 5;
        let short: String = if label.chars().count() > 38 {
            label.chars().take(37).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            svg,
            "<g data-label=\"{}\"><title>{}</title><text x=\"0\" y=\"{}\">{}</text>",
            esc(label),
            esc(label),
            y + 14,
            esc(&short)
        );
        let wa = a * bar_w / max;
        let class = if stacked { "in" } else { "bar" };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{label_w}\" y=\"{y}\" width=\"{wa}\" height=\"{}\" \
             data-value=\"{a}\"/>",
            row_h - 6
        );
        let mut total = *a;
        if stacked {
            let wb = b * bar_w / max;
            let _ = write!(
                svg,
                "<rect class=\"out\" x=\"{}\" y=\"{y}\" width=\"{wb}\" height=\"{}\" \
                 data-value=\"{b}\"/>",
                label_w + wa,
                row_h - 6
            );
            total += b;
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\">{total}</text></g>",
            label_w + total * bar_w / max + 6,
            y + 14
        );
    }
    svg.push_str("</svg>");
    if stacked {
        svg.push_str("<p class=\"legend\"><span class=\"in\"></span>input tokens<span class=\"out\"></span>output tokens</p>");
    }
    svg
}

fn render_html(s: &Summary) -> String {
    let t = &s.totals;
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\
         <title>bedrock-guard audit report</title><style>",
    );
    h.push_str(CSS);
    h.push_str("</style></head><body>\n<h1>bedrock-guard audit report</h1>\n");
    let _ = writeln!(
        h,
        "<p id=\"source\">Audit log <code>{}</code>{}. Hours are UTC.</p>",
        esc(&s.file),
        match (s.first, s.last) {
            (Some(a), Some(b)) => format!(
                ", <time id=\"from\">{}</time> to <time id=\"to\">{}</time>",
                format_time(a),
                format_time(b)
            ),
            _ => String::new(),
        }
    );
    h.push_str("<dl id=\"totals\">");
    for (key, label, value) in [
        ("records", "records", t.requests),
        ("allowed", "allowed", t.allowed),
        ("denied", "denied", t.denied),
        (
            "dryRunDenied",
            "denied in dry-run (let through)",
            t.dry_run_denied,
        ),
        ("forwarded", "forwarded to Bedrock", s.forwarded),
        ("inputTokens", "input tokens", t.input_tokens),
        ("outputTokens", "output tokens", t.output_tokens),
    ] {
        let _ = write!(
            h,
            "<div data-total=\"{key}\"><dt>{label}</dt><dd>{value}</dd></div>"
        );
    }
    h.push_str("</dl>\n");

    let counts_cells = |c: &Counts| {
        format!(
            "<td class=\"n\" data-col=\"requests\">{}</td><td class=\"n\" data-col=\"allowed\">{}</td>\
             <td class=\"n\" data-col=\"denied\">{}</td><td class=\"n\" data-col=\"inputTokens\">{}</td>\
             <td class=\"n\" data-col=\"outputTokens\">{}</td>",
            c.requests, c.allowed, c.denied, c.input_tokens, c.output_tokens
        )
    };
    let counts_head = "<th>requests</th><th>allowed</th><th>denied</th><th>input tokens</th>\
                       <th>output tokens</th>";

    // Callers.
    let _ = writeln!(
        h,
        "<section id=\"callers\"><h2>Callers ({})</h2>",
        s.callers.len()
    );
    let items: Vec<_> = s
        .callers
        .iter()
        .map(|(k, (c, _))| (k.clone(), c.requests, 0))
        .collect();
    h.push_str(&bar_chart(
        "callers-chart",
        "requests per caller",
        &items,
        false,
    ));
    let _ = write!(
        h,
        "<table id=\"callers-table\"><thead><tr><th>caller</th><th>groups</th>{counts_head}</tr>\
         </thead><tbody>"
    );
    for (k, (c, groups)) in &s.callers {
        let groups: Vec<_> = groups.iter().map(|g| esc(g)).collect();
        let _ = write!(
            h,
            "<tr data-caller=\"{}\"><td data-col=\"caller\">{}</td><td>{}</td>{}</tr>",
            esc(k),
            esc(k),
            groups.join(", "),
            counts_cells(c)
        );
    }
    h.push_str("</tbody></table></section>\n");

    // Models.
    let _ = writeln!(
        h,
        "<section id=\"models\"><h2>Models ({})</h2>",
        s.models.len()
    );
    let items: Vec<_> = s
        .models
        .iter()
        .map(|(k, c)| (k.clone(), c.input_tokens, c.output_tokens))
        .collect();
    h.push_str(&bar_chart(
        "models-chart",
        "tokens per model (input, output)",
        &items,
        true,
    ));
    let _ = write!(
        h,
        "<table id=\"models-table\"><thead><tr><th>model</th>{counts_head}</tr></thead><tbody>"
    );
    for (k, c) in &s.models {
        let _ = write!(
            h,
            "<tr data-model=\"{}\"><td data-col=\"model\">{}</td>{}</tr>",
            esc(k),
            esc(k),
            counts_cells(c)
        );
    }
    h.push_str("</tbody></table></section>\n");

    // Reasons.
    let _ = writeln!(
        h,
        "<section id=\"reasons\"><h2>Refusal reasons ({})</h2>",
        s.reasons.len()
    );
    let items: Vec<_> = s
        .reasons
        .iter()
        .map(|(k, (d, dry))| (k.clone(), d + dry, 0))
        .collect();
    h.push_str(&bar_chart(
        "reasons-chart",
        "denials per reason",
        &items,
        false,
    ));
    h.push_str(
        "<table id=\"reasons-table\"><thead><tr><th>reason</th><th>denied</th>\
         <th>denied in dry-run</th></tr></thead><tbody>",
    );
    for (k, (d, dry)) in &s.reasons {
        let _ = write!(
            h,
            "<tr data-reason=\"{}\"><td data-col=\"reason\">{}</td><td class=\"n\" \
             data-col=\"denied\">{d}</td><td class=\"n\" data-col=\"dryRunDenied\">{dry}</td></tr>",
            esc(k),
            esc(k)
        );
    }
    h.push_str("</tbody></table></section>\n");

    // Hourly.
    let mut per_hour: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for ((hour, _, _), c) in &s.hourly {
        let e = per_hour.entry(hour).or_default();
        e.0 += c.input_tokens;
        e.1 += c.output_tokens;
    }
    h.push_str("<section id=\"hourly\"><h2>Tokens per caller and model per hour (UTC)</h2>");
    let items: Vec<_> = per_hour
        .iter()
        .map(|(k, (a, b))| (k.to_string(), *a, *b))
        .collect();
    h.push_str(&bar_chart(
        "hourly-chart",
        "tokens per hour (input, output)",
        &items,
        true,
    ));
    h.push_str(
        "<table id=\"hourly-table\"><thead><tr><th>hour</th><th>caller</th><th>model</th>\
         <th>requests</th><th>input tokens</th><th>output tokens</th></tr></thead><tbody>",
    );
    for ((hour, caller, model), c) in &s.hourly {
        let _ = write!(
            h,
            "<tr data-hour=\"{hour}\" data-caller=\"{}\" data-model=\"{}\"><td data-col=\"hour\">\
             {hour}</td><td data-col=\"caller\">{}</td><td data-col=\"model\">{}</td>\
             <td class=\"n\" data-col=\"requests\">{}</td><td class=\"n\" data-col=\"inputTokens\">{}</td>\
             <td class=\"n\" data-col=\"outputTokens\">{}</td></tr>",
            esc(caller),
            esc(model),
            esc(caller),
            esc(model),
            c.requests,
            c.input_tokens,
            c.output_tokens
        );
    }
    h.push_str("</tbody></table></section>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            esc("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1b}b"), "a\u{fffd}b");
    }
}
