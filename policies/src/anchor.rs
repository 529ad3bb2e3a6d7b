//! The trust anchor: what a bundle must satisfy to load, held where whoever pushes bundles
//! cannot change it.
//!
//! An anchor is stamped into a copy of the released module (`bedrock-guard anchor`): the
//! module carries a fixed-size slot in its data section, and stamping writes the anchor's
//! JSON into it without recompiling. The stamped module's sha256 is what a deployment pins
//! (the file on the node, Istio's `WasmPlugin.sha256`, Envoy's `remote.sha256`). Everything
//! Envoy's extension config discovery (ECDS) delivers (VM configuration, plugin
//! configuration, `vm_id`) is then checked against it; none of it can widen it. See
//! docs/operations.md, "Trust anchor".
//!
//! The anchor, as JSON (strict: no unknown, repeated or null members):
//!
//! ```json
//! {"version": 1,
//!  "bundle_public_keys": [<JWK>, ...],
//!  "min_revision": 7,
//!  "vm_id": "bedrock_guard",
//!  "bundle_names": ["acme-prod"]}
//! ```
//!
//! * `bundle_public_keys`: every bundle must be signed by one of these (at least one key).
//! * `min_revision`: the lowest bundle revision the module ever loads. A running Envoy also
//!   remembers the highest revision it has loaded per bundle name (shared data of the
//!   `vm_id`) and refuses anything lower; that memory ends with the process, so raise
//!   `min_revision` (and re-stamp) to carry the floor across restarts.
//! * `vm_id`: the `vm_id` the module must run under, so a push cannot move it to a fresh
//!   shared-data namespace (where the remembered floor is empty).
//! * `bundle_names` (optional): the only `metadata.name`s accepted, so a bundle signed for
//!   another environment with the same key cannot be replayed here.
//!
//! With an anchor, bundle revisions must be decimal integers so they can be ordered.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::signing::PublicKey;

/// Size of the module's anchor slot, in bytes: magic, length, payload.
pub const SLOT_LEN: usize = 8192;
/// The slot's first bytes. Stamping finds the slot by this marker; the module never compares
/// it (so the marker occurs once in the module's data).
pub const SLOT_MAGIC: [u8; 32] = *b"bedrock-guard/anchor-slot/v1\0\0\0\0";
/// Offset of the payload's length in the slot: a little-endian `u32`, right after the magic.
pub const SLOT_LEN_OFFSET: usize = SLOT_MAGIC.len();
/// Offset of the payload (the anchor's JSON) in the slot, right after its length.
pub const SLOT_PAYLOAD_OFFSET: usize = SLOT_LEN_OFFSET + 4;
/// Largest anchor JSON a slot holds.
pub const MAX_PAYLOAD: usize = SLOT_LEN - SLOT_PAYLOAD_OFFSET;

/// The largest revision accepted under an anchor (18 decimal digits).
pub(crate) const MAX_REVISION: u64 = 999_999_999_999_999_999;

/// The empty slot compiled into the module.
pub const fn empty_slot() -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    let mut i = 0;
    while i < SLOT_MAGIC.len() {
        slot[i] = SLOT_MAGIC[i];
        i += 1;
    }
    slot
}

/// The anchor JSON in a slot: `Ok(None)` for an empty slot; an error for a slot whose length
/// does not fit (a damaged module: refuse to start).
pub fn slot_payload(slot: &[u8]) -> Result<Option<&[u8]>, String> {
    let len_bytes: [u8; 4] = slot
        .get(SLOT_LEN_OFFSET..SLOT_PAYLOAD_OFFSET)
        .and_then(|b| b.try_into().ok())
        .ok_or("anchor slot is truncated")?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > MAX_PAYLOAD {
        return Err(format!("anchor slot length {len} exceeds {MAX_PAYLOAD}"));
    }
    slot.get(SLOT_PAYLOAD_OFFSET..SLOT_PAYLOAD_OFFSET + len)
        .map(Some)
        .ok_or_else(|| "anchor slot is truncated".to_string())
}

/// A parsed trust anchor.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// `bundle_public_keys`: every bundle must be signed by one of these. Never empty, no key
    /// id twice.
    pub keys: Vec<PublicKey>,
    /// The lowest bundle revision the module loads, at most 999 999 999 999 999 999.
    pub min_revision: u64,
    /// The `vm_id` the module must run under (1 to 256 bytes).
    pub vm_id: String,
    /// The only `metadata.name`s accepted. Empty: any name.
    pub bundle_names: Vec<String>,
    /// `anchor:<16 hex>`: the first 8 bytes of the sha256 of the anchor's canonical JSON.
    /// The module writes it into each forwarded request's filter state
    /// (`wasm.bedrock_guard_anchor`) for a listener-level RBAC backstop.
    pub id: String,
}

impl Anchor {
    /// Parse an anchor strictly; errors name the member.
    pub fn parse(bytes: &[u8]) -> Result<Anchor, String> {
        let value = canonical::parse_strict(bytes).map_err(|e| format!("anchor: {e}"))?;
        let Value::Object(members) = &value else {
            return Err("anchor: must be a JSON object".into());
        };
        for name in members.keys() {
            if !matches!(
                name.as_str(),
                "version" | "bundle_public_keys" | "min_revision" | "vm_id" | "bundle_names"
            ) {
                return Err(format!("anchor: unknown member {name:?}"));
            }
        }
        match members.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            Some(_) => return Err("anchor.version: must be 1".into()),
            None => return Err("anchor.version: required".into()),
        }
        let keys = match members.get("bundle_public_keys") {
            Some(Value::Array(jwks)) if !jwks.is_empty() => jwks
                .iter()
                .enumerate()
                .map(|(i, jwk)| {
                    PublicKey::from_jwk(jwk)
                        .map_err(|e| format!("anchor.bundle_public_keys[{i}]: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err("anchor.bundle_public_keys: must be a non-empty list of JWKs".into())
            }
            None => return Err("anchor.bundle_public_keys: required".into()),
        };
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid() == key.kid()) {
                return Err(format!(
                    "anchor.bundle_public_keys[{i}]: key id {:?} repeated",
                    key.kid()
                ));
            }
        }
        let min_revision = match members.get("min_revision") {
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|r| *r <= MAX_REVISION)
                .ok_or_else(|| format!("anchor.min_revision: must be 0 to {MAX_REVISION}"))?,
            Some(_) => return Err("anchor.min_revision: must be an integer".into()),
            None => return Err("anchor.min_revision: required".into()),
        };
        let vm_id = match members.get("vm_id") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
            Some(_) => return Err("anchor.vm_id: must be a string of 1 to 256 bytes".into()),
            None => return Err("anchor.vm_id: required".into()),
        };
        let bundle_names = match members.get("bundle_names") {
            None => Vec::new(),
            Some(Value::Array(names)) if !names.is_empty() => names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    n.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| format!("anchor.bundle_names[{i}]: must be a bundle name"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("anchor.bundle_names: must be a non-empty list of names".into()),
        };
        let canonical = canonical::to_canonical(&value).map_err(|e| format!("anchor: {e}"))?;
        let digest = Sha256::digest(&canonical);
        let mut id = String::from("anchor:");
        for b in digest.iter().take(8) {
            id.push_str(&format!("{b:02x}"));
        }
        Ok(Anchor {
            keys,
            min_revision,
            vm_id,
            bundle_names,
            id,
        })
    }

    /// The anchor's JSON, canonical (what `bedrock-guard anchor` stamps).
    pub fn build_json(
        keys: &[PublicKey],
        min_revision: u64,
        vm_id: &str,
        bundle_names: &[String],
    ) -> Result<Vec<u8>, String> {
        let mut members = Map::new();
        members.insert("version".into(), Value::from(1u64));
        members.insert(
            "bundle_public_keys".into(),
            Value::Array(keys.iter().map(PublicKey::to_jwk).collect()),
        );
        members.insert("min_revision".into(), Value::from(min_revision));
        members.insert("vm_id".into(), Value::from(vm_id));
        if !bundle_names.is_empty() {
            members.insert(
                "bundle_names".into(),
                Value::Array(
                    bundle_names
                        .iter()
                        .map(|n| Value::from(n.as_str()))
                        .collect(),
                ),
            );
        }
        let canonical =
            canonical::to_canonical(&Value::Object(members)).map_err(|e| e.to_string())?;
        // Parse it back: what is stamped is exactly what the module accepts.
        Anchor::parse(&canonical)?;
        Ok(canonical)
    }

    /// Whether the anchor admits a bundle of this name.
    pub fn admits_name(&self, name: &str) -> bool {
        self.bundle_names.is_empty() || self.bundle_names.iter().any(|n| n == name)
    }
}

/// A bundle revision as an orderable number: decimal digits only (no sign, no leading `+`),
/// at most 18 of them. Leading zeros are allowed and ignored.
pub fn revision_number(revision: &str) -> Option<u64> {
    if revision.is_empty() || revision.len() > 18 || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    revision.parse::<u64>().ok()
}

/// The revision of a signed bundle as a number, or the error every place that orders signed
/// revisions gives (the filter, `sign`, `ecds`).
pub fn signed_revision(revision: &str) -> Result<u64, String> {
    revision_number(revision).ok_or_else(|| {
        format!(
            "metadata.revision {revision:?} must be a decimal integer (at most 18 digits) for a \
             signed bundle, so that revisions can be ordered (rollbacks are refused)"
        )
    })
}

/// The highest bundle a running Envoy has loaded under one name: its revision and digest,
/// as kept in shared data (`"<revision> <digest>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    /// The highest revision loaded under the name.
    pub revision: u64,
    /// The digest (`canonical::digest`) of the bundle loaded at that revision.
    pub digest: String,
}

impl Floor {
    /// Read a floor back from shared data; `None` for anything not `"<revision> <digest>"`
    /// with a plain decimal revision (see [`revision_number`]).
    pub fn parse(text: &[u8]) -> Option<Floor> {
        let text = std::str::from_utf8(text).ok()?;
        let (revision, digest) = text.split_once(' ')?;
        Some(Floor {
            revision: revision_number(revision)?,
            digest: digest.to_string(),
        })
    }

    /// The shared-data form, `"<revision> <digest>"`, that [`Floor::parse`] reads.
    pub fn encode(&self) -> String {
        format!("{} {}", self.revision, self.digest)
    }
}

/// Whether a signed bundle may load over `floor` (what this process has loaded before under
/// the same name) and `min_revision`: a lower revision is a rollback; the same revision with
/// another digest is a second bundle claiming a revision already in force.
pub fn check_revision(
    revision: u64,
    digest: &str,
    min_revision: u64,
    floor: Option<&Floor>,
) -> Result<(), String> {
    if revision < min_revision {
        return Err(format!(
            "revision {revision} is below the anchor's min_revision {min_revision} (rollback refused)"
        ));
    }
    if let Some(floor) = floor {
        if revision < floor.revision {
            return Err(format!(
                "revision {revision} is lower than revision {} already loaded (rollback refused)",
                floor.revision
            ));
        }
        if revision == floor.revision && digest != floor.digest {
            return Err(format!(
                "revision {revision} is already loaded with digest {}; a different bundle needs a higher revision",
                floor.digest
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_numbers_are_plain_decimal() {
        assert_eq!(revision_number("42"), Some(42));
        assert_eq!(revision_number("007"), Some(7));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "0x10",
            " 1",
            "v1",
            "1234567890123456789",
        ] {
            assert_eq!(revision_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rollback_and_same_revision_with_another_digest_are_refused() {
        let floor = Floor {
            revision: 5,
            digest: "sha256:aa".into(),
        };
        assert!(check_revision(5, "sha256:aa", 0, Some(&floor)).is_ok());
        assert!(check_revision(6, "sha256:bb", 0, Some(&floor)).is_ok());
        let low = check_revision(4, "sha256:cc", 0, Some(&floor)).unwrap_err();
        assert!(low.contains("rollback"), "{low}");
        let same = check_revision(5, "sha256:bb", 0, Some(&floor)).unwrap_err();
        assert!(same.contains("higher revision"), "{same}");
        let min = check_revision(2, "sha256:aa", 3, None).unwrap_err();
        assert!(min.contains("min_revision 3"), "{min}");
        assert!(check_revision(3, "sha256:aa", 3, None).is_ok());
    }

    #[test]
    fn floors_round_trip() {
        let floor = Floor {
            revision: 12,
            digest: "sha256:ab".into(),
        };
        assert_eq!(Floor::parse(floor.encode().as_bytes()), Some(floor));
        assert_eq!(Floor::parse(b"x sha256:ab"), None);
        assert_eq!(Floor::parse(b"12"), None);
    }

    #[test]
    fn empty_slot_has_no_payload_and_lengths_are_bounded() {
        let mut slot = empty_slot();
        assert_eq!(slot_payload(&slot), Ok(None));
        slot[SLOT_LEN_OFFSET..SLOT_PAYLOAD_OFFSET].copy_from_slice(&3u32.to_le_bytes());
        slot[SLOT_PAYLOAD_OFFSET..SLOT_PAYLOAD_OFFSET + 3].copy_from_slice(b"{}x");
        assert_eq!(slot_payload(&slot), Ok(Some(&b"{}x"[..])));
        slot[SLOT_LEN_OFFSET..SLOT_PAYLOAD_OFFSET]
            .copy_from_slice(&u32::try_from(MAX_PAYLOAD + 1).unwrap().to_le_bytes());
        assert!(slot_payload(&slot).is_err());
    }
}
