//! bedrock-guard: the proxy-wasm shell around the policy engine.
//!
//! The root context compiles the bundle once in `on_configure` (refusing an invalid one) and
//! owns the per-VM mutable state: the identity verifier and its JWKS fetches, and the stats.
//! Each HTTP context reads the header map once, authenticates the caller, asks the engine, and
//! either lets the request continue untouched (the path and every signed header are never
//! modified; only the identity header is removed) or answers it with an AWS-shaped refusal.
//! Operations that carry the model in the body are held until the whole body has arrived,
//! bounded by the bundle's `limits.max_body_bytes`. Every request leaves one audit record in
//! the filter state `wasm.bedrock_guard_audit` for Envoy's access loggers.
//!
//! An endpoint that answers from an address outside its `cidrs` is quarantined for every
//! worker of the VM id (proxy-wasm shared data, see `quarantine`): its later requests are
//! refused before they leave.
//!
//! Layout: `host` is the only module that touches the proxy-wasm ABI; the filter, the stats and
//! the quarantine reach Envoy through its `Host` trait (the unit tests use a recording fake).
//! The JWKS schedule (`identity`) and alert batching (`alerts`) are plain state machines that
//! return the HTTP calls to make; this root context makes them and reports the answers back.

mod alerts;
mod config;
mod emf;
#[cfg(test)]
mod fake_host;
mod filter;
pub mod host;
mod identity;
mod metrics;
pub mod quarantine;
mod response;
#[cfg(feature = "test-panic")]
mod test_panic;
#[cfg(feature = "bench-trace")]
mod trace;
mod trust;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use policies::audit::BundleInfo;
use policies::CompiledPolicy;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};

use crate::alerts::AlertQueue;
use crate::host::{Envoy, Host};
use crate::identity::{Answer, IdentityState};
use crate::metrics::{Metrics, Stat};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(GuardRoot::default()) });
}}

/// Everything a request needs from its VM, shared by `Rc` (one VM is single-threaded).
pub struct Shared {
    pub policy: Rc<CompiledPolicy>,
    pub bundle: Arc<BundleInfo>,
    /// Transparent listener: Envoy's `destination.address` is the original destination.
    pub original_destination: bool,
    /// How a body-carried request is held (the VM environment's `BEDROCK_GUARD_HOLD_BODY`).
    pub hold_body: config::HoldBody,
    /// The CloudWatch namespace of EMF lines, when on (`BEDROCK_GUARD_EMF_NAMESPACE`).
    pub emf_namespace: Option<String>,
    pub identity: Option<RefCell<IdentityState>>,
    pub alerts: Option<RefCell<AlertQueue>>,
    pub metrics: RefCell<Metrics>,
    /// The anchor's id when the module is anchored: set in each forwarded request's filter
    /// state for the listener's RBAC backstop.
    pub anchor_id: Option<String>,
}

#[derive(Default)]
struct GuardRoot {
    shared: Option<Rc<Shared>>,
    /// What bundles are checked against: the anchor stamped into the module, or the keys the
    /// VM configuration pins (neither: unsigned bundles load).
    trust: trust::Trust,
    /// Fixed when the VM starts (see `config::hold_body`).
    hold_body: config::HoldBody,
    /// Fixed when the VM starts (see `config::emf_namespace`).
    emf_namespace: Option<String>,
}

/// Milliseconds since the Unix epoch, from the host clock.
pub fn now_ms() -> u64 {
    Envoy.now_ms()
}

/// The anchor stamped into the module and the keys the VM configuration pins.
fn start_trust() -> Result<trust::Trust, String> {
    let anchor = trust::compiled_anchor()?;
    let raw =
        host::vm_configuration().map_err(|e| format!("cannot read the VM configuration: {e:?}"))?;
    let pinned = config::trusted_keys(&raw)?;
    trust::Trust::new(anchor, pinned)
}

impl GuardRoot {
    /// Read, verify, admit and compile the plugin configuration's bundle: what a request
    /// needs, or why the bundle cannot be in force.
    fn load(&self, raw: &[u8]) -> Result<Rc<Shared>, String> {
        let loaded = config::load(raw, self.trust.keys())?;
        let policy = loaded.policy;
        let revision = self.admit(&policy, &loaded.digest, loaded.signed_by.is_some())?;
        let bundle = Arc::new(
            BundleInfo::new(policy.name(), policy.revision(), &loaded.digest)
                .signed_by(loaded.signed_by.as_deref()),
        );
        let identity = IdentityState::new(&policy);
        let mut metrics = Metrics::new(&policy);
        metrics.bundle_in_force(
            &Envoy,
            revision.or_else(|| policy.revision().parse::<u64>().ok()),
            self.trust.anchor.is_some(),
            self.trust.keys(),
            loaded.signed_by.as_deref(),
        );
        metrics.wasm_memory(&Envoy, metrics::linear_memory_bytes());
        let alerts = policy.alerts().map(|a| RefCell::new(AlertQueue::new(a)));
        // The tick drives JWKS fetches and deny alerts, and keeps `wasm_memory_bytes` current.
        hostcalls::set_tick_period(Duration::from_secs(1))
            .map_err(|status| format!("cannot start the timer: {status:?}"))?;
        if let Some(revision) = revision {
            trust::raise_floor(policy.name(), revision, &loaded.digest)?;
        }
        log::info!(
            "bedrock-guard: bundle {} revision {} loaded ({} mode, digest {}, {})",
            policy.name(),
            policy.revision(),
            policy.mode().as_str(),
            loaded.digest,
            loaded
                .signed_by
                .as_deref()
                .map_or_else(|| "unsigned".to_string(), |kid| format!("signed by {kid}"))
        );
        Ok(Rc::new(Shared {
            anchor_id: self.trust.anchor.as_ref().map(|a| a.id.clone()),
            policy: Rc::new(policy),
            bundle,
            original_destination: loaded.original_destination,
            hold_body: self.hold_body,
            emf_namespace: self.emf_namespace.clone(),
            identity: identity.map(RefCell::new),
            alerts,
            metrics: RefCell::new(metrics),
        }))
    }

    /// What the anchor and the revision floor say about a bundle that parsed (and whose
    /// signature verified, if keys are trusted). `Ok(Some(revision))` for a signed bundle
    /// (its floor is raised once it is in force), `Ok(None)` for an unsigned one.
    fn admit(
        &self,
        policy: &CompiledPolicy,
        digest: &str,
        signed: bool,
    ) -> Result<Option<u64>, String> {
        let min_revision = match &self.trust.anchor {
            Some(anchor) => {
                trust::check_vm_id(anchor)?;
                if !anchor.admits_name(policy.name()) {
                    return Err(format!(
                        "bundle name {:?} is not one the anchor admits ({})",
                        policy.name(),
                        anchor.bundle_names.join(", ")
                    ));
                }
                anchor.min_revision
            }
            None => 0,
        };
        if !signed {
            return Ok(None);
        }
        trust::check_floor(policy.name(), policy.revision(), digest, min_revision).map(Some)
    }
}

impl Context for GuardRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(shared) = &self.shared else { return };
        let status = || {
            Envoy
                .header_map(MapType::HttpCallResponseHeaders)
                .ok()
                .and_then(|h| h.into_iter().find(|(k, _)| k == b":status").map(|(_, v)| v))
        };
        if let Some(identity) = &shared.identity {
            let mut identity = identity.borrow_mut();
            if identity.owns(token_id) {
                let now = now_ms() / 1000;
                let body;
                let answer = if status().as_deref() != Some(b"200") {
                    Answer::Failed
                } else if body_size > identity::MAX_JWKS_BYTES {
                    Answer::TooLarge
                } else {
                    match Envoy.buffer(BufferType::HttpCallResponseBody, 0, body_size) {
                        Ok(bytes) => {
                            body = bytes;
                            Answer::Ok(&body)
                        }
                        Err(_) => Answer::Failed,
                    }
                };
                identity.on_response(token_id, answer, now);
                if let Some(age) = identity.max_age(now) {
                    shared
                        .metrics
                        .borrow_mut()
                        .record(&Envoy, Stat::JwksAgeSeconds, age);
                }
                return;
            }
        }
        if let Some(alerts) = &shared.alerts {
            let mut alerts = alerts.borrow_mut();
            let code = status().and_then(|s| {
                std::str::from_utf8(&s)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok())
            });
            let body = match code {
                Some(_) if body_size > 0 => Envoy
                    .buffer(
                        BufferType::HttpCallResponseBody,
                        0,
                        body_size.min(alerts::MAX_RESPONSE_BYTES),
                    )
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let response = match code {
                Some(status) => alerts::Response::Answered {
                    status,
                    body: &body,
                },
                None => alerts::Response::NoAnswer,
            };
            if let Some(outcome) = alerts.on_response(token_id, response, now_ms() / 1000) {
                let mut metrics = shared.metrics.borrow_mut();
                for (stat, n) in [
                    (Stat::AlertsSent, outcome.sent),
                    (Stat::AlertsFailed, outcome.failed),
                    (Stat::AlertsRetried, outcome.retried),
                    (Stat::AlertsFailedEntries, outcome.failed_entries),
                ] {
                    if n > 0 {
                        metrics.record(&Envoy, stat, n);
                    }
                }
            }
        }
    }
}

impl RootContext for GuardRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        match config::hold_body_from_env() {
            Ok(hold) => {
                if hold == config::HoldBody::BufferFilter {
                    log::info!(
                        "bedrock-guard: {}=buffer_filter: body-carried requests continue from \
                         the header phase; envoy.filters.http.buffer after this filter must hold \
                         them",
                        config::HOLD_BODY_ENV
                    );
                }
                self.hold_body = hold;
            }
            Err(err) => {
                log::error!("bedrock-guard: {err}");
                return false;
            }
        }
        match config::emf_namespace_from_env() {
            Ok(ns) => self.emf_namespace = ns,
            Err(err) => {
                log::error!("bedrock-guard: {err}");
                return false;
            }
        }
        match start_trust() {
            Ok(trust) => {
                match &trust.anchor {
                    Some(anchor) => log::info!(
                        "bedrock-guard: anchored module ({}): {} bundle key(s), min revision {}, vm_id {}",
                        anchor.id,
                        anchor.keys.len(),
                        anchor.min_revision,
                        anchor.vm_id
                    ),
                    None if !trust.pinned.is_empty() => log::info!(
                        "bedrock-guard: {} bundle signing key(s) pinned by the VM configuration",
                        trust.pinned.len()
                    ),
                    None => {}
                }
                self.trust = trust;
                true
            }
            Err(err) => {
                log::error!("bedrock-guard: {err}");
                false
            }
        }
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = host::plugin_configuration();
        let loaded = match &raw {
            Ok(raw) => self.load(raw),
            Err(err) => Err(format!("cannot read the plugin configuration: {err:?}")),
        };
        match loaded {
            Ok(shared) => {
                self.shared = Some(shared);
                if let Err(err) = trust::mark_in_force(&Envoy) {
                    log::warn!("bedrock-guard: {err}");
                }
                self.on_tick();
                true
            }
            Err(err) => {
                log::error!("bedrock-guard: bundle refused: {err}");
                Metrics::bundle_rejected(&Envoy);
                let raw = raw.as_deref().unwrap_or_default();
                if !trust::accept_without_policy(&Envoy, raw) {
                    // Envoy rejects this configuration; the one in force stays.
                    return false;
                }
                // Nothing to keep: no bundle has been in force under this vm_id since the
                // process started. Accept the configuration holding no policy, so Envoy
                // serves and the filter refuses every request as `policy_unavailable` (with
                // its audit record) until a valid bundle arrives.
                log::error!(
                    "bedrock-guard: no bundle is in force: every request is refused \
                     (policy_unavailable) until a valid bundle is configured"
                );
                self.shared = None;
                Metrics::default().wasm_memory(&Envoy, metrics::linear_memory_bytes());
                true
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = &self.shared else { return };
        shared
            .metrics
            .borrow_mut()
            .wasm_memory(&Envoy, metrics::linear_memory_bytes());
        let now = now_ms() / 1000;
        if let Some(alerts) = &shared.alerts {
            let mut alerts = alerts.borrow_mut();
            if let Some(post) = alerts.tick(now) {
                let token = Envoy
                    .dispatch_http_call(
                        &post.cluster,
                        &post.headers(),
                        Some(post.body.as_bytes()),
                        alerts::POST_TIMEOUT,
                    )
                    .map_err(|e| {
                        log::warn!(
                            "bedrock-guard: deny alerts not sent ({e:?}); {} dropped",
                            post.events
                        )
                    })
                    .ok();
                let failed = alerts.dispatched(&post, token);
                if failed > 0 {
                    shared
                        .metrics
                        .borrow_mut()
                        .record(&Envoy, Stat::AlertsFailed, failed);
                }
            }
        }
        let Some(identity) = &shared.identity else {
            return;
        };
        let mut identity = identity.borrow_mut();
        for fetch in identity.tick(now) {
            let token = Envoy
                .dispatch_http_call(
                    &fetch.cluster,
                    &fetch.headers(),
                    None,
                    identity::FETCH_TIMEOUT,
                )
                .map_err(|e| log::warn!("bedrock-guard: JWKS fetch not started: {e:?}"))
                .ok();
            identity.dispatched(fetch.remote, token);
        }
        if let Some(age) = identity.max_age(now) {
            shared.metrics.borrow_mut().record(
                &Envoy,
                Stat::JwksAgeSeconds,
                age.min(u64::from(u32::MAX)),
            );
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        #[cfg(feature = "bench-trace")]
        let host = trace::Traced::default();
        #[cfg(not(feature = "bench-trace"))]
        let host = Envoy;
        Some(Box::new(filter::GuardHttp::new(
            host,
            context_id,
            self.shared.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
