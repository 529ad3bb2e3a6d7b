//! `metadata`: the bundle's name and revision.

use crate::bundle::schema::Bundle;
use crate::bundle::validate::{self as v, Errors};

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_metadata(bundle: &Bundle, errs: &mut Errors) -> (String, String) {
    let Some(meta) = bundle.metadata.as_ref() else {
        errs.push("metadata", "required (with name and revision)");
        return (String::new(), String::new());
    };
    let name = match meta.name.as_deref() {
        Some(name) => {
            errs.check(|| "metadata.name".into(), v::bundle_name(name));
            name.to_string()
        }
        None => {
            errs.push("metadata.name", "required");
            String::new()
        }
    };
    let revision = match meta.revision.as_deref() {
        Some(rev) => {
            errs.check(|| "metadata.revision".into(), v::revision(rev));
            rev.to_string()
        }
        None => {
            errs.push("metadata.revision", "required");
            String::new()
        }
    };
    (name, revision)
}
