//! The operation catalogue and the raw-path rules (security.md §1.4, bedrock-api.md §1).

use policies::request::{classify, Operation, RouteError};
use policies::Reason;

/// The operation a request routes to, or the reason it is refused.
fn route(method: &str, path: &[u8]) -> Result<Operation, Reason> {
    classify(method.as_bytes(), path)
        .map(|m| m.operation)
        .map_err(|e| e.reason())
}

fn post(path: &str) -> Result<Operation, Reason> {
    route("POST", path.as_bytes())
}

fn get(path: &str) -> Result<Operation, Reason> {
    route("GET", path.as_bytes())
}

fn segment(path: &str) -> Option<Vec<u8>> {
    classify(b"POST", path.as_bytes())
        .ok()
        .and_then(|m| m.model_segment.map(<[u8]>::to_vec))
}

const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1%3A0";
const ASYNC_ARN: &str =
    "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabcdef012345";

// ---------------------------------------------------------------- the catalogue, one by one

#[test]
fn accepts_invoke_model_and_keeps_the_segment_encoded() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke")),
        Ok(Operation::InvokeModel)
    );
    assert_eq!(
        segment(&format!("/model/{HAIKU}/invoke")),
        Some(HAIKU.as_bytes().to_vec())
    );
}

#[test]
fn accepts_invoke_model_with_response_stream() {
    let op = post(&format!("/model/{HAIKU}/invoke-with-response-stream"));
    assert_eq!(op, Ok(Operation::InvokeModelWithResponseStream));
}

#[test]
fn accepts_converse() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/converse")),
        Ok(Operation::Converse)
    );
}

#[test]
fn accepts_converse_stream() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/converse-stream")),
        Ok(Operation::ConverseStream)
    );
}

#[test]
fn accepts_count_tokens() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/count-tokens")),
        Ok(Operation::CountTokens)
    );
}

#[test]
fn accepts_invoke_with_bidirectional_stream() {
    let op = post("/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream");
    assert_eq!(op, Ok(Operation::InvokeModelWithBidirectionalStream));
}

#[test]
fn accepts_start_async_invoke_and_list_async_invokes_on_the_same_path() {
    assert_eq!(post("/async-invoke"), Ok(Operation::StartAsyncInvoke));
    assert_eq!(get("/async-invoke"), Ok(Operation::ListAsyncInvokes));
}

#[test]
fn accepts_get_async_invoke_with_encoded_invocation_arn() {
    assert_eq!(
        get(&format!("/async-invoke/{ASYNC_ARN}")),
        Ok(Operation::GetAsyncInvoke)
    );
}

#[test]
fn accepts_get_async_invoke_with_lowercase_escapes_and_raw_colons() {
    let arn = "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:async-invoke%2fabcdef012345";
    assert_eq!(
        get(&format!("/async-invoke/{arn}")),
        Ok(Operation::GetAsyncInvoke)
    );
}

#[test]
fn accepts_apply_guardrail_with_id_and_numeric_or_draft_version() {
    assert_eq!(
        post("/guardrail/gr0abc12/version/1/apply"),
        Ok(Operation::ApplyGuardrail)
    );
    assert_eq!(
        post("/guardrail/gr0abc12/version/12345678/apply"),
        Ok(Operation::ApplyGuardrail)
    );
    assert_eq!(
        post("/guardrail/gr0abc12/version/DRAFT/apply"),
        Ok(Operation::ApplyGuardrail)
    );
}

#[test]
fn accepts_apply_guardrail_with_encoded_guardrail_arn() {
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fgr0abc12";
    assert_eq!(
        post(&format!("/guardrail/{arn}/version/2/apply")),
        Ok(Operation::ApplyGuardrail)
    );
}

#[test]
fn accepts_openai_chat_completions_and_responses() {
    assert_eq!(
        post("/openai/v1/chat/completions"),
        Ok(Operation::ChatCompletions)
    );
    assert_eq!(post("/openai/v1/responses"), Ok(Operation::Responses));
}

#[test]
fn accepts_anthropic_messages() {
    assert_eq!(
        post("/anthropic/v1/messages"),
        Ok(Operation::AnthropicMessages)
    );
}

#[test]
fn accepts_invoke_inline_agent_with_encoded_colon_in_session_id() {
    assert_eq!(
        post("/agents/session-1.a_b%3A2"),
        Ok(Operation::InvokeInlineAgent)
    );
    assert_eq!(
        post(&format!("/agents/{}", "s".repeat(100))),
        Ok(Operation::InvokeInlineAgent)
    );
}

#[test]
fn accepts_retrieve_with_ten_character_knowledge_base_id() {
    assert_eq!(
        post("/knowledgebases/KB12345678/retrieve"),
        Ok(Operation::Retrieve)
    );
}

#[test]
fn accepts_agent_runtime_routes_without_labels() {
    assert_eq!(
        post("/retrieveAndGenerate"),
        Ok(Operation::RetrieveAndGenerate)
    );
    assert_eq!(
        post("/retrieveAndGenerateStream"),
        Ok(Operation::RetrieveAndGenerateStream)
    );
    assert_eq!(post("/rerank"), Ok(Operation::Rerank));
    assert_eq!(post("/optimize-prompt"), Ok(Operation::OptimizePrompt));
}

#[test]
fn body_and_label_routes_carry_no_model_segment() {
    assert_eq!(segment("/openai/v1/chat/completions"), None);
    assert_eq!(segment("/agents/session1"), None);
}

/// One representative (method, path) per operation: every operation is reachable, and no
/// other method reaches it.
fn catalogue() -> Vec<(&'static str, String, Operation)> {
    let m = |op: &str| format!("/model/{HAIKU}/{op}");
    vec![
        ("POST", m("invoke"), Operation::InvokeModel),
        (
            "POST",
            m("invoke-with-response-stream"),
            Operation::InvokeModelWithResponseStream,
        ),
        ("POST", m("converse"), Operation::Converse),
        ("POST", m("converse-stream"), Operation::ConverseStream),
        ("POST", m("count-tokens"), Operation::CountTokens),
        (
            "POST",
            m("invoke-with-bidirectional-stream"),
            Operation::InvokeModelWithBidirectionalStream,
        ),
        ("POST", "/async-invoke".into(), Operation::StartAsyncInvoke),
        ("GET", "/async-invoke".into(), Operation::ListAsyncInvokes),
        (
            "GET",
            format!("/async-invoke/{ASYNC_ARN}"),
            Operation::GetAsyncInvoke,
        ),
        (
            "POST",
            "/guardrail/abc/version/DRAFT/apply".into(),
            Operation::ApplyGuardrail,
        ),
        (
            "POST",
            "/openai/v1/chat/completions".into(),
            Operation::ChatCompletions,
        ),
        ("POST", "/openai/v1/responses".into(), Operation::Responses),
        (
            "POST",
            "/anthropic/v1/messages".into(),
            Operation::AnthropicMessages,
        ),
        (
            "POST",
            "/agents/session1".into(),
            Operation::InvokeInlineAgent,
        ),
        (
            "POST",
            "/knowledgebases/KB1/retrieve".into(),
            Operation::Retrieve,
        ),
        (
            "POST",
            "/retrieveAndGenerate".into(),
            Operation::RetrieveAndGenerate,
        ),
        (
            "POST",
            "/retrieveAndGenerateStream".into(),
            Operation::RetrieveAndGenerateStream,
        ),
        ("POST", "/rerank".into(), Operation::Rerank),
        ("POST", "/optimize-prompt".into(), Operation::OptimizePrompt),
    ]
}

#[test]
fn every_operation_has_a_catalogue_route() {
    let routed: Vec<Operation> = catalogue().iter().map(|(_, _, op)| *op).collect();
    assert!(Operation::ALL.iter().all(|op| routed.contains(op)));
    for (method, path, op) in catalogue() {
        assert_eq!(route(method, path.as_bytes()), Ok(op), "{method} {path}");
    }
}

#[test]
fn every_catalogue_route_refuses_every_other_method() {
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT",
    ];
    for (method, path, op) in catalogue() {
        for other in methods.iter().filter(|m| **m != method) {
            let got = route(other, path.as_bytes());
            // `/async-invoke` is the one path with two methods.
            if path == "/async-invoke" && matches!(*other, "GET" | "POST") {
                assert_ne!(got, Ok(op));
                continue;
            }
            assert_eq!(got, Err(Reason::OperationUnknown), "{other} {path}");
        }
    }
}

#[test]
fn refuses_get_on_invoke() {
    assert_eq!(
        get(&format!("/model/{HAIKU}/invoke")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_lowercase_or_padded_method() {
    assert_eq!(
        route("post", format!("/model/{HAIKU}/invoke").as_bytes()),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        route("POST ", format!("/model/{HAIKU}/invoke").as_bytes()),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_method_error_as_method_not_allowed() {
    let err = classify(b"PUT", b"/rerank").unwrap_err();
    assert_eq!(err, RouteError::MethodNotAllowed);
}

// ---------------------------------------------------------------- literal segments

#[test]
fn refuses_uppercase_operation_name() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/Invoke")),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        post(&format!("/model/{HAIKU}/CONVERSE")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_unknown_operation_invoke_async() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke-async")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_operation_name_prefix_or_suffix() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invok")),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        post(&format!("/model/{HAIKU}/invokex")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_percent_encoded_operation_name() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/%69nvoke")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_uppercase_model_prefix() {
    assert_eq!(
        post(&format!("/Model/{HAIKU}/invoke")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_extra_segment_after_operation() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke/x")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_unconfirmed_openai_path_without_prefix() {
    assert_eq!(post("/v1/chat/completions"), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_unknown_anthropic_count_tokens_path() {
    assert_eq!(
        post("/anthropic/v1/messages/count_tokens"),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_case_variants_of_body_routes() {
    assert_eq!(
        post("/OpenAI/v1/chat/completions"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(post("/retrieveandgenerate"), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_invoke_agent_which_is_not_in_the_catalogue() {
    let path = "/agents/AGENT1/agentAliases/ALIAS1/sessions/s1/text";
    assert_eq!(post(path), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_unknown_root_and_empty_path() {
    assert_eq!(post("/"), Err(Reason::OperationUnknown));
    assert_eq!(post(""), Err(Reason::OperationUnknown));
    assert_eq!(
        post("/guardrail-checks/invoke"),
        Err(Reason::OperationUnknown)
    );
}

// ---------------------------------------------------------------- raw-path ambiguity under /model/

#[test]
fn refuses_trailing_slash() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke/")),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_leading_double_slash() {
    assert_eq!(
        post(&format!("//model/{HAIKU}/invoke")),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_empty_model_segment() {
    assert_eq!(post("/model//invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_double_slash_before_operation() {
    assert_eq!(
        post(&format!("/model/{HAIKU}//invoke")),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_dot_dot_segment_between_models() {
    assert_eq!(post("/model/x/../y/invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_single_dot_segment() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/./invoke")),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(post("/model/./invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_encoded_dot_dot_segment_in_any_case() {
    assert_eq!(post("/model/%2E%2E/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/%2e%2E/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/.%2e/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/%2e/invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn accepts_three_dots_as_an_ordinary_segment_for_the_model_parser_to_judge() {
    assert_eq!(segment("/model/.../invoke"), Some(b"...".to_vec()));
}

#[test]
fn refuses_semicolon_path_parameter() {
    assert_eq!(
        post(&format!("/model/{HAIKU};x=y/invoke")),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(post("/model/..;/invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_fragment() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke#frag")),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_backslash() {
    assert_eq!(
        post(&format!("/model/{HAIKU}\\..\\x/invoke")),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_encoded_nul() {
    assert_eq!(
        post("/model/anthropic.claude%00/invoke"),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_encoded_backslash_in_either_case() {
    assert_eq!(post("/model/a%5Cb/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/a%5cb/invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_encoded_control_characters_and_delete() {
    assert_eq!(post("/model/a%0Ab/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/a%7Fb/invoke"), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_raw_non_ascii_byte() {
    assert_eq!(
        route("POST", b"/model/anthropic.claude\xc3\xa9/invoke"),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(
        route("POST", b"/model/\xff/invoke"),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_raw_space_tab_and_control_bytes() {
    assert_eq!(
        post("/model/anthropic claude/invoke"),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(
        route("POST", b"/model/a\tb/invoke"),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(
        route("POST", b"/model/a\0b/invoke"),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(
        route("POST", b"/model/a\x7fb/invoke"),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_bad_escapes() {
    assert_eq!(post("/model/a%G1/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/a%4/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/a%/invoke"), Err(Reason::ModelUnparseable));
    assert_eq!(post("/model/a/invoke%4"), Err(Reason::ModelUnparseable));
}

#[test]
fn passes_double_encoding_through_for_the_model_parser_to_refuse() {
    // Structurally fine; `parse_path_model_id` refuses the `%` left after one decode.
    assert_eq!(segment("/model/a%253A0/invoke"), Some(b"a%253A0".to_vec()));
    assert_eq!(segment("/model/a%252Fb/invoke"), Some(b"a%252Fb".to_vec()));
}

#[test]
fn refuses_literal_slash_in_arn_as_unknown_operation() {
    let path = "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x.y/converse";
    assert_eq!(post(path), Err(Reason::OperationUnknown));
}

#[test]
fn accepts_encoded_slash_in_arn_as_one_segment() {
    let seg = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x.y";
    assert_eq!(
        post(&format!("/model/{seg}/converse")),
        Ok(Operation::Converse)
    );
}

#[test]
fn refuses_path_not_in_origin_form() {
    let absolute = format!("https://bedrock-runtime.us-east-1.amazonaws.com/model/{HAIKU}/invoke");
    assert_eq!(post(&absolute), Err(Reason::OperationUnknown));
    assert_eq!(
        post(&format!("model/{HAIKU}/invoke")),
        Err(Reason::ModelUnparseable)
    );
    assert_eq!(route("OPTIONS", b"*"), Err(Reason::OperationUnknown));
}

// ---------------------------------------------------------------- raw-path ambiguity elsewhere

#[test]
fn refuses_ambiguity_outside_model_as_unknown_operation() {
    assert_eq!(
        post("/openai/v1/chat/completions/"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        post("/openai/v1/../v1/responses"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(post("/rerank;x"), Err(Reason::OperationUnknown));
    assert_eq!(post("//rerank"), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_dot_segment_that_would_climb_out_of_a_body_route_into_model() {
    assert_eq!(
        post(&format!("/rerank/../model/{HAIKU}/invoke")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn malformed_error_names_the_defect_and_never_echoes_the_path() {
    let err = classify(b"POST", b"/model/SECRET%G1/invoke").unwrap_err();
    assert_eq!(err.to_string(), "path contains a malformed percent escape");
    assert!(!err.to_string().contains("SECRET"));
}

// ---------------------------------------------------------------- query strings

#[test]
fn refuses_query_on_invoke() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke?foo=bar")),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn refuses_presigned_query_on_invoke() {
    let path =
        format!("/model/{HAIKU}/invoke?X-Amz-Signature=abc&X-Amz-Credential=AKID%2F20250101");
    assert_eq!(post(&path), Err(Reason::QueryNotAllowed));
}

#[test]
fn refuses_empty_query_on_invoke() {
    assert_eq!(
        post(&format!("/model/{HAIKU}/invoke?")),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn refuses_query_on_body_routes() {
    assert_eq!(
        post("/openai/v1/chat/completions?model=x"),
        Err(Reason::QueryNotAllowed)
    );
    assert_eq!(
        post("/async-invoke?maxResults=1"),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn accepts_list_async_invokes_with_defined_parameters() {
    assert_eq!(
        get("/async-invoke?maxResults=10"),
        Ok(Operation::ListAsyncInvokes)
    );
    let all = "/async-invoke?submitTimeAfter=2025-01-01T00%3A00%3A00Z&submitTimeBefore=x&statusEquals=Completed&maxResults=5&nextToken=abc%2B%2F%3D&sortBy=SubmissionTime&sortOrder=Descending";
    assert_eq!(get(all), Ok(Operation::ListAsyncInvokes));
}

#[test]
fn refuses_list_async_invokes_with_unknown_parameter() {
    assert_eq!(
        get("/async-invoke?maxResults=10&foo=bar"),
        Err(Reason::QueryNotAllowed)
    );
    assert_eq!(
        get("/async-invoke?X-Amz-Signature=abc"),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn refuses_list_async_invokes_with_case_variant_or_encoded_parameter_name() {
    assert_eq!(
        get("/async-invoke?MaxResults=10"),
        Err(Reason::QueryNotAllowed)
    );
    assert_eq!(
        get("/async-invoke?%6DaxResults=10"),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn refuses_list_async_invokes_with_duplicate_parameter() {
    assert_eq!(
        get("/async-invoke?maxResults=10&maxResults=1000"),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn refuses_list_async_invokes_with_empty_query_or_empty_pair() {
    assert_eq!(get("/async-invoke?"), Err(Reason::QueryNotAllowed));
    assert_eq!(
        get("/async-invoke?maxResults=1&"),
        Err(Reason::QueryNotAllowed)
    );
    assert_eq!(
        get("/async-invoke?&maxResults=1"),
        Err(Reason::QueryNotAllowed)
    );
    assert_eq!(get("/async-invoke?=1"), Err(Reason::QueryNotAllowed));
}

#[test]
fn refuses_list_async_invokes_with_parameter_without_value_separator() {
    assert_eq!(
        get("/async-invoke?maxResults"),
        Err(Reason::QueryNotAllowed)
    );
}

#[test]
fn accepts_list_async_invokes_with_empty_value() {
    assert_eq!(
        get("/async-invoke?nextToken="),
        Ok(Operation::ListAsyncInvokes)
    );
}

#[test]
fn refuses_forbidden_bytes_in_query_too() {
    assert_eq!(
        get("/async-invoke?nextToken=a#b"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        get("/async-invoke?nextToken=a;b"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        get("/async-invoke?nextToken=%zz"),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_query_on_get_async_invoke() {
    assert_eq!(
        get(&format!("/async-invoke/{ASYNC_ARN}?maxResults=1")),
        Err(Reason::QueryNotAllowed)
    );
}

// ---------------------------------------------------------------- labels outside /model/

#[test]
fn refuses_get_async_invoke_with_unencoded_slash() {
    let path = "/async-invoke/arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcdef012345";
    assert_eq!(get(path), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_get_async_invoke_with_malformed_arn() {
    let bad = [
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabcdef01234",
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%2FABCDEF012345",
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A12345678901%3Aasync-invoke%2Fabcdef012345",
        "arn%3Aaws%3Abedrock%3A%3A123456789012%3Aasync-invoke%2Fabcdef012345",
        "arn%3Aaws%3Asagemaker%3Aus-east-1%3A123456789012%3Aasync-invoke%2Fabcdef012345",
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fabcdef012345",
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aasync-invoke%252Fabcdef012345",
        "abcdef012345",
    ];
    for arn in bad {
        assert_eq!(
            get(&format!("/async-invoke/{arn}")),
            Err(Reason::OperationUnknown),
            "{arn}"
        );
    }
}

#[test]
fn refuses_post_on_get_async_invoke() {
    assert_eq!(
        post(&format!("/async-invoke/{ASYNC_ARN}")),
        Err(Reason::OperationUnknown)
    );
}

#[test]
fn refuses_apply_guardrail_with_malformed_version() {
    for v in ["0", "01", "123456789", "draft", "Draft", "1.0", "%31"] {
        let path = format!("/guardrail/abc/version/{v}/apply");
        assert_eq!(post(&path), Err(Reason::OperationUnknown), "{v}");
    }
}

#[test]
fn refuses_apply_guardrail_with_malformed_identifier() {
    let long = "a".repeat(65);
    let arn_other_type = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aprompt%2Fabc";
    for id in ["ABC", "a-b", long.as_str(), arn_other_type] {
        let path = format!("/guardrail/{id}/version/1/apply");
        assert_eq!(post(&path), Err(Reason::OperationUnknown), "{id}");
    }
}

#[test]
fn refuses_inline_agent_session_id_outside_its_alphabet_or_length() {
    assert_eq!(
        post(&format!("/agents/{}", "s".repeat(101))),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(post("/agents/a%2Fb"), Err(Reason::OperationUnknown));
    assert_eq!(post("/agents/a%20b"), Err(Reason::OperationUnknown));
    assert_eq!(post("/agents/a%253Ab"), Err(Reason::OperationUnknown));
}

#[test]
fn refuses_retrieve_with_long_or_non_alphanumeric_knowledge_base_id() {
    assert_eq!(
        post("/knowledgebases/KB123456789/retrieve"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        post("/knowledgebases/KB-1/retrieve"),
        Err(Reason::OperationUnknown)
    );
    assert_eq!(
        post("/knowledgebases/%4B%42/retrieve"),
        Err(Reason::OperationUnknown)
    );
}
