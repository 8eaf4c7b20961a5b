//! The OpenID Foundation's "Config OP" certification plan: `oidcc-discovery-endpoint-verification`.
//! Beyond the suite's checks of the document's shape, every value advertised is exercised
//! (it works) and what the provider does is compared with what it advertises (nothing more,
//! nothing less): scopes, claims, signing algorithms, response types and modes, grant types,
//! client authentication methods, PKCE methods, prompts, locales, request objects.

mod common;

use common::*;
use std::collections::BTreeSet;

/// Clients signing their ID tokens with each of the other algorithms.
fn alg_clients() -> String {
    let hash = govgate_idp::crypto::sha256_hex(PORTAL_SECRET);
    ["RS256", "EdDSA"]
        .iter()
        .map(|alg| {
            format!(
                "\n[[client]]\nid = \"alg-{alg}\"\nsecret_hash = \"sha256:{hash}\"\nredirect_uris = [\"{REDIRECT}\"]\nfirst_party = true\nid_token_signed_response_alg = \"{alg}\"\n"
            )
        })
        .collect()
}

fn set(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array().unwrap_or_else(|| panic!("an array: {v}")).iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn strs(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every claim name of a JSON object (one level).
fn names(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let t = start_with(&alg_clients(), |_| {}).await;
    t.add_citizen("u1").await;
    let r = reqwest::get(t.url("/.well-known/openid-configuration")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let d: serde_json::Value = r.json().await.unwrap();

    // The document itself (OIDC Discovery §3, §4.3).
    assert_eq!(d["issuer"], t.issuer, "the issuer is the URL the document was fetched under");
    for (k, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/logout"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
    ] {
        assert_eq!(d[k], t.url(path), "{k}");
    }
    assert!(d.get("registration_endpoint").is_none(), "no dynamic registration, so none advertised");
    assert_eq!(set(&d["subject_types_supported"]), strs(&["public"]));
    assert_eq!(set(&d["response_types_supported"]), strs(&["code"]));
    assert_eq!(set(&d["response_modes_supported"]), strs(&["query", "form_post"]));
    assert_eq!(set(&d["grant_types_supported"]), strs(&["authorization_code", "refresh_token", "client_credentials"]));
    assert_eq!(set(&d["code_challenge_methods_supported"]), strs(&["S256"]));
    assert_eq!(set(&d["prompt_values_supported"]), strs(&["none", "login", "consent"]));
    assert_eq!(set(&d["display_values_supported"]), strs(&["page", "popup"]));
    assert_eq!(set(&d["ui_locales_supported"]), strs(&["zh-CN", "en"]));
    assert_eq!(set(&d["claim_types_supported"]), strs(&["normal"]));
    assert_eq!((d["claims_parameter_supported"].as_bool(), d["request_parameter_supported"].as_bool()), (Some(true), Some(true)));
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert_eq!(set(&d["request_object_signing_alg_values_supported"]), strs(&["none"]));
    assert!(set(&d["scopes_supported"]).contains("openid"));

    // Signing algorithms: RS256 is offered (the suite requires it), ES256 is the default, and
    // each advertised algorithm has a published key and signs ID tokens for a client asking it.
    let algs = set(&d["id_token_signing_alg_values_supported"]);
    assert_eq!(algs, strs(&["ES256", "EdDSA", "RS256"]));
    assert_eq!(d["id_token_signing_alg_values_supported"][0], "ES256");
    let jwks: serde_json::Value = reqwest::get(t.url("/jwks")).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.iter().map(|k| k["alg"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>(), algs, "a key per algorithm");
    for k in keys {
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "no private part in the JWKS: {k}");
        }
    }
    for alg in &algs {
        let client = if alg == "ES256" { "portal".to_string() } else { format!("alg-{alg}") };
        let mut b = Browser::new();
        let page = b.get(&authorize_url(&t, &client, REDIRECT, None, &[])).await;
        let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
        let code = query_of(r.location.as_deref().unwrap())["code"].clone();
        let (s, tokens, _) =
            token_as(&t, &client, PORTAL_SECRET, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
                .await;
        assert_eq!(s, 200, "{tokens}");
        let id = tokens["id_token"].as_str().unwrap();
        assert_eq!(jwt_header(id)["alg"], alg.as_str());
        assert_eq!(verify_jwt(&t, id, &client).await["aud"], client.as_str());
    }

    // Scopes: each advertised scope is granted to a client registered for it; an unknown one is
    // dropped rather than granted.
    let scopes = set(&d["scopes_supported"]);
    assert_eq!(scopes, strs(&["openid", "profile", "email", "address", "phone", "gov_identity", "roles"]));
    let all = scopes.iter().cloned().collect::<Vec<_>>().join(" ") + " made-up";
    let mut b = Browser::new();
    let q = authorize_code(&mut b, &t, "u1", &[("scope", &all)]).await;
    let tokens = redeem(&t, &q["code"]).await;
    let granted: BTreeSet<String> = tokens["scope"].as_str().unwrap().split(' ').map(String::from).collect();
    assert_eq!(granted, scopes);

    // Claims: what the provider releases (ID token, UserInfo for each kind of account) is
    // exactly what it advertises.
    let mut released = names(&verify_jwt(&t, tokens["id_token"].as_str().unwrap(), "portal").await);
    released.extend(names(&userinfo(&t, tokens["access_token"].as_str().unwrap()).await.1));
    for (username, kind, extra) in [
        ("staff1", govgate_idp::users::AccountKind::Staff, vec!["admin".to_string()]),
        ("company1", govgate_idp::users::AccountKind::LegalPerson, vec![]),
    ] {
        let nu = govgate_idp::users::NewUser {
            username: username.into(),
            kind: Some(kind),
            display_name: "某某".into(),
            password: PASSWORD.into(),
            uscc: (kind == govgate_idp::users::AccountKind::LegalPerson).then(|| "91350100M000100Y43".into()),
            roles: extra,
            ..Default::default()
        };
        govgate_idp::admin::add_user(t.idp.store(), "test", &nu, govgate_idp::password::Argon2Params::TEST).await.unwrap();
        let q = authorize_code(&mut Browser::new(), &t, username, &[("scope", &all)]).await;
        let tokens = redeem(&t, &q["code"]).await;
        released.extend(names(&userinfo(&t, tokens["access_token"].as_str().unwrap()).await.1));
    }
    assert_eq!(released, set(&d["claims_supported"]), "claims released vs claims advertised");

    // Response types and modes: `code` in the query and as form_post; nothing else.
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("response_mode", "form_post")])).await;
    assert!(p.status == 200 && p.body.contains(r#"method="post""#) && p.body.contains(r#"name="code""#), "{}", p.body);
    for (k, v, err) in [
        ("response_type", "code id_token", "unsupported_response_type"),
        ("response_type", "token", "unsupported_response_type"),
        ("response_mode", "fragment", "invalid_request"),
    ] {
        let mut u = authorize_url(&t, "portal", REDIRECT, None, &[(k, v)]);
        if k == "response_type" {
            u = u.replace("response_type=code&", "");
        }
        let p = b.get(&u).await;
        assert_eq!(query_of(p.location.as_deref().unwrap())["error"], err, "{k}={v}");
    }

    // PKCE: S256 only.
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("code_challenge", "abc"), ("code_challenge_method", "plain")])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_request");

    // Grant types: the advertised ones work (authorization_code above), others are refused.
    let (s, _, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(s, 200);
    let (s, _, _) = token_basic(&t, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200);
    let (s, body, _) = token_basic(&t, &[("grant_type", "password"), ("username", "u1"), ("password", PASSWORD)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("unsupported_grant_type")));

    // Client authentication: basic (portal, above), post and none work; private_key_jwt is
    // exercised in security.rs (private_key_jwt_client_authentication).
    assert_eq!(
        set(&d["token_endpoint_auth_methods_supported"]),
        strs(&["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
    );
    let (s, _) = token_form(&t, &[("grant_type", "client_credentials"), ("client_id", "poster"), ("client_secret", POST_SECRET)]).await;
    assert_eq!(s, 200, "client_secret_post");
    let (v, c) = pkce();
    let mut spa = Browser::new();
    let page = spa.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c), &[])).await;
    let consent = submit_login(&mut spa, &t, &page, "u1", PASSWORD).await;
    assert!(consent.body.contains("decision"), "a third-party client gets the consent page");
    let allow = [("req", hidden(&consent.body, "req")), ("csrf", hidden(&consent.body, "csrf")), ("decision", "allow".into())];
    let allow: Vec<(&str, &str)> = allow.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = spa.post(&t.url("/consent"), &allow).await;
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let (s, _) = token_form(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("client_id", "spa"),
            ("code_verifier", &v),
        ],
    )
    .await;
    assert_eq!(s, 200, "none (public client with PKCE)");

    // Prompts: none and login are the Basic OP modules; consent asks again after consent.
    let (_, c) = pkce();
    let p = spa.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c), &[])).await;
    assert_eq!(p.status, 303, "consent given once is remembered");
    let p = spa.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c), &[("prompt", "consent")])).await;
    assert!(p.status == 200 && p.body.contains("decision"), "prompt=consent asks again");

    // Public subject identifiers: the same `sub` for every client.
    let (_, poster_tokens) = {
        let mut b = Browser::new();
        let page = b.get(&authorize_url(&t, "poster", REDIRECT, None, &[])).await;
        let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
        let code = query_of(r.location.as_deref().unwrap())["code"].clone();
        token_form(
            &t,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "poster"),
                ("client_secret", POST_SECRET),
            ],
        )
        .await
    };
    let portal_sub = verify_jwt(&t, tokens["id_token"].as_str().unwrap(), "portal").await["sub"].clone();
    assert_eq!(verify_jwt(&t, poster_tokens["id_token"].as_str().unwrap(), "poster").await["sub"], portal_sub);

    // Logout support as advertised (exercised in certification_logout.rs).
    for k in ["backchannel_logout_supported", "backchannel_logout_session_supported", "frontchannel_logout_supported"] {
        assert_eq!(d[k], true, "{k}");
    }
    assert_eq!(set(&d["acr_values_supported"]), strs(&["pwd", "otp", "cert"]));
}
