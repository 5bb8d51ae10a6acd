//! What an attack on the running service from outside found: security
//! headers, the listen backlog, slow bodies, connections per address,
//! duplicate addresses by IDNA, readable validation messages, canonical ids.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, PASSWORD, TestApp, error_code, spawn_app, spawn_app_with};

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_pages_a_policy() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let answers = [
        (
            "user",
            app.get(&format!("/api/v1/users/{}", alice.id), &alice.token)
                .await,
        ),
        (
            "api error",
            app.get("/api/v1/users/me", "not-a-token").await,
        ),
        (
            "unknown path",
            app.request(Method::GET, "/nowhere", None, None).await,
        ),
        (
            "health",
            app.request(Method::GET, "/health/live", None, None).await,
        ),
        (
            "metrics",
            app.request(Method::GET, "/metrics", None, None).await,
        ),
        (
            "openapi",
            app.request(Method::GET, "/openapi.json", None, None).await,
        ),
        ("docs", app.request(Method::GET, "/docs/", None, None).await),
        ("login", app.login("alice", PASSWORD).await),
    ];
    for (what, response) in &answers {
        assert_eq!(
            header(response, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            header(response, "referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
    }
    let [(_, user), (_, api_error), .., (_, docs), (_, login)] = &answers;
    assert_eq!(header(login, "cache-control"), Some("no-store"), "tokens");
    assert_eq!(
        header(api_error, "cache-control"),
        Some("no-store"),
        "API answers"
    );
    assert_eq!(
        header(user, "cache-control"),
        Some("private, no-cache"),
        "a handler's own caching header stays"
    );
    assert!(
        header(docs, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let policy = header(docs, "content-security-policy").expect("a policy on the page");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        !policy.contains("unsafe-eval") && !policy.contains("script-src 'self' 'unsafe-inline'")
    );
    assert_eq!(header(docs, "x-frame-options"), Some("DENY"));
}

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The backlog of the socket listening on `port`, as `ss` reports it
/// (Send-Q of a listening socket), capped by net.core.somaxconn.
fn listen_backlog(port: u16) -> u32 {
    let output = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no listener on {port}: {text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_backlog_comes_from_the_configuration_and_is_at_least_1024() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(listen_backlog(port_of(&app)) >= 1024, "the default");
    let configured =
        spawn_app_with(Backend::Sqlite, |settings| settings.server.backlog = 1500).await;
    assert_eq!(listen_backlog(port_of(&configured)), 1500);
}

fn socket_address(app: &TestApp) -> SocketAddr {
    format!("127.0.0.1:{}", port_of(app)).parse().unwrap()
}

/// A connection from `source` (any address of 127.0.0.0/8).
async fn connect_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(socket_address(app)).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut reply = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut reply))
        .await
        .expect("the server closes the connection in time")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

const SLOW_BODIES: [&str; 2] = [
    "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
     Content-Length: 60000\r\n\r\n{\"username\"",
    "POST /api/v1/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
     Transfer-Encoding: chunked\r\n\r\n5\r\n{\"use\r\n",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.server.body_timeout_ms = 1000
    })
    .await;
    for head in SLOW_BODIES {
        let mut stream = connect_from(&app, "127.0.0.1").await;
        stream.write_all(head.as_bytes()).await.unwrap();
        let reply = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{head}: {reply}");
        assert!(reply.contains(r#""code":"request_timeout""#), "{reply}");
    }
    // A body that arrives in time is read as before.
    let response = app.login("nobody", PASSWORD).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_connections_and_other_addresses_are_served() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.server.max_connections_per_client = 3;
        settings.server.body_timeout_ms = 2000;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(&app, "127.0.0.2").await;
        stream.write_all(SLOW_BODIES[0].as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let live = "GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut fourth = connect_from(&app, "127.0.0.2").await;
    fourth.write_all(live.as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut fourth, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 429"), "{reply}");
    assert!(reply.contains(r#""code":"rate_limited""#), "{reply}");

    let mut other = connect_from(&app, "127.0.0.3").await;
    other.write_all(live.as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut other, Duration::from_secs(3)).await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "another address: {reply}"
    );

    for mut stream in held {
        let reply = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from(&app, "127.0.0.2").await;
    again.write_all(live.as_bytes()).await.unwrap();
    let reply = read_until_closed(&mut again, Duration::from_secs(3)).await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "closed connections free their place: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_with_an_internationalised_domain_is_one_account_in_either_form() {
    let app = spawn_app(Backend::Sqlite).await;
    let register = |username: &str, email: &str| {
        app.post(
            "/api/v1/auth/register",
            json!({"username": username, "email": email, "password": PASSWORD}),
        )
    };
    let response = register("bucher1", "User@Bücher.example").await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "user@xn--bcher-kva.example");
    let (status, error) = error_code(register("bucher2", "user@xn--bcher-kva.example").await).await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    let token = app.login_token("user@bücher.example", PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/users/me", &token).await.status(),
        200,
        "a login by the address in its other form"
    );
}

async fn messages_of(response: reqwest::Response) -> Vec<(String, String)> {
    let (status, error) = error_code(response).await;
    assert_eq!(status, 422);
    error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().into(),
                d["message"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_messages_say_what_to_send_and_never_name_internal_types() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    let login_with = async |body: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    };
    let cases = [
        (
            login_with(r#""alice""#).await,
            "body",
            "must be a JSON object",
        ),
        (
            login_with(r#"{"username": 5, "password": "x"}"#).await,
            "username",
            "must be a string",
        ),
        (app.get("/api/v1/users/abc", &alice.token).await, "path", ""),
    ];
    for (response, field, expected) in cases {
        let details = messages_of(response).await;
        let (got_field, message) = &details[0];
        assert_eq!(got_field, field, "{details:?}");
        assert!(message.contains(expected), "{message}");
        for internal in ["struct", "LoginAttempt", "i64", "u32", "Option"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_canonical_decimal_form_of_an_id_names_a_user() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.user("alice").await;
    assert_eq!(alice.id, 1);
    assert_eq!(app.get("/api/v1/users/1", &alice.token).await.status(), 200);
    for path in [
        "/api/v1/users/01",
        "/api/v1/users/+1",
        "/api/v1/users/%201",
        "/api/v1/users/1%20",
    ] {
        let details = messages_of(app.get(path, &alice.token).await).await;
        assert_eq!(details[0].0, "path", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_is_shed_with_503_and_a_login_goes_before_it() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.auth.hash_concurrency = 1;
        settings.auth.hash_queue_capacity = 8;
    })
    .await;
    assert_eq!(app.register("alice").await.status(), 201);
    // Each of these hashes a password before it is refused as taken.
    let flood: Vec<_> = (0..60)
        .map(|_| {
            let request = app.client.post(app.url("/api/v1/auth/register")).json(
                &json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD}),
            );
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                let (status, error) = error_code(response).await;
                (status, error["code"].clone(), retry_after, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    let login_done = Instant::now();
    eprintln!(
        "a login during the flood took {} ms",
        (login_done - started).as_millis()
    );
    let (mut shed, mut refused_after_the_login) = (0, 0);
    for task in flood {
        let (status, code, retry_after, done) = task.await.unwrap();
        match status {
            409 => refused_after_the_login += usize::from(done > login_done),
            503 => {
                assert_eq!(code, "unavailable");
                assert!(retry_after, "503 says when to retry");
                shed += 1;
            }
            other => panic!("{other} {code}"),
        }
    }
    assert!(
        shed > 0,
        "at most 8 hashes wait; the rest are refused at once"
    );
    assert!(
        refused_after_the_login > 0,
        "registrations queued before the login were hashed after it"
    );
}
