//! The binary's command-line contract: one `listening on http://HOST:PORT` line, fast start,
//! flags, static files.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::client;

struct Server {
    child: Child,
    url: String,
    startup: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Server {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-devserver"))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let startup = started.elapsed();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .trim_end()
        .to_string();
    Server {
        child,
        url,
        startup,
    }
}

#[tokio::test]
async fn prints_one_listening_line_and_starts_fast() {
    let server = spawn(&[]);
    assert!(server.url.starts_with("http://127.0.0.1:"));
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert!(
        server.startup < Duration::from_secs(1),
        "{:?}",
        server.startup
    );
    eprintln!("startup: {:?}", server.startup);
    let res = client()
        .get(format!("{}/api/chat/config", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn no_admin_hides_the_test_routes() {
    let server = spawn(&["--no-admin", "--secret-key", "k2"]);
    let res = client()
        .post(format!("{}/__admin/reset", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = client()
        .post(format!("{}/api/v1/auth/jwt/claims", server.url))
        .bearer_auth("k2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "--secret-key is the environment's key");
}

#[tokio::test]
async fn serves_the_static_demo_with_spa_fallback() {
    let dir = std::env::temp_dir().join(format!("chat-devserver-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><p>demo</p>").unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let server = spawn(&["--static-dir", dir.to_str().unwrap()]);
    let get = |path: &str| client().get(format!("{}{path}", server.url)).send();
    let index = get("/").await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.headers().contains_key("access-control-allow-origin"));
    assert!(index.text().await.unwrap().contains("demo"));
    let js = get("/assets/app.js").await.unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert!(get("/some/client/route")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("demo"));
    assert_eq!(get("/api/unknown").await.unwrap().status(), 404);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_the_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-devserver"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--host",
        "--secret-key",
        "--static-dir",
        "--run-idle-timeout-ms",
        "--token-ttl-seconds",
        "--ping-interval-ms",
        "--no-admin",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}
