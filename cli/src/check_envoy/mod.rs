//! `check-envoy`: check an Envoy configuration that runs the guard (a bootstrap, an admin
//! `/config_dump`, `istioctl proxy-config all -o json`, `egctl config envoy-proxy all`) for
//! settings that would let requests around it, change what it decides on, or lose its audit
//! record. One finding per line, with the listener / filter path it is about.

mod checks;
mod input;

use serde_json::json;

use super::args;
use super::source;
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, at a path such as
/// `listener[egress]/filter_chain[0]/hcm/http_filters[0:bedrock_guard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    pub(crate) path: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

pub(crate) fn check_envoy_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "check-envoy";
    let mut file = None;
    let mut as_json = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("json") => as_json = true,
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the Envoy configuration file"))?;
    let text = source::read_input(&file).map_err(CliError::input)?;
    let instances = input::read(&file, &text).map_err(CliError::input)?;
    let findings: Vec<Finding> = instances.iter().flat_map(checks::check).collect();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    if as_json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                json!({
                    "severity": f.severity.as_str(),
                    "path": f.path,
                    "code": f.code,
                    "message": f.message,
                })
            })
            .collect();
        let out = json!({
            "file": file,
            "findings": list,
            "errors": errors,
            "warnings": warnings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| CliError::input(e.to_string()))?
        );
    } else {
        for f in &findings {
            println!(
                "{}  {}  {}: {}",
                f.severity.as_str(),
                f.path,
                f.code,
                f.message
            );
        }
        println!(
            "{file}: {errors} error{}, {warnings} warning{}",
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        );
    }
    Ok(if errors > 0 { EXIT_FAILURE } else { EXIT_OK })
}
