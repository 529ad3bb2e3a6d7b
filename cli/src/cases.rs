//! `test`: a file of request / expected-verdict cases run against a bundle.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::args;
use super::http::{self, IdentityCheck, JwksFile, RequestSpec, Token};
use super::load::{self, Diagnostic, LoadError};
use super::source::Pos;
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};
use policies::decision::{Decision, Mode, Reason};
use policies::request::Operation;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    cases: Vec<Value>,
    /// The verification time of identity tokens, seconds since the epoch (default: now).
    #[serde(default)]
    now: Option<u64>,
    /// Files standing in for providers' remote JWKS, relative to the cases file.
    #[serde(default)]
    jwks: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: CaseRequest,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRequest {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    scheme: Option<String>,
    /// `{"name": "value" | ["v1", "v2"]}` or `["name: value", ...]`.
    #[serde(default)]
    headers: Option<Value>,
    /// A string is sent as is; any other JSON value is serialised.
    #[serde(default)]
    body: Option<Value>,
    /// The original destination address (transparent interception).
    #[serde(default)]
    destination: Option<String>,
    /// The verified caller (what the identity token's claims give), taken as is.
    #[serde(default)]
    caller: Option<CaseCaller>,
    /// An identity token, sent in the bundle's identity header and verified as the filter
    /// verifies it. Exclusive with `caller`.
    #[serde(default)]
    token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseCaller {
    subject: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
    #[serde(default)]
    issuer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    verdict: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    operation: Option<String>,
}

/// A case ready to run.
struct TestCase {
    name: String,
    spec: RequestSpec,
    expect: Expect,
}

/// The cases file's settings for identity tokens.
#[derive(Default)]
struct CaseSettings {
    now: Option<u64>,
    jwks: Vec<JwksFile>,
}

pub(crate) fn test_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "test";
    let mut file = None;
    let mut cases_file = None;
    let mut verbose = false;
    let mut jwks_files: Vec<JwksFile> = Vec::new();
    let mut now: Option<u64> = None;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("cases") => cases_file = Some(args::value(parser, CMD)?),
            Long("jwks") => http::push_jwks_arg(parser, CMD, &mut jwks_files)?,
            Long("now") => now = Some(super::explain::now_value(parser, CMD)?),
            Short('v') | Long("verbose") => verbose = true,
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the bundle file"))?;
    let cases_file = cases_file.ok_or_else(|| CliError::usage(CMD, "give --cases FILE"))?;
    let (cases, settings) = read_cases(&cases_file)?;
    let loaded = match load::load_bundle(&file) {
        Ok(l) => l,
        Err(LoadError::Unreadable(m)) => return Err(CliError::input(m)),
        Err(LoadError::Invalid(diags)) => {
            for d in &diags {
                println!("{}", d.render(&file));
            }
            println!("{file}: invalid bundle: no case can pass");
            println!("0 passed, {} failed", cases.len());
            return Ok(EXIT_FAILURE);
        }
    };
    // The command line wins over the cases file (the first file given for a provider is used).
    jwks_files.extend(settings.jwks);
    let now = now.or(settings.now).unwrap_or_else(http::system_now);
    let mut check = IdentityCheck::new(&loaded.policy, &jwks_files, now)
        .map_err(|e| CliError::usage(CMD, e))?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, case) in cases.iter().enumerate() {
        let decision = case
            .spec
            .decide(&loaded.policy, &mut check)
            .map_err(|e| {
                CliError::usage(
                    CMD,
                    format!(
                        "cases[{i}] {:?}: {}",
                        case.name,
                        e.message("--jwks PROVIDER=FILE or the cases file's \"jwks\": {\"PROVIDER\": \"FILE\"}")
                    ),
                )
            })?
            .decision;
        match mismatch(&case.expect, &decision) {
            None => {
                passed += 1;
                if verbose {
                    println!("ok   cases[{i}] {:?}", case.name);
                }
            }
            Some(expected) => {
                failed += 1;
                println!(
                    "FAIL cases[{i}] {:?}: expected {expected}; got {}",
                    case.name,
                    describe(&decision)
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILURE })
}

fn describe(d: &Decision) -> String {
    let mut out = format!(
        "verdict={} reason={} rule={} mode={} operation={}",
        if d.is_allow() { "allow" } else { "deny" },
        d.reason,
        d.rule_id.as_deref().unwrap_or("-"),
        d.mode.as_str(),
        d.operation.map_or("-", Operation::as_str),
    );
    if !d.detail.is_empty() {
        out.push_str(&format!(" ({})", d.detail));
    }
    out
}

/// What was expected and not met, or `None` when the decision meets every expectation.
fn mismatch(expect: &Expect, d: &Decision) -> Option<String> {
    let verdict = if d.is_allow() { "allow" } else { "deny" };
    let mut wanted = vec![format!("verdict={}", expect.verdict)];
    let mut ok = expect.verdict == verdict;
    if let Some(reason) = &expect.reason {
        wanted.push(format!("reason={reason}"));
        ok &= d.reason.as_str() == reason;
    }
    if let Some(rule) = &expect.rule {
        wanted.push(format!("rule={rule}"));
        ok &= d.rule_id.as_deref() == Some(rule.as_str());
    }
    if let Some(mode) = &expect.mode {
        wanted.push(format!("mode={mode}"));
        ok &= d.mode.as_str() == mode;
    }
    if let Some(op) = &expect.operation {
        wanted.push(format!("operation={op}"));
        ok &= d.operation.map(Operation::as_str) == Some(op.as_str());
    }
    (!ok).then(|| wanted.join(" "))
}

/// Read and check the cases file; any problem is a usage-class error (exit 2) naming the case.
fn read_cases(file: &str) -> CliResult<(Vec<TestCase>, CaseSettings)> {
    let doc = load::read_document(file).map_err(|e| match e {
        LoadError::Unreadable(m) => CliError::input(m),
        LoadError::Invalid(diags) => CliError::input(render_all(file, &diags)),
    })?;
    let mut settings = CaseSettings::default();
    let list = match doc.value.clone() {
        Value::Array(items) => items,
        Value::Object(obj) => {
            let parsed = serde_json::from_value::<CaseFile>(Value::Object(obj)).map_err(|e| {
                CliError::input(format!(
                    "{file}: {e} (expected a list of cases or {{\"cases\": [...]}})"
                ))
            })?;
            settings.now = parsed.now;
            // Paths are relative to the cases file (to the working directory for stdin).
            let base = match file {
                "-" => None,
                _ => Path::new(file).parent(),
            };
            settings.jwks = parsed
                .jwks
                .into_iter()
                .map(|(provider, path)| JwksFile {
                    provider,
                    path: base
                        .map(|b| b.join(&path).to_string_lossy().into_owned())
                        .unwrap_or(path),
                    origin: format!("{file}: \"jwks\""),
                })
                .collect();
            parsed.cases
        }
        _ => {
            return Err(CliError::input(format!(
                "{file}: expected a list of cases or {{\"cases\": [...]}}"
            )))
        }
    };
    let prefix = if matches!(doc.value, Value::Object(_)) {
        "cases"
    } else {
        ""
    };
    let mut cases = Vec::with_capacity(list.len());
    for (i, value) in list.into_iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        let located = |message: String, sub: &str| {
            let full = if sub.is_empty() {
                path.clone()
            } else {
                format!("{path}.{sub}")
            };
            let pos: Option<Pos> = doc.map.position(&full);
            CliError::input(Diagnostic::error(pos, Some(full), message).render(file))
        };
        let case: Case = serde_json::from_value(value).map_err(|e| located(e.to_string(), ""))?;
        let spec = build_request(&case.request).map_err(|(m, sub)| located(m, sub))?;
        check_expect(&case.expect).map_err(|(m, sub)| located(m, sub))?;
        cases.push(TestCase {
            name: case.name,
            spec,
            expect: case.expect,
        });
    }
    if cases.is_empty() {
        return Err(CliError::input(format!("{file}: no test cases")));
    }
    Ok((cases, settings))
}

fn render_all(file: &str, diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.render(file))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_expect(e: &Expect) -> Result<(), (String, &'static str)> {
    if !matches!(e.verdict.as_str(), "allow" | "deny") {
        return Err((
            format!("verdict {:?} must be \"allow\" or \"deny\"", e.verdict),
            "expect.verdict",
        ));
    }
    if let Some(reason) = &e.reason {
        if !Reason::ALL.iter().any(|r| r.as_str() == reason) {
            let known: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            return Err((
                format!("unknown reason {reason:?} (known: {})", known.join(", ")),
                "expect.reason",
            ));
        }
        if (reason == "allowed") != (e.verdict == "allow") {
            return Err((
                format!("reason {reason:?} contradicts verdict {:?}", e.verdict),
                "expect.reason",
            ));
        }
    }
    if let Some(mode) = &e.mode {
        if mode != Mode::Enforce.as_str() && mode != Mode::DryRun.as_str() {
            return Err((
                format!("mode {mode:?} must be \"enforce\" or \"dry-run\""),
                "expect.mode",
            ));
        }
    }
    if let Some(op) = &e.operation {
        if Operation::from_name(op).is_none() {
            return Err((format!("unknown operation {op:?}"), "expect.operation"));
        }
    }
    Ok(())
}

fn build_request(r: &CaseRequest) -> Result<RequestSpec, (String, &'static str)> {
    let mut spec = RequestSpec {
        method: r.method.clone().unwrap_or_else(|| "POST".to_string()),
        path: r.path.as_bytes().to_vec(),
        authority: r.authority.clone(),
        scheme: r.scheme.clone().unwrap_or_else(|| "https".to_string()),
        ..RequestSpec::default()
    };
    match &r.headers {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => add_header_map(&mut spec, map)?,
        Some(Value::Array(lines)) => {
            for line in lines {
                let Value::String(line) = line else {
                    return Err((
                        "header list entries must be \"name: value\" strings".to_string(),
                        "request.headers",
                    ));
                };
                let header =
                    super::http::parse_header_line(line).map_err(|e| (e, "request.headers"))?;
                spec.headers.push(header);
            }
        }
        Some(_) => {
            return Err((
                "headers must be an object or a list of \"name: value\" strings".to_string(),
                "request.headers",
            ))
        }
    }
    match &r.body {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => spec.body = Some(text.as_bytes().to_vec()),
        Some(other) => {
            spec.body = Some(other.to_string().into_bytes());
            if !spec.headers.iter().any(|(n, _)| n == "content-type") {
                spec.headers
                    .push(("content-type".to_string(), b"application/json".to_vec()));
            }
        }
    }
    if let Some(d) = &r.destination {
        spec.destination = Some(
            d.parse()
                .map_err(|_| (format!("{d:?} is not an IP address"), "request.destination"))?,
        );
    }
    if r.caller.is_some() && r.token.is_some() {
        return Err((
            "give either `caller` (a caller taken as verified) or `token` (an identity token \
             verified against the bundle's identity providers), not both"
                .to_string(),
            "request.token",
        ));
    }
    if let Some(token) = &r.token {
        spec.token = Some(Token::new(token.as_bytes().to_vec()));
    }
    if let Some(c) = &r.caller {
        if c.subject.is_empty() {
            return Err(("must not be empty".to_string(), "request.caller.subject"));
        }
        spec.caller = super::http::verified_caller(
            c.subject.clone(),
            c.groups.clone(),
            c.claims.clone(),
            c.issuer.clone(),
        );
    }
    Ok(spec)
}

fn add_header_map(
    spec: &mut RequestSpec,
    map: &Map<String, Value>,
) -> Result<(), (String, &'static str)> {
    for (name, value) in map {
        let name = name.to_ascii_lowercase();
        match value {
            Value::String(v) => spec.headers.push((name, v.as_bytes().to_vec())),
            Value::Array(values) => {
                for v in values {
                    let Value::String(v) = v else {
                        return Err((
                            format!("header {name:?}: values must be strings"),
                            "request.headers",
                        ));
                    };
                    spec.headers.push((name.clone(), v.as_bytes().to_vec()));
                }
            }
            _ => {
                return Err((
                    format!("header {name:?}: value must be a string or a list of strings"),
                    "request.headers",
                ))
            }
        }
    }
    Ok(())
}
