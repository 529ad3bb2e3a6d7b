//! The HTTP context: one per request.

use std::rc::Rc;
use std::sync::Arc;

use policies::audit::{AuditRecord, CredentialType};
use policies::bundle::CompiledEndpoint;
use policies::credentials::{self, ApiKeyKind, Credential};
use policies::destination::CanonicalHost;
use policies::eventstream::{usage_from_headers, EventStreamReader};
use policies::identity::{self, Caller};
use policies::{
    destination, evaluate_body, evaluate_head, Decision, HeadOutcome, Pending, Reason, RequestFacts,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::metrics::Stat;
use crate::quarantine::{self, QUARANTINE_SECONDS};
use crate::{host, now_ms, response, Shared};

/// Filter-state key (Envoy prefixes it with `wasm.`) holding the request's audit record.
pub const AUDIT_PROPERTY: &str = "bedrock_guard_audit";

/// Refusal detail of a request to a quarantined endpoint (see `quarantine`).
const QUARANTINED_DETAIL: &str =
    "the endpoint answered from an address outside its PrivateLink ranges and is quarantined";

/// The key an endpoint is quarantined under: the bundle entry's host (a zonal name shares its
/// regional entry's), or the canonical authority when no entry matches (a dry-run bundle lets
/// such a request through).
fn quarantine_key<'a>(
    endpoint: Option<&'a CompiledEndpoint>,
    canonical: Option<&'a CanonicalHost>,
) -> Option<&'a str> {
    endpoint
        .map(|e| e.host.as_str())
        .or_else(|| canonical.map(CanonicalHost::as_str))
}

pub struct GuardHttp {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    /// Set while a body-carried decision waits for the whole body.
    pending: Option<Pending>,
    /// Bytes of request body buffered so far (reported by the host).
    buffered: usize,
    request_id: String,
    started_ms: u64,
    /// The raw `:authority`, kept for the upstream-address check at response time.
    authority: Vec<u8>,
    record: Option<AuditRecord>,
    stream: Option<EventStreamReader>,
    /// The request was refused locally (nothing went upstream).
    refused: bool,
    logged: bool,
}

impl GuardHttp {
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>) -> Self {
        GuardHttp {
            context_id,
            shared,
            pending: None,
            buffered: 0,
            request_id: String::new(),
            started_ms: 0,
            authority: Vec::new(),
            record: None,
            stream: None,
            refused: false,
            logged: false,
        }
    }

    /// Carry out a decision: continue untouched, or answer with the refusal.
    fn act(&mut self, decision: &Decision) -> Action {
        self.pending = None;
        if let Some(shared) = &self.shared {
            shared.metrics.borrow_mut().decision(decision);
        }
        let record = self
            .record
            .get_or_insert_with(|| AuditRecord::from_decision(decision, self.started_ms));
        record.apply_decision(decision);
        if decision.lets_through() {
            if !decision.is_allow() {
                self.alert(decision);
            }
            let removal = match &self.shared {
                // The identity token never reaches Bedrock (it is not a signed header).
                Some(shared) if shared.policy.has_identity() => hostcalls::set_map_value(
                    MapType::HttpRequestHeaders,
                    shared.policy.identity_header(),
                    None,
                ),
                _ => Ok(()),
            };
            if removal.is_ok() && self.mark_anchored() {
                return Action::Continue;
            }
            // Never forward a token we could not strip, nor a request the backstop would not
            // recognise.
            return self.refuse_now(
                Reason::PolicyUnavailable,
                "the identity header could not be removed or the request could not be marked",
            );
        }
        self.refused = true;
        if let Some(record) = &mut self.record {
            record.status(decision.status());
        }
        self.alert(decision);
        response::refuse(decision, &self.request_id);
        Action::Pause
    }

    /// In an anchored module, tell the listener's RBAC backstop that this request was let
    /// through by a bundle the anchor admitted (`wasm.bedrock_guard_anchor` = the anchor id).
    /// `false` if the mark could not be set: the request is then refused, not forwarded
    /// unmarked.
    fn mark_anchored(&self) -> bool {
        let Some(id) = self.shared.as_ref().and_then(|s| s.anchor_id.as_deref()) else {
            return true;
        };
        hostcalls::set_property(vec![crate::trust::ANCHOR_PROPERTY], Some(id.as_bytes())).is_ok()
    }

    /// Queue a deny alert (enforced refusals, and dry-run ones when configured).
    fn alert(&mut self, decision: &Decision) {
        let (Some(shared), Some(record)) = (&self.shared, &self.record) else {
            return;
        };
        let Some(queue) = &shared.alerts else { return };
        let mut queue = queue.borrow_mut();
        if decision.lets_through() && !queue.include_dry_run {
            return;
        }
        if !queue.push(record.to_json_line()) {
            shared.metrics.borrow_mut().record(Stat::AlertsDropped, 1);
        }
    }

    fn refuse_now(&mut self, reason: Reason, detail: &str) -> Action {
        self.act(&Decision::deny(reason, detail))
    }

    /// Write the audit record where Envoy's access loggers read it. Called once, from
    /// `on_log`, which Envoy runs before the connection manager's access loggers (verified
    /// on 1.40: a record published there is what the access log writes).
    fn publish(&mut self) {
        let Some(record) = &mut self.record else {
            return;
        };
        record.latency_ms(now_ms().saturating_sub(self.started_ms));
        let line = record.to_json_line();
        if let Err(status) = hostcalls::set_property(vec![AUDIT_PROPERTY], Some(line.as_bytes())) {
            log::warn!("bedrock-guard: cannot publish the audit record: {status:?}");
        }
    }

    /// The answer came from `upstream`, outside the endpoint's ranges: the request has already
    /// left. Quarantine the endpoint (so no further request to it leaves, on any worker), and
    /// answer the client with a refusal no SDK retries (403 `AccessDeniedException`, never a
    /// 5xx, no retry hint) instead of the upstream's answer.
    fn withhold(&mut self, shared: &Shared, upstream: &[u8]) -> Action {
        shared
            .metrics
            .borrow_mut()
            .record(Stat::UpstreamNotPrivatelink, 1);
        let canonical = destination::canonical_authority(&self.authority).ok();
        let endpoint = canonical
            .as_ref()
            .and_then(|host| destination::find_endpoint(&shared.policy, host.as_str()));
        if let Some(key) = quarantine_key(endpoint, canonical.as_ref()) {
            if quarantine::start(key, now_ms()) == Some(true) {
                shared
                    .metrics
                    .borrow_mut()
                    .record(Stat::DestinationQuarantined, 1);
                let from = destination::parse_upstream_address(upstream)
                    .map_or_else(|| "an unparseable address".to_string(), |a| a.to_string());
                log::warn!(
                    "bedrock-guard: endpoint {key} answered from {from}, outside its cidrs: \
                     requests to it are refused for {QUARANTINE_SECONDS} s"
                );
            }
        }
        let decision = Decision::deny(
            Reason::DestinationNotPrivatelink,
            format!(
                "the response came from an address outside the endpoint's PrivateLink ranges; \
                 requests to the endpoint are refused for {QUARANTINE_SECONDS} s"
            ),
        );
        self.refused = true;
        if let Some(record) = &mut self.record {
            // Verdict and the client's status (403); the upstream's status and address stay.
            record.apply_decision(&decision);
        }
        self.alert(&decision);
        response::refuse(&decision, &self.request_id);
        Action::Pause
    }

    /// Decide a held request on its complete body.
    fn decide_body(&mut self) -> Action {
        let (Some(shared), Some(pending)) = (self.shared.clone(), self.pending.take()) else {
            return Action::Continue;
        };
        match host::request_body(self.buffered) {
            Ok(body) => {
                let decision = evaluate_body(&shared.policy, &pending, &body);
                self.act(&decision)
            }
            Err(err) => {
                log::warn!("bedrock-guard: request body unavailable: {err:?}");
                self.refuse_now(Reason::BodyUnparseable, "request body could not be read")
            }
        }
    }
}

fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

impl Context for GuardHttp {}

impl HttpContext for GuardHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.started_ms = now_ms();
        let headers = match host::request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                log::warn!("bedrock-guard: request headers unavailable: {err:?}");
                self.request_id = response::request_id(None, self.context_id);
                return self.refuse_now(Reason::HeaderInvalid, "request headers could not be read");
            }
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        self.request_id = response::request_id(find("x-request-id"), self.context_id);

        let Some(shared) = self.shared.clone() else {
            return self.refuse_now(
                Reason::PolicyUnavailable,
                "no valid policy bundle is loaded",
            );
        };
        let policy = &shared.policy;

        // Header names arrive validated by Envoy's codecs; one that is not UTF-8 is refused
        // rather than guessed at.
        let mut named: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            match std::str::from_utf8(name) {
                Ok(name) => named.push((name, value.as_slice())),
                Err(_) => {
                    return self.refuse_now(Reason::HeaderInvalid, "header name is not valid UTF-8")
                }
            }
        }
        let authority = find(":authority").unwrap_or_default();
        self.authority = authority.to_vec();

        let now = self.started_ms / 1000;
        let mut token = None;
        let caller = match &shared.identity {
            None => Caller::Anonymous,
            Some(state) => {
                if let Ok(Some(t)) = identity::extract_token(policy.identity_header(), &named) {
                    token = Some(t);
                }
                state
                    .borrow_mut()
                    .authenticate(policy.identity_header(), &named, now)
            }
        };
        let original_destination = if shared.original_destination {
            property(&["destination", "address"])
                .and_then(|a| destination::parse_upstream_address(&a))
        } else {
            None
        };

        let mut record = AuditRecord::from_decision(
            &Decision::deny(Reason::PolicyUnavailable, ""),
            self.started_ms,
        );
        record
            .request_id(&self.request_id)
            .bundle(Arc::clone(&shared.bundle))
            .endpoint(authority);
        if let Some(source) = property(&["source", "address"]) {
            record.source_address(source);
        }
        let canonical = destination::canonical_authority(authority).ok();
        let endpoint = canonical
            .as_ref()
            .and_then(|host| destination::find_endpoint(policy, host.as_str()));
        if let Some(endpoint) = endpoint {
            record.region(&endpoint.region);
        }
        match credentials::detect(&named, policy.identity_header()) {
            Credential::SigV4(scope) => {
                record
                    .credential_type(CredentialType::SigV4)
                    .access_key_id(scope.access_key_id);
            }
            Credential::ApiKey {
                kind: ApiKeyKind::ShortTerm,
                ..
            } => {
                record.credential_type(CredentialType::BedrockApiKeyShortTerm);
            }
            Credential::ApiKey {
                kind: ApiKeyKind::LongTerm,
                ..
            } => {
                record.credential_type(CredentialType::BedrockApiKeyLongTerm);
            }
            _ => {}
        }
        if let Caller::Verified(p) = &caller {
            record.identity(&p.issuer, &p.subject, p.groups.iter());
        }
        if let Some(token) = token {
            record.token_fingerprint(token);
        }
        self.record = Some(record);

        let facts = RequestFacts {
            method: find(":method").unwrap_or_default(),
            path: find(":path").unwrap_or_default(),
            authority,
            scheme: find(":scheme").unwrap_or_default(),
            headers: &named,
            body: None,
            original_destination,
            caller,
        };
        let outcome = evaluate_head(policy, &facts);
        // A request that would leave (or wait for its body to leave) for a quarantined
        // endpoint is refused here, before anything is sent. One shared-data read.
        let leaves = match &outcome {
            HeadOutcome::Decided(decision) => decision.lets_through(),
            HeadOutcome::NeedBody(_) => true,
        };
        if leaves {
            if let Some(key) = quarantine_key(endpoint, canonical.as_ref()) {
                if quarantine::check(key, self.started_ms).is_some() {
                    let mut decision =
                        Decision::deny(Reason::DestinationNotPrivatelink, QUARANTINED_DETAIL);
                    if let HeadOutcome::Decided(d) = &outcome {
                        decision.operation = d.operation;
                        decision.models.clone_from(&d.models);
                    }
                    return self.act(&decision);
                }
            }
        }
        match outcome {
            HeadOutcome::Decided(decision) => self.act(&decision),
            HeadOutcome::NeedBody(pending) => {
                self.pending = Some(pending);
                if end_of_stream {
                    // No body will follow: decide on the empty body now.
                    self.decide_body()
                } else {
                    // Hold the request (upstream is not contacted) until the body is complete.
                    Action::Pause
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(pending) = &self.pending else {
            return Action::Continue;
        };
        self.buffered = body_size;
        if u64::try_from(body_size).map_or(true, |n| n > pending.max_body_bytes) {
            return self.refuse_now(
                Reason::BodyTooLarge,
                "request body exceeds limits.max_body_bytes",
            );
        }
        if !end_of_stream {
            // StopIterationAndBuffer: Envoy keeps buffering and calls again.
            return Action::Pause;
        }
        self.decide_body()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // HTTP/2 requests may end with trailers instead of END_STREAM on a DATA frame.
        if self.pending.is_some() {
            return self.decide_body();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.refused {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let headers = host::header_map(MapType::HttpResponseHeaders).unwrap_or_default();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v.as_slice())
        };
        let status = find(":status")
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok());
        let throttled = status == Some(429)
            || find("x-amzn-errortype").is_some_and(|t| t.starts_with(b"ThrottlingException"));
        {
            let mut metrics = shared.metrics.borrow_mut();
            match status {
                Some(s) if (400..500).contains(&s) => metrics.record(Stat::Upstream4xx, 1),
                Some(s) if s >= 500 => metrics.record(Stat::Upstream5xx, 1),
                Some(_) => metrics.record(Stat::Upstream2xx, 1),
                None => {}
            }
            if throttled {
                metrics.record(Stat::UpstreamThrottled, 1);
            }
        }
        if let (Some(record), Some(s)) = (&mut self.record, status) {
            // What the upstream said, also when the client is answered otherwise below.
            record.upstream_status(s);
        }
        // Only answers that came from the upstream are checked (not Envoy's own replies).
        if let Some(upstream) = property(&["upstream", "address"]) {
            if let Some(record) = &mut self.record {
                record.upstream_address(&upstream);
            }
            let allowed = destination::parse_upstream_address(&upstream).is_some_and(|addr| {
                destination::upstream_allowed(&shared.policy, &self.authority, addr)
            });
            if !allowed {
                return self.withhold(&shared, &upstream);
            }
        }
        if let Some(record) = &mut self.record {
            if let Some(s) = status {
                record.status(s);
            }
            if let Some((input, output)) = usage_from_headers(
                find("x-amzn-bedrock-input-token-count"),
                find("x-amzn-bedrock-output-token-count"),
            ) {
                record.tokens(input, output);
            }
        }
        let is_stream = find("content-type")
            .is_some_and(|ct| ct.starts_with(b"application/vnd.amazon.eventstream"));
        if is_stream && !end_of_stream {
            self.stream = Some(EventStreamReader::new());
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(reader) = &mut self.stream {
            // Each callback carries only the new chunk; it passes through unchanged.
            if body_size > 0 {
                if let Ok(Some(chunk)) = hostcalls::get_buffer(
                    proxy_wasm::types::BufferType::HttpResponseBody,
                    0,
                    body_size,
                ) {
                    reader.push(&chunk);
                }
            }
            if end_of_stream {
                reader.finish();
                if let Some(record) = &mut self.record {
                    record.stream(reader);
                }
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.logged {
            return;
        }
        self.logged = true;
        if self.record.is_none() {
            // Envoy answered this request itself before the filter saw its headers (e.g. a
            // malformed header): there is no decision to account for.
            return;
        }
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let latency = now_ms().saturating_sub(self.started_ms);
        let mut metrics = shared.metrics.borrow_mut();
        metrics.record(Stat::LatencyMs, latency);
        if let Some(record) = &self.record {
            if let Some((input, output)) = record.token_counts() {
                metrics.record(Stat::TokensInput, input);
                metrics.record(Stat::TokensOutput, output);
            }
            if let Some(n) = record.malformed_frames().filter(|n| *n > 0) {
                metrics.record(Stat::StreamMalformedFrames, n);
            }
        }
        drop(metrics);
        self.publish();
    }
}
