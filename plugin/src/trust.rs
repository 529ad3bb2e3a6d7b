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
use proxy_wasm::types::{MetricType, Status};

use crate::host::{self, Host, HostError};

/// The slot `bedrock-guard anchor` stamps. Never read directly: see [`compiled_anchor`].
static ANCHOR_SLOT: [u8; anchor::SLOT_LEN] = anchor::empty_slot();

/// Filter-state key (Envoy prefixes it with `wasm.`) set to the anchor's id on every request
/// an anchored module lets through, for the listener's RBAC backstop.
pub const ANCHOR_PROPERTY: &str = "bedrock_guard_anchor";

/// Shared-data key prefix of the revision floors (one key per bundle name).
const FLOOR_KEY_PREFIX: &str = "bedrock_guard.bundle_floor.v1.";
const WRITE_ATTEMPTS: usize = 8;
/// Shared-data key set once a bundle has been in force under the `vm_id` in this process.
const IN_FORCE_KEY: &str = "bedrock_guard.bundle_in_force.v1";
/// Counter of bundles configured into a VM (each worker's VM, every push): process-wide.
const BUNDLES_LOADED: &str = "bedrock_guard.bundles_loaded";

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

/// Shared-data key prefix of the configurations accepted holding no policy (one key per
/// configuration's sha256).
const UNAVAILABLE_KEY_PREFIX: &str = "bedrock_guard.accepted_unavailable.v1.";

/// Whether to accept a configuration whose bundle is refused (`raw` is the whole plugin
/// configuration), holding no policy so that every request is refused `policy_unavailable`:
///
/// * no: a bundle has been in force under this `vm_id` since the process started, so Envoy,
///   told no, keeps the configuration in force (or the canary fails the push);
/// * yes: nothing has been in force (an invalid bundle at start-up, or an invalid first ECDS
///   resource): there is nothing to keep, and refusing would stop Envoy from starting or leave
///   the filter unconfigured;
/// * yes again for the same bytes later: Envoy caches its canary's answer per plugin
///   configuration, so a push of bytes once accepted this way is admitted without asking, and
///   each VM must then agree with that answer (holding no policy) rather than fail to
///   configure. Remembered per configuration's sha256.
pub fn accept_without_policy(host: &impl Host, raw: &[u8]) -> bool {
    let key = format!(
        "{UNAVAILABLE_KEY_PREFIX}{}",
        policies::canonical::digest_canonical(raw)
    );
    if host
        .shared_data(&key)
        .is_ok_and(|(value, _)| value.is_some())
    {
        return true;
    }
    if bundle_was_in_force(host) {
        return false;
    }
    if let Err(e) = host.set_shared_data(&key, b"1", 0) {
        log::warn!("bedrock-guard: cannot record the configuration accepted without policy: {e:?}");
    }
    true
}

/// Has a bundle been in force in this process since it started: under this `vm_id` (shared
/// data), or under any (the process-wide counter `bundles_loaded`, which a push that changes
/// the `vm_id` still sees)? A read error of the shared data answers yes: Envoy then rejects
/// the configuration (or does not start), which also lets nothing through.
fn bundle_was_in_force(host: &impl Host) -> bool {
    let here = host
        .shared_data(IN_FORCE_KEY)
        .map_or(true, |(value, _)| value.is_some());
    here || bundles_loaded(host).is_some_and(|(_, n)| n > 0)
}

/// The `bundles_loaded` counter's id and value.
fn bundles_loaded(host: &impl Host) -> Option<(u32, u64)> {
    let id = host
        .define_metric(MetricType::Counter, BUNDLES_LOADED)
        .ok()?;
    Some((id, host.metric(id).ok()?))
}

/// Note that a bundle is in force (see [`bundle_was_in_force`]): the `vm_id`'s shared data
/// and one more `bundles_loaded` (every VM that configures one counts it).
pub fn mark_in_force(host: &impl Host) -> Result<(), String> {
    if let Some((id, _)) = bundles_loaded(host) {
        let _ = host.increment_metric(id, 1);
    }
    host.set_shared_data(IN_FORCE_KEY, b"1", 0)
        .map_err(|e| format!("cannot record that a bundle is in force: {e:?}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_host::FakeHost;

    #[test]
    fn a_refused_bundle_is_accepted_without_policy_only_until_one_is_in_force() {
        let host = FakeHost::new();
        assert!(
            !bundle_was_in_force(&host),
            "a fresh process has nothing in force"
        );
        assert!(
            accept_without_policy(&host, b"not json"),
            "nothing to keep yet"
        );
        assert!(accept_without_policy(&host, b"{}"), "still nothing to keep");
        assert_eq!(mark_in_force(&host), Ok(()));
        assert!(bundle_was_in_force(&host));
        // Marking again (every worker's VM, every push) is harmless.
        assert_eq!(mark_in_force(&host), Ok(()));
        assert!(
            !accept_without_policy(&host, b"{\"other\": 1}"),
            "a bundle is in force: Envoy must keep it"
        );
        // Bytes once accepted stay accepted (Envoy's canary cache admits them unasked).
        assert!(accept_without_policy(&host, b"not json"));
        assert!(!accept_without_policy(&host, b"not json "));
    }

    #[test]
    fn a_bundle_in_force_under_another_vm_id_counts_too() {
        let other_vm = FakeHost::new();
        assert_eq!(mark_in_force(&other_vm), Ok(()));
        // A fresh `vm_id` (its own shared data) in the same process (the same stats).
        let host = FakeHost::new();
        *host.stats.borrow_mut() = other_vm.stats.borrow().clone();
        assert!(bundle_was_in_force(&host));
        assert!(!accept_without_policy(&host, b"not json"));
        assert_eq!(host.stat(BUNDLES_LOADED), 1);
    }

    #[test]
    fn unreadable_shared_data_counts_as_a_bundle_in_force() {
        let host = FakeHost::new();
        host.fail_shared_data.set(true);
        assert!(bundle_was_in_force(&host));
        assert!(!accept_without_policy(&host, b"not json"));
    }
}
