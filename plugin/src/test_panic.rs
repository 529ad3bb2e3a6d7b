//! `test-panic` builds only (cargo feature `test-panic`, never in the released module): the
//! filter panics when a request carries the marker header, so the end-to-end tests can prove
//! that a VM that crashes refuses its request, that Envoy keeps serving, and how the VM comes
//! back (`tests/test_e2e_fail_closed.py`). `tests/test_module_contents.py` checks that the module
//! `make build` ships contains neither the header name nor the panic message.

use crate::host::HeaderPairs;

/// The request header that makes a `test-panic` build panic.
const MARKER_HEADER: &[u8] = b"x-bedrock-guard-test-panic";

/// Panics when `headers` carry [`MARKER_HEADER`] (any value).
#[allow(clippy::panic)]
pub fn on_request_headers(headers: &HeaderPairs) {
    if headers.iter().any(|(name, _)| name == MARKER_HEADER) {
        panic!("bedrock-guard test-panic: marker header seen, panicking on purpose");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_only_on_the_marker() {
        on_request_headers(&vec![(b"x-other".to_vec(), b"1".to_vec())]);
        let marked = vec![(MARKER_HEADER.to_vec(), b"1".to_vec())];
        assert!(std::panic::catch_unwind(|| on_request_headers(&marked)).is_err());
    }
}
