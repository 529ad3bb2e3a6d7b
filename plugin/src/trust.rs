//! Which bundles may load: the trust anchor stamped into this module (if any), the keys the
//! VM configuration pins (only without an anchor), and the revision floor that refuses
//! rollbacks.
//!
//! The anchor slot is a static in the module's data section that `bedrock-guard anchor`
//! fills in a copy of the released module (see `policies::anchor`). It is read through
//! `black_box`, so the optimiser cannot fold the empty slot it was compiled with into the
//! code: the bytes read are the bytes in the file Envoy loaded.
//!
//! The floor (the highest revision loaded per bundle name) lives in proxy-wasm shared data of
//! the `vm_id`: every worker and every VM the process creates for that `vm_id` sees it, so
//! neither a push that makes Envoy create a new VM nor one that reaches a worker later can go
//! back. It ends with the process; the anchor's `min_revision` is the floor after a restart.

use policies::anchor::{self, Anchor, Floor};
use policies::signing::PublicKey;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::host::{self, HostError};

/// The slot `bedrock-guard anchor` stamps. Never read directly: see [`compiled_anchor`].
static ANCHOR_SLOT: [u8; anchor::SLOT_LEN] = anchor::empty_slot();

/// Filter-state key (Envoy prefixes it with `wasm.`) set to the anchor's id on every request
/// an anchored module lets through, for the listener's RBAC backstop.
pub const ANCHOR_PROPERTY: &str = "bedrock_guard_anchor";

/// Shared-data key prefix of the revision floors (one key per bundle name).
const FLOOR_KEY_PREFIX: &str = "bedrock_guard.bundle_floor.v1.";
const WRITE_ATTEMPTS: usize = 8;

/// The anchor stamped into this module: `Ok(None)` when the slot is empty (an unanchored
/// build); an error when it holds something that is not a valid anchor (refuse to start).
pub fn compiled_anchor() -> Result<Option<Anchor>, String> {
    let slot: &[u8; anchor::SLOT_LEN] = std::hint::black_box(&ANCHOR_SLOT);
    match anchor::slot_payload(slot)? {
        None => Ok(None),
        Some(json) => Anchor::parse(json).map(Some),
    }
}

/// What a bundle is checked against, fixed when the VM starts.
#[derive(Default)]
pub struct Trust {
    pub anchor: Option<Anchor>,
    /// Keys pinned by the VM configuration (never together with an anchor).
    pub pinned: Vec<PublicKey>,
}

impl Trust {
    /// The anchor stamped in the module and the VM configuration's pinned keys. An anchored
    /// module refuses pinned keys: whoever writes the VM configuration must not be able to
    /// add a key.
    pub fn new(anchor: Option<Anchor>, pinned: Vec<PublicKey>) -> Result<Trust, String> {
        if anchor.is_some() && !pinned.is_empty() {
            return Err(
                "this module is anchored (its bundle keys are stamped into it): the VM \
                        configuration may not pin bundle_public_keys"
                    .into(),
            );
        }
        Ok(Trust { anchor, pinned })
    }

    /// The keys a bundle must be signed with (empty: unsigned bundles load).
    pub fn keys(&self) -> &[PublicKey] {
        match &self.anchor {
            Some(anchor) => &anchor.keys,
            None => &self.pinned,
        }
    }
}

/// Check the anchor's `vm_id` against the one Envoy runs this plugin under.
pub fn check_vm_id(anchor: &Anchor) -> Result<(), String> {
    let actual = hostcalls::get_property(vec!["plugin_vm_id"])
        .map_err(|s| format!("cannot read plugin_vm_id: {s:?}"))?
        .unwrap_or_default();
    if actual != anchor.vm_id.as_bytes() {
        return Err(format!(
            "the anchor requires vm_id {:?}, this plugin runs under {:?}",
            anchor.vm_id,
            String::from_utf8_lossy(&actual)
        ));
    }
    Ok(())
}

/// Refuse a signed bundle that would go back: below the anchor's `min_revision`, below the
/// revision this process has loaded under the same name, or the same revision with another
/// digest. Returns the bundle's revision number.
pub fn check_floor(
    name: &str,
    revision: &str,
    digest: &str,
    min_revision: u64,
) -> Result<u64, String> {
    let number = anchor::signed_revision(revision)?;
    let floor = read_floor(name)?.0;
    anchor::check_revision(number, digest, min_revision, floor.as_ref())?;
    Ok(number)
}

/// Record `revision` as loaded under `name` (keeping the highest).
pub fn raise_floor(name: &str, revision: u64, digest: &str) -> Result<(), String> {
    let key = floor_key(name);
    let value = Floor {
        revision,
        digest: digest.to_string(),
    }
    .encode();
    for _ in 0..WRITE_ATTEMPTS {
        let (current, cas) = read_floor(name)?;
        if current.as_ref().is_some_and(|f| f.revision >= revision) {
            return Ok(());
        }
        match host::set_shared_data(&key, value.as_bytes(), cas) {
            Ok(()) => return Ok(()),
            Err(HostError::Status(Status::CasMismatch)) => continue,
            Err(e) => return Err(format!("cannot record the revision floor: {e:?}")),
        }
    }
    Err("cannot record the revision floor: shared data contended".into())
}

fn floor_key(name: &str) -> String {
    format!("{FLOOR_KEY_PREFIX}{name}")
}

fn read_floor(name: &str) -> Result<(Option<Floor>, u32), String> {
    let (bytes, cas) = host::shared_data(&floor_key(name))
        .map_err(|e| format!("cannot read the revision floor: {e:?}"))?;
    Ok((bytes.as_deref().and_then(Floor::parse), cas))
}
