//! Engine semantics on small hand-written rule sets: chains, skipAfter,
//! setvar/macros, capture, multiMatch, ctl, removal/update directives,
//! modes, body processors and load errors.

use govgate_waf::{Engine, EngineConfig, LoadError, Mode};

fn engine(rules: &str) -> Engine {
    Engine::parse_str("test.conf", rules, &EngineConfig { mode: Mode::On, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"))
}

fn get(e: &Engine, uri: &str) -> govgate_waf::Transaction {
    let mut tx = e.transaction();
    tx.request_headers("GET", uri.as_bytes(), "HTTP/1.1", &[("Host", "x"), ("User-Agent", "ua")], "10.0.0.1");
    tx.request_body(b"");
    tx
}

#[test]
fn chain_requires_all_links() {
    let e = engine(
        r#"SecRule ARGS:a "@streq 1" "id:1,phase:1,deny,status:403,chain"
           SecRule ARGS:b "@streq 2" "t:none""#,
    );
    assert_eq!(get(&e, "/?a=1&b=2").intervention().map(|i| i.status), Some(403));
    assert!(get(&e, "/?a=1&b=3").intervention().is_none());
}

#[test]
fn skip_after_jumps_to_marker() {
    let e = engine(
        r#"SecAction "id:1,phase:1,pass,nolog,skipAfter:END"
           SecRule ARGS "@rx ." "id:2,phase:1,deny"
           SecMarker END
           SecRule ARGS:x "@streq y" "id:3,phase:1,deny,status:401""#,
    );
    let tx = get(&e, "/?x=y");
    assert_eq!(tx.intervention().map(|i| (i.rule_id, i.status)), Some((3, 401)));
}

#[test]
fn skip_after_a_rule_id_skip_n_and_a_missing_marker() {
    let e = engine(
        r#"SecAction "id:1,phase:1,pass,nolog,skipAfter:3"
           SecRule ARGS "@rx ." "id:2,phase:1,deny,status:402"
           SecRule ARGS "@rx ." "id:3,phase:1,deny,status:403"
           SecAction "id:4,phase:1,pass,nolog,skip:1"
           SecRule ARGS "@rx ." "id:5,phase:1,deny,status:405"
           SecRule ARGS:x "@streq y" "id:6,phase:1,pass,log,skipAfter:NOWHERE"
           SecRule ARGS "@rx ." "id:7,phase:1,deny,status:407"
           SecMarker LATER
           SecRule ARGS "@rx ." "id:8,phase:2,deny,status:408""#,
    );
    // 1 goes on after rule 3, 4 skips one rule, 6 matches and skips to the end of phase 1.
    let tx = get(&e, "/?x=y");
    assert_eq!(tx.intervention().map(|i| (i.rule_id, i.status)), Some((8, 408)));
    assert_eq!(tx.matched_rule_ids(), vec![6, 8]);
    // Without the match of 6, rule 7 is reached.
    let tx = get(&e, "/?x=z");
    assert_eq!(tx.intervention().map(|i| (i.rule_id, i.status)), Some((7, 407)));
}

#[test]
fn setvar_and_macros() {
    let e = engine(
        r#"SecAction "id:1,phase:1,pass,nolog,setvar:tx.score=2,setvar:'tx.name=%{ARGS.user}'"
           SecRule ARGS:user "@rx ^adm" "id:2,phase:1,pass,msg:'user %{tx.name} score %{tx.score}',setvar:tx.score=+%{tx.score},setvar:!tx.gone"
           SecRule TX:score "@ge 4" "id:3,phase:1,deny,status:418,msg:'Total %{TX.SCORE} from %{MATCHED_VAR_NAME}'""#,
    );
    let tx = get(&e, "/?user=admin");
    assert_eq!(tx.tx_var("score"), Some(&b"4"[..]));
    assert_eq!(tx.tx_var("name"), Some(&b"admin"[..]));
    // msg is expanded when the match is logged, after the rule's setvars (as in ModSecurity).
    assert_eq!(tx.matches()[0].message, "user admin score 4");
    assert_eq!(tx.matches()[1].message, "Total 4 from TX:score");
    assert_eq!(tx.intervention().map(|i| i.status), Some(418));
}

#[test]
fn capture_sets_tx_groups() {
    let e = engine(r#"SecRule ARGS:v "@rx ^(\w+)-(\d+)$" "id:1,phase:1,pass,capture,setvar:tx.word=%{tx.1},setvar:tx.num=%{TX.2}""#);
    let tx = get(&e, "/?v=abc-42");
    assert_eq!(tx.tx_var("word"), Some(&b"abc"[..]));
    assert_eq!(tx.tx_var("num"), Some(&b"42"[..]));
    assert_eq!(tx.tx_var("0"), Some(&b"abc-42"[..]));
}

#[test]
fn transformations_and_multimatch() {
    let e = engine(
        r#"SecRule ARGS:q "@streq <script>" "id:1,phase:1,deny,t:none,t:urlDecodeUni,t:lowercase"
           SecRule ARGS:m "@streq AbC" "id:2,phase:1,deny,status:402,multiMatch,t:lowercase""#,
    );
    assert!(get(&e, "/?q=%253CSCRIPT%253E").intervention().is_some());
    // Without multiMatch the lowercased value would not equal "AbC".
    assert_eq!(get(&e, "/?m=AbC").intervention().map(|i| i.status), Some(402));
}

#[test]
fn ctl_rule_remove_and_engine() {
    let e = engine(
        r#"SecRule REQUEST_FILENAME "@streq /safe" "id:1,phase:1,pass,nolog,ctl:ruleRemoveById=10,ctl:ruleRemoveTargetById=11;ARGS:ok"
           SecRule REQUEST_FILENAME "@streq /quiet" "id:2,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"
           SecRule ARGS "@rx evil" "id:10,phase:2,deny"
           SecRule ARGS "@rx bad" "id:11,phase:2,deny""#,
    );
    assert!(get(&e, "/other?x=evil").intervention().is_some());
    assert!(get(&e, "/safe?x=evil").intervention().is_none());
    assert!(get(&e, "/safe?ok=bad").intervention().is_none());
    assert!(get(&e, "/safe?other=bad").intervention().is_some());
    let tx = get(&e, "/quiet?x=evil");
    assert!(tx.intervention().is_none());
    assert_eq!(tx.detected_intervention().map(|i| i.rule_id), Some(10));
}

#[test]
fn removal_and_update_directives() {
    let e = engine(
        r#"SecRule ARGS "@rx a" "id:1,phase:1,deny,tag:'t1'"
           SecRule ARGS "@rx b" "id:2,phase:1,deny,tag:'gone'"
           SecRule ARGS "@rx c" "id:3,phase:1,deny"
           SecRuleRemoveById 1
           SecRuleRemoveByTag gone
           SecRuleUpdateTargetById 3 "!ARGS:skip""#,
    );
    assert_eq!(e.rule_count(), 1);
    assert!(get(&e, "/?x=a").intervention().is_none());
    assert!(get(&e, "/?x=b").intervention().is_none());
    assert!(get(&e, "/?skip=c").intervention().is_none());
    assert!(get(&e, "/?x=c").intervention().is_some());
}

#[test]
fn counts_and_exclusions() {
    let e = engine(
        r#"SecRule &ARGS "@gt 2" "id:1,phase:1,deny,status:400"
           SecRule ARGS|!ARGS:/^safe_/ "@rx x" "id:2,phase:1,deny,status:403""#,
    );
    assert_eq!(get(&e, "/?a=1&b=2&c=3").intervention().map(|i| i.status), Some(400));
    assert!(get(&e, "/?safe_1=x").intervention().is_none());
    assert_eq!(get(&e, "/?other=x").intervention().map(|i| i.status), Some(403));
}

#[test]
fn engine_off_and_detection_only() {
    for (mode, blocked) in [(Mode::Off, false), (Mode::DetectionOnly, false), (Mode::On, true)] {
        let e = Engine::parse_str("t", r#"SecRule ARGS "@rx x" "id:1,phase:1,deny""#, &EngineConfig { mode, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        // SecRuleEngine in text overrides the config.
        assert_eq!(get(&e, "/?a=x").intervention().is_some(), blocked, "{mode:?}");
    }
    let e = engine("SecRuleEngine DetectionOnly\nSecRule ARGS \"@rx x\" \"id:1,phase:1,deny\"");
    assert!(get(&e, "/?a=x").intervention().is_none());
}

#[test]
fn bodies_urlencoded_json_multipart_xml() {
    let e = engine(
        r#"SecRule ARGS:json.a.b "@streq deep" "id:1,phase:2,deny,status:461"
           SecRule ARGS_POST:f "@streq v" "id:2,phase:2,deny,status:462"
           SecRule FILES "@rx \.php$" "id:3,phase:2,deny,status:463"
           SecRule XML:/* "@rx secret" "id:4,phase:2,deny,status:464"
           SecRule REQBODY_ERROR "!@eq 0" "id:5,phase:2,deny,status:465""#,
    );
    let run = |ct: &str, body: &[u8]| {
        let mut tx = e.transaction();
        tx.request_headers("POST", b"/", "HTTP/1.1", &[("Content-Type", ct)], "10.0.0.1");
        tx.request_body(body).map(|i| i.status)
    };
    assert_eq!(run("application/json", br#"{"a":{"b":"deep"}}"#), Some(461));
    assert_eq!(run("application/x-www-form-urlencoded", b"f=v"), Some(462));
    let mp = b"--B\r\nContent-Disposition: form-data; name=\"up\"; filename=\"s.php\"\r\n\r\n<?php\r\n--B--\r\n";
    assert_eq!(run("multipart/form-data; boundary=B", mp), Some(463));
    assert_eq!(run("text/xml", b"<a><b>top secret</b></a>"), Some(464));
    assert_eq!(run("application/json", b"{broken"), Some(465));
}

#[test]
fn response_phases() {
    let e = engine(
        r#"SecRule RESPONSE_STATUS "@streq 500" "id:1,phase:3,pass,msg:'server error'"
           SecRule RESPONSE_BODY "@contains ORA-00933" "id:2,phase:4,deny,status:502""#,
    );
    let mut tx = e.transaction();
    tx.request_headers("GET", b"/", "HTTP/1.1", &[("Host", "x")], "10.0.0.1");
    tx.request_body(b"");
    assert!(tx.response_headers(500, "HTTP/1.1", &[("Content-Type", "text/html")]).is_none());
    assert!(tx.wants_response_body());
    assert_eq!(tx.response_body(b"error ORA-00933: SQL command").map(|i| (i.status, i.phase)), Some((502, 4)));
    assert_eq!(tx.matched_rule_ids(), vec![1, 2]);
}

#[test]
fn unsupported_things_are_reported_with_location() {
    let cases = [
        ("SecFoo bar", "directive"),
        ("\n\nSecRule ARGS \"@nope x\" \"id:1\"", "operator"),
        ("SecRule NOPE \"@rx x\" \"id:1\"", "variable"),
        ("SecRule ARGS \"@rx x\" \"id:1,t:nope\"", "transformation"),
        ("SecRule ARGS \"@rx x\" \"id:1,frob\"", "action"),
        ("SecRule ARGS \"@rx x\" \"id:1,setvar:ip.x=1\"", "setvar collection"),
    ];
    for (text, what) in cases {
        match Engine::parse_str("bad.conf", text, &EngineConfig::default()) {
            Err(e @ LoadError::Unsupported { .. }) => {
                let s = e.to_string();
                assert!(s.contains("bad.conf:") && s.contains(what), "{s}");
            }
            other => panic!("{text}: expected unsupported error, got {other:?}"),
        }
    }
    let e = Engine::parse_str("bad.conf", "\n\nSecRule ARGS \"@nope x\" \"id:1\"", &EngineConfig::default()).err().map(|e| e.to_string());
    assert!(e.is_some_and(|s| s.starts_with("bad.conf:3:")));
}

#[test]
fn tx_key_regexes_select_interned_and_run_time_names() {
    // The interned names a `TX:/regex/` selects are found when the engine is built; names
    // built at run time are still tested against the regex.
    let e = engine(
        r#"SecAction "id:1,phase:1,pass,nolog,setvar:tx.score_a=1,setvar:tx.other=1,setvar:'tx.score_%{ARGS.k}=1'"
           SecRule TX:/^score_/|!TX:score_b "@eq 1" "id:2,phase:1,pass,nolog,setvar:tx.hits=+1,setvar:'tx.last=%{MATCHED_VAR_NAME}'"
           SecAction "id:3,phase:1,pass,nolog,setvar:tx.score_b=1""#,
    );
    let tx = get(&e, "/?k=dyn");
    assert_eq!(tx.tx_var("hits"), Some(&b"2"[..]));
    assert_eq!(tx.tx_var("last"), Some(&b"TX:score_dyn"[..]));
}

#[test]
fn match_buffers_do_not_leak_between_transactions() {
    // A finished transaction's buffers are reused by the next one: MATCHED_VAR must start
    // empty all the same (rule 1 runs before anything matched).
    let e = engine(
        r#"SecRule MATCHED_VAR "@rx ." "id:1,phase:1,deny,status:401"
           SecRule ARGS "@rx ." "id:2,phase:1,pass,nolog""#,
    );
    for _ in 0..3 {
        assert!(get(&e, "/?a=secret").intervention().is_none());
    }
}

#[test]
fn tx_names_built_at_run_time_share_slots_with_literal_names() {
    // `tx.%{ARGS.k}` expands to a name the rules also spell literally (`tx.known`, a
    // slot) or to one they never spell (kept by name); both are readable, listable by
    // a key regex, copied by `%{tx.x}` alone, and removable.
    let e = engine(
        r#"SecAction "id:1,phase:1,pass,nolog,setvar:'tx.%{ARGS.k}=7',setvar:'tx.%{ARGS.j}=8',setvar:tx.copy=%{tx.known},setvar:tx.sum=+%{tx.known}"
           SecRule TX:known "@eq 7" "id:2,phase:1,pass,nolog,setvar:tx.hits=+1"
           SecRule TX:/^dyn_/ "@eq 8" "id:3,phase:1,pass,nolog,setvar:tx.hits=+1,setvar:'tx.last=%{MATCHED_VAR_NAME}'"
           SecAction "id:4,phase:1,pass,nolog,setvar:'!tx.%{ARGS.j}'"
           SecRule &TX:dyn_x "@eq 0" "id:5,phase:1,deny,status:418""#,
    );
    let tx = get(&e, "/?k=known&j=dyn_x");
    assert_eq!(tx.tx_var("known"), Some(&b"7"[..]));
    assert_eq!(tx.tx_var("copy"), Some(&b"7"[..]));
    assert_eq!(tx.tx_var("sum"), Some(&b"7"[..]));
    assert_eq!(tx.tx_var("hits"), Some(&b"2"[..]));
    assert_eq!(tx.tx_var("last"), Some(&b"TX:dyn_x"[..]));
    assert_eq!(tx.tx_var("dyn_x"), None);
    assert_eq!(tx.intervention().map(|i| i.status), Some(418));
}

#[test]
fn multi_match_sees_every_intermediate_value_of_request_data() {
    // The middle step (decoded once, not yet lower-cased) is the only one that
    // equals "<X>"; memoized chains must still offer it to the operator, and
    // TX:0 must hold the value that matched.
    let e = engine(
        r#"SecRule ARGS:a "@rx ^<X>$" "id:1,phase:1,pass,multiMatch,capture,t:urlDecode,t:lowercase,setvar:'tx.got=%{tx.0}'"
           SecRule ARGS:a "@rx ^<x>$" "id:2,phase:1,pass,t:urlDecode,t:lowercase,setvar:tx.lower=1""#,
    );
    let tx = get(&e, "/?a=%3CX%3E");
    assert_eq!(tx.tx_var("got"), Some(&b"<X>"[..]));
    assert_eq!(tx.tx_var("lower"), Some(&b"1"[..]));
    let tx = get(&e, "/?a=%3Cy%3E");
    assert_eq!(tx.tx_var("got"), None);
}

#[test]
fn multi_match_links_are_gated_by_their_literals_at_every_step() {
    // A multiMatch link is skipped when none of its literals is in any value, but its
    // literal may be in the raw value only (a case-sensitive regex and a lower-cased chain, or
    // a literal that decoding removes) or only after a step (decoding): all must still match.
    let e = engine(
        r#"SecRule ARGS "@rx XyZzy" "id:1,phase:2,deny,status:403,multiMatch,t:lowercase"
           SecRule ARGS "@rx <script" "id:2,phase:2,deny,status:406,multiMatch,t:none,t:urlDecodeUni,t:lowercase"
           SecRule ARGS "@rx a%3Cb" "id:3,phase:2,deny,status:407,multiMatch,t:urlDecodeUni""#,
    );
    let status = |uri: &str| get(&e, uri).intervention().map(|i| i.status);
    assert_eq!(status("/?a=XyZzy"), Some(403));
    assert_eq!(status("/?a=a%253Cb"), Some(407));
    assert_eq!(status("/?a=xyzzy"), None);
    assert_eq!(status("/?a=%3Cscript"), Some(406));
    assert_eq!(status("/?a=%3CSCRIPT"), Some(406));
    assert_eq!(status("/?a=plain&b=other"), None);
}

#[test]
fn ctl_removes_rules_and_targets_by_tag() {
    // Tags are compared case-insensitively, like ModSecurity; a tag no rule carries removes nothing.
    let e = engine(
        r#"SecRule ARGS:off "@streq 1" "id:1,phase:1,pass,nolog,ctl:ruleRemoveByTag=Attack-SQLi"
           SecRule ARGS:skip "@streq 1" "id:2,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=attack-xss;ARGS:q"
           SecRule ARGS:none "@streq 1" "id:3,phase:1,pass,nolog,ctl:ruleRemoveByTag=no-such-tag"
           SecRule ARGS "@rx (?i)union\s+select" "id:10,phase:2,deny,status:403,t:urlDecodeUni,tag:'attack-sqli'"
           SecRule ARGS "@rx (?i)<script" "id:11,phase:2,deny,status:406,t:urlDecodeUni,t:lowercase,tag:'attack-xss'""#,
    );
    let status = |uri: &str| get(&e, uri).intervention().map(|i| i.status);
    assert_eq!(status("/?q=1%20UNION%20SELECT%202"), Some(403));
    assert_eq!(status("/?off=1&q=1%20UNION%20SELECT%202"), None);
    assert_eq!(status("/?none=1&q=1%20UNION%20SELECT%202"), Some(403));
    assert_eq!(status("/?q=%3CSCRIPT%3E"), Some(406));
    // Only ARGS:q is removed from the XSS rule: the same value in another argument still matches.
    assert_eq!(status("/?skip=1&q=%3CSCRIPT%3E"), None);
    assert_eq!(status("/?skip=1&r=%3CSCRIPT%3E"), Some(406));
}

#[test]
fn recycled_memo_tables_give_the_same_verdicts() {
    // Transactions hand their memo tables back to the engine; a later request with other
    // values (possibly at the same addresses) must not see stale results.
    let e = engine(r#"SecRule ARGS|REQUEST_HEADERS "@rx (?i)union\s+select" "id:1,phase:2,deny,status:403,t:urlDecodeUni,t:lowercase""#);
    for i in 0..50 {
        let attack = format!("/?q=1%20UnIoN%20SeLeCt%20{i}");
        let benign = format!("/?q=1%20UNION%20{i}%20SELECTED");
        assert_eq!(get(&e, &attack).intervention().map(|iv| iv.status), Some(403), "{attack}");
        assert!(get(&e, &benign).intervention().is_none(), "{benign}");
    }
}

#[test]
fn phrase_lists_match_after_transformation_in_any_case() {
    // One phrase more than the prefilter takes from a list (govgate_waf::prefilter::MAX_PHRASES).
    let long_list: Vec<String> = (0..=govgate_waf::prefilter::MAX_PHRASES).map(|i| format!("wordlist{i}")).collect();
    let e = engine(&format!(
        r#"SecRule ARGS "@pm /etc/passwd .htaccess" "id:1,phase:2,deny,status:403,t:urlDecodeUni,capture,setvar:tx.hit=%{{tx.0}}"
           SecRule ARGS "@pm a" "id:2,phase:2,deny,status:401"
           SecRule ARGS|!ARGS:skip "@rx (?i)union\s+select" "id:3,phase:2,deny,status:402"
           SecRule ARGS "@pm {}" "id:4,phase:2,deny,status:404""#,
        long_list.join(" ")
    ));
    // Phrase lists of up to MAX_PHRASES phrases join the shared prefilter with the regexes
    // (rules 1 to 3); a longer list runs its own automaton only (rule 4): all of CRS's ~6 000
    // phrases would make the prefilter's DFA ~45 MB larger per engine.
    assert_eq!(e.prefiltered_rules(), 3);
    // Present after the rule's transformation and in another case: matched, captured as written.
    let tx = get(&e, "/?f=%2FETC%2Fpasswd");
    assert_eq!(tx.intervention().map(|i| i.rule_id), Some(1));
    assert_eq!(tx.tx_var("hit"), Some(&b"/ETC/passwd"[..]));
    let tx = get(&e, "/?f=%2E%48TAccess");
    assert_eq!(tx.intervention().map(|i| i.rule_id), Some(1));
    assert_eq!(tx.tx_var("hit"), Some(&b".HTAccess"[..]));
    // Absent: no match; rule 2's one-letter phrase is found in any value that has the letter.
    assert_eq!(get(&e, "/?f=hello%20world").intervention(), None);
    assert_eq!(get(&e, "/?f=data").intervention().map(|i| i.rule_id), Some(2));
    assert_eq!(get(&e, "/?f=DAT").intervention().map(|i| i.rule_id), Some(2));
    // The long list matches as before, in any case.
    assert_eq!(get(&e, "/?f=xWordList64x").intervention().map(|i| i.rule_id), Some(4));
    assert_eq!(get(&e, "/?f=a%20union%20select").intervention().map(|i| i.rule_id), Some(2));
    assert_eq!(get(&e, "/?f=%20union%20select").intervention().map(|i| i.rule_id), Some(3));
}

#[test]
fn a_transaction_starts_with_none_of_the_previous_ones_tx_values() {
    // Transactions hand their TX store and memo tables back to the engine for reuse.
    let e = engine(
        r#"SecRule ARGS:user "@rx ^(\w+)$" "id:1,phase:1,pass,capture,setvar:tx.user=%{tx.1},setvar:'tx.seen_%{tx.1}=1'"
           SecRule &TX:user "@eq 1" "id:2,phase:2,deny,status:403""#,
    );
    let first = get(&e, "/?user=alice");
    assert_eq!(first.tx_var("user"), Some(&b"alice"[..]));
    assert_eq!(first.tx_var("seen_alice"), Some(&b"1"[..]));
    assert_eq!(first.intervention().map(|i| i.status), Some(403));
    drop(first);
    for _ in 0..3 {
        let next = get(&e, "/?other=1");
        assert_eq!(next.tx_var("user"), None);
        assert_eq!(next.tx_var("seen_alice"), None);
        assert_eq!(next.tx_var("1"), None);
        assert!(next.intervention().is_none());
    }
}

/// Links over the same targets share one union of their raw values' scans; a link whose
/// chain changes one of the values (here: decodes `%3c` to `<`) must still see the literal
/// that only its transformed value contains, whichever link computed the shared union first.
#[test]
fn shared_raw_scan_unions_do_not_hide_literals_a_chain_reveals() {
    for first_raw in [true, false] {
        let raw = r#"SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx <script" "id:1,phase:2,t:none,pass,log""#;
        let decoded = r#"SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx <script" "id:2,phase:2,t:none,t:urlDecodeUni,deny,status:403""#;
        let rules = if first_raw { format!("{raw}\n{decoded}") } else { format!("{decoded}\n{raw}") };
        let e = engine(&rules);
        assert!(e.prefiltered_rules() >= 2, "both links are prefiltered");
        let tx = get(&e, "/?q=%253cscript%253e&lang=zh");
        assert_eq!(tx.intervention().map(|i| (i.rule_id, i.status)), Some((2, 403)), "first_raw={first_raw}");
        assert!(!tx.matched_rule_ids().contains(&1), "the raw value holds no <script");
        // A literal in the raw value is found by both, through the shared union.
        let tx = get(&e, "/?q=<script>");
        let ids = tx.matched_rule_ids();
        assert!(ids.contains(&2) && (ids.contains(&1) || !first_raw), "{ids:?}");
        // And a clean request matches neither.
        assert!(get(&e, "/?q=hello&lang=zh").matched_rule_ids().is_empty());
    }
}

#[test]
fn matched_var_outlives_its_rule_and_logs_show_the_head_match() {
    // MATCHED_VAR(_NAME) are the last match of any earlier rule (MATCHED_VARS is per rule);
    // a logged rule's entry shows its head link's last match even after later links matched.
    let e = engine(
        r#"SecRule ARGS "@rx ^x" "id:1,phase:1,pass,log,msg:'m',chain"
           SecRule REQUEST_METHOD "@streq GET" "setvar:'tx.mv=%{MATCHED_VAR}'"
           SecRule REQUEST_METHOD "@streq POST" "id:2,phase:1,pass,nolog"
           SecRule MATCHED_VAR_NAME "@streq REQUEST_METHOD" "id:3,phase:1,pass,log,msg:'%{MATCHED_VAR}'"
           SecRule &TX:mv "@eq 1" "id:4,phase:1,pass,log,msg:'n',chain"
           SecRule TX:mv "@streq GET" "setvar:'tx.last=%{MATCHED_VAR_NAME}'""#,
    );
    let tx = get(&e, "/?a=x1&b=x2");
    let m = tx.matches();
    assert_eq!(m.iter().map(|m| m.rule_id).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!((m[0].matched_var.as_str(), m[0].data.as_str()), ("ARGS:b", "x2"));
    assert_eq!(tx.tx_var("mv"), Some(&b"GET"[..]));
    // Rule 3's msg is expanded after its own match: MATCHED_VAR is then the value it matched.
    assert_eq!((m[1].message.as_str(), m[1].matched_var.as_str()), ("REQUEST_METHOD", "MATCHED_VAR_NAME"));
    assert_eq!((m[2].matched_var.as_str(), m[2].data.as_str()), ("TX", "1"));
    assert_eq!(tx.tx_var("last"), Some(&b"TX:mv"[..]));
}
