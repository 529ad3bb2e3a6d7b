//! The `bedrock-guard` command line: validate, digest, sign and verify bundles,
//! explain one request, run a file of test cases, write the ECDS resource Envoy watches, write
//! the AWS-side IAM policies that mirror a bundle, check an Envoy configuration that runs the
//! guard, and print the bundle's JSON Schema.
//!
//! Exit codes: 0 success; 1 a policy, verification or test failure; 2 a usage error or input
//! that cannot be read.
//!
//! A crate of its own: it uses the engine (`policies`) through its public API only, and its
//! YAML, argument-parsing and key-generation dependencies never reach the wasm plugin.
#![forbid(unsafe_code)]

mod anchor;
mod args;
mod auditlog;
mod cases;
mod check_envoy;
mod cloudtrail;
mod ecds;
mod explain;
mod http;
mod iam;
mod keys;
mod lint;
mod load;
mod reconcile;
mod report;
mod schema;
mod source;
mod textout;

use std::ffi::OsString;
use std::process::ExitCode;

pub use schema::bundle_schema;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the bundle is invalid, a signature does not verify, a test case failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad usage, or input that cannot be read.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends the command, with its exit status.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// Point at the subcommand's help.
    pub(crate) usage_of: Option<&'static str>,
}

impl CliError {
    pub(crate) fn usage(command: &'static str, message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
            usage_of: Some(command),
        }
    }

    /// Input that cannot be read or understood (exit 2).
    pub(crate) fn input(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
            usage_of: None,
        }
    }

    /// A policy or verification failure (exit 1).
    pub(crate) fn failure(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
            usage_of: None,
        }
    }
}

pub(crate) type CliResult<T> = Result<T, CliError>;

const COMMANDS: &[(&str, &str)] = &[
    (
        "validate",
        "check bundles (JSON or YAML): errors with field paths and line:column, warnings",
    ),
    (
        "digest",
        "print the sha256 digest of a bundle's canonical form",
    ),
    ("keygen", "create a signing key pair (Ed25519 or P-256)"),
    (
        "sign",
        "write a detached JWS over a bundle's canonical form",
    ),
    (
        "verify",
        "verify a bundle's detached JWS against pinned public keys",
    ),
    (
        "explain",
        "run one request through a bundle and show the verdict and the rules",
    ),
    (
        "test",
        "run a file of request/expected-verdict cases against a bundle",
    ),
    (
        "ecds",
        "write the ECDS resource (Envoy extension config) for a bundle, atomically",
    ),
    (
        "anchor",
        "stamp a trust anchor (keys, min revision) into a copy of the module",
    ),
    (
        "iam",
        "write the AWS-side IAM policies (identity, VPC endpoint, SCP) that mirror a bundle",
    ),
    (
        "schema",
        "print the JSON Schema (draft 2020-12) of bundle v1",
    ),
    (
        "check-envoy",
        "check an Envoy config or /config_dump that runs the guard",
    ),
    (
        "report",
        "summarise an audit log: callers, models, refusals, tokens per hour (--html page)",
    ),
    (
        "reconcile",
        "join an audit log with CloudTrail: calls around the guard, missing, disagreeing",
    ),
];

fn main_help() -> String {
    let mut out = String::from(
        "bedrock-guard: author, check, sign and ship bedrock-guard policy bundles\n\n\
         Usage: bedrock-guard <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    for (name, what) in COMMANDS {
        out.push_str(&format!("  {name:<11} {what}\n"));
    }
    out.push_str(
        "\nRun `bedrock-guard <COMMAND> --help` for a command's options.\n\
         Exit status: 0 ok, 1 policy/verification/test failure, 2 usage error or unreadable input.\n",
    );
    out
}

/// Run the command line; `args` includes the program name.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bedrock-guard: {}", e.message);
            if let Some(command) = e.usage_of {
                eprintln!("Run `bedrock-guard {command} --help` for usage.");
            }
            e.code
        }
    };
    ExitCode::from(code)
}

fn run(args: impl IntoIterator<Item = OsString>) -> CliResult<u8> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_iter(args);
    let command = {
        match parser
            .next()
            .map_err(|e| CliError::usage("help", e.to_string()))?
        {
            Some(Short('h') | Long("help")) => {
                print!("{}", main_help());
                return Ok(EXIT_OK);
            }
            Some(Long("version") | Short('V')) => {
                println!("bedrock-guard {}", env!("CARGO_PKG_VERSION"));
                return Ok(EXIT_OK);
            }
            Some(Value(v)) => args::os_to_string("help", v)?,
            Some(other) => {
                return Err(CliError::usage("help", other.unexpected().to_string()));
            }
            None => {
                eprint!("{}", main_help());
                return Ok(EXIT_USAGE);
            }
        }
    };
    match command.as_str() {
        "validate" => load::validate_command(&mut parser),
        "digest" => load::digest_command(&mut parser),
        "keygen" => keys::keygen_command(&mut parser),
        "sign" => keys::sign_command(&mut parser),
        "verify" => keys::verify_command(&mut parser),
        "explain" => explain::explain_command(&mut parser),
        "test" => cases::test_command(&mut parser),
        "ecds" => ecds::ecds_command(&mut parser),
        "anchor" => anchor::anchor_command(&mut parser),
        "iam" => iam::iam_command(&mut parser),
        "schema" => schema::schema_command(&mut parser),
        "check-envoy" => check_envoy::check_envoy_command(&mut parser),
        "report" => report::report_command(&mut parser),
        "reconcile" => reconcile::reconcile_command(&mut parser),
        "help" => {
            let topic = parser.next().ok().flatten().and_then(|a| match a {
                Value(v) => v.into_string().ok(),
                _ => None,
            });
            match topic.as_deref().and_then(args::help_for) {
                Some(text) => print!("{text}"),
                None => print!("{}", main_help()),
            }
            Ok(EXIT_OK)
        }
        other => Err(CliError::usage(
            "help",
            format!("unknown command {other:?}"),
        )),
    }
}
