//! `extract_body_models` for every `ModelLocation` kind, on the same bytes.
//!
//! Oracle: no panic; whatever the strict reader accepts, serde_json parses too (as one object);
//! with `BodyField(name)` the document has exactly one top-level `name` member per serde_json,
//! it is a string, and it equals the extracted value. `Path`/`None` never read the body.
#![no_main]

use fuzz_support::top_level_members;
use libfuzzer_sys::fuzz_target;
use policies::request::body::MAX_MODELS;
use policies::request::route::AGENT_MODEL_KEYS;
use policies::request::{extract_body_models, parse_body_model_id, ModelLocation};

const LOCATIONS: [ModelLocation; 5] = [
    ModelLocation::BodyField("model"),
    ModelLocation::BodyField("modelId"),
    ModelLocation::BodyAnywhere(AGENT_MODEL_KEYS),
    ModelLocation::Path,
    ModelLocation::None,
];

fuzz_target!(|data: &[u8]| {
    for location in LOCATIONS {
        let Ok(models) = extract_body_models(data, location) else {
            continue;
        };
        assert!(models.len() <= MAX_MODELS);
        for model in &models {
            let _ = parse_body_model_id(model);
        }
        let name = match location {
            ModelLocation::Path | ModelLocation::None => {
                assert!(models.is_empty());
                continue;
            }
            ModelLocation::BodyAnywhere(_) => None,
            ModelLocation::BodyField(name) => Some(name),
        };
        let members = match top_level_members(data) {
            Ok(members) => members,
            Err(e) => panic!("accepted a body serde_json refuses ({e}): {data:?}"),
        };
        let Some(name) = name else {
            continue;
        };
        let values: Vec<_> = members.iter().filter(|(k, _)| k == name).collect();
        assert_eq!(
            values.len(),
            1,
            "serde_json sees {} `{name}` members",
            values.len()
        );
        let value: String = serde_json::from_str(values[0].1.get())
            .unwrap_or_else(|e| panic!("`{name}` is not a string to serde_json: {e}"));
        assert_eq!(
            models,
            [value],
            "extracted `{name}` differs from serde_json's"
        );
    }
});
