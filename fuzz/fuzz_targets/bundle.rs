//! `CompiledPolicy::from_json` and `signing::parse_plugin_config` on arbitrary bytes.
//!
//! Oracle: no panic; an opened plugin configuration's canonical bytes open again to the same
//! canonical bytes and digest, and compile exactly as the original document does (the plugin
//! compiles the canonical form: a difference would mean the signed and the enforced bundle
//! differ).
#![no_main]

use libfuzzer_sys::fuzz_target;
use policies::signing::parse_plugin_config;
use policies::CompiledPolicy;

fn summary(p: &CompiledPolicy) -> (String, String, usize, u64, String) {
    (
        p.name().to_owned(),
        p.revision().to_owned(),
        p.rule_count(),
        p.max_body_bytes(),
        format!("{:?}", p.mode()),
    )
}

fuzz_target!(|data: &[u8]| {
    let direct = CompiledPolicy::from_json(data);
    let Ok(config) = parse_plugin_config(data) else {
        return;
    };
    assert!(config.digest.starts_with("sha256:") && config.digest.len() == 7 + 64);
    let canonical = CompiledPolicy::from_json(&config.canonical);

    // A bundle with its own top-level "bundle" member would read as a wrapper the second time.
    if config.bundle.get("bundle").is_none() {
        let again = parse_plugin_config(&config.canonical).expect("canonical form re-opens");
        assert_eq!(
            again.canonical, config.canonical,
            "canonical form is not a fixed point"
        );
        assert_eq!(again.digest, config.digest);
        assert_eq!(again.bundle, config.bundle);
    }
    // Not wrapped: the document itself is the bundle, so both readings must agree.
    let wrapped = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key("bundle")))
        .unwrap_or(false);
    if !wrapped {
        match (&direct, &canonical) {
            (Ok(a), Ok(b)) => assert_eq!(summary(a), summary(b)),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "raw and canonical bundles compile differently: raw {:?} canonical {:?}",
                direct.as_ref().err(),
                canonical.as_ref().err()
            ),
        }
    }
});
