//! The sioedge side of `scripts/bench-server`: a fan-out server. Clients that connect with auth
//! `{"role":"viewer"}` join the room `viewers`; every `frame` event is re-emitted to that room,
//! encoded once and shared (`emit_shared`, volatile: a viewer that cannot keep up loses frames).
//! Usage: `bench-server --port N` (0 = any; prints "listening on ADDR").

use sioedge::queue::Class;
use sioedge::server::Server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    while let Some(a) = args.next() {
        if a == "--port" {
            port = args.next().ok_or("--port needs a value")?.parse()?;
        }
    }
    let server = Server::builder().build();
    let ns = server.of("/");
    ns.on_connect(|socket, auth| {
        if auth.get("role").and_then(|r| r.as_str()) == Some("viewer") {
            socket.join("viewers");
        }
        socket.on("frame", |socket, args, _| {
            let ns = socket.namespace();
            let packet = ns.encode_event("frame", args);
            let _ = ns.to("viewers").emit_shared(packet, Class::Volatile);
        });
        Ok(())
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    tokio::select! {
        _ = server.serve(listener) => {}
        _ = tokio::signal::ctrl_c() => server.shutdown().await,
    }
    Ok(())
}
