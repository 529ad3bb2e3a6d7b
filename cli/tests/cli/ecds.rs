//! `bedrock-guard ecds`: the extension-config resource Envoy watches.

use crate::support::*;

fn resource(s: &Scratch, name: &str) -> serde_json::Value {
    serde_json::from_str(&s.read(&format!("out/{name}.json"))).unwrap()
}

#[test]
fn writes_a_discovery_response_with_the_wasm_filter_and_the_bundle() {
    let s = Scratch::new("ecds");
    std::fs::create_dir(s.path("out")).unwrap();
    let b = s.write("demo.json", &demo_text());
    let out = s.run(&["ecds", &b, "--out-dir", "out"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let digest = policies::canonical::digest(demo_text().as_bytes()).unwrap();
    assert!(
        out.stdout.contains(&format!("version {digest}")),
        "{}",
        out.stdout
    );

    let v = resource(&s, "bedrock_guard");
    assert_eq!(v["version_info"], digest.as_str());
    let r = &v["resources"][0];
    assert_eq!(
        r["@type"],
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    );
    assert_eq!(r["name"], "bedrock_guard");
    let tc = &r["typed_config"];
    assert_eq!(
        tc["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    let config = &tc["config"];
    assert_eq!(config["root_id"], "bedrock_guard");
    assert_eq!(config["failure_policy"], "FAIL_RELOAD");
    assert_eq!(config["reload_config"]["backoff"]["base_interval"], "1s");
    assert_eq!(config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        "dist/bedrock_guard.wasm"
    );
    assert_eq!(
        config["configuration"]["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    let plugin_config = config["configuration"]["value"].as_str().unwrap();
    let bundle: serde_json::Value = serde_json::from_str(plugin_config).unwrap();
    let demo: serde_json::Value = serde_json::from_str(&demo_text()).unwrap();
    assert_eq!(bundle, demo);
    assert!(policies::compile(&policies::parse_bundle(plugin_config.as_bytes()).unwrap()).is_ok());
    // Written through a rename: nothing else is left in the directory.
    let names: Vec<String> = std::fs::read_dir(s.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["bedrock_guard.json".to_string()]);
}

#[test]
fn signed_bundles_ship_in_an_envelope_the_library_opens() {
    let s = Scratch::new("ecds-signed");
    std::fs::create_dir(s.path("out")).unwrap();
    assert_eq!(s.run(&["keygen", "--out", "k"]).code, 0);
    let b = s.write("demo.json", &demo_text());
    assert_eq!(s.run(&["sign", &b, "--key", "k.key.pem"]).code, 0);
    let out = s.run(&[
        "ecds",
        &b,
        "--out-dir",
        "out",
        "--name",
        "guard.v2",
        "--sig",
        "demo.json.jws",
        "--pub",
        "k.pub.pem",
        "--wasm",
        "/etc/envoy/bedrock_guard.wasm",
        "--vm-id",
        "guard_vm",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let v = resource(&s, "guard.v2");
    let config = &v["resources"][0]["typed_config"]["config"];
    assert_eq!(v["resources"][0]["name"], "guard.v2");
    assert_eq!(config["vm_config"]["vm_id"], "guard_vm");
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        "/etc/envoy/bedrock_guard.wasm"
    );
    let text = config["configuration"]["value"].as_str().unwrap();
    let envelope: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(envelope["signature"], s.read("demo.json.jws").trim());
    let opened = policies::signing::parse_plugin_config(text.as_bytes()).unwrap();
    let trusted = policies::signing::PublicKey::parse(s.read("k.pub.pem").as_bytes()).unwrap();
    assert!(policies::signing::verify_canonical(
        &opened.canonical,
        opened.signature.as_deref().unwrap(),
        &trusted
    )
    .is_ok());
}

#[test]
fn a_signature_that_does_not_verify_writes_nothing() {
    let s = Scratch::new("ecds-bad-sig");
    std::fs::create_dir(s.path("out")).unwrap();
    assert_eq!(s.run(&["keygen", "--out", "a"]).code, 0);
    assert_eq!(s.run(&["keygen", "--out", "b"]).code, 0);
    let b = s.write("demo.json", &demo_text());
    assert_eq!(s.run(&["sign", &b, "--key", "a.key.pem"]).code, 0);
    let out = s.run(&[
        "ecds",
        &b,
        "--out-dir",
        "out",
        "--sig",
        "demo.json.jws",
        "--pub",
        "b.pub.pem",
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!s.path("out/bedrock_guard.json").exists());
}

#[test]
fn replaces_an_existing_resource() {
    let s = Scratch::new("ecds-replace");
    std::fs::create_dir(s.path("out")).unwrap();
    let b = s.write("demo.json", &demo_text());
    assert_eq!(s.run(&["ecds", &b, "--out-dir", "out"]).code, 0);
    let first = resource(&s, "bedrock_guard")["version_info"].clone();
    s.write(
        "demo.json",
        &demo_text().replace("\"revision\": \"1\"", "\"revision\": \"2\""),
    );
    assert_eq!(s.run(&["ecds", &b, "--out-dir", "out"]).code, 0);
    assert_ne!(resource(&s, "bedrock_guard")["version_info"], first);
}

#[test]
fn refuses_invalid_bundles_and_bad_arguments() {
    let s = Scratch::new("ecds-invalid");
    std::fs::create_dir(s.path("out")).unwrap();
    let b = s.write("b.json", "{}");
    assert_eq!(s.run(&["ecds", &b, "--out-dir", "out"]).code, 1);
    assert!(!s.path("out/bedrock_guard.json").exists());
    let good = s.write("demo.json", &demo_text());
    assert_eq!(s.run(&["ecds", &good]).code, 2);
    assert_eq!(
        s.run(&["ecds", &good, "--out-dir", "out", "--name", "../x"])
            .code,
        2
    );
}

#[test]
fn creates_a_missing_output_directory_and_explains_one_it_cannot_use() {
    let s = Scratch::new("ecds-dirs");
    let good = s.write("demo.json", &demo_text());
    let made = s.run(&["ecds", &good, "--out-dir", "new/ecds"]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    assert!(s.path("new/ecds/bedrock_guard.json").is_file());
    let file = s.write("plain-file", "x");
    let not_dir = s.run(&["ecds", &good, "--out-dir", &file]);
    assert_eq!(not_dir.code, 2);
    assert!(
        not_dir.stderr.contains("exists and is not a directory")
            && not_dir.stderr.contains("watched_directory"),
        "{}",
        not_dir.stderr
    );
    let blocked = s.run(&["ecds", &good, "--out-dir", &format!("{file}/sub")]);
    assert_eq!(blocked.code, 2);
    assert!(
        blocked.stderr.contains("cannot create") && blocked.stderr.contains("--out-dir"),
        "{}",
        blocked.stderr
    );
}
