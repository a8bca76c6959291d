//! Interop with real clients: the official socket.io-client v4 (Node) and python-socketio 5
//! (`socketio.Client` and `socketio.AsyncClient`), each over polling only, WebSocket only and
//! polling→WebSocket upgrade, against our server running in this process.
//!
//! Each client runs the same scenario (tests/peers/server/interop-client.mjs and
//! interop_client.py): text and binary events both ways, acks both ways (binary included), a
//! second namespace, rooms and broadcasts with exceptions reaching exactly the right clients,
//! auth rejected with our CONNECT_ERROR data, disconnects from either side with the right
//! reasons, and a client that stops answering pings dropped on time. The server side records
//! every disconnect reason and this test checks them.

mod process_support;
mod server_support;

use serde_json::{Value, json};
use server_support::peers_dir;
use sioedge::server::Server;
use sioedge::socketio::Arg;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;

type Records = Arc<Mutex<Vec<(String, String, String)>>>;

fn arg_str(args: &[Arg], i: usize) -> Option<&str> {
    match args.get(i) {
        Some(Arg::Json(v)) => v.as_str(),
        _ => None,
    }
}

fn interop_server(records: Records) -> Server {
    let server = Server::builder()
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(1000))
        .connect_timeout(Duration::from_secs(5))
        .build();
    for nsp in ["/", "/admin"] {
        let records = records.clone();
        server.of(nsp).on_connect(move |socket, auth| {
            if auth.get("token").and_then(Value::as_str) == Some("bad") {
                return Err(json!({ "message": "unauthorized", "data": { "code": 42 } }));
            }
            socket.on("echo", |s, args, _| {
                let _ = s.emit("echo-back", args);
            });
            socket.on("ack", |_, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            socket.on("join", |s, args, ack| {
                if let (Some(room), Some(ack)) = (arg_str(&args, 0), ack) {
                    s.join(room);
                    let _ = ack.send(vec![Arg::Json(json!(s.id()))]);
                }
            });
            socket.on("rooms", |s, _, ack| {
                let mut rooms = s.rooms();
                rooms.sort();
                if let Some(ack) = ack {
                    let _ = ack.send(vec![Arg::Json(json!(rooms))]);
                }
            });
            socket.on("broadcast", |s, mut args, ack| {
                let Some(Arg::Json(target)) = (!args.is_empty()).then(|| args.remove(0)) else {
                    return;
                };
                let mut b = s.namespace().to(target["room"].as_str().unwrap_or(""));
                if let Some(except) = target["except"].as_str() {
                    b = b.except(except);
                }
                let n = b.emit("bcast", args);
                if let Some(ack) = ack {
                    let _ = ack.send(vec![Arg::Json(json!(n))]);
                }
            });
            socket.on("broadcast-others", |s, mut args, ack| {
                let room = arg_str(&args, 0).unwrap_or("").to_owned();
                args.remove(0);
                let n = s.to(&room).emit("bcast", args);
                if let Some(ack) = ack {
                    let _ = ack.send(vec![Arg::Json(json!(n))]);
                }
            });
            socket.on("server-ack", |s, args, _| {
                let s = s.clone();
                tokio::spawn(async move {
                    let reply = match s.emit_with_ack("ask", args, Duration::from_secs(5)).await {
                        Ok(reply) => reply,
                        Err(e) => vec![Arg::Json(json!(format!("ack failed: {e}")))],
                    };
                    let _ = s.emit("ask-result", reply);
                });
            });
            socket.on("disconnect-me", |s, _, _| s.disconnect());
            let records = records.clone();
            socket.on_disconnect(move |s, reason| {
                records.lock().unwrap_or_else(|e| e.into_inner()).push((
                    s.namespace().name().to_owned(),
                    s.id().to_owned(),
                    reason.as_str().to_owned(),
                ));
            });
            Ok(())
        });
    }
    server
}

async fn run_scenario(program: &str, args: &[&str]) {
    let records: Records = Arc::default();
    let server = interop_server(records.clone());
    let (addr, serving) = server_support::serve(&server).await;
    let url = format!("http://{addr}");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg(&url)
        .current_dir(peers_dir())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("client timed out")
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "DONE"),
        "{program} {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let sids: HashMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("SID "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let dropped_ms: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DROPPED d after "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("drop time reported");
    // Ping interval 1 s + timeout 1 s after the last pong, plus scheduling slack.
    assert!(dropped_ms <= 3500, "ping-timeout drop took {dropped_ms} ms");
    // python-socketio's disconnect() aborts its engine right after queueing DISCONNECT, so over
    // WebSocket the packet may never leave the client: the server then rightly sees the
    // transport close. socket.io-client always sends it.
    let client_leave: &[&str] = if program == "node" {
        &["client namespace disconnect"]
    } else {
        &["client namespace disconnect", "transport close"]
    };
    let expect: [(&str, &[&str]); 3] = [
        ("b", client_leave),
        ("c", &["server namespace disconnect"]),
        ("d", &["ping timeout"]),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = records.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let missing: Vec<_> = expect
            .iter()
            .filter(|(role, reasons)| {
                !seen.iter().any(|(ns, sid, r)| {
                    ns == "/"
                        && Some(&sid.as_str()) == sids.get(role)
                        && reasons.contains(&r.as_str())
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never saw {missing:?}; saw {seen:?}; sids {sids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
}

macro_rules! interop {
    ($($name:ident: $program:expr, [$($arg:expr),*];)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_scenario($program, &[$($arg),*]).await;
        }
    )*};
}

interop! {
    node_polling: "node", ["server/interop-client.mjs", "polling"];
    node_websocket: "node", ["server/interop-client.mjs", "websocket"];
    node_upgrade: "node", ["server/interop-client.mjs", "upgrade"];
    python_sync_polling: "python3", ["server/interop_client.py", "sync", "polling"];
    python_sync_websocket: "python3", ["server/interop_client.py", "sync", "websocket"];
    python_sync_upgrade: "python3", ["server/interop_client.py", "sync", "upgrade"];
    python_async_polling: "python3", ["server/interop_client.py", "async", "polling"];
    python_async_websocket: "python3", ["server/interop_client.py", "async", "websocket"];
    python_async_upgrade: "python3", ["server/interop_client.py", "async", "upgrade"];
}
