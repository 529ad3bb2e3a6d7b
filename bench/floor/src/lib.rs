//! The floor for `make bench`: the cheapest proxy-wasm HTTP filter that still does what every
//! filter must. Envoy creates a VM context per request, calls `on_http_request_headers`, the
//! module reads one request header (`:path`, one host call) and continues; every other
//! callback is the SDK's default (continue). Whatever a request costs with this module loaded,
//! above no filter at all, is the price of the wasm runtime and the proxy-wasm ABI, not of
//! bedrock_guard's work: `bench/bench.py` reports the guard's cost above this floor.
//!
//! Not shipped, never configured outside the bench.

#![forbid(unsafe_code)]

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Floor) });
}}

struct Floor;

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Read it as a filter would (and keep it alive past the call); the value is not used.
        let path = self.get_http_request_header_bytes(":path");
        std::hint::black_box(path);
        Action::Continue
    }
}
