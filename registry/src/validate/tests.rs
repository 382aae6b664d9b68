use super::*;

#[test]
fn names_follow_the_documented_syntax() {
    for good in ["a", "date_service", "w1.eu-west", &"a".repeat(64)] {
        assert!(is_valid_name(good), "{good:?} should be valid");
    }
    for bad in ["", "A", "-a", "_a", "a b", "é", &"a".repeat(65)] {
        assert!(!is_valid_name(bad), "{bad:?} should be invalid");
    }
}

#[test]
fn tool_names_are_valid_in_every_mcp_client() {
    assert!(is_valid_tool_name("get_date"));
    assert!(is_valid_tool_name("Weather-Forecast_2"));
    for bad in ["", "a.b", "a:b", "a b", &"x".repeat(65)] {
        assert!(!is_valid_tool_name(bad), "{bad:?} should be invalid");
    }
}

#[test]
fn agent_ids_allow_uuid_suffixes() {
    assert!(is_valid_agent_id("hello-1a2b3c4d"));
    assert!(is_valid_agent_id("Hello.1"));
    assert!(!is_valid_agent_id("-x"));
    assert!(!is_valid_agent_id("a/b"));
    assert!(!is_valid_agent_id(&"a".repeat(129)));
}

#[test]
fn registration_errors_name_the_nested_field() {
    let request = RegisterAgentRequest {
        name: "hello".into(),
        endpoint: "http://127.0.0.1:9000/mcp".into(),
        tools: vec![Tool {
            name: "greet".into(),
            dependencies: vec![DependencySpec {
                capability: "date_service".into(),
                version: ">=x".into(),
                tags: vec![],
            }],
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    };
    let error = registration(&request, &Limits::default()).unwrap_err();
    assert!(error.to_string().starts_with("tools[0].dependencies[0].version:"), "{error}");
}

#[test]
fn endpoints_must_be_http_urls_with_a_host() {
    assert!(endpoint("http://127.0.0.1:9000/mcp").is_ok());
    assert!(endpoint("https://agent.example/mcp").is_ok());
    for bad in ["", "ftp://x/mcp", "127.0.0.1:9000", "http://"] {
        assert!(endpoint(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn shown_quotes_short_values_whole_and_cuts_long_ones_on_a_char_boundary() {
    assert_eq!(shown("a b"), "\"a b\"");
    assert_eq!(shown(&"é".repeat(SHOWN_CHARS)), format!("{:?}", "é".repeat(SHOWN_CHARS)));
    let long = "é".repeat(100);
    assert_eq!(shown(&long), format!("{:?}… (200 bytes)", "é".repeat(SHOWN_CHARS)));
}

#[test]
fn label_errors_name_the_label_cut_short() {
    let key = "K".repeat(5000);
    let labels = HashMap::from([(key, "v".to_owned())]);
    let error = super::labels("labels", &labels, &Limits::default()).unwrap_err();
    let RegistryError::InvalidArgument { field, message } = &error else { panic!("{error}") };
    assert!(field.starts_with("labels[\"KKK") && field.len() < 100, "{field}");
    assert!(message.len() < 200, "{message}");
}
