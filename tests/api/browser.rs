//! The admin console driven in headless Chromium through chromedriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/test` installs
//! them). Each test starts its own app, chromedriver and browser profile.
//!
//! They are `#[ignore]`d in the main run: Chromium takes much of a small
//! machine's CPU and made timing-bound tests elsewhere miss their budgets.
//! `scripts/test` runs them on their own afterwards; by hand:
//! `scripts/test -- --ignored browser::`.
//!
//! Screenshots of each view go to `target/screenshots/`; with
//! `UPDATE_SCREENSHOTS=1` they replace the ones in `docs/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, free_port, spawn_app, spawn_app_with};
use crate::jobs::mail_to;
use crate::smtp_sink::{Mode, SmtpSink};

const WAIT: Duration = Duration::from_secs(15);
/// The console's figures refresh this often in tests (5 s by default).
const CONSOLE: &str = "/admin?refresh_ms=500";

/// chromedriver in a process group of its own, so that the browser it
/// starts goes with it even when a test fails half-way.
struct Driver {
    process: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let process = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} does not start ({error}): scripts/test installs chromium-driver")
            });
        let profile =
            std::env::temp_dir().join(format!("user-api-chromium-{}", uuid::Uuid::new_v4()));
        Self {
            process,
            port,
            profile,
        }
    }

    async fn session(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{}", self.port);
        let started = Instant::now();
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => return client,
                Err(error) if started.elapsed() < WAIT => {
                    tracing::debug!(%error, "chromedriver not ready yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("no browser session: {error}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.process.id())])
            .status();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One browser at a time: Chromium starting is heavy on a two-core
/// machine, and the other tests run meanwhile.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A browser on the app's console.
struct Page {
    client: Client,
    _driver: Driver,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Page {
    async fn open(app: &TestApp) -> Self {
        let turn = ONE_BROWSER.lock().await;
        let driver = Driver::start();
        let client = driver.session().await;
        client
            .goto(&app.url(CONSOLE))
            .await
            .expect("the console loads");
        let page = Self {
            client,
            _driver: driver,
            _turn: turn,
        };
        page.resize(1280, 800).await;
        page.visible("#sign-in-username").await;
        page
    }

    /// Makes the page itself (not the window around it) this size.
    async fn resize(&self, width: u32, height: u32) {
        let frame = self
            .script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
            .await;
        let extra = |index: usize| frame[index].as_u64().unwrap_or(0) as u32;
        self.client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .expect("a window size");
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css}: {error}"))
    }

    async fn visible(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            let element = self.find(css).await;
            if element.is_displayed().await.unwrap_or(false) {
                return element;
            }
            assert!(started.elapsed() < WAIT, "{css} never became visible");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// Waits until the element's text contains `needle`; returns the text.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                started.elapsed() < WAIT,
                "{css} never said {needle:?}; it says {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn click(&self, css: &str) {
        self.visible(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {css}: {error}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.visible(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    async fn script(&self, code: &str) -> Value {
        self.client.execute(code, vec![]).await.expect(code)
    }

    async fn sign_in(&self, username: &str) {
        self.type_into("#sign-in-username", username).await;
        self.type_into("#sign-in-password", PASSWORD).await;
        self.click("#sign-in-form button[type=submit]").await;
    }

    async fn sign_in_as_admin(&self, username: &str) {
        self.sign_in(username).await;
        self.wait_for_text("#notice", &format!("Signed in as {username}"))
            .await;
    }

    /// The token the page holds in memory.
    async fn token(&self) -> Option<String> {
        self.script("return state.token")
            .await
            .as_str()
            .map(str::to_string)
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut folders = vec![root.join("target/screenshots")];
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            folders.push(root.join("docs/screenshots"));
        }
        for folder in folders {
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(format!("{name}.png")), &png).unwrap();
        }
    }

    /// Nothing sticks out sideways, and every field has a label.
    async fn assert_readable(&self) {
        let overflow = self
            .script("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        if overflow.as_i64().unwrap() > 0 {
            let wide = self
                .script(
                    "return [...document.querySelectorAll('body *')]
                        .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
                        .map((e) => `${e.tagName}#${e.id}.${e.className}`)",
                )
                .await;
            panic!("scrolls sideways by {overflow}: {wide}");
        }
        let unlabelled = self
            .script(
                "return [...document.querySelectorAll('input, select')]
                    .filter((field) => field.labels.length === 0).map((field) => field.id)",
            )
            .await;
        assert_eq!(unlabelled, json!([]), "fields without a label");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn an_admin_previews_then_evicts_by_suffix_and_sees_the_count() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin("root").await;
    let alice = app.user("alice").await;
    let alice_path = format!("/api/v1/users/{}", alice.id);
    app.get(&alice_path, &admin.token).await;
    let page = Page::open(&app).await;
    page.assert_readable().await;
    page.screenshot("sign-in").await;
    page.sign_in_as_admin("root").await;
    // Reads between refreshes, now and then a miss, so that the chart has
    // a line that moves (alice's reads: root's token ended when the page
    // signed root in).
    let key = app.key(&format!("cache:user:{}", alice.id));
    let started = Instant::now();
    let mut reads = 0;
    let drawn = "return state.samples.filter((ratio) => ratio !== null).length";
    while page.script(drawn).await.as_u64() < Some(8) {
        assert!(started.elapsed() < WAIT, "the hit-ratio chart stays empty");
        app.get(&alice_path, &alice.token).await;
        reads += 1;
        if reads % 4 == 0 {
            let _: () = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut app.redis_connection().await)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cached again, whatever the last step of the loop did.
    while app.redis_get(&key).await.is_none() {
        assert!(started.elapsed() < WAIT * 2, "alice is never cached again");
        app.get(&alice_path, &alice.token).await;
    }
    let lines = "return document.querySelectorAll('#cache-chart polyline').length";
    assert!(
        page.script(lines).await.as_u64() > Some(0),
        "a line is drawn"
    );
    assert_ne!(page.text("#cache-keys").await, "–");
    assert!(page.text("#cache-ratio").await.ends_with('%'));
    page.assert_readable().await;
    page.screenshot("cache").await;

    page.type_into("#evict-value", ":999999").await;
    page.click("#evict-form button[type=submit]").await;
    page.wait_for_text("#notice", "No cache key ending with “:999999”")
        .await;

    page.type_into("#evict-value", &format!(":{}", alice.id))
        .await;
    page.click("#evict-form button[type=submit]").await;
    let preview = page
        .wait_for_text("#evict-preview-text", "1 cache key")
        .await;
    assert!(preview.contains("would be deleted"), "{preview}");
    let key = app.key(&format!("cache:user:{}", alice.id));
    assert_eq!(page.text("#evict-preview-keys").await, key);
    assert!(
        app.redis_get(&key).await.is_some(),
        "a preview deletes nothing"
    );
    page.screenshot("cache-eviction-preview").await;
    page.click("#evict-confirm").await;
    page.wait_for_text(
        "#notice",
        &format!("Deleted 1 cache key ending with “:{}”", alice.id),
    )
    .await;
    let read = app.get(&alice_path, &alice.token).await;
    assert_eq!(read.headers()["x-cache"], "MISS", "the entry is gone");

    page.resize(390, 844).await;
    page.assert_readable().await;
    page.screenshot("cache-phone").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn an_admin_finds_a_user_and_changes_their_role_and_their_token_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    app.admin("root").await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let page = Page::open(&app).await;
    page.sign_in_as_admin("root").await;
    page.click("#views button[data-view=users]").await;
    page.wait_for_text("#users-table tbody", "bob").await;
    page.type_into("#users-query", "ALI").await;
    page.click("#users-search button[type=submit]").await;
    page.wait_for_text("#notice", "1 user found").await;
    let rows = page.text("#users-table tbody").await;
    assert!(rows.contains("alice") && !rows.contains("bob"), "{rows}");
    page.click("button[aria-label='Open alice']").await;
    page.wait_for_text("#user-detail-title", "alice").await;
    page.assert_readable().await;
    page.screenshot("users").await;

    page.find("#user-role")
        .await
        .select_by_value("admin")
        .await
        .unwrap();
    page.click("#user-role-form button[type=submit]").await;
    page.wait_for_text("#notice", "alice is now an admin").await;
    assert!(page.text("#user-detail-fields").await.contains("admin"));
    assert_eq!(
        app.get("/api/v1/users/me", &alice.token).await.status(),
        401,
        "a role change ends alice's session"
    );
    let shown: Value = app
        .get(
            &format!("/api/v1/users/{}", alice.id),
            &page.token().await.unwrap(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["role"], "admin");
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn an_admin_replays_dead_jobs_from_the_jobs_view() {
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::Refuse);
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        mail_to(settings, &sink);
        settings.jobs.max_attempts = 1;
    })
    .await;
    // root's welcome mail is refused and dies.
    let admin = app.admin("root").await;
    let started = Instant::now();
    loop {
        let stats: Value = app
            .get("/api/v1/admin/jobs/stats", &admin.token)
            .await
            .json()
            .await
            .unwrap();
        if stats["dead"] == 1 {
            break;
        }
        assert!(started.elapsed() < WAIT, "the job never died: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.set_mode(Mode::Accept);
    let page = Page::open(&app).await;
    page.sign_in_as_admin("root").await;
    page.click("#views button[data-view=jobs]").await;
    page.wait_for_text("#jobs-dead", "1").await;
    page.assert_readable().await;
    page.screenshot("jobs").await;
    page.click("#jobs-replay").await;
    page.wait_for_text("#notice", "Replayed 1 dead job").await;
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["root@example.com"]);
    page.wait_for_text("#jobs-dead", "0").await;
    page.click("#jobs-replay").await;
    page.wait_for_text("#notice", "No job was dead").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn an_admin_filters_the_audit_log_by_user_and_action() {
    let app = spawn_app(Backend::Sqlite).await;
    app.admin("root").await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    assert_eq!(app.login("alice", "not the password").await.status(), 401);
    let page = Page::open(&app).await;
    page.sign_in_as_admin("root").await;
    page.click("#views button[data-view=audit]").await;
    let all = page
        .wait_for_text("#audit-table tbody", "user.registered")
        .await;
    assert!(
        all.contains("auth.login_failed") && all.contains("auth.login"),
        "{all}"
    );
    page.assert_readable().await;
    page.screenshot("audit").await;

    page.type_into("#audit-subject", &alice.id.to_string())
        .await;
    page.type_into("#audit-action", "auth.login_failed").await;
    page.click("#audit-filter button[type=submit]").await;
    page.wait_for_text("#notice", "1 event shown").await;
    let rows = page.text("#audit-table tbody").await;
    assert!(
        rows.contains("auth.login_failed") && !rows.contains("user.registered"),
        "{rows}"
    );

    page.find("#audit-action").await.clear().await.unwrap();
    page.type_into("#audit-action", "user.deleted").await;
    page.click("#audit-filter button[type=submit]").await;
    page.wait_for_text("#notice", "No event matches").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn a_non_admin_who_signs_in_is_told_the_page_is_for_admins() {
    let app = spawn_app(Backend::Sqlite).await;
    app.user("alice").await;
    let page = Page::open(&app).await;
    page.sign_in("alice").await;
    page.wait_for_text("#notice", "This page is for admins")
        .await;
    assert!(!page.find("#views").await.is_displayed().await.unwrap());
    assert!(!page.find("#view-cache").await.is_displayed().await.unwrap());
    assert_eq!(page.token().await, None, "the page forgot the token");
    page.screenshot("not-an-admin").await;
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn the_keyboard_alone_signs_in_and_signing_out_ends_the_session() {
    let app = spawn_app(Backend::Sqlite).await;
    app.admin("root").await;
    let page = Page::open(&app).await;
    // The username field has the focus; Tab and Enter do the rest.
    let keys = format!(
        "root{}{PASSWORD}{}",
        char::from(Key::Tab),
        char::from(Key::Enter)
    );
    page.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&keys)
        .await
        .unwrap();
    page.wait_for_text("#notice", "Signed in as root").await;
    let token = page.token().await.expect("a token in memory");
    assert_eq!(app.get("/api/v1/users/me", &token).await.status(), 200);
    let stored = page
        .script("return [localStorage.length, sessionStorage.length, document.cookie]")
        .await;
    assert_eq!(
        stored,
        json!([0, 0, ""]),
        "nothing kept where scripts can read it"
    );
    page.click("#sign-out").await;
    page.wait_for_text("#notice", "You are signed out").await;
    assert_eq!(app.get("/api/v1/users/me", &token).await.status(), 401);
    assert!(page.find("#sign-in").await.is_displayed().await.unwrap());
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn a_reload_continues_the_session_through_the_refresh_cookie() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.auth.refresh_cookie = true
    })
    .await;
    app.admin("root").await;
    let page = Page::open(&app).await;
    page.sign_in_as_admin("root").await;
    let first = page.token().await.expect("a token in memory");
    page.client.refresh().await.unwrap();
    // The reload lost the token in memory; the cookie brings a new one.
    page.wait_for_text("#notice", "Signed in as root").await;
    let second = page.token().await.expect("a new token");
    assert_ne!(first, second);
    assert_eq!(app.get("/api/v1/users/me", &second).await.status(), 200);
    page.click("#sign-out").await;
    page.wait_for_text("#notice", "You are signed out").await;
    page.client.refresh().await.unwrap();
    page.visible("#sign-in-username").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        page.token().await,
        None,
        "signing out ended the cookie's session too"
    );
    assert!(page.find("#sign-in").await.is_displayed().await.unwrap());
    page.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/test after the other tests (Chromium competes for the CPU)"]
async fn an_admin_disables_a_user_whose_token_is_then_refused_where_the_server_can() {
    let app = spawn_app(Backend::Sqlite).await;
    app.admin("root").await;
    let bob = app.user("bob").await;
    let document: Value = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let page = Page::open(&app).await;
    page.sign_in_as_admin("root").await;
    page.click("#views button[data-view=users]").await;
    page.click("button[aria-label='Open bob']").await;
    page.wait_for_text("#user-detail-title", "bob").await;
    let update = &document["components"]["schemas"]["UserUpdate"]["properties"];
    if update["disabled"].is_null() {
        // Until the server takes `disabled`, the page says so instead.
        page.wait_for_text("#user-missing", "cannot disable accounts")
            .await;
        assert!(
            !page
                .find("#user-disable")
                .await
                .is_displayed()
                .await
                .unwrap()
        );
    } else {
        page.click("#user-disable").await;
        page.wait_for_text("#notice", "bob is disabled").await;
        assert_eq!(app.get("/api/v1/users/me", &bob.token).await.status(), 401);
        assert_eq!(app.login("bob", PASSWORD).await.status(), 403);
        page.wait_for_text("#user-disable", "Enable account").await;
        page.click("#user-disable").await;
        page.wait_for_text("#notice", "bob is enabled again").await;
        assert_eq!(app.login("bob", PASSWORD).await.status(), 200);
    }
    let fresh = app.login_token("bob", PASSWORD).await;
    page.click("#user-sessions").await;
    page.wait_for_text("#notice", "Every session of bob has ended")
        .await;
    assert_eq!(app.get("/api/v1/users/me", &fresh).await.status(), 401);
    page.close().await;
}
