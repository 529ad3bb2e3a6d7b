//! `ecds`: write the extension-config discovery resource Envoy watches through a file-based
//! config source (`path_config_source` with `watched_directory`), atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::args;
use super::keys::read_public_keys;
use super::load;
use super::source;
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};
use policies::signing;

pub(crate) const TYPED_EXTENSION_CONFIG: &str =
    "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
pub(crate) const WASM_FILTER: &str =
    "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// The `DiscoveryResponse` holding one `TypedExtensionConfig`: the Wasm filter with the same
/// plugin shape as `envoy/demo.yaml`, configured with `plugin_config`.
pub(crate) fn discovery_response(
    name: &str,
    version: &str,
    plugin_config: &str,
    wasm: &str,
    vm_id: &str,
    vm_configuration: Option<&str>,
) -> Value {
    let mut vm_config = json!({
        "vm_id": vm_id,
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": wasm } }
    });
    if let (Some(text), Some(obj)) = (vm_configuration, vm_config.as_object_mut()) {
        obj.insert(
            "configuration".into(),
            json!({ "@type": STRING_VALUE, "value": text }),
        );
    }
    json!({
        "version_info": version,
        "type_url": TYPED_EXTENSION_CONFIG,
        "resources": [{
            "@type": TYPED_EXTENSION_CONFIG,
            "name": name,
            "typed_config": {
                "@type": WASM_FILTER,
                "config": {
                    "name": "bedrock_guard",
                    "root_id": "bedrock_guard",
                    "failure_policy": "FAIL_RELOAD",
                    "reload_config": {"backoff": {"base_interval": "1s", "max_interval": "30s"}},
                    "allow_on_headers_stop_iteration": true,
                    "vm_config": vm_config,
                    "configuration": {
                        "@type": STRING_VALUE,
                        "value": plugin_config
                    }
                }
            }
        }]
    })
}

/// Write `contents` to `dir/file_name` by writing a temporary file in `dir` and renaming it
/// over the target, so a watcher never sees a partial file.
pub(crate) fn write_atomically(
    dir: &Path,
    file_name: &str,
    contents: &[u8],
) -> Result<PathBuf, String> {
    let target = dir.join(file_name);
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", target.display()));
    }
    Ok(target)
}

fn is_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
}

/// The anchor of the module `--wasm` names, when that file exists here (it is a path on the
/// Envoy host, which may not be this machine).
fn anchored_module(wasm: &str) -> CliResult<Option<policies::anchor::Anchor>> {
    let path = Path::new(wasm);
    if !path.is_file() {
        return Ok(None);
    }
    let module = std::fs::read(path).map_err(|e| CliError::input(format!("{wasm}: {e}")))?;
    super::anchor::read_anchor(&module).map_err(|e| CliError::input(format!("{wasm}: {e}")))
}

/// Refuse, before Envoy does, a resource the anchored module would refuse.
fn check_against_anchor(
    anchor: &policies::anchor::Anchor,
    loaded: &load::LoadedBundle,
    signature: Option<&str>,
    vm_id: &str,
    pinned: bool,
) -> CliResult<()> {
    let refuse =
        |why: String| CliError::failure(format!("the anchored module would refuse this: {why}"));
    if pinned {
        return Err(refuse(
            "--pin: an anchored module takes its keys from its anchor only".into(),
        ));
    }
    if vm_id != anchor.vm_id {
        return Err(refuse(format!(
            "--vm-id {vm_id:?}: the anchor requires {:?}",
            anchor.vm_id
        )));
    }
    let Some(jws) = signature else {
        return Err(refuse("the bundle is not signed (give --sig)".into()));
    };
    signing::verify_canonical(&loaded.canonical, jws, &anchor.keys)
        .map_err(|e| refuse(format!("signature: {e}")))?;
    let name = loaded.policy.name();
    if !anchor.admits_name(name) {
        return Err(refuse(format!("bundle name {name:?} is not admitted")));
    }
    let revision = policies::anchor::signed_revision(loaded.policy.revision()).map_err(refuse)?;
    policies::anchor::check_revision(revision, &loaded.digest, anchor.min_revision, None)
        .map_err(refuse)
}

pub(crate) fn ecds_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "ecds";
    let mut file = None;
    let mut out_dir = None;
    let mut name = "bedrock_guard".to_string();
    let mut sig = None;
    let mut pubs = Vec::new();
    let mut pins = Vec::new();
    let mut wasm = "dist/bedrock_guard.wasm".to_string();
    let mut vm_id = "bedrock_guard".to_string();
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("out-dir") => out_dir = Some(args::value(parser, CMD)?),
            Long("name") => name = args::value(parser, CMD)?,
            Long("sig") => sig = Some(args::value(parser, CMD)?),
            Long("pub") => pubs.push(args::value(parser, CMD)?),
            Long("pin") => pins.push(args::value(parser, CMD)?),
            Long("wasm") => wasm = args::value(parser, CMD)?,
            Long("vm-id") => vm_id = args::value(parser, CMD)?,
            Value(v) if file.is_none() => file = Some(args::os_to_string(CMD, v)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    let file = file.ok_or_else(|| CliError::usage(CMD, "name the bundle file"))?;
    let out_dir = out_dir.ok_or_else(|| CliError::usage(CMD, "give --out-dir DIR"))?;
    if !is_resource_name(&name) {
        return Err(CliError::usage(
            CMD,
            format!("--name {name:?}: use letters, digits, '_', '-' and '.'"),
        ));
    }
    if !pubs.is_empty() && sig.is_none() {
        return Err(CliError::usage(CMD, "--pub needs --sig"));
    }
    if !pins.is_empty() && sig.is_none() {
        return Err(CliError::usage(
            CMD,
            "--pin makes Envoy refuse unsigned bundles: give --sig",
        ));
    }
    let dir = Path::new(&out_dir);
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::input(format!(
            "{out_dir} exists and is not a directory: give --out-dir the directory Envoy's \
             ECDS config source watches (its watched_directory)"
        )));
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::input(format!(
                "cannot create {out_dir}: {e}; create it (writable by you, readable by Envoy) \
                 or choose another --out-dir"
            ))
        })?;
    }
    let signature = match &sig {
        None => None,
        Some(path) => {
            let text = String::from_utf8(source::read_input(path).map_err(CliError::input)?)
                .map_err(|_| CliError::input(format!("{path}: not UTF-8 text")))?;
            Some(text.trim().to_string())
        }
    };
    let loaded = load::require_bundle(&file)?;
    if let Some(jws) = &signature {
        if !pubs.is_empty() {
            let trusted = read_public_keys(&pubs)?;
            if let Err(e) = signing::verify_canonical(&loaded.canonical, jws, &trusted) {
                println!("{file}: signature verification failed: {e}");
                return Ok(EXIT_FAILURE);
            }
        }
    }
    if let Some(anchor) = anchored_module(&wasm)? {
        check_against_anchor(
            &anchor,
            &loaded,
            signature.as_deref(),
            &vm_id,
            !pins.is_empty(),
        )?;
    }
    let vm_configuration = if pins.is_empty() {
        None
    } else {
        let pinned = read_public_keys(&pins)?;
        if let Some(jws) = &signature {
            if let Err(e) = signing::verify_canonical(&loaded.canonical, jws, &pinned) {
                println!("{file}: signature does not verify with the pinned keys: {e}");
                return Ok(EXIT_FAILURE);
            }
        }
        let jwks: Vec<serde_json::Value> = pinned.iter().map(signing::PublicKey::to_jwk).collect();
        Some(json!({ "bundle_public_keys": jwks }).to_string())
    };
    let config = signing::plugin_config(&loaded.doc.value, signature.as_deref())
        .map_err(|e| CliError::failure(e.to_string()))?;
    let response = discovery_response(
        &name,
        &loaded.digest,
        &config,
        &wasm,
        &vm_id,
        vm_configuration.as_deref(),
    );
    let mut text =
        serde_json::to_string_pretty(&response).map_err(|e| CliError::input(e.to_string()))?;
    text.push('\n');
    let target =
        write_atomically(dir, &format!("{name}.json"), text.as_bytes()).map_err(CliError::input)?;
    println!(
        "wrote {} (resource {name}, version {}{})",
        target.display(),
        loaded.digest,
        if signature.is_some() { ", signed" } else { "" }
    );
    Ok(EXIT_OK)
}
