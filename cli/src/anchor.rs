//! `anchor`: stamp a trust anchor into a copy of the module (or show a module's anchor).
//!
//! The module carries an empty, fixed-size slot in its data section (see `policies::anchor`);
//! stamping writes the anchor's canonical JSON into it in place. Nothing else in the file
//! changes, so the same module and anchor always give the same bytes (and sha256).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::args;
use super::ecds::write_atomically;
use super::keys::read_public_keys;
use super::source;
use super::{CliError, CliResult, EXIT_FAILURE, EXIT_OK};
use policies::anchor::{self, Anchor};

/// Where the module's slot starts: the one occurrence of the slot marker.
fn find_slot(module: &[u8]) -> Result<usize, String> {
    let magic = &anchor::SLOT_MAGIC;
    let mut found = module
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == magic)
        .map(|(i, _)| i);
    let Some(first) = found.next() else {
        return Err(no_slot_reason(module).into());
    };
    if found.next().is_some() {
        return Err("the anchor slot marker occurs more than once: refusing to guess".into());
    }
    if module.len() < first + anchor::SLOT_LEN {
        return Err("the anchor slot is truncated".into());
    }
    Ok(first)
}

/// Why a module has no slot. The marker's text without the zero bytes that end it means the
/// slot's zeros were dropped after the build (the slot holds only zeros until stamped).
fn no_slot_reason(module: &[u8]) -> &'static str {
    let text_len = anchor::SLOT_MAGIC
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(anchor::SLOT_MAGIC.len());
    let text = &anchor::SLOT_MAGIC[..text_len];
    if module.windows(text.len()).any(|w| w == text) {
        "the anchor slot is cut short: the module was rewritten by a tool that drops runs of \
         zero bytes from its data (binaryen's memory-packing, part of wasm-opt -O, -Os and -Oz). \
         Stamp the module as released (make build keeps the slot), and optimise only after \
         stamping"
    } else {
        "no anchor slot: not a bedrock-guard module (or one built before anchors)"
    }
}

/// The module with `anchor_json` written into its (empty) slot.
pub(crate) fn stamp(module: &[u8], anchor_json: &[u8]) -> Result<Vec<u8>, String> {
    let at = find_slot(module)?;
    let slot = module
        .get(at..at + anchor::SLOT_LEN)
        .ok_or("the anchor slot is truncated")?;
    if let Some(existing) = anchor::slot_payload(slot)? {
        let id = Anchor::parse(existing).map_or_else(|e| e, |a| a.id);
        return Err(format!(
            "the module is already anchored ({id}); stamp the released, unanchored module"
        ));
    }
    if anchor_json.len() > anchor::MAX_PAYLOAD {
        return Err(format!(
            "the anchor is {} bytes; a slot holds {} (fewer keys?)",
            anchor_json.len(),
            anchor::MAX_PAYLOAD
        ));
    }
    let len = u32::try_from(anchor_json.len()).map_err(|_| "anchor too large")?;
    let mut out = module.to_vec();
    let start = at + anchor::SLOT_LEN_OFFSET;
    out.get_mut(start..start + 4)
        .ok_or("the anchor slot is truncated")?
        .copy_from_slice(&len.to_le_bytes());
    let start = at + anchor::SLOT_PAYLOAD_OFFSET;
    out.get_mut(start..start + anchor_json.len())
        .ok_or("the anchor slot is truncated")?
        .copy_from_slice(anchor_json);
    Ok(out)
}

/// The anchor stamped into a module (`None`: unanchored).
pub(crate) fn read_anchor(module: &[u8]) -> Result<Option<Anchor>, String> {
    let at = find_slot(module)?;
    let slot = module
        .get(at..at + anchor::SLOT_LEN)
        .ok_or("the anchor slot is truncated")?;
    match anchor::slot_payload(slot)? {
        None => Ok(None),
        Some(json) => Anchor::parse(json).map(Some),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn describe(anchor: &Anchor) -> String {
    let kids: Vec<&str> = anchor.keys.iter().map(|k| k.kid()).collect();
    let mut text = format!(
        "anchor {}: key(s) {}, min revision {}, vm_id {}",
        anchor.id,
        kids.join(", "),
        anchor.min_revision,
        anchor.vm_id
    );
    if !anchor.bundle_names.is_empty() {
        text.push_str(&format!(
            ", bundle names {}",
            anchor.bundle_names.join(", ")
        ));
    }
    text
}

pub(crate) fn anchor_command(parser: &mut lexopt::Parser) -> CliResult<u8> {
    use lexopt::prelude::*;
    const CMD: &str = "anchor";
    let mut wasm = None;
    let mut show = None;
    let mut pubs = Vec::new();
    let mut min_revision = None;
    let mut vm_id = "bedrock_guard".to_string();
    let mut names = Vec::new();
    let mut out = None;
    while let Some(arg) = parser.next().map_err(|e| args::lex_error(CMD, e))? {
        match arg {
            Short('h') | Long("help") => return args::print_help(CMD),
            Long("wasm") => wasm = Some(args::value(parser, CMD)?),
            Long("show") => show = Some(args::value(parser, CMD)?),
            Long("pub") => pubs.push(args::value(parser, CMD)?),
            Long("min-revision") => {
                let text = args::value(parser, CMD)?;
                let n = anchor::revision_number(&text).ok_or_else(|| {
                    CliError::usage(
                        CMD,
                        format!(
                            "--min-revision {text:?}: give a decimal integer (at most 18 digits)"
                        ),
                    )
                })?;
                min_revision = Some(n);
            }
            Long("vm-id") => vm_id = args::value(parser, CMD)?,
            Long("bundle-name") => names.push(args::value(parser, CMD)?),
            Long("out") | Short('o') => out = Some(args::value(parser, CMD)?),
            other => return Err(CliError::usage(CMD, other.unexpected().to_string())),
        }
    }
    if let Some(path) = show {
        if wasm.is_some() || out.is_some() || !pubs.is_empty() {
            return Err(CliError::usage(CMD, "--show takes only the module"));
        }
        let module = source::read_input(&path).map_err(CliError::input)?;
        return match read_anchor(&module) {
            Ok(Some(anchor)) => {
                println!(
                    "{path}: {} (sha256 {})",
                    describe(&anchor),
                    sha256_hex(&module)
                );
                Ok(EXIT_OK)
            }
            Ok(None) => {
                println!(
                    "{path}: not anchored: bundles are checked only against keys the VM \
                     configuration pins (sha256 {})",
                    sha256_hex(&module)
                );
                Ok(EXIT_OK)
            }
            Err(e) => {
                println!("{path}: {e}");
                Ok(EXIT_FAILURE)
            }
        };
    }
    let wasm =
        wasm.ok_or_else(|| CliError::usage(CMD, "give --wasm MODULE (the released module)"))?;
    let out = out.ok_or_else(|| CliError::usage(CMD, "give --out FILE for the anchored module"))?;
    if pubs.is_empty() {
        return Err(CliError::usage(
            CMD,
            "give --pub KEY (the public key(s) bundles must be signed with)",
        ));
    }
    let min_revision = min_revision.ok_or_else(|| {
        CliError::usage(
            CMD,
            "give --min-revision N (the lowest bundle revision this module may ever load; \
             the revision of the bundle you are about to push is a good start)",
        )
    })?;
    let keys = read_public_keys(&pubs)?;
    let json = Anchor::build_json(&keys, min_revision, &vm_id, &names)
        .map_err(|e| CliError::usage(CMD, e))?;
    let anchor = Anchor::parse(&json).map_err(CliError::failure)?;
    let module = source::read_input(&wasm).map_err(CliError::input)?;
    let stamped = stamp(&module, &json).map_err(|e| CliError::failure(format!("{wasm}: {e}")))?;
    let out_path = Path::new(&out);
    let dir = match out_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = out_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::usage(CMD, format!("--out {out:?} is not a file name")))?;
    write_atomically(dir, file_name, &stamped).map_err(CliError::input)?;
    println!(
        "wrote {out} ({}; sha256 {})",
        describe(&anchor),
        sha256_hex(&stamped)
    );
    Ok(EXIT_OK)
}
