//! Welcome mails: committed with the user (outbox), delivered at least once
//! over real SMTP, retried, dead-lettered, replayed, and taken over when a
//! worker dies.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use user_api::config::{MailTransport, Settings, SmtpTls};

use crate::child::{Running, Signal};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::smtp_sink::{Mode, SmtpSink};

pub fn mail_to(settings: &mut Settings, sink: &SmtpSink) {
    settings.mail.transport = MailTransport::Smtp;
    settings.mail.smtp_host = "127.0.0.1".into();
    settings.mail.smtp_port = sink.port;
    settings.mail.smtp_tls = SmtpTls::None;
    settings.mail.smtp_timeout_seconds = 5;
    settings.jobs.retry_base_ms = 50;
    settings.jobs.retry_max_ms = 200;
}

async fn app_mailing_to(
    sink: &SmtpSink,
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_with(backend, |settings| {
        mail_to(settings, sink);
        configure(settings);
    })
    .await
}

async fn job_stats(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/admin/jobs/stats", token)
        .await
        .json()
        .await
        .unwrap()
}

async fn wait_for_stat(app: &TestApp, token: &str, name: &str, value: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = job_stats(app, token).await;
        if stats[name] == value {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached {value}: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn registration_mails(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, backend, |_| {}).await;
    for n in 0..10 {
        assert_eq!(app.register(&format!("user{n}")).await.status(), 201);
    }
    let mails = sink.wait_for(10, Duration::from_secs(15)).await;
    let mut recipients: Vec<String> = mails.iter().flat_map(|mail| mail.to.clone()).collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..10).map(|n| format!("user{n}@example.com")).collect();
    expected.sort();
    assert_eq!(recipients, expected);
    assert!(mails.iter().all(|mail| mail.data.contains("Welcome")));
    // A registration that fails sends nothing.
    assert_eq!(app.register("user3").await.status(), 409);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.mails().len(), 10, "exactly one mail per registration");
    let admin = app.admin("root").await;
    wait_for_stat(&app, &admin.token, "delivered", 11).await;
    // A worker counts a job delivered, then takes it out of the outbox.
    let stats = wait_for_stat(&app, &admin.token, "outbox", 0).await;
    assert_eq!(stats["dead"].as_u64(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registration_sends_exactly_one_welcome_mail_on_sqlite() {
    registration_mails(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registration_sends_exactly_one_welcome_mail_on_postgres() {
    registration_mails(Backend::Postgres).await;
}

const REPLAY: &str = "/api/v1/admin/jobs/dead/replay";

#[derive(Clone, Copy)]
enum Replay {
    CommandLine,
    Http,
}

async fn refusals_then_dead_letter_then_replay(backend: Backend, replay: Replay) {
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::Refuse);
    let app = app_mailing_to(&sink, backend, |settings| settings.jobs.max_attempts = 3).await;
    let admin = app.admin("root").await;
    let stats = wait_for_stat(&app, &admin.token, "dead", 1).await;
    assert_eq!(stats["retried"], 2, "two retries, then given up");
    assert_eq!(sink.refused(), 3);
    sink.set_mode(Mode::Accept);
    match replay {
        Replay::CommandLine => {
            let output = app
                .command()
                .args(["jobs", "replay-dead"])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                "replayed 1 jobs"
            );
        }
        Replay::Http => {
            let response = app
                .request(Method::POST, REPLAY, Some(&admin.token), None)
                .await;
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"replayed": 1})
            );
        }
    }
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails[0].to, ["root@example.com"]);
    wait_for_stat(&app, &admin.token, "dead", 0).await;
    if let Replay::Http = replay {
        let again = app
            .request(Method::POST, REPLAY, Some(&admin.token), None)
            .await;
        assert_eq!(again.json::<Value>().await.unwrap(), json!({"replayed": 0}));
        // Registered only now: alice's welcome mail is not one of the above.
        let user = app.user("alice").await;
        let refused = app
            .request(Method::POST, REPLAY, Some(&user.token), None)
            .await;
        assert_eq!(refused.status(), 403, "admins only");
        let anonymous = app.request(Method::POST, REPLAY, None, None).await;
        assert_eq!(anonymous.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_mail_server_gets_retries_then_dead_letter_then_replay_on_sqlite() {
    refusals_then_dead_letter_then_replay(Backend::Sqlite, Replay::CommandLine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_mail_server_gets_retries_then_dead_letter_then_replay_on_postgres() {
    refusals_then_dead_letter_then_replay(Backend::Postgres, Replay::CommandLine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replays_dead_jobs_over_http_on_sqlite() {
    refusals_then_dead_letter_then_replay(Backend::Sqlite, Replay::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replays_dead_jobs_over_http_on_postgres() {
    refusals_then_dead_letter_then_replay(Backend::Postgres, Replay::Http).await;
}

fn worker_process(app: &TestApp) -> Running {
    let mut command = app.command();
    command
        .arg("worker")
        .env("APP__MAIL__TRANSPORT", "smtp")
        .env("APP__MAIL__SMTP_HOST", "127.0.0.1")
        .env(
            "APP__MAIL__SMTP_PORT",
            app.settings.mail.smtp_port.to_string(),
        )
        .env("APP__MAIL__SMTP_TLS", "none")
        .env("APP__JOBS__VISIBILITY_TIMEOUT_SECONDS", "5")
        .env("APP__WORKER__CONCURRENCY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Running::spawn(&mut command)
}

/// Waits until a worker is stuck in the middle of sending a mail.
async fn wait_until_stalled(sink: &SmtpSink) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.stalled() == 0 {
        assert!(Instant::now() < deadline, "the worker never sent");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An app whose one worker is stuck sending alice's welcome mail, with
/// `smtp_timeout_seconds` and the 60 s visibility timeout.
async fn one_worker_stalled_on_alices_mail(
    sink: &SmtpSink,
    smtp_timeout_seconds: u64,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    sink.set_mode(Mode::Stall);
    let app = app_mailing_to(sink, Backend::Sqlite, |settings| {
        settings.mail.smtp_timeout_seconds = smtp_timeout_seconds;
        settings.worker.concurrency = 1;
        settings.jobs.visibility_timeout_seconds = 60;
        configure(settings);
    })
    .await;
    assert_eq!(app.register("alice").await.status(), 201);
    wait_until_stalled(sink).await;
    app
}

/// A stalling mail sink, a server that runs no workers (separate worker
/// processes do the jobs), and a worker process stuck in the middle of
/// sending alice's welcome mail; and when alice registered.
async fn worker_stalled_on_alices_mail() -> (SmtpSink, TestApp, Running, Instant) {
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::Stall);
    let app = app_mailing_to(&sink, Backend::Sqlite, |settings| {
        settings.worker.enabled = false
    })
    .await;
    let worker = worker_process(&app);
    let registered = Instant::now();
    assert_eq!(app.register("alice").await.status(), 201);
    wait_until_stalled(&sink).await;
    (sink, app, worker, registered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_worker_killed_mid_send_is_delivered_after_the_visibility_timeout() {
    let (sink, app, mut first, registered) = worker_stalled_on_alices_mail().await;
    first.kill(); // SIGKILL: no chance to hand the job back
    sink.set_mode(Mode::Accept);
    let mut second = worker_process(&app);
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
    // Handed to the first worker after alice registered, the job may be
    // claimed only once it has been idle for the 5 s visibility timeout.
    assert!(
        registered.elapsed() >= Duration::from_secs(5),
        "taken over {:?} after the registration",
        registered.elapsed()
    );
    second.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_registrations_get_their_mails_through_five_worker_kills() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink, Backend::Sqlite, |settings| {
        settings.worker.enabled = false
    })
    .await;
    let mut worker = worker_process(&app);
    let registrations = {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/register"));
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for batch in (0..1000).collect::<Vec<_>>().chunks(8) {
                let requests = batch.iter().map(|n| {
                    let body = serde_json::json!({
                        "username": format!("user{n}"),
                        "email": format!("user{n}@example.com"),
                        "password": crate::helpers::PASSWORD,
                    });
                    client.post(&url).json(&body).send()
                });
                for response in futures_util::future::join_all(requests).await {
                    statuses.push(response.unwrap().status().as_u16());
                }
            }
            statuses
        })
    };
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        worker.kill(); // SIGKILL, whatever it was doing
        worker = worker_process(&app);
    }
    let statuses = registrations.await.unwrap();
    assert!(statuses.iter().all(|status| *status == 201));
    // Generous: in the full suite on 2 cores the last worker shares the CPU
    // with every other test; what must hold is that all 1,000 arrive.
    let deadline = Instant::now() + Duration::from_secs(180);
    let delivered = loop {
        let mut recipients: Vec<String> =
            sink.mails().into_iter().flat_map(|mail| mail.to).collect();
        recipients.sort();
        recipients.dedup();
        if recipients.len() == 1000 || Instant::now() > deadline {
            break recipients.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    worker.kill();
    eprintln!(
        "{} mails received for 1000 registrations",
        sink.mails().len()
    );
    assert_eq!(delivered, 1000, "every registration's mail arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_welcome_mail_survives_redis_restarting_empty() {
    let mut redis = crate::redis_server::RedisServer::start();
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::Refuse);
    let url = redis.url();
    let app = app_mailing_to(&sink, Backend::Sqlite, |settings| {
        settings.redis.url = secrecy::SecretString::from(url);
        settings.jobs.relay_again_after_seconds = 2;
        settings.jobs.retry_base_ms = 500;
    })
    .await;
    assert_eq!(app.register("alice").await.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.refused() == 0 {
        assert!(
            Instant::now() < deadline,
            "the job never reached the mail server"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    redis.restart(); // empty: the stream and the retry set are gone
    sink.set_mode(Mode::Accept);
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_exits_0_and_its_job_is_still_delivered() {
    let (sink, app, mut first, _) = worker_stalled_on_alices_mail().await;
    let stopped = Instant::now();
    first.signal(Signal::SIGTERM);
    let exit = tokio::task::spawn_blocking(move || first.wait())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        stopped.elapsed()
    );
    sink.set_mode(Mode::Accept);
    let mut second = worker_process(&app);
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
    second.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_stalls_mid_delivery_holds_the_worker_only_for_the_smtp_timeout() {
    let sink = SmtpSink::start().await;
    let _app = one_worker_stalled_on_alices_mail(&sink, 1, |_| {}).await;
    sink.set_mode(Mode::Accept);
    // The retry, well before the 60 s after which a claim would take it.
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_worker_could_not_settle_while_redis_hung_is_done_soon_after_not_after_the_visibility_timeout()
 {
    let redis = crate::redis_server::RedisServer::start();
    let proxy = crate::fault_proxy::FaultProxy::start(redis.port).await;
    let sink = SmtpSink::start().await;
    let url = format!("redis://127.0.0.1:{}/0", proxy.port);
    let app = one_worker_stalled_on_alices_mail(&sink, 3, |settings| {
        settings.redis.url = secrecy::SecretString::from(url)
    })
    .await;
    // The send times out while Redis hangs: the worker cannot schedule the
    // retry, and the job stays pending on it.
    proxy.blackhole();
    sink.set_mode(Mode::Accept);
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.pass();
    // Well within the 60 s after which another worker would claim it.
    let mails = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
    let admin = app.admin("root").await;
    let stats = wait_for_stat(&app, &admin.token, "in_flight", 0).await;
    assert_eq!(stats["retried"], 0, "sent by the take-back, not a retry");
    let to_alice = sink
        .mails()
        .iter()
        .filter(|mail| mail.to == ["alice@example.com"])
        .count();
    assert_eq!(to_alice, 1);
}
