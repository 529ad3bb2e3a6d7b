//! Loading a bundle file with diagnostics that name the field path and the line and column;
//! the `validate` and `digest` commands.

use serde_json::Value;

use super::args;
use super::lint;
use super::source::{self, Format, Located, Pos, SourceMap};
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::bundle::{self, Bundle, BundleError, CompiledPolicy};
use crate::canonical::{self, CanonicalError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) pos: Option<Pos>,
    pub(crate) path: Option<String>,
    pub(crate) message: String,
}

impl Diagnostic {
    pub(crate) fn error(pos: Option<Pos>, path: Option<String>, message: String) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            pos,
            path,
            message,
        }
    }

    /// `FILE:LINE:COLUMN: error: PATH: message` (position and path when known).
    pub(crate) fn render(&self, file: &str) -> String {
        let mut out = String::from(file);
        if let Some(pos) = self.pos {
            out.push_str(&format!(":{}:{}", pos.line, pos.column));
        }
        out.push_str(match self.severity {
            Severity::Error => ": error: ",
            Severity::Warning => ": warning: ",
        });
        if let Some(path) = self.path.as_deref().filter(|p| !p.is_empty()) {
            out.push_str(path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

/// Why a file could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The file cannot be read (exit 2).
    Unreadable(String),
    /// The file was read but is not a valid bundle (exit 1).
    Invalid(Vec<Diagnostic>),
}

impl LoadError {
    /// Print the problem and turn it into the command's error.
    pub(crate) fn report(self, file: &str) -> CliError {
        match self {
            LoadError::Unreadable(message) => CliError::input(message),
            LoadError::Invalid(diags) => {
                for d in &diags {
                    println!("{}", d.render(file));
                }
                let n = diags.len();
                CliError::failure(format!(
                    "{file}: {n} error{}",
                    if n == 1 { "" } else { "s" }
                ))
            }
        }
    }
}

/// A parsed document and where its fields are.
pub(crate) struct Document {
    pub(crate) format: Format,
    pub(crate) text: Vec<u8>,
    pub(crate) value: Value,
    pub(crate) map: SourceMap,
}

/// Read and parse a JSON or YAML document.
pub(crate) fn read_document(file: &str) -> Result<Document, LoadError> {
    let text = source::read_input(file).map_err(LoadError::Unreadable)?;
    let format = source::detect_format(file, &text);
    let (value, map) =
        source::load_document(format, &text).map_err(|Located { pos, message }| {
            LoadError::Invalid(vec![Diagnostic::error(pos, None, message)])
        })?;
    Ok(Document {
        format,
        text,
        value,
        map,
    })
}

/// A bundle that parsed, validated and compiled.
pub(crate) struct LoadedBundle {
    pub(crate) doc: Document,
    pub(crate) bundle: Bundle,
    pub(crate) policy: CompiledPolicy,
    pub(crate) canonical: Vec<u8>,
    pub(crate) digest: String,
}

/// The canonical form of a document, with the failing path's position on error. Every `null`
/// is reported (a bundle holds none: see `canonical`), each under its path and position.
pub(crate) fn canonical_of(doc: &Document) -> Result<Vec<u8>, LoadError> {
    let located = |e: CanonicalError| match e {
        CanonicalError::Value { path, message } => {
            Diagnostic::error(doc.map.position(&path), Some(path), message)
        }
        CanonicalError::Json {
            line,
            column,
            message,
        } => Diagnostic::error(Some(Pos { line, column }), None, message),
    };
    let mut nulls: Vec<Diagnostic> = canonical::nulls(&doc.value)
        .into_iter()
        .map(located)
        .collect();
    if !nulls.is_empty() {
        nulls.sort_by_key(|d| d.pos.map(|p| (p.line, p.column)));
        return Err(LoadError::Invalid(nulls));
    }
    canonical::to_canonical(&doc.value).map_err(|e| LoadError::Invalid(vec![located(e)]))
}

/// Parse, validate and compile a bundle file; every problem comes back with its path and,
/// where the source says, its line and column.
pub(crate) fn load_bundle(file: &str) -> Result<LoadedBundle, LoadError> {
    let doc = read_document(file)?;
    let canonical = canonical_of(&doc)?;
    // The engine parses JSON text. A JSON file is handed over as written (so serde's own
    // positions are right); a YAML file as generated JSON whose positions are mapped back
    // through the field path.
    let generated;
    let (text, json_map): (&[u8], &SourceMap) = match doc.format {
        Format::Json => (&doc.text, &doc.map),
        Format::Yaml => {
            let text = serde_json::to_vec_pretty(&doc.value)
                .map_err(|e| LoadError::Unreadable(format!("cannot re-encode YAML: {e}")))?;
            let map = source::map_json(&text);
            generated = (text, map);
            (&generated.0, &generated.1)
        }
    };
    let bundle = match bundle::parse_bundle(text) {
        Ok(b) => b,
        Err(BundleError::Json {
            line,
            column,
            message,
        }) => {
            let path = json_map.path_at(line, column).map(String::from);
            // Point at the member's name when the path is known (serde points after it).
            let pos = match doc.format {
                Format::Json => path
                    .as_deref()
                    .and_then(|p| doc.map.position(p))
                    .or(Some(Pos { line, column })),
                Format::Yaml => path.as_deref().and_then(|p| doc.map.position(p)),
            };
            return Err(LoadError::Invalid(vec![Diagnostic::error(
                pos, path, message,
            )]));
        }
        Err(BundleError::Invalid(errors)) => {
            return Err(LoadError::Invalid(field_diagnostics(&doc.map, errors)))
        }
    };
    let policy = match bundle::compile(&bundle) {
        Ok(p) => p,
        Err(e) => {
            let errors = match e {
                BundleError::Invalid(errors) => errors,
                BundleError::Json { message, .. } => vec![bundle::FieldError {
                    path: String::new(),
                    message,
                }],
            };
            return Err(LoadError::Invalid(field_diagnostics(&doc.map, errors)));
        }
    };
    let digest = canonical::digest_canonical(&canonical);
    Ok(LoadedBundle {
        doc,
        bundle,
        policy,
        canonical,
        digest,
    })
}

fn field_diagnostics(map: &SourceMap, errors: Vec<bundle::FieldError>) -> Vec<Diagnostic> {
    errors
        .into_iter()
        .map(|e| Diagnostic::error(map.position(&e.path), Some(e.path), e.message))
        .collect()
}

/// Load a bundle for a command that needs a valid one; prints the diagnostics on failure.
pub(crate) fn require_bundle(file: &str) -> CliResult<LoadedBundle> {
    load_bundle(file).map_err(|e| e.report(file))
}

// ---- validate --------------------------------------------------------------------------------

pub(crate) fn validate_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    let mut files = Vec::new();
    let mut strict = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error("validate", e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help("validate"),
            Long("strict") => strict = true,
            Value(v) => files.push(args::os_to_string("validate", v)?),
            other => return Err(CliError::usage("validate", other.unexpected().to_string())),
        }
    }
    if files.is_empty() {
        return Err(CliError::usage("validate", "name at least one bundle file"));
    }
    let mut code = EXIT_OK;
    for file in &files {
        code = code.max(validate_one(file, strict));
    }
    Ok(code)
}

fn validate_one(file: &str, strict: bool) -> u8 {
    match load_bundle(file) {
        Err(LoadError::Unreadable(message)) => {
            eprintln!("bedrock-guard: {message}");
            EXIT_USAGE
        }
        Err(LoadError::Invalid(diags)) => {
            for d in &diags {
                println!("{}", d.render(file));
            }
            let n = diags.len();
            println!(
                "{file}: invalid ({n} error{})",
                if n == 1 { "" } else { "s" }
            );
            EXIT_FAILURE
        }
        Ok(loaded) => {
            let warnings = lint::warnings(&loaded.bundle, &loaded.doc.map);
            let rules = loaded.policy.rule_count();
            if strict && !warnings.is_empty() {
                for w in &warnings {
                    println!("{}", w.render(file));
                }
                let n = warnings.len();
                println!(
                    "{file}: failed (--strict: {n} warning{})",
                    if n == 1 { "" } else { "s" }
                );
                return EXIT_FAILURE;
            }
            println!(
                "{file}: ok ({rules} rule{}, digest {})",
                if rules == 1 { "" } else { "s" },
                loaded.digest
            );
            for w in &warnings {
                println!("{}", w.render(file));
            }
            EXIT_OK
        }
    }
}

// ---- digest ----------------------------------------------------------------------------------

pub(crate) fn digest_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    let mut file = None;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error("digest", e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help("digest"),
            Value(v) if file.is_none() => file = Some(args::os_to_string("digest", v)?),
            other => return Err(CliError::usage("digest", other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage("digest", "name the bundle file"))?;
    let doc = read_document(&file).map_err(|e| e.report(&file))?;
    let canonical = canonical_of(&doc).map_err(|e| e.report(&file))?;
    println!("{}", canonical::digest_canonical(&canonical));
    Ok(EXIT_OK)
}
