//! bedrock-guard: the proxy-wasm shell around the policy engine.
//!
//! The root context compiles the bundle once in `on_configure` (refusing an invalid one);
//! each HTTP context reads the header map once, asks the engine, and either lets the request
//! continue untouched (the path and every signed header are never modified) or answers it
//! with an AWS-shaped refusal. Operations that carry the model in the body are held until the
//! whole body has arrived, bounded by the bundle's `limits.max_body_bytes`.

mod filter;
pub mod host;
mod response;

use std::rc::Rc;

use policies::CompiledPolicy;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(GuardRoot::default()) });
}}

/// Per-VM state: the compiled policy shared by every request on this worker.
#[derive(Default)]
struct GuardRoot {
    policy: Option<Rc<CompiledPolicy>>,
}

impl Context for GuardRoot {}

impl RootContext for GuardRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = match host::plugin_configuration() {
            Ok(raw) => raw,
            Err(err) => {
                log::error!("bedrock-guard: cannot read the plugin configuration: {err:?}");
                return false;
            }
        };
        match CompiledPolicy::from_json(&raw) {
            Ok(policy) => {
                log::info!(
                    "bedrock-guard: bundle {} revision {} loaded ({} mode)",
                    policy.name(),
                    policy.revision(),
                    policy.mode().as_str()
                );
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(err) => {
                // The previous policy (if any) stays in force: Envoy rejects this config.
                log::error!("bedrock-guard: bundle refused: {err}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(filter::GuardHttp::new(
            context_id,
            self.policy.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
