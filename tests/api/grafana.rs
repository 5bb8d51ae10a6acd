//! The Grafana dashboard in `grafana/` asks only for series that `/metrics`
//! really exposes: every metric name, and every label value it selects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

/// Labels Prometheus adds when it scrapes, or that histograms carry.
const SCRAPE_LABELS: [&str; 3] = ["instance", "job", "le"];

/// One `metric{label="value",...}` selector in a query.
#[derive(Debug)]
struct Selector {
    metric: String,
    /// (label, operator, value)
    matchers: Vec<(String, String, String)>,
}

fn selectors(query: &str) -> Vec<Selector> {
    let mut found = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("user_api_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let metric = tail[..end].to_string();
        let mut matchers = Vec::new();
        if let Some(inside) = tail[end..].strip_prefix('{') {
            let close = inside.find('}').expect("a closed selector");
            for matcher in inside[..close].split(',') {
                let operator = ["=~", "!~", "!=", "="]
                    .into_iter()
                    .find(|op| matcher.contains(op))
                    .expect("a matcher");
                let (label, value) = matcher.split_once(operator).unwrap();
                matchers.push((
                    label.trim().to_string(),
                    operator.to_string(),
                    value.trim().trim_matches('"').to_string(),
                ));
            }
        }
        found.push(Selector { metric, matchers });
        rest = &tail[end..];
    }
    found
}

/// Metric name → label → values seen, from the Prometheus text format.
fn exposed(text: &str) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut series: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(end) = line.find(['{', ' ']) else {
            continue;
        };
        let labels = series.entry(line[..end].to_string()).or_default();
        if let Some(inside) = line[end..].strip_prefix('{') {
            let close = inside.rfind('}').unwrap();
            for pair in inside[..close].split(',') {
                if let Some((label, value)) = pair.split_once('=') {
                    labels
                        .entry(label.to_string())
                        .or_default()
                        .insert(value.trim_matches('"').to_string());
                }
            }
        }
    }
    series
}

fn queries(dashboard: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has a query", panel["title"]);
        found.extend(targets.iter().map(|target| {
            target["expr"]
                .as_str()
                .expect("a PromQL expression")
                .to_string()
        }));
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            found.push(variable["query"].as_str().expect("a query").to_string());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_the_grafana_dashboard_queries_is_exposed_by_metrics() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("grafana/user-api.json");
    let dashboard: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let app = spawn_app(Backend::Sqlite).await;
    // Traffic, so that labelled series (routes, cache results) exist.
    let admin = app.admin("root").await;
    for _ in 0..2 {
        app.get(&format!("/api/v1/users/{}", admin.id), &admin.token)
            .await;
    }
    let text = app
        .request(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    let series = exposed(&text);
    let queries = queries(&dashboard);
    let mut checked = BTreeSet::new();
    for query in &queries {
        let found = selectors(query);
        assert!(!found.is_empty(), "no user-api metric in {query}");
        for selector in found {
            let labels = series
                .get(&selector.metric)
                .unwrap_or_else(|| panic!("{} is not exposed (in {query})", selector.metric));
            checked.insert(selector.metric.clone());
            for (label, operator, value) in &selector.matchers {
                if SCRAPE_LABELS.contains(&label.as_str()) {
                    continue;
                }
                let values = labels.get(label).unwrap_or_else(|| {
                    panic!("{} has no label {label} (in {query})", selector.metric)
                });
                let wanted: Vec<&str> = match operator.as_str() {
                    "=" => vec![value.as_str()],
                    "=~" => value.split('|').collect(),
                    _ => vec![],
                };
                for wanted in wanted {
                    assert!(
                        values.contains(wanted),
                        "{}{{{label}=\"{wanted}\"}} is not exposed; it has {values:?}",
                        selector.metric
                    );
                }
            }
        }
    }
    for needed in [
        "user_api_http_requests_total",
        "user_api_http_request_duration_seconds_bucket",
        "user_api_cache_reads_total",
        "user_api_rate_limit_decisions_total",
        "user_api_lock_contention_total",
        "user_api_jobs",
        "user_api_pool_connections",
    ] {
        assert!(checked.contains(needed), "the dashboard shows {needed}");
    }
}

#[test]
fn the_selector_reader_finds_names_and_matchers() {
    let found = selectors(
        r#"sum(rate(user_api_cache_reads_total{result="hit",instance=~"$instance"}[5m])) / user_api_jobs"#,
    );
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].metric, "user_api_cache_reads_total");
    assert_eq!(
        found[0].matchers[0],
        ("result".into(), "=".into(), "hit".into())
    );
    assert_eq!(found[1].metric, "user_api_jobs");
    assert!(found[1].matchers.is_empty());
}
