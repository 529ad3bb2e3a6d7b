//! `anchor`: stamping a trust anchor into a module, showing it, and `ecds` checking a bundle
//! against an anchored module before Envoy does. The module here is a stand-in with the
//! empty slot the real one carries (tests/test_e2e_bundle_trust.py stamps the real module and
//! runs it in Envoy).

use crate::support::{demo_text, Scratch};
use policies::anchor::{self, Anchor};

fn fake_module(s: &Scratch, name: &str, slots: usize) -> String {
    let mut bytes = b"\0asm\x01\0\0\0 some code".to_vec();
    for _ in 0..slots {
        bytes.extend_from_slice(&anchor::empty_slot());
        bytes.extend_from_slice(b"more data");
    }
    std::fs::write(s.path(name), &bytes).unwrap();
    s.path(name).to_string_lossy().into_owned()
}

fn keygen(s: &Scratch, prefix: &str) {
    let out = s.run(&["keygen", "--out", prefix]);
    assert_eq!(out.code, 0, "{}", out.all());
}

fn stamped_anchor(path: &str) -> Anchor {
    let bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(anchor::SLOT_MAGIC.len())
        .position(|w| w == anchor::SLOT_MAGIC)
        .unwrap();
    let payload = anchor::slot_payload(&bytes[at..at + anchor::SLOT_LEN])
        .unwrap()
        .unwrap();
    Anchor::parse(payload).unwrap()
}

#[test]
fn stamps_keys_min_revision_vm_id_and_names_in_place_and_reproducibly() {
    let s = Scratch::new("anchor-stamp");
    let module = fake_module(&s, "m.wasm", 1);
    keygen(&s, "team");
    let args = |out: &'static str| {
        vec![
            "anchor",
            "--wasm",
            "m.wasm",
            "--pub",
            "team.pub.pem",
            "--min-revision",
            "42",
            "--bundle-name",
            "acme-prod",
            "--out",
            out,
        ]
    };
    let first = s.run(&args("a.wasm"));
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(first
        .stdout
        .contains("min revision 42, vm_id bedrock_guard, bundle names acme-prod"));
    let second = s.run(&args("b.wasm"));
    assert_eq!(second.code, 0, "{}", second.all());
    let (a, b) = (
        std::fs::read(s.path("a.wasm")).unwrap(),
        std::fs::read(s.path("b.wasm")).unwrap(),
    );
    assert_eq!(a, b, "same module and anchor, same bytes");
    assert_eq!(
        a.len(),
        std::fs::read(&module).unwrap().len(),
        "stamped in place"
    );
    let anchor = stamped_anchor(&s.path("a.wasm").to_string_lossy());
    assert_eq!(anchor.min_revision, 42);
    assert_eq!(anchor.vm_id, "bedrock_guard");
    assert_eq!(anchor.bundle_names, vec!["acme-prod".to_string()]);
    assert_eq!(anchor.keys.len(), 1);
    assert!(first.stdout.contains(&anchor.id), "{}", first.stdout);
    let sha = first
        .stdout
        .rsplit("sha256 ")
        .next()
        .unwrap()
        .trim_end_matches([')', '\n']);
    assert_eq!(sha.len(), 64, "{}", first.stdout);

    let shown = s.run(&["anchor", "--show", "a.wasm"]);
    assert_eq!(shown.code, 0, "{}", shown.all());
    assert!(
        shown.stdout.contains(&anchor.id) && shown.stdout.contains(sha),
        "{}",
        shown.stdout
    );
    let plain = s.run(&["anchor", "--show", "m.wasm"]);
    assert_eq!(plain.code, 0);
    assert!(plain.stdout.contains("not anchored"), "{}", plain.stdout);
}

#[test]
fn refuses_what_it_cannot_stamp_safely() {
    let s = Scratch::new("anchor-refuse");
    fake_module(&s, "m.wasm", 1);
    fake_module(&s, "two.wasm", 2);
    fake_module(&s, "none.wasm", 0);
    keygen(&s, "team");
    let stamp = |wasm: &str, out: &str| {
        s.run(&[
            "anchor",
            "--wasm",
            wasm,
            "--pub",
            "team.pub.pem",
            "--min-revision",
            "1",
            "--out",
            out,
        ])
    };
    // Refused with exit code 1 and a message saying `says`; the refusal's stderr.
    let refused = |wasm: &str, out: &str, says: &str| {
        let run = stamp(wasm, out);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(says), "{}", run.stderr);
        run.stderr
    };
    assert_eq!(stamp("m.wasm", "a.wasm").code, 0);
    refused("a.wasm", "b.wasm", "already anchored");
    refused("two.wasm", "c.wasm", "more than once");
    let none = refused("none.wasm", "d.wasm", "no anchor slot");
    assert!(!none.contains("cut short"), "{none}");
    // The slot's zeros dropped after the build (wasm-opt's memory-packing keeps the marker's
    // text and cuts the run of zeros that follows it): named as such, nothing written.
    let marker_text =
        &anchor::SLOT_MAGIC[..anchor::SLOT_MAGIC.iter().position(|&b| b == 0).unwrap()];
    let mut packed = b"\0asm\x01\0\0\0 some code".to_vec();
    packed.extend_from_slice(marker_text);
    packed.extend_from_slice(b"\x41\x80\x08\x0b next segment");
    packed.extend_from_slice(&[0x20; 9000]);
    std::fs::write(s.path("packed.wasm"), &packed).unwrap();
    let cut = refused("packed.wasm", "e.wasm", "the anchor slot is cut short");
    assert!(cut.contains("memory-packing"), "{cut}");
    assert!(!s.path("b.wasm").exists() && !s.path("c.wasm").exists());
    assert!(!s.path("d.wasm").exists() && !s.path("e.wasm").exists());

    // Usage: every piece is required and named.
    for (args, says) in [
        (
            vec![
                "anchor",
                "--wasm",
                "m.wasm",
                "--min-revision",
                "1",
                "--out",
                "x",
            ],
            "--pub",
        ),
        (
            vec![
                "anchor",
                "--wasm",
                "m.wasm",
                "--pub",
                "team.pub.pem",
                "--out",
                "x",
            ],
            "--min-revision",
        ),
        (
            vec![
                "anchor",
                "--pub",
                "team.pub.pem",
                "--min-revision",
                "1",
                "--out",
                "x",
            ],
            "--wasm",
        ),
        (
            vec![
                "anchor",
                "--wasm",
                "m.wasm",
                "--pub",
                "team.pub.pem",
                "--min-revision",
                "v2",
                "--out",
                "x",
            ],
            "decimal integer",
        ),
    ] {
        let out = s.run(&args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn anchors_are_parsed_strictly() {
    let s = Scratch::new("anchor-parse");
    keygen(&s, "team");
    let jwk: serde_json::Value = serde_json::from_str(&s.read("team.pub.jwk.json")).unwrap();
    let good = serde_json::json!({
        "version": 1, "bundle_public_keys": [jwk], "min_revision": 3, "vm_id": "v"
    });
    assert!(Anchor::parse(good.to_string().as_bytes()).is_ok());
    let cases = [
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [], "min_revision": 3, "vm_id": "v"}),
            "bundle_public_keys",
        ),
        (
            serde_json::json!({"version": 2, "bundle_public_keys": [jwk], "min_revision": 3, "vm_id": "v"}),
            "version",
        ),
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [jwk], "min_revision": -1, "vm_id": "v"}),
            "min_revision",
        ),
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [jwk], "min_revision": 3}),
            "vm_id",
        ),
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [jwk, jwk], "min_revision": 3, "vm_id": "v"}),
            "repeated",
        ),
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [jwk], "min_revision": 3, "vm_id": "v", "extra": 1}),
            "unknown member",
        ),
        (
            serde_json::json!({"version": 1, "bundle_public_keys": [jwk], "min_revision": 3, "vm_id": "v", "bundle_names": []}),
            "bundle_names",
        ),
    ];
    for (value, says) in cases {
        let err = Anchor::parse(value.to_string().as_bytes()).unwrap_err();
        assert!(err.contains(says), "{value}: {err}");
    }
}

#[test]
fn ecds_checks_a_bundle_against_an_anchored_module_first() {
    let s = Scratch::new("anchor-ecds");
    fake_module(&s, "m.wasm", 1);
    keygen(&s, "team");
    keygen(&s, "other");
    let mut demo: serde_json::Value = serde_json::from_str(&demo_text()).unwrap();
    demo["metadata"]["revision"] = "7".into();
    s.write("b.json", &demo.to_string());
    demo["metadata"]["revision"] = "3".into();
    s.write("low.json", &demo.to_string());
    demo["metadata"]["revision"] = "r7".into();
    s.write("word.json", &demo.to_string());
    let word = s.run(&[
        "sign",
        "word.json",
        "--key",
        "team.key.pem",
        "--out",
        "word.jws",
    ]);
    assert_eq!(word.code, 1, "{}", word.all());
    assert!(
        word.stderr.contains("must be a decimal integer"),
        "{}",
        word.stderr
    );
    for (bundle, key, sig) in [
        ("b.json", "team", "b.jws"),
        ("b.json", "other", "other.jws"),
        ("low.json", "team", "low.jws"),
    ] {
        let out = s.run(&[
            "sign",
            bundle,
            "--key",
            &format!("{key}.key.pem"),
            "--out",
            sig,
        ]);
        assert_eq!(out.code, 0, "{}", out.all());
    }
    let out = s.run(&[
        "anchor",
        "--wasm",
        "m.wasm",
        "--pub",
        "team.pub.pem",
        "--min-revision",
        "5",
        "--out",
        "a.wasm",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let ecds = |extra: &[&str]| {
        let mut args = vec!["ecds", "--out-dir", "out", "--wasm", "a.wasm"];
        args.extend_from_slice(extra);
        s.run(&args)
    };
    let ok = ecds(&["b.json", "--sig", "b.jws"]);
    assert_eq!(ok.code, 0, "{}", ok.all());
    for (extra, says) in [
        (vec!["b.json"], "not signed"),
        (vec!["b.json", "--sig", "other.jws"], "signature"),
        (
            vec!["low.json", "--sig", "low.jws"],
            "below the anchor's min_revision 5",
        ),
        (
            vec!["b.json", "--sig", "b.jws", "--pin", "team.pub.pem"],
            "--pin",
        ),
        (
            vec!["b.json", "--sig", "b.jws", "--vm-id", "elsewhere"],
            "--vm-id",
        ),
    ] {
        let out = ecds(&extra);
        assert_eq!(out.code, 1, "{extra:?}: {}", out.all());
        assert!(
            out.stderr.contains("the anchored module would refuse this")
                && out.stderr.contains(says),
            "{extra:?}: {}",
            out.stderr
        );
    }
}
