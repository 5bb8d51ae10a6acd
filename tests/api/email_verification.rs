//! E-mail verification: the link in the welcome mail, resending, a changed
//! address, expiry, and logins that require a verified address.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use user_api::config::Settings;

use crate::helpers::{PASSWORD, TestApp, error_code};
use crate::mailbox::{mail_to_files, wait_for};
use crate::on_both_databases;

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/api/v1/auth/verify-email", json!({ "token": token }))
        .await
}

async fn me(app: &TestApp, token: &str) -> Value {
    let response = app.get("/api/v1/users/me", token).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn welcome_token(app: &TestApp, username: &str) -> String {
    let mails = wait_for(app, &format!("{username}@example.com"), "Welcome", 1).await;
    mails[0].token(app, "verify-email")
}

async fn assert_invalid_token(response: reqwest::Response) {
    let (status, error) = error_code(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_token"))
    );
}

on_both_databases! {
    configure mail_to_files;

    async fn the_welcome_mail_links_to_a_verification_that_works_once(app) {
        let alice = app.user("alice").await;
        let mails = wait_for(&app, "alice@example.com", "Welcome", 1).await;
        let mail = &mails[0];
        assert!(mail.subject.contains("confirm your e-mail address"), "{}", mail.subject);
        assert!(mail.content_type.starts_with("multipart/alternative"), "{}", mail.content_type);
        assert!(mail.text.contains("Hello alice") && mail.html.contains("Hello alice"));
        let token = mail.token(&app, "verify-email");
        assert_eq!(token.len(), 64, "256 bits in hex");
        assert_eq!(me(&app, &alice.token).await["email_verified"], false);

        assert_eq!(verify(&app, &token).await.status(), 204);
        assert_eq!(me(&app, &alice.token).await["email_verified"], true, "the cached user was invalidated");
        let user = app.get(&format!("/api/v1/users/{}", alice.id), &alice.token).await;
        assert_eq!(user.json::<Value>().await.unwrap()["email_verified"], true);
        assert_invalid_token(verify(&app, &token).await).await;
    }

    async fn unknown_and_malformed_verification_tokens_answer_400_and_a_missing_one_422(app) {
        app.user("alice").await;
        let token = welcome_token(&app, "alice").await;
        let mut unknown = token.clone();
        unknown.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
        assert_invalid_token(verify(&app, &unknown).await).await;
        assert_invalid_token(verify(&app, "not-a-token").await).await;
        assert_invalid_token(verify(&app, &token.to_uppercase()).await).await;
        let (status, error) = error_code(app.post("/api/v1/auth/verify-email", json!({})).await).await;
        assert_eq!((status, error["details"][0]["field"].as_str()), (422, Some("token")));
        // None of these spent the real one.
        assert_eq!(verify(&app, &token).await.status(), 204);
    }

    async fn a_resent_verification_mail_spends_the_older_link(app) {
        let alice = app.user("alice").await;
        let first = welcome_token(&app, "alice").await;
        let resend = app
            .request(Method::POST, "/api/v1/auth/verify-email/resend", Some(&alice.token), None)
            .await;
        assert_eq!(resend.status(), 202);
        let mails = wait_for(&app, "alice@example.com", "Confirm your e-mail address", 1).await;
        let second = mails[0].token(&app, "verify-email");
        assert_ne!(first, second);
        assert!(mails[0].text.contains("Links mailed earlier no longer work"));
        assert_invalid_token(verify(&app, &first).await).await;
        assert_eq!(verify(&app, &second).await.status(), 204);
    }

    async fn resend_needs_a_bearer_token_and_sends_nothing_once_verified(app) {
        let response = app.request(Method::POST, "/api/v1/auth/verify-email/resend", None, None).await;
        assert_eq!(error_code(response).await.0, 401);
        let alice = app.user("alice").await;
        let token = welcome_token(&app, "alice").await;
        assert_eq!(verify(&app, &token).await.status(), 204);
        let resend = app
            .request(Method::POST, "/api/v1/auth/verify-email/resend", Some(&alice.token), None)
            .await;
        assert_eq!(resend.status(), 202);
        // A later mail to someone else arrives; none went to alice meanwhile.
        app.user("bob").await;
        welcome_token(&app, "bob").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let to_alice = crate::mailbox::mails(&app).into_iter().filter(|mail| mail.to == "alice@example.com").count();
        assert_eq!(to_alice, 1, "only the welcome mail");
    }

    async fn a_changed_address_is_unverified_again_gets_a_link_and_the_old_one_a_notice(app) {
        let alice = app.user("alice").await;
        let welcome = welcome_token(&app, "alice").await;
        assert_eq!(verify(&app, &welcome).await.status(), 204);

        let response = app
            .put(&format!("/api/v1/users/{}", alice.id), &alice.token, json!({"email": "new@example.com"}))
            .await;
        assert_eq!(response.status(), 200);
        let updated: Value = response.json().await.unwrap();
        assert_eq!((updated["email"].as_str(), updated["email_verified"].as_bool()), (Some("new@example.com"), Some(false)));
        assert_eq!(me(&app, &alice.token).await["email_verified"], false);

        let notice = wait_for(&app, "alice@example.com", "was changed", 1).await;
        assert!(notice[0].text.contains("Hello alice") && !notice[0].html.is_empty());
        let mails = wait_for(&app, "new@example.com", "Confirm your e-mail address", 1).await;
        let token = mails[0].token(&app, "verify-email");
        assert_eq!(verify(&app, &token).await.status(), 204);
        assert_eq!(me(&app, &alice.token).await["email_verified"], true);

        // Setting the same address again changes nothing and sends nothing.
        let same = app
            .put(&format!("/api/v1/users/{}", alice.id), &alice.token, json!({"email": "new@example.com"}))
            .await;
        assert_eq!(same.json::<Value>().await.unwrap()["email_verified"], true);
    }

    async fn a_link_to_an_address_the_account_no_longer_has_verifies_nothing(app) {
        let alice = app.user("alice").await;
        let welcome = welcome_token(&app, "alice").await;
        let response = app
            .put(&format!("/api/v1/users/{}", alice.id), &alice.token, json!({"email": "new@example.com"}))
            .await;
        assert_eq!(response.status(), 200);
        wait_for(&app, "new@example.com", "Confirm your e-mail address", 1).await;
        assert_invalid_token(verify(&app, &welcome).await).await;
        assert_eq!(me(&app, &alice.token).await["email_verified"], false);
    }
}

mod expiry {
    use super::*;

    fn short_links(settings: &mut Settings) {
        mail_to_files(settings);
        settings.auth.verify_ttl_seconds = 3;
    }

    on_both_databases! {
        configure short_links;

        async fn a_verification_link_expires_after_verify_ttl_seconds(app) {
            let registered = Instant::now();
            app.user("alice").await;
            let mails = wait_for(&app, "alice@example.com", "Welcome", 1).await;
            let token = mails[0].token(&app, "verify-email");
            assert!(mails[0].text.contains("for 3 seconds"), "{}", mails[0].text);
            tokio::time::sleep(Duration::from_millis(3200).saturating_sub(registered.elapsed())).await;
            assert_invalid_token(verify(&app, &token).await).await;
        }
    }
}

mod required {
    use super::*;

    fn verified_only(settings: &mut Settings) {
        mail_to_files(settings);
        settings.auth.require_verified_email = true;
    }

    on_both_databases! {
        configure verified_only;

        async fn with_require_verified_email_login_answers_403_until_the_address_is_verified(app) {
            assert_eq!(app.register("alice").await.status(), 201);
            let (status, error) = error_code(app.login("alice", "a wrong password").await).await;
            assert_eq!((status, error["code"].as_str()), (401, Some("invalid_credentials")), "a wrong password tells nothing");
            let (status, error) = error_code(app.login("alice", PASSWORD).await).await;
            assert_eq!((status, error["code"].as_str()), (403, Some("email_not_verified")));
            let token = welcome_token(&app, "alice").await;
            assert_eq!(verify(&app, &token).await.status(), 204);
            assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
        }
    }
}
