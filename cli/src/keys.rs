//! `keygen`, `sign` and `verify`.

use std::io::Write;

use super::args;
use super::load::{self};
use super::source;
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};
use policies::signing::{self, Algorithm, PrivateKey, PublicKey};

/// Draw fresh 32-byte secrets until they make a key (a P-256 scalar must be below the group
/// order; a miss has probability about 2^-32).
pub(crate) fn generate(alg: Algorithm, kid: Option<&str>) -> CliResult<PrivateKey> {
    let mut last = None;
    for _ in 0..8 {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| CliError::input(format!("no system randomness: {e}")))?;
        match PrivateKey::from_seed(alg, &seed, kid) {
            Ok(key) => return Ok(key),
            Err(e) => last = Some(e),
        }
    }
    Err(CliError::input(format!(
        "could not generate a key: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )))
}

fn write_file(path: &str, contents: &[u8], private: bool, force: bool) -> CliResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::input(format!("{path} exists (use --force to overwrite)"))
        } else {
            CliError::input(format!("cannot write {path}: {e}"))
        }
    })?;
    #[cfg(unix)]
    if private {
        // `mode` applies only to new files: an overwritten key file gets 0600 too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::input(format!("cannot restrict {path}: {e}")))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::input(format!("cannot write {path}: {e}")))
}

pub(crate) fn keygen_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "keygen";
    let mut out = None;
    let mut alg = Algorithm::EdDSA;
    let mut kid = None;
    let mut force = false;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("out") | Short('o') => out = Some(args::value(parser, CMD)?),
            Long("alg") => {
                let name = args::value(parser, CMD)?;
                alg = Algorithm::from_name(&name).ok_or_else(|| {
                    CliError::usage(CMD, format!("--alg {name:?}: expected EdDSA or ES256"))
                })?;
            }
            Long("kid") => kid = Some(args::value(parser, CMD)?),
            Long("force") => force = true,
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let prefix = out.ok_or_else(|| CliError::usage(CMD, "give --out PREFIX"))?;
    let key = generate(alg, kid.as_deref())?;
    let public = key.public();
    let jwk = serde_json::to_string_pretty(&public.to_jwk())
        .map_err(|e| CliError::input(e.to_string()))?;
    let (key_path, pub_path, jwk_path) = (
        format!("{prefix}.key.pem"),
        format!("{prefix}.pub.pem"),
        format!("{prefix}.pub.jwk.json"),
    );
    if !force {
        for p in [&key_path, &pub_path, &jwk_path] {
            if std::path::Path::new(p).exists() {
                return Err(CliError::input(format!(
                    "{p} exists (use --force to overwrite)"
                )));
            }
        }
    }
    write_file(&key_path, key.to_pkcs8_pem().as_bytes(), true, force)?;
    write_file(&pub_path, public.to_pem().as_bytes(), false, force)?;
    write_file(&jwk_path, format!("{jwk}\n").as_bytes(), false, force)?;
    println!("wrote {key_path} (private, 0600), {pub_path}, {jwk_path}");
    println!("alg {} kid {}", key.alg(), key.kid());
    Ok(EXIT_OK)
}

fn read_private_key(path: &str, kid: Option<&str>) -> CliResult<PrivateKey> {
    let bytes = source::read_input(path).map_err(CliError::input)?;
    let key = PrivateKey::parse(&bytes).map_err(|e| CliError::input(format!("{path}: {e}")))?;
    match kid {
        Some(kid) => key
            .with_kid(kid)
            .map_err(|e| CliError::usage("sign", e.to_string())),
        None => Ok(key),
    }
}

/// Read trusted public keys from each file.
pub(crate) fn read_public_keys(paths: &[String]) -> CliResult<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for path in paths {
        let bytes = source::read_input(path).map_err(CliError::input)?;
        let mut found =
            PublicKey::parse(&bytes).map_err(|e| CliError::input(format!("{path}: {e}")))?;
        keys.append(&mut found);
    }
    Ok(keys)
}

pub(crate) fn sign_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "sign";
    let mut file = None;
    let mut key = None;
    let mut kid = None;
    let mut out = None;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("key") | Short('k') => key = Some(args::value(parser, CMD)?),
            Long("kid") => kid = Some(args::value(parser, CMD)?),
            Long("out") | Short('o') => out = Some(args::value(parser, CMD)?),
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the bundle file"))?;
    let key_path = key.ok_or_else(|| CliError::usage(CMD, "give --key KEY"))?;
    let key = read_private_key(&key_path, kid.as_deref())?;
    let loaded = load::require_bundle(&file)?;
    policies::anchor::signed_revision(loaded.policy.revision())
        .map_err(|e| CliError::failure(format!("{file}: {e}")))?;
    let jws = signing::sign_canonical(&loaded.canonical, &key)
        .map_err(|e| CliError::input(e.to_string()))?;
    let out = out.unwrap_or_else(|| format!("{file}.jws"));
    if out == "-" {
        println!("{jws}");
    } else {
        write_file(&out, format!("{jws}\n").as_bytes(), false, true)?;
        println!(
            "wrote {out} (alg {}, kid {}, digest {})",
            key.alg(),
            key.kid(),
            loaded.digest
        );
    }
    Ok(EXIT_OK)
}

pub(crate) fn verify_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "verify";
    let mut file = None;
    let mut sig = None;
    let mut pubs = Vec::new();
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("sig") | Short('s') => sig = Some(args::value(parser, CMD)?),
            Long("pub") | Short('p') => pubs.push(args::value(parser, CMD)?),
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the bundle file"))?;
    if pubs.is_empty() {
        return Err(CliError::usage(CMD, "give at least one --pub KEY"));
    }
    let trusted = read_public_keys(&pubs)?;
    let jws = match sig {
        Some(path) => Some(
            String::from_utf8(source::read_input(&path).map_err(CliError::input)?)
                .map_err(|_| CliError::input(format!("{path}: not UTF-8 text")))?,
        ),
        None => {
            let default = format!("{file}.jws");
            match std::fs::read(&default) {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(CliError::input(format!("cannot read {default}: {e}"))),
            }
        }
    };
    let doc = load::read_document(&file).map_err(|e| e.report(&file))?;
    let canonical = load::canonical_of(&doc).map_err(|e| e.report(&file))?;
    let digest = policies::canonical::digest_canonical(&canonical);
    let result = match jws.as_deref() {
        None => Err(signing::SigningError::Missing),
        Some(jws) => signing::verify_canonical(&canonical, jws, &trusted),
    };
    match result {
        Ok(kid) => {
            let alg = trusted
                .iter()
                .find(|k| k.kid() == kid)
                .map_or("?", |k| k.alg().as_str());
            println!("{file}: signature ok (alg {alg}, kid {kid}, digest {digest})");
            Ok(EXIT_OK)
        }
        Err(e) => {
            println!("{file}: signature verification failed: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}
