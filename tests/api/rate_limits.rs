//! Rate limits: shared by every instance on one Redis, per client IP, with
//! the contract's headers, a stricter login limit, and a fallback.

use reqwest::{Method, Response};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, error_code, spawn_app_with};
use crate::redis_server::RedisServer;

async fn app_with_limit(
    requests: u32,
    configure: impl FnOnce(&mut user_api::config::Settings),
) -> TestApp {
    spawn_app_with(Backend::Sqlite, |settings| {
        settings.rate_limit.requests = requests;
        settings.rate_limit.window_seconds = 60;
        configure(settings);
    })
    .await
}

async fn hit(app: &TestApp, forwarded_for: Option<&str>) -> Response {
    let mut request = app.client.get(app.url("/api/v1/users/me"));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

fn header(response: &Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_let_exactly_the_limit_through() {
    let first = app_with_limit(10, |_| {}).await;
    let prefix = first.settings.redis.key_prefix.clone();
    let second = app_with_limit(10, |settings| settings.redis.key_prefix = prefix).await;
    let mut passed = 0;
    for round in 0..15 {
        for app in [&first, &second] {
            let status = hit(app, None).await.status();
            assert!(status == 401 || status == 429, "round {round}: {status}");
            passed += usize::from(status != 429);
        }
    }
    assert_eq!(passed, 10, "10 of 30 requests across two instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_responses_carry_the_ratelimit_headers_and_429_says_when_to_retry() {
    let app = app_with_limit(3, |_| {}).await;
    for remaining in ["2", "1", "0"] {
        let response = hit(&app, None).await;
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        assert_eq!(header(&response, "ratelimit-remaining"), remaining);
        assert!(header(&response, "ratelimit-reset").parse::<u64>().unwrap() <= 60);
    }
    let response = hit(&app, None).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after").parse().unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "one request frees up every 20 s: {retry_after}"
    );
    assert_eq!(header(&response, "ratelimit-remaining"), "0");
    assert_eq!(
        header(&response, "ratelimit-reset"),
        retry_after.to_string(),
        "a refusal's reset is when a request is allowed again"
    );
    let (_, error) = error_code(response).await;
    assert_eq!(error["code"], "rate_limited");
    let health = app.request(Method::GET, "/health/live", None, None).await;
    assert_eq!(health.status(), 200, "only /api is limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = app_with_limit(3, |_| {}).await;
    for n in 0..3 {
        assert_eq!(
            hit(&app, Some(&format!("203.0.113.{n}"))).await.status(),
            401
        );
    }
    assert_eq!(hit(&app, Some("203.0.113.99")).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = app_with_limit(2, |settings| {
        settings.rate_limit.trusted_proxies = "127.0.0.1/32".into()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(hit(&app, Some("198.51.100.1")).await.status(), 401);
    }
    assert_eq!(hit(&app, Some("198.51.100.1")).await.status(), 429);
    // The client prepends a fake entry; the proxy appended the real one.
    assert_eq!(
        hit(&app, Some("198.51.100.2, 198.51.100.1")).await.status(),
        429
    );
    assert_eq!(hit(&app, Some("198.51.100.2")).await.status(), 401);
    // IPv6 clients in one /64 share a limit.
    assert_eq!(hit(&app, Some("2001:db8:1:2::1")).await.status(), 401);
    assert_eq!(hit(&app, Some("2001:db8:1:2::ffff")).await.status(), 401);
    assert_eq!(hit(&app, Some("2001:db8:1:2:3::9")).await.status(), 429);
    assert_eq!(hit(&app, Some("2001:db8:1:3::1")).await.status(), 401);
}

async fn login_from(app: &TestApp, client: &str, username: &str) -> Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"username": username, "password": "not the password"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_limited_per_client_and_per_account() {
    let app = app_with_limit(1000, |settings| {
        settings.rate_limit.login_requests = 3;
        settings.rate_limit.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    app.register("alice").await;
    // Per client: one address trying many accounts.
    for name in ["a1", "a2", "a3"] {
        let response = login_from(&app, "198.51.100.1", name).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            header(&response, "ratelimit-limit"),
            "3",
            "the login limit's headers"
        );
    }
    assert_eq!(login_from(&app, "198.51.100.1", "a4").await.status(), 429);
    // Per account: many addresses trying one account.
    for n in 0..3 {
        assert_eq!(
            login_from(&app, &format!("198.51.100.{}", 10 + n), "alice")
                .await
                .status(),
            401
        );
    }
    let response = login_from(&app, "198.51.100.50", "ALICE").await;
    assert_eq!(response.status(), 429);
    assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    let right_password = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.60")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        right_password.status(),
        429,
        "even the right password waits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_gives_the_same_wait_in_retry_after_and_ratelimit_reset() {
    let app = app_with_limit(1000, |settings| {
        settings.rate_limit.login_requests = 10;
        settings.rate_limit.login_window_seconds = 60;
        settings.rate_limit.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    for n in 0..10 {
        let response = login_from(&app, "198.51.100.7", &format!("nobody{n}")).await;
        assert_eq!(response.status(), 401);
    }
    let refused = login_from(&app, "198.51.100.7", "nobody10").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!(
        (1..=6).contains(&retry_after),
        "one login frees up every 6 s: {retry_after}"
    );
    assert_eq!(header(&refused, "ratelimit-reset"), retry_after.to_string());
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflights_are_not_counted() {
    let app = app_with_limit(2, |_| {}).await;
    for _ in 0..5 {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/users/me"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(hit(&app, None).await.status(), 401);
    assert_eq!(hit(&app, None).await.status(), 401);
    assert_eq!(hit(&app, None).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_instance_limit_holds_and_login_fails_closed() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let app = app_with_limit(4, |settings| settings.redis.url = SecretString::from(url)).await;
    assert_eq!(hit(&app, None).await.status(), 401);
    redis.stop();
    // The in-process tier still counts: 4 per window on this instance.
    assert_eq!(hit(&app, None).await.status(), 401, "counted, not failed");
    assert_eq!(hit(&app, None).await.status(), 401);
    let (status, error) = error_code(app.login("alice", PASSWORD).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (503, Some("unavailable")),
        "login fails closed"
    );
    for _ in 0..2 {
        let response = hit(&app, None).await;
        assert_eq!(response.status(), 429);
        assert_eq!(header(&response, "ratelimit-limit"), "4");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_one_by_one_and_every_instance_sees_them_at_once() {
    let app = app_with_limit(1000, |settings| settings.rate_limit.window_seconds = 3600).await;
    for expected in (900..1000).rev() {
        let response = hit(&app, None).await;
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            expected.to_string()
        );
    }
    let prefix = app.settings.redis.key_prefix.clone();
    let other = app_with_limit(1000, |settings| {
        settings.rate_limit.window_seconds = 3600;
        settings.redis.key_prefix = prefix;
    })
    .await;
    let response = hit(&other, None).await;
    assert_eq!(header(&response, "ratelimit-remaining"), "899");
}

/// `n` requests at once from one client: how many passed the limit.
async fn burst(app: &TestApp, n: usize) -> usize {
    let responses = futures_util::future::join_all((0..n).map(|_| hit(app, None))).await;
    responses
        .iter()
        .map(|response| {
            let status = response.status();
            assert!(status == 401 || status == 429, "{status}");
            usize::from(status == 401)
        })
        .sum()
}

async fn app_with_burst_limit(limit: u32, prefix: Option<String>) -> TestApp {
    app_with_limit(limit, |settings| {
        // Long enough that nothing refills while the burst runs.
        settings.rate_limit.window_seconds = 3600;
        if let Some(prefix) = prefix {
            settings.redis.key_prefix = prefix;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_requests_let_exactly_the_limit_through() {
    let app = app_with_burst_limit(300, None).await;
    assert_eq!(burst(&app, 500).await, 300);
    let small = app_with_burst_limit(300, None).await;
    assert_eq!(
        burst(&small, 120).await,
        120,
        "fewer than the limit: all of them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_requests_on_two_instances_let_exactly_the_limit_through() {
    let first = app_with_burst_limit(300, None).await;
    let second = app_with_burst_limit(300, Some(first.settings.redis.key_prefix.clone())).await;
    let (a, b) = tokio::join!(burst(&first, 350), burst(&second, 150));
    assert_eq!(a + b, 300, "{a} + {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_costs_one_limiter_round_trip_and_no_more() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = app_with_limit(1_000_000, |settings| {
        settings.redis.url = SecretString::from(url);
    })
    .await;
    burst(&app, 8).await;
    let mut connection = app.redis_connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut connection)
        .await
        .unwrap();
    for _ in 0..10 {
        assert_eq!(burst(&app, 64).await, 64);
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    let scripts: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .expect("INFO commandstats has an EVALSHA line")
        .parse()
        .unwrap();
    assert_eq!(scripts, 640, "limiter scripts for 640 requests");
}

async fn register_from(app: &TestApp, client: &str, username: &str) -> Response {
    app.client
        .post(app.url("/api/v1/auth/register"))
        .header("x-forwarded-for", client)
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_have_a_limit_of_their_own_per_client() {
    let app = app_with_limit(1000, |settings| {
        settings.rate_limit.register_requests = 3;
        settings.rate_limit.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    for (n, name) in ["reg1", "reg2", "reg1"].into_iter().enumerate() {
        let response = register_from(&app, "198.51.100.1", name).await;
        assert!([201, 409].contains(&response.status().as_u16()), "{name}");
        assert_eq!(
            header(&response, "ratelimit-limit"),
            "3",
            "the registration limit's headers"
        );
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            (2 - n).to_string()
        );
    }
    let response = register_from(&app, "198.51.100.1", "reg3").await;
    assert_eq!(response.status(), 429);
    assert!(header(&response, "retry-after").parse::<u64>().unwrap() >= 1);
    let (_, error) = error_code(response).await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(
        register_from(&app, "198.51.100.2", "reg3").await.status(),
        201,
        "another client"
    );
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({"username": "reg1", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "logins are not registrations");
}

async fn change_password_from(app: &TestApp, client: &str, token: &str) -> Response {
    app.client
        .put(app.url("/api/v1/auth/password"))
        .header("x-forwarded-for", client)
        .bearer_auth(token)
        .json(&json!({"current_password": "not the password", "new_password": "a new password"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_count_against_the_login_limits() {
    let app = app_with_limit(1000, |settings| {
        settings.rate_limit.login_requests = 4;
        settings.rate_limit.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    let alice = app.user("alice").await; // one login: 1 of 4 for her account
    for _ in 0..3 {
        let response = change_password_from(&app, "198.51.100.1", &alice.token).await;
        assert_eq!(response.status(), 401);
    }
    let response = change_password_from(&app, "198.51.100.1", &alice.token).await;
    assert_eq!(
        response.status(),
        429,
        "a stolen token guesses no faster than a login"
    );
    let (_, error) = error_code(response).await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(
        login_from(&app, "198.51.100.2", "alice").await.status(),
        429,
        "the guesses counted against her account"
    );
    // The client made three guesses that counted. On one Redis the
    // refused one did not (both counters move in one script): one login
    // attempt is left to it. On a cluster the two counters are checked one
    // after the other (README, "Redis keys"), so the refused guess cost
    // the client its last attempt.
    let left = if app.on_redis_cluster() {
        [429, 429]
    } else {
        [401, 429]
    };
    let others = [
        login_from(&app, "198.51.100.1", "someone-else")
            .await
            .status(),
        login_from(&app, "198.51.100.1", "someone-else")
            .await
            .status(),
    ];
    assert_eq!(others, left, "and against the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_account_login_limit_counts_the_account_whichever_name_is_tried() {
    let app = app_with_limit(1000, |settings| {
        settings.rate_limit.login_requests = 3;
        settings.rate_limit.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    app.register("carol").await;
    for (n, name) in ["carol", "carol@example.com", "CAROL@Example.com"]
        .into_iter()
        .enumerate()
    {
        let client = format!("198.51.100.{}", 10 + n);
        assert_eq!(
            login_from(&app, &client, name).await.status(),
            401,
            "{name}"
        );
    }
    assert_eq!(
        login_from(&app, "198.51.100.20", "Carol").await.status(),
        429
    );
    // Unknown names are counted by the name as normalised.
    for (n, name) in ["nobody", "NoBody", " nobody "].into_iter().enumerate() {
        let client = format!("198.51.100.{}", 30 + n);
        assert_eq!(
            login_from(&app, &client, name).await.status(),
            401,
            "{name}"
        );
    }
    assert_eq!(
        login_from(&app, "198.51.100.40", "NOBODY").await.status(),
        429
    );
}
