//! A strategies file read from disk and from an HTTP URL, reloaded; a broken
//! reload keeps the last good strategies.
use std::time::Duration;

use spoor_sampling::{FileProvider, SamplingOptions, StrategyProvider};

fn rate(p: &FileProvider, service: &str) -> f64 {
    p.strategy(service)
        .probabilistic_sampling
        .unwrap()
        .sampling_rate
}

fn file(rate: f64) -> String {
    format!(r#"{{"default_strategy": {{"type": "probabilistic", "param": {rate}}}}}"#)
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    sampling: SamplingOptions,
}

fn options(source: String, reload: Duration) -> SamplingOptions {
    let mut o = <Cli as clap::Parser>::try_parse_from(["t"])
        .unwrap()
        .sampling;
    o.strategies_file = Some(source);
    o.reload_interval = reload;
    o
}

#[tokio::test]
async fn file_changes_are_picked_up_and_bad_ones_ignored() {
    let dir = std::env::temp_dir().join(format!("spoor-sampling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("strategies.json");
    std::fs::write(&path, file(0.3)).unwrap();
    let provider = FileProvider::load(options(
        path.display().to_string(),
        Duration::from_millis(50),
    ))
    .await
    .unwrap();
    let reload = provider.spawn_reload().expect("reloading");
    assert_eq!(rate(&provider, "any"), 0.3);

    std::fs::write(&path, file(0.6)).unwrap();
    let mut seen = 0.0;
    for _ in 0..100 {
        seen = rate(&provider, "any");
        if seen == 0.6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 0.6);

    std::fs::write(&path, "not a strategies file").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rate(&provider, "any"), 0.6, "last good strategies kept");
    reload.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn strategies_come_from_a_url_and_a_bad_source_fails_start_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let body = file(0.42);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(resp.as_bytes()).await.unwrap();
        }
    });
    let provider = FileProvider::load(options(
        format!("http://{addr}/strategies.json"),
        Duration::ZERO,
    ))
    .await
    .unwrap();
    assert_eq!(rate(&provider, "svc"), 0.42);
    assert!(provider.spawn_reload().is_none());

    let missing =
        FileProvider::load(options("/no/such/strategies.json".into(), Duration::ZERO)).await;
    let err = format!("{:#}", missing.err().unwrap());
    assert!(err.contains("/no/such/strategies.json"), "{err}");
}
