//! The one place that talks to Envoy's proxy-wasm ABI directly.
//!
//! The SDK's header accessors decode names and values with `String::from_utf8(..).unwrap()`
//! and panic on unexpected host statuses; a panic aborts the VM. These adapters return
//! `Result`s and hand back raw bytes, so no request content can crash the filter.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

#[link(wasm_import_module = "env")]
extern "C" {
    // Same signature as the SDK's own import, so the two declarations agree.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
    // Same signatures as the SDK's imports; its wrappers panic on unexpected host statuses.
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
}

/// Every (name, value) pair of a header map, in order, repeated names included.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a host call could not be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Status(Status),
    Malformed,
}

/// Read the whole request header map with one host call.
pub fn request_headers() -> Result<HeaderPairs, HostError> {
    header_map(MapType::HttpRequestHeaders)
}

pub fn header_map(map_type: MapType) -> Result<HeaderPairs, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated through the module's
    // `proxy_on_memory_allocate` export (the SDK's allocator, which allocates `size` bytes
    // as a Vec<u8>), and its length. We take ownership of exactly that allocation once.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    match status {
        Status::Ok => {
            if data.is_null() {
                return Ok(Vec::new());
            }
            // SAFETY: see above; capacity equals the allocated size.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            parse_map(&bytes).ok_or(HostError::Malformed)
        }
        other => Err(HostError::Status(other)),
    }
}

/// Decode the proxy-wasm map serialisation: a u32 count, then per pair (u32 name length,
/// u32 value length), then the names and values each followed by a NUL byte. Every bound is
/// checked; a malformed buffer is `None`, never a panic.
pub fn parse_map(bytes: &[u8]) -> Option<HeaderPairs> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let read_u32 = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = read_u32(0)?;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for n in 0..count {
        let sizes_at = 4 + n * 8;
        let name_len = read_u32(sizes_at)?;
        let value_len = read_u32(sizes_at + 4)?;
        let name_end = data_at.checked_add(name_len)?;
        let name = bytes.get(data_at..name_end)?.to_vec();
        if *bytes.get(name_end)? != 0 {
            return None;
        }
        data_at = name_end + 1;
        let value_end = data_at.checked_add(value_len)?;
        let value = bytes.get(data_at..value_end)?.to_vec();
        if *bytes.get(value_end)? != 0 {
            return None;
        }
        data_at = value_end + 1;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// The first `len` bytes of the buffered request body.
pub fn request_body(len: usize) -> Result<Vec<u8>, HostError> {
    match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len) {
        Ok(body) => Ok(body.unwrap_or_default()),
        Err(status) => Err(HostError::Status(status)),
    }
}

/// The VM configuration (operator settings such as pinned bundle keys).
pub fn vm_configuration() -> Result<Vec<u8>, HostError> {
    match hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(status) => Err(HostError::Status(status)),
    }
}

/// The plugin configuration (the policy bundle).
pub fn plugin_configuration() -> Result<Vec<u8>, HostError> {
    match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(status) => Err(HostError::Status(status)),
    }
}

/// A shared-data value (shared by every VM of the same `vm_id`) and its compare-and-swap
/// token. A missing key is `(None, 0)`; so is an empty value (the host hands back no bytes,
/// and nothing is allocated).
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: as for `header_map`: on success the host writes a pointer to a buffer it
    // allocated through the module's `proxy_on_memory_allocate` (or null), its length, and the
    // cas; we take ownership of exactly that allocation once.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        Status::Ok => {
            if data.is_null() {
                return Ok((None, cas));
            }
            // SAFETY: see above; capacity equals the allocated size.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            Ok((if bytes.is_empty() { None } else { Some(bytes) }, cas))
        }
        Status::NotFound => Ok((None, 0)),
        other => Err(HostError::Status(other)),
    }
}

/// Store a shared-data value. With `cas` non-zero the write happens only if the value is still
/// the one read with that token (`Err(Status(CasMismatch))` otherwise); `cas` 0 writes
/// unconditionally.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: both pointers and lengths describe live slices for the duration of the call; the
    // host copies them.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        Status::Ok => Ok(()),
        other => Err(HostError::Status(other)),
    }
}

/// Answer the request locally.
pub fn send_local_response(
    status: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    hostcalls::send_http_response(status, headers.to_vec(), Some(body)).map_err(HostError::Status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::parse_map;

    fn serialise(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(*k);
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_non_utf8_values_and_repeated_names() {
        let raw = serialise(&[
            (b":path", b"/x"),
            (b"user-agent", b"\xC0\xA7"),
            (b"user-agent", b"b"),
        ]);
        let pairs = parse_map(&raw).unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1].1, b"\xC0\xA7".to_vec());
        assert_eq!(pairs[2].0, b"user-agent".to_vec());
    }

    #[test]
    fn refuses_truncated_or_lying_buffers() {
        let raw = serialise(&[(b"a", b"b")]);
        for cut in 1..raw.len() {
            assert!(parse_map(&raw[..cut]).is_none(), "cut at {cut}");
        }
        let mut huge = raw.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_map(&huge).is_none());
    }

    #[test]
    fn empty_buffer_is_an_empty_map() {
        assert_eq!(parse_map(&[]).unwrap(), Vec::new());
    }
}
