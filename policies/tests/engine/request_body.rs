//! Strict JSON extraction of body-carried models (security.md §4).

use policies::request::body::{MAX_DEPTH, MAX_MODELS};
use policies::request::{extract_body_models, BodyError, ModelLocation, Operation};
use policies::Reason;

const MODEL: ModelLocation = ModelLocation::BodyField("model");
const MODEL_ID: ModelLocation = ModelLocation::BodyField("modelId");

fn agent() -> ModelLocation {
    Operation::RetrieveAndGenerate.model_location()
}

fn chat(body: &str) -> Result<Vec<String>, BodyError> {
    extract_body_models(body.as_bytes(), MODEL)
}

fn one(model: &str) -> Result<Vec<String>, BodyError> {
    Ok(vec![model.to_owned()])
}

// ---------------------------------------------------------------- BodyField: the one top-level member

#[test]
fn extracts_model_from_chat_completions_body() {
    let body = r#"{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(chat(body), one("openai.gpt-oss-20b-1:0"));
}

#[test]
fn extracts_model_id_from_start_async_invoke_body() {
    let body = r#"{"clientRequestToken":"t","modelId":"amazon.nova-reel-v1:0","modelInput":{},"outputDataConfig":{}}"#;
    assert_eq!(
        extract_body_models(body.as_bytes(), MODEL_ID),
        one("amazon.nova-reel-v1:0")
    );
}

#[test]
fn accepts_whitespace_around_and_inside_the_document() {
    assert_eq!(chat(" \r\n\t{ \"model\" :\t\"a.b\" } \n"), one("a.b"));
}

#[test]
fn returns_the_model_value_unescaped() {
    assert_eq!(
        chat(r#"{"model":"us.anthropic.claude\u002d3\/x"}"#),
        one("us.anthropic.claude-3/x")
    );
}

#[test]
fn returns_model_wherever_it_sits_among_top_level_members() {
    let body = r#"{"messages":[{"model":"nested.ignored"}],"stream":true,"model":"a.b"}"#;
    assert_eq!(chat(body), one("a.b"));
}

#[test]
fn refuses_duplicate_model() {
    assert_eq!(
        chat(r#"{"model":"a.allowed","model":"b.denied"}"#),
        Err(BodyError::DuplicateKey)
    );
}

#[test]
fn refuses_escaped_model_key() {
    assert_eq!(
        chat(r#"{"mod\u0065l":"a.b"}"#),
        Err(BodyError::AmbiguousModelKey)
    );
    assert_eq!(
        chat(r#"{"model":"a.b","mod\u0065l":"c.d"}"#),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn refuses_escaped_model_key_even_with_a_harmless_escape() {
    assert_eq!(
        chat(r#"{"\u006dodel":"a.b"}"#),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn refuses_case_variant_model_key() {
    assert_eq!(
        chat(r#"{"model":"a.b","Model":"c.d"}"#),
        Err(BodyError::AmbiguousModelKey)
    );
    assert_eq!(
        chat(r#"{"MODEL":"c.d"}"#),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn refuses_case_variants_of_every_model_key_at_any_depth() {
    for key in [
        "modelid",
        "MODELID",
        "Modelid",
        "modelARN",
        "foundationmodel",
        "TargetModelId",
    ] {
        let body = format!(r#"{{"model":"a.b","x":[{{"{key}":"c.d"}}]}}"#);
        assert_eq!(chat(&body), Err(BodyError::AmbiguousModelKey), "{key}");
    }
}

#[test]
fn refuses_keys_that_unicode_case_mapping_turns_into_model_keys() {
    // U+0131 dotless i upper-cases to `I`; U+0130 lower-cases to `i` + dot.
    assert_eq!(
        extract_body_models("{\"modelıd\":\"a.b\"}".as_bytes(), MODEL_ID),
        Err(BodyError::AmbiguousModelKey)
    );
    assert_eq!(
        extract_body_models("{\"modelİd\":\"a.b\"}".as_bytes(), MODEL_ID),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn accepts_other_keys_that_merely_contain_model() {
    let body = r#"{"model":"a.b","modelInput":{},"models":[],"model_":1,"xmodel":2}"#;
    assert_eq!(chat(body), one("a.b"));
}

#[test]
fn accepts_escapes_in_keys_that_are_not_model_keys() {
    assert_eq!(chat(r#"{"model":"a.b","r\u006fle":"user"}"#), one("a.b"));
}

#[test]
fn refuses_model_that_is_not_a_string() {
    for value in [
        "1",
        "null",
        "true",
        "[\"a.b\"]",
        "{\"id\":\"a.b\"}",
        "-0.5e3",
    ] {
        let body = format!(r#"{{"model":{value}}}"#);
        assert_eq!(chat(&body), Err(BodyError::ModelNotString), "{value}");
    }
}

#[test]
fn refuses_missing_model() {
    assert_eq!(chat(r#"{"messages":[]}"#), Err(BodyError::ModelMissing));
    assert_eq!(chat("{}"), Err(BodyError::ModelMissing));
}

#[test]
fn refuses_model_present_only_in_a_nested_object() {
    assert_eq!(
        chat(r#"{"x":{"model":"a.b"}}"#),
        Err(BodyError::ModelMissing)
    );
}

#[test]
fn refuses_model_under_the_other_operations_key() {
    assert_eq!(
        extract_body_models(br#"{"model":"a.b"}"#, MODEL_ID),
        Err(BodyError::ModelMissing)
    );
}

#[test]
fn returns_an_empty_model_string_for_the_model_parser_to_refuse() {
    assert_eq!(chat(r#"{"model":""}"#), one(""));
}

// ---------------------------------------------------------------- duplicate keys anywhere

#[test]
fn refuses_duplicate_keys_deep_inside_messages() {
    let body = r#"{"model":"a.b","messages":[{"role":"user","content":[{"type":"text","text":"x","text":"y"}]}]}"#;
    assert_eq!(chat(body), Err(BodyError::DuplicateKey));
}

#[test]
fn refuses_duplicate_keys_that_differ_only_by_escapes() {
    assert_eq!(
        chat(r#"{"model":"a.b","x":{"role":1,"r\u006fle":2}}"#),
        Err(BodyError::DuplicateKey)
    );
}

#[test]
fn accepts_the_same_key_in_sibling_and_nested_objects() {
    let body = r#"{"model":"a.b","messages":[{"role":"user","c":{"role":"x"}},{"role":"assistant"}],"role":"r"}"#;
    assert_eq!(chat(body), one("a.b"));
}

#[test]
fn refuses_duplicates_in_objects_larger_than_the_linear_scan() {
    let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let body = format!(r#"{{"model":"a.b",{},"k3":0}}"#, keys.join(","));
    assert_eq!(chat(&body), Err(BodyError::DuplicateKey));
}

#[test]
fn accepts_many_distinct_keys_and_keeps_checking_siblings_afterwards() {
    let keys: Vec<String> = (0..5000)
        .map(|i| format!("\"k{i}\":{{\"a\":{i}}}"))
        .collect();
    let body = format!(
        r#"{{{},"model":"a.b","z":{{"a":1,"b":2}}}}"#,
        keys.join(",")
    );
    assert_eq!(chat(&body), one("a.b"));
}

// ---------------------------------------------------------------- one RFC 8259 object, nothing else

#[test]
fn refuses_trailing_data() {
    assert_eq!(
        chat(r#"{"model":"a.b"}{"model":"c.d"}"#),
        Err(BodyError::TrailingData)
    );
    assert_eq!(chat(r#"{"model":"a.b"} x"#), Err(BodyError::TrailingData));
    assert_eq!(chat("{\"model\":\"a.b\"}\0"), Err(BodyError::TrailingData));
}

#[test]
fn refuses_byte_order_mark() {
    let mut body = b"\xef\xbb\xbf".to_vec();
    body.extend_from_slice(br#"{"model":"a.b"}"#);
    assert_eq!(
        extract_body_models(&body, MODEL),
        Err(BodyError::NotAnObject)
    );
}

#[test]
fn refuses_empty_and_whitespace_only_body() {
    assert_eq!(chat(""), Err(BodyError::Empty));
    assert_eq!(chat(" \n"), Err(BodyError::Empty));
}

#[test]
fn refuses_top_level_values_other_than_an_object() {
    for body in [r#"["a.b"]"#, r#""a.b""#, "1", "null"] {
        assert_eq!(chat(body), Err(BodyError::NotAnObject), "{body}");
    }
}

#[test]
fn accepts_nesting_of_exactly_the_depth_limit() {
    let depth = MAX_DEPTH - 1; // plus the top-level object
    let body = format!(
        r#"{{"model":"a.b","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(chat(&body), one("a.b"));
}

#[test]
fn refuses_nesting_one_deeper_than_the_limit() {
    let depth = MAX_DEPTH;
    let body = format!(
        r#"{{"model":"a.b","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(chat(&body), Err(BodyError::TooDeep));
}

#[test]
fn refuses_deep_objects_at_depth_65_but_not_64() {
    let nest = |n: usize| format!("{}{}", r#"{"a":"#.repeat(n - 1) + "{}", "}".repeat(n - 1));
    assert_eq!(
        extract_body_models(nest(64).as_bytes(), agent()),
        Ok(vec![])
    );
    assert_eq!(
        extract_body_models(nest(65).as_bytes(), agent()),
        Err(BodyError::TooDeep)
    );
}

#[test]
fn refuses_hostile_nesting_without_exhausting_the_stack() {
    let body = format!(r#"{{"model":"a.b","x":{}"#, "[".repeat(1_000_000));
    assert_eq!(chat(&body), Err(BodyError::TooDeep));
}

#[test]
fn refuses_invalid_utf8_in_values_and_keys() {
    assert_eq!(
        extract_body_models(b"{\"model\":\"a\xc0\xa7\"}", MODEL),
        Err(BodyError::InvalidUtf8)
    );
    assert_eq!(
        extract_body_models(b"{\"model\":\"a.b\",\"k\xff\":1}", MODEL),
        Err(BodyError::InvalidUtf8)
    );
    assert_eq!(
        extract_body_models(b"{\"model\":\"a.b\",\"x\":\"\xed\xa0\x80\"}", MODEL),
        Err(BodyError::InvalidUtf8)
    );
}

#[test]
fn accepts_valid_multibyte_utf8_outside_the_model() {
    assert_eq!(
        chat("{\"model\":\"a.b\",\"content\":\"héllo 🦀\"}"),
        one("a.b")
    );
}

#[test]
fn refuses_lone_surrogate_escapes() {
    for s in [
        r"\ud800",
        r"\udc00",
        r"\ud800\u0041",
        r"\ud800x",
        r"\udbff\ud800",
    ] {
        let body = format!(r#"{{"model":"a.b","x":"{s}"}}"#);
        assert_eq!(chat(&body), Err(BodyError::LoneSurrogate), "{s}");
    }
}

#[test]
fn accepts_surrogate_pair_and_decodes_it() {
    assert_eq!(chat(r#"{"model":"a\ud83e\udd80b"}"#), one("a🦀b"));
}

#[test]
fn refuses_invalid_escapes() {
    for s in [r"\x41", r"\U0041", r"\u00G1", r"\'", r"\a"] {
        let body = format!(r#"{{"model":"a.b","x":"{s}"}}"#);
        assert_eq!(chat(&body), Err(BodyError::InvalidEscape), "{s}");
    }
}

#[test]
fn refuses_raw_control_characters_in_strings() {
    assert_eq!(
        chat("{\"model\":\"a\nb\"}"),
        Err(BodyError::ControlCharacter)
    );
    assert_eq!(
        chat("{\"model\":\"a.b\",\"x\":\"\t\"}"),
        Err(BodyError::ControlCharacter)
    );
}

#[test]
fn accepts_escaped_control_characters_outside_the_model() {
    assert_eq!(chat(r#"{"model":"a.b","x":"\u0000\n\t"}"#), one("a.b"));
}

#[test]
fn refuses_non_json_syntax() {
    let bad = [
        r#"{"model":"a.b",}"#,
        r#"{"model":"a.b","x":[1,]}"#,
        r#"{'model':'a.b'}"#,
        r#"{model:"a.b"}"#,
        r#"{"model" "a.b"}"#,
        r#"{"model":"a.b" "x":1}"#,
        r#"{"model":"a.b","x":NaN}"#,
        r#"{"model":"a.b","x":Infinity}"#,
        r#"{"model":"a.b","x":+1}"#,
        r#"{"model":"a.b","x":01}"#,
        r#"{"model":"a.b","x":1.}"#,
        r#"{"model":"a.b","x":.5}"#,
        r#"{"model":"a.b","x":1e}"#,
        r#"{"model":"a.b","x":0x1}"#,
        r#"{"model":"a.b","x":tru}"#,
        r#"{"model":"a.b","x":True}"#,
        r#"{"model":"a.b",/*c*/"x":1}"#,
        r#"{"model":"a.b"//c"#,
        r#"{"model":"a.b","x":[}"#,
        r#"{"model":"a.b","x":{]}"#,
    ];
    for body in bad {
        assert!(chat(body).is_err(), "{body}");
    }
}

#[test]
fn accepts_every_number_form_of_rfc_8259() {
    let body = r#"{"model":"a.b","n":[0,-0,1,-12,3.25,1e400,1E+2,2e-7,-0.0e0]}"#;
    assert_eq!(chat(body), one("a.b"));
}

#[test]
fn accepts_literals_and_empty_containers() {
    assert_eq!(
        chat(r#"{"model":"a.b","t":true,"f":false,"n":null,"o":{},"a":[],"s":""}"#),
        one("a.b")
    );
}

#[test]
fn refuses_every_truncation_of_a_valid_body() {
    let body = r#"{"model":"us.anthropic.claude-3:0","messages":[{"role":"user","content":"h\u00e9"}],"n":-1.5e3,"ok":true}"#;
    assert_eq!(chat(body), one("us.anthropic.claude-3:0"));
    for cut in 0..body.len() {
        assert!(chat(&body[..cut]).is_err(), "prefix of {cut} bytes");
    }
}

#[test]
fn model_split_at_any_byte_reads_the_same_once_reassembled() {
    let body = br#"{"messages":[],"model":"us.anthropic.claude-3:0"}"#;
    for cut in 0..=body.len() {
        let (head, tail) = body.split_at(cut);
        let whole = [head, tail].concat();
        assert_eq!(
            extract_body_models(&whole, MODEL),
            one("us.anthropic.claude-3:0")
        );
    }
}

// ---------------------------------------------------------------- BodyAnywhere (agent runtime)

const RAG_BODY: &str = r#"{
  "input": {"text": "q"},
  "retrieveAndGenerateConfiguration": {
    "type": "KNOWLEDGE_BASE",
    "knowledgeBaseConfiguration": {
      "knowledgeBaseId": "KB12345678",
      "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
      "retrievalConfiguration": {
        "vectorSearchConfiguration": {
          "implicitFilterConfiguration": {
            "metadataAttributes": [],
            "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
          },
          "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": {
              "modelConfiguration": {"modelArn": "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0"}
            }
          }
        }
      }
    }
  }
}"#;

#[test]
fn collects_every_nested_model_arn_in_document_order() {
    let got = extract_body_models(RAG_BODY.as_bytes(), agent()).unwrap();
    assert_eq!(got.len(), 3);
    assert!(
        got[0].ends_with("claude-3-haiku-20240307-v1:0") && got[2].ends_with("amazon.rerank-v1:0")
    );
}

#[test]
fn collects_inline_agent_foundation_models_of_collaborators() {
    let body = r#"{"foundationModel":"us.a.b","instruction":"x","collaborators":[{"foundationModel":"c.d"},{"foundationModel":"e.f"}]}"#;
    let got = extract_body_models(
        body.as_bytes(),
        Operation::InvokeInlineAgent.model_location(),
    );
    assert_eq!(got, Ok(vec!["us.a.b".into(), "c.d".into(), "e.f".into()]));
}

#[test]
fn collects_target_model_id_of_optimize_prompt() {
    let body = r#"{"input":{"textPrompt":{"text":"x"}},"targetModelId":"anthropic.claude-3-haiku-20240307-v1:0"}"#;
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        one("anthropic.claude-3-haiku-20240307-v1:0")
    );
}

#[test]
fn accepts_agent_body_without_any_model() {
    assert_eq!(
        extract_body_models(br#"{"input":{"text":"q"}}"#, agent()),
        Ok(vec![])
    );
}

#[test]
fn refuses_non_string_model_arn_anywhere() {
    let body = r#"{"a":{"b":[{"modelArn":["arn:aws:bedrock:us-east-1::foundation-model/a.b"]}]}}"#;
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        Err(BodyError::ModelNotString)
    );
}

#[test]
fn refuses_case_variant_model_arn_anywhere() {
    let body = RAG_BODY.replace(
        "\"modelConfiguration\": {\"modelArn\"",
        "\"modelConfiguration\": {\"ModelArn\"",
    );
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn refuses_escaped_model_arn_anywhere() {
    let body = RAG_BODY.replace(
        "\"modelConfiguration\": {\"modelArn\"",
        "\"modelConfiguration\": {\"model\\u0041rn\"",
    );
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        Err(BodyError::AmbiguousModelKey)
    );
}

#[test]
fn refuses_duplicate_model_arn_in_one_object() {
    let body = r#"{"c":{"modelArn":"x.y","modelArn":"z.w"}}"#;
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        Err(BodyError::DuplicateKey)
    );
}

#[test]
fn refuses_more_models_than_the_limit() {
    let items: Vec<String> = (0..=MAX_MODELS)
        .map(|i| format!(r#"{{"modelArn":"m.{i}"}}"#))
        .collect();
    let body = format!(r#"{{"x":[{}]}}"#, items.join(","));
    assert_eq!(
        extract_body_models(body.as_bytes(), agent()),
        Err(BodyError::TooManyModels)
    );
}

// ---------------------------------------------------------------- path-carried and model-less operations

#[test]
fn does_not_read_the_body_of_path_or_model_less_operations() {
    assert_eq!(
        extract_body_models(b"\xff not json", ModelLocation::Path),
        Ok(vec![])
    );
    assert_eq!(extract_body_models(b"[", ModelLocation::None), Ok(vec![]));
}

#[test]
fn every_error_is_body_unparseable_with_a_fixed_message() {
    let err = chat(r#"{"model":"SECRET","model":"x"}"#).unwrap_err();
    assert_eq!(err.reason(), Reason::BodyUnparseable);
    assert!(!err.to_string().contains("SECRET"));
}

#[test]
fn parses_a_multi_mebibyte_body() {
    let message = r#"{"role":"user","content":[{"type":"text","text":"lorem ipsum \"dolor\" sit amet \u00e9"}]}"#;
    let messages = vec![message; 40_000].join(",");
    let body = format!(r#"{{"model":"a.b","messages":[{messages}]}}"#);
    assert!(body.len() > 3 << 20);
    assert_eq!(chat(&body), one("a.b"));
}
