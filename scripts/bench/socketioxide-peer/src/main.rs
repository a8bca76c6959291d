//! socketioxide fan-out peer: viewers (auth {"role":"viewer"}) join `viewers`; each binary
//! `frame` event is re-emitted to that room. Usage: socketioxide-bench-peer --port N.
use axum::serve::{Listener, ListenerExt};
use bytes::Bytes;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().ok_or("--port needs a value")?.parse()?;
        }
    }
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |socket: SocketRef, Data(auth): Data<serde_json::Value>| {
        if auth.get("role").and_then(|r| r.as_str()) == Some("viewer") {
            socket.join("viewers");
        }
        socket.on("frame", async |socket: SocketRef, Data(frame): Data<Bytes>| {
            let _ = socket.within("viewers").emit("frame", &frame).await;
        });
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
