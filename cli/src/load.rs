//! Loading a bundle file with diagnostics that name the field path and the line and column;
//! the `validate` and `digest` commands.

use serde_json::Value;

use super::args;
use super::lint;
use super::source::{self, Format, Located, Pos, SourceMap};
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use policies::bundle::{self, Bundle, BundleError, CompiledPolicy};
use policies::canonical::{self, CanonicalError};

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
///
/// Every problem is reported in one go: a `null`, an unknown field or a value of the wrong
/// type does not hide the rest of the bundle. Such a value is reported, then dropped (an
/// unknown field) or replaced by a placeholder of the right type (see [`read_bundle`]), and the
/// repaired bundle is validated as well; semantic problems at (or around) a replaced value are
/// left out, since they would be about the placeholder. The bundle is refused all the same.
pub(crate) fn load_bundle(file: &str) -> Result<LoadedBundle, LoadError> {
    let doc = read_document(file)?;
    let shape = read_bundle(&doc)?;
    let mut diags = shape.errors;
    diags.sort_by_key(|d| {
        d.pos
            .map_or((usize::MAX, usize::MAX), |p| (p.line, p.column))
    });
    let compiled = shape.bundle.map(|bundle| {
        let result = bundle::compile(&bundle);
        (bundle, result)
    });
    let (bundle, policy) = match compiled {
        Some((bundle, Ok(policy))) if diags.is_empty() => (bundle, policy),
        Some((_, Ok(_))) => return Err(LoadError::Invalid(diags)),
        Some((_, Err(e))) => {
            let errors = match e {
                BundleError::Invalid(errors) => errors,
                BundleError::Json { message, .. } => vec![bundle::FieldError {
                    path: String::new(),
                    message,
                }],
            };
            // An error at a replaced value or inside it is about the stand-in; so is one on
            // the object that lost a member (`needs keys` once `jwks` is gone).
            let about_placeholder = |e: &bundle::FieldError| {
                shape.replaced.iter().any(|(r, removed)| {
                    r == &e.path
                        || within(&e.path, r)
                        || (*removed && source::parent_path(r) == Some(e.path.as_str()))
                })
            };
            let kept: Vec<bundle::FieldError> = errors
                .into_iter()
                .filter(|e| !about_placeholder(e))
                .collect();
            diags.extend(field_diagnostics(&doc.map, kept));
            return Err(LoadError::Invalid(diags));
        }
        None => {
            if diags.is_empty() {
                diags.push(Diagnostic::error(
                    None,
                    None,
                    "the document does not have the shape of a bundle".to_string(),
                ));
            }
            return Err(LoadError::Invalid(diags));
        }
    };
    let canonical = canonical_of(&doc)?;
    let digest = canonical::digest_canonical(&canonical);
    Ok(LoadedBundle {
        doc,
        bundle,
        policy,
        canonical,
        digest,
    })
}

/// What reading a document into the bundle's types found.
struct Shape {
    /// The bundle, read from the document with every shape problem repaired; `None` when a
    /// problem could not be repaired (the document is not an object, ...).
    bundle: Option<Bundle>,
    /// The shape problems (`null`s, unknown fields, wrong types), at most one per field.
    errors: Vec<Diagnostic>,
    /// The paths whose values were replaced by a placeholder, and whether the member was
    /// removed in the end (no placeholder fitted).
    replaced: Vec<(String, bool)>,
}

/// How many times the document is read again after a repair (each repair fixes one problem).
const MAX_REPAIRS: usize = 256;

/// The placeholders tried, in order, for a value of the wrong type: the first one the bundle's
/// types accept at that place stays. After the last, the member is removed (its default
/// applies); an array element that takes none of them ends the repairs.
fn placeholder(attempt: usize) -> Option<Value> {
    match attempt {
        0 => Some(Value::Object(serde_json::Map::new())),
        1 => Some(Value::Array(Vec::new())),
        2 => Some(Value::String(String::new())),
        3 => Some(Value::Bool(false)),
        4 => Some(Value::from(0u64)),
        _ => None,
    }
}

/// Read the document into the bundle's types, reporting every shape problem rather than the
/// first: each `null`, unknown field (removed) and value of the wrong type (replaced by a
/// placeholder) is reported once, with its path and position, and the repaired document is read
/// again until it has the bundle's shape.
fn read_bundle(doc: &Document) -> Result<Shape, LoadError> {
    let mut value = doc.value.clone();
    let mut errors = Vec::new();
    // (path, placeholder attempt)
    let mut replaced: Vec<(String, usize)> = Vec::new();
    let done = |bundle, errors, replaced: Vec<(String, usize)>| Shape {
        bundle,
        errors,
        replaced: replaced
            .into_iter()
            .map(|(path, attempt)| {
                let removed = placeholder(attempt).is_none();
                (path, removed)
            })
            .collect(),
    };

    for e in canonical::nulls(&doc.value) {
        let CanonicalError::Value { path, message } = e else {
            continue;
        };
        errors.push(Diagnostic::error(
            doc.map.position(&path),
            Some(path.clone()),
            message,
        ));
        if path.is_empty() || !replace_at(&mut value, &path, placeholder(0)) {
            return Ok(done(None, errors, replaced));
        }
        replaced.push((path, 0));
    }

    for _ in 0..MAX_REPAIRS {
        // The first reading of a JSON file is of the text as written, so serde's own
        // positions are right; otherwise of generated JSON whose positions are mapped back
        // through the field path.
        let original = doc.format == Format::Json && replaced.is_empty() && errors.is_empty();
        let generated;
        let (text, map): (&[u8], &SourceMap) = if original {
            (&doc.text, &doc.map)
        } else {
            let text = serde_json::to_vec_pretty(&value)
                .map_err(|e| LoadError::Unreadable(format!("cannot re-encode the bundle: {e}")))?;
            let map = source::map_json(&text);
            generated = (text, map);
            (&generated.0, &generated.1)
        };
        let (line, column, message) = match bundle::parse_shape(text) {
            Ok(bundle) => return Ok(done(Some(bundle), errors, replaced)),
            Err(BundleError::Json {
                line,
                column,
                message,
            }) => (line, column, message),
            Err(BundleError::Invalid(field_errors)) => {
                errors.extend(field_diagnostics(&doc.map, field_errors));
                return Ok(done(None, errors, replaced));
            }
        };
        let serde_pos = original.then_some(Pos { line, column });
        // serde's column is that of the last character it read: for a value it refused
        // without reading (an object or array where a string belongs), the one before it.
        let found = map
            .path_at(line, column.saturating_add(1))
            .or_else(|| map.path_at(line, column));
        let Some(path) = found.map(String::from) else {
            errors.push(Diagnostic::error(serde_pos, None, message));
            return Ok(done(None, errors, replaced));
        };
        // A placeholder the types refuse there: try the next one (already reported).
        if let Some((at, attempt)) = replaced
            .iter_mut()
            .find(|(r, _)| *r == path || within(&path, r))
        {
            *attempt += 1;
            let repaired = match placeholder(*attempt) {
                Some(next) => replace_at(&mut value, at, Some(next)),
                None => remove_at(&mut value, at),
            };
            if !repaired {
                return Ok(done(None, errors, replaced));
            }
            continue;
        }
        // Point at the member's name (serde points after it).
        let pos = match doc.format {
            Format::Json => doc.map.position(&path).or(serde_pos),
            Format::Yaml => doc.map.position(&path),
        };
        errors.push(Diagnostic::error(pos, Some(path.clone()), message.clone()));
        if message.starts_with("unknown field") && remove_at(&mut value, &path) {
            continue;
        }
        if !replace_at(&mut value, &path, placeholder(0)) {
            return Ok(done(None, errors, replaced));
        }
        replaced.push((path, 0));
    }
    Ok(done(None, errors, replaced))
}

/// Is `path` strictly inside `outer` (`rules[0].models[1]` inside `rules[0]`)?
fn within(path: &str, outer: &str) -> bool {
    path.strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        && !outer.is_empty()
}

/// One step of a field path, resolved against a document.
enum PathStep {
    Key(String),
    Index(usize),
}

/// The steps of `path` in `value`. A member name may itself contain `.` or `[` (a claim name),
/// so each object step takes the longest member name that the rest of the path starts with.
fn resolve(value: &Value, path: &str) -> Option<Vec<PathStep>> {
    let mut steps = Vec::new();
    let mut at = value;
    let mut rest = path;
    let mut root = true;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix('[') {
            let (index, after) = tail.split_once(']')?;
            let index: usize = index.parse().ok()?;
            at = at.as_array()?.get(index)?;
            steps.push(PathStep::Index(index));
            rest = after;
        } else {
            let names = if root { rest } else { rest.strip_prefix('.')? };
            let key = at
                .as_object()?
                .keys()
                .filter(|k| {
                    names.strip_prefix(k.as_str()).is_some_and(|after| {
                        after.is_empty() || after.starts_with('.') || after.starts_with('[')
                    })
                })
                .max_by_key(|k| k.len())?;
            rest = names.get(key.len()..)?;
            at = at.get(key.as_str())?;
            steps.push(PathStep::Key(key.clone()));
        }
        root = false;
    }
    Some(steps)
}

/// The value at `steps`, mutably.
fn step_mut<'v>(mut at: &'v mut Value, steps: &[PathStep]) -> Option<&'v mut Value> {
    for step in steps {
        at = match step {
            PathStep::Key(key) => at.get_mut(key.as_str())?,
            PathStep::Index(index) => at.get_mut(*index)?,
        };
    }
    Some(at)
}

/// Replace the value at `path` (when `with` is `Some`). False when the path is not found.
fn replace_at(value: &mut Value, path: &str, with: Option<Value>) -> bool {
    let (Some(with), Some(steps)) = (with, resolve(value, path)) else {
        return false;
    };
    match step_mut(value, &steps) {
        Some(slot) => {
            *slot = with;
            true
        }
        None => false,
    }
}

/// Remove the object member at `path`. False when the path is not found or ends in an array
/// element (removing one would renumber the others).
fn remove_at(value: &mut Value, path: &str) -> bool {
    let Some(mut steps) = resolve(value, path) else {
        return false;
    };
    let Some(PathStep::Key(key)) = steps.pop() else {
        return false;
    };
    step_mut(value, &steps)
        .and_then(Value::as_object_mut)
        .and_then(|members| members.remove(&key))
        .is_some()
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
            let warnings = lint::warnings(&loaded.bundle, &loaded.policy, &loaded.doc.map);
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
