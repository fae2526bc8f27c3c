//! Issue 12 at the controller's HTTP doors: a SealedSecret whose templates would blow up
//! gets a quick error without taking the process's memory, `/v1/rotate` is rate-limited
//! like `/v1/verify`, and idle or slow connections, however many, are timed out and
//! bounded, so that `/healthz` and `/metrics` answer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gitseal_controller::server::HttpLimits;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The peak resident memory of this process (the controller runs in it), where Linux
/// tells it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_that_blow_up_get_a_quick_error_and_memory_stays_small() {
    let cluster = Cluster::start().await;
    let controller = cluster
        .controller("replica-1", &["--rate-limit=100", "--rate-limit-burst=100"])
        .await;
    let cert = certificate(&controller).await;
    let password = "Pa55-w0rd-XYZ";
    // The SealedSecret of issue 12: 400 templates of 4 MB each, in an 18 KB body.
    let mut hostile = sealed_secret(&cert, "hostile", &[("password", password)]);
    let templates: serde_json::Map<String, Value> = (0..400)
        .map(|i| (format!("t{i:03}"), json!("{{ indent 4000000 .password }}")))
        .collect();
    hostile["spec"]["template"]["data"] = Value::Object(templates);
    let body = hostile.to_string();
    assert!(body.len() < 64 << 10, "{} bytes", body.len());

    let http = reqwest::Client::new();
    let base = format!("http://{}", controller.api_addr);
    for (path, status) in [("/v1/verify", 409), ("/v1/rotate", 500)] {
        let started = Instant::now();
        let response = http
            .post(format!("{base}{path}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains("the templates of this Secret exceed their budget of 16777216 bytes"),
            "{path}: {text}"
        );
        assert!(!text.contains(password), "{path}: {text}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
    }
    // Without a budget per Secret the 400 values alone took 1.6 GB (7.9 GB with rotate).
    if let Some(peak) = peak_rss() {
        assert!(peak < 1 << 30, "peak resident memory {peak} bytes");
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_is_rate_limited_like_verify() {
    let cluster = Cluster::start().await;
    let controller = cluster
        .controller("replica-1", &["--rate-limit=1", "--rate-limit-burst=2"])
        .await;
    let cert = certificate(&controller).await;
    let body = sealed_secret(&cert, "r", &[("k", "v")]).to_string();
    let http = reqwest::Client::new();
    let rotate = |client: &str| {
        http.post(format!("http://{}/v1/rotate", controller.api_addr))
            .header("x-forwarded-for", client)
            .body(body.clone())
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(rotate("a").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        rotate("b").await.unwrap().status(),
        200,
        "buckets are per client"
    );
    let text = metrics(&controller).await;
    let refused = "sealed_secrets_controller_http_requests_total{path=\"/v1/rotate\",code=\"429\"";
    assert!(text.contains(refused), "{text}");
    controller.stop().await;
}

/// Reads `stream` until the server closes it, or gives up after `within` (`None`).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut bytes = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut bytes)).await {
        // A reset is a close too.
        Ok(_) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_time_out_and_the_server_answers_again() {
    const HEADERS: Duration = Duration::from_secs(2);
    const LIMIT: usize = 16;
    let cluster = Cluster::start().await;
    let controller = controller_with_config(cluster.client.clone(), "replica-1", &[], |c| {
        c.http.http_limits = HttpLimits {
            header_read_timeout: HEADERS,
            request_timeout: HEADERS,
            max_connections: LIMIT,
            ..HttpLimits::default()
        };
    })
    .await;
    certificate(&controller).await;
    // The certificate's connection holds a slot until the server has seen it close: let
    // it go, or the flood below would find one slot fewer and one would come free later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addr = controller.api_addr;
    let healthz = format!("http://{addr}/healthz");

    // A connection kept alive after a request is closed once it idles past the timeout.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 12];
    kept.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let idle_since = Instant::now();

    // The limit's worth of connections: silent ones, one that stops inside its headers,
    // one that stops inside its body.
    let opened = Instant::now();
    let mut flood = Vec::new();
    for _ in 1..LIMIT {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    flood[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    flood[1]
        .write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();

    // Over the limit: refused at once, with a 503.
    let mut over = TcpStream::connect(addr).await.unwrap();
    let refused = until_closed(&mut over, HEADERS / 2)
        .await
        .expect("a connection over the limit is closed at once");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    let busy = reqwest::get(&healthz).await.map(|r| r.status().as_u16());
    // Every slot is still held only while the kept-alive connection has not idled out (a
    // loaded machine can take that long to get here): then the request must be refused.
    if idle_since.elapsed() < HEADERS - Duration::from_millis(300) {
        assert!(!matches!(busy, Ok(200)), "{busy:?}");
    }
    // The metrics listener has connections of its own.
    let metrics = reqwest::get(format!("http://{}/metrics", controller.metrics_addr))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    // The server closes every one of them when its time is up, and not before.
    let deadline = HEADERS + Duration::from_secs(5);
    let slow_body = until_closed(&mut flood[1], deadline)
        .await
        .expect("a slow body is timed out");
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body:?}");
    for (i, stream) in flood.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        let rest = until_closed(stream, deadline).await;
        assert_eq!(rest.as_deref(), Some(""), "connection {i} closed silently");
    }
    let took = opened.elapsed();
    assert!(took >= HEADERS - Duration::from_millis(100), "{took:?}");
    let rest = until_closed(&mut kept, deadline)
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(
        rest.ends_with("\r\n\r\nok\n"),
        "the rest of the answer: {rest:?}"
    );
    assert!(idle_since.elapsed() >= HEADERS - Duration::from_millis(100));

    // And the server answers again.
    wait_for("/healthz to answer again", || async {
        let response = reqwest::get(&healthz).await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    // Bodies are bounded too.
    let mut big = TcpStream::connect(addr).await.unwrap();
    big.write_all(b"POST /v1/verify HTTP/1.1\r\nhost: x\r\ncontent-length: 3145728\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 12];
    big.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    controller.stop().await;
}
